//! The one error type of the file formats.

use std::fmt;

/// A file that could not be used, and where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FormatError {
    /// The file (or other source) name given to the parser.
    pub source_name: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known. In CSV files this is the field number.
    pub column: Option<u64>,
    /// The CSV column header or TOML key, when known.
    pub field: Option<String>,
    /// What is wrong, as a sentence fragment (lowercase, no trailing period).
    pub message: String,
    /// Stable machine-readable code.
    pub code: &'static str,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source_name)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, " ({field})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl FormatError {
    pub(crate) fn new(source_name: &str, code: &'static str, message: impl Into<String>) -> Self {
        FormatError {
            source_name: source_name.to_owned(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
            code,
        }
    }

    pub(crate) fn at(mut self, line: u64, column: Option<u64>) -> Self {
        self.line = Some(line);
        self.column = column;
        self
    }

    pub(crate) fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }
}

/// 1-based line and column of a byte offset in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (u64, u64) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    (line, column)
}
