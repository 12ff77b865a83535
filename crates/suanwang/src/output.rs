//! Output for people: aligned text tables (numbers right-aligned, text left-aligned), and writing
//! to stdout.

use std::io::Write;

use crate::error::CliError;

/// Writes `text` to stdout and flushes it.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::internal("write_failed", format!("stdout: {e}")))
}

pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table { header: header.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.header.len();
        let width = |i: usize| {
            std::iter::once(&self.header[i])
                .chain(self.rows.iter().filter_map(|r| r.get(i)))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        let numeric = |i: usize| {
            !self.rows.is_empty()
                && self
                    .rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .all(|c| c == "-" || c.chars().all(|ch| ch.is_ascii_digit() || ",.-".contains(ch)))
        };
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate().take(columns) {
                let pad = widths[i].saturating_sub(cell.chars().count());
                if i > 0 {
                    out.push_str("  ");
                }
                if numeric(i) {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if i + 1 < columns {
                        out.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.trim_end().to_owned() + "\n"
        };
        let mut out = line(&self.header);
        for row in &self.rows {
            out += &line(row);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_text_left_and_numbers_right() {
        let mut table = Table::new(&["name", "cards"]);
        table.row(vec!["a".to_owned(), "1,024".to_owned()]);
        table.row(vec!["longer".to_owned(), "8".to_owned()]);
        assert_eq!(table.render(), "name    cards\na       1,024\nlonger      8\n");
    }
}
