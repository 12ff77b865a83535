//! The node and task lists of the Alibaba GPU cluster trace 2023 ("openb"), as used by the FGD
//! paper (ATC'23).
//!
//! Nodes: `sn,cpu_milli,memory_mib,gpu,model`. Tasks: `name,cpu_milli,memory_mib,num_gpu,gpu_milli`
//! followed, in most files, by `gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time`.
//! Columns are found by header name, so their order does not matter and extra columns are ignored.
//! `gpu_spec` lists accepted models separated by `|` (empty: any model).

use std::str::FromStr;

use suanwang_model::catalog::{AcceleratorSet, Catalog};
use suanwang_model::federation::NodeSpec;
use suanwang_model::job::{AcceleratorRequest, TaskSpec};

use crate::error::FormatError;

/// The most rows one file may have.
pub const ROWS_MAX: usize = 5_000_000;

/// One task of an openb task list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenbTask {
    /// The `name` column.
    pub name: String,
    /// What it needs.
    pub spec: TaskSpec,
    /// Seconds from the trace's start to the task's creation, when the file has it.
    pub creation_time_s: Option<u64>,
    /// Seconds from the trace's start to the task's deletion, when the file has it.
    pub deletion_time_s: Option<u64>,
    /// The line it came from (1-based, the header is line 1).
    pub line: u64,
}

/// Parses an openb node list. Accelerator models are looked up in `catalog` (by name or alias).
pub fn parse_nodes(source: &str, text: &str, catalog: &Catalog) -> Result<Vec<NodeSpec>, FormatError> {
    let mut table = Table::new(source, text, &["sn", "cpu_milli", "memory_mib", "gpu", "model"], &[])?;
    let mut nodes = Vec::new();
    while let Some(row) = table.next_row()? {
        let name: String = row.text("sn")?.to_owned();
        let cpu_milli = row.number("cpu_milli")?;
        let memory_mib = row.number("memory_mib")?;
        let accelerators: u8 = row.number("gpu")?;
        let model_name = row.text("model")?;
        let accelerator = match (accelerators, model_name) {
            (0, _) => None,
            (_, "") => return Err(row.error("model", "invalid_value", "a node with GPUs must name their model")),
            (_, name) => {
                Some(catalog.resolve(name).map_err(|e| row.error("model", "unknown_reference", e.to_string()))?)
            }
        };
        let node = NodeSpec { name, cpu_milli, memory_mib, accelerator, accelerators };
        node.validate().map_err(|e| row.error_line("invalid_value", e.to_string()))?;
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(FormatError::new(source, "empty_input", "the node list has no nodes"));
    }
    Ok(nodes)
}

/// Parses an openb task list. Models in `gpu_spec` are looked up in `catalog`.
pub fn parse_tasks(source: &str, text: &str, catalog: &Catalog) -> Result<Vec<OpenbTask>, FormatError> {
    let mut table = Table::new(
        source,
        text,
        &["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"],
        &["gpu_spec", "creation_time", "deletion_time"],
    )?;
    let mut tasks = Vec::new();
    while let Some(row) = table.next_row()? {
        let name = row.text("name")?.to_owned();
        let cpu_milli = row.number("cpu_milli")?;
        let memory_mib = row.number("memory_mib")?;
        let count: u8 = row.number("num_gpu")?;
        let milli: u16 = row.number("gpu_milli")?;
        let request = AcceleratorRequest::new(count, milli)
            .map_err(|e| row.error("gpu_milli", "invalid_value", e.to_string()))?;
        let models = match row.optional_text("gpu_spec")? {
            None | Some("") => AcceleratorSet::ANY,
            Some(spec) => spec
                .split('|')
                .map(|model| catalog.resolve(model.trim()))
                .collect::<Result<AcceleratorSet, _>>()
                .map_err(|e| row.error("gpu_spec", "unknown_reference", e.to_string()))?,
        };
        let spec = TaskSpec::new(cpu_milli, memory_mib, request, models)
            .map_err(|e| row.error_line("invalid_value", e.to_string()))?;
        let creation_time_s = row.optional_number("creation_time")?;
        let deletion_time_s = row.optional_number("deletion_time")?;
        tasks.push(OpenbTask { name, spec, creation_time_s, deletion_time_s, line: row.line });
    }
    if tasks.is_empty() {
        return Err(FormatError::new(source, "empty_input", "the task list has no tasks"));
    }
    Ok(tasks)
}

/// A CSV file whose columns are found by header name.
struct Table<'a> {
    source: &'a str,
    records: csv::StringRecordsIntoIter<&'a [u8]>,
    /// (name, position) for each column this reader needs or may use.
    columns: Vec<(&'static str, Option<usize>)>,
    rows: usize,
}

impl<'a> Table<'a> {
    fn new(
        source: &'a str,
        text: &'a str,
        required: &[&'static str],
        optional: &[&'static str],
    ) -> Result<Self, FormatError> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| csv_error(source, &e))?.clone();
        if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
            return Err(FormatError::new(source, "empty_input", "the file is empty; expected a CSV header line"));
        }
        let position = |name: &str| headers.iter().position(|h| h.trim() == name);
        let mut columns = Vec::new();
        for &name in required {
            let Some(index) = position(name) else {
                return Err(FormatError::new(
                    source,
                    "malformed_csv",
                    format!("missing column {name:?}; the header must name {}", required.join(",")),
                )
                .at(1, None));
            };
            columns.push((name, Some(index)));
        }
        columns.extend(optional.iter().map(|&name| (name, position(name))));
        Ok(Table { source, records: reader.into_records(), columns, rows: 0 })
    }

    fn next_row(&mut self) -> Result<Option<Row<'a>>, FormatError> {
        let Some(record) = self.records.next() else { return Ok(None) };
        let record = record.map_err(|e| csv_error(self.source, &e))?;
        self.rows += 1;
        let line = record.position().map_or(0, |p| p.line());
        if self.rows > ROWS_MAX {
            return Err(
                FormatError::new(self.source, "limit_exceeded", format!("more than {ROWS_MAX} rows")).at(line, None)
            );
        }
        Ok(Some(Row { source: self.source, record, columns: self.columns.clone(), line }))
    }
}

struct Row<'a> {
    source: &'a str,
    record: csv::StringRecord,
    columns: Vec<(&'static str, Option<usize>)>,
    line: u64,
}

impl Row<'_> {
    fn index(&self, column: &str) -> Option<usize> {
        self.columns.iter().find(|(name, _)| *name == column).and_then(|(_, index)| *index)
    }

    fn text(&self, column: &str) -> Result<&str, FormatError> {
        let index = self.index(column).expect("required columns were checked against the header");
        self.record
            .get(index)
            .map(str::trim)
            .ok_or_else(|| self.error(column, "malformed_csv", "the row has too few fields"))
    }

    fn optional_text(&self, column: &str) -> Result<Option<&str>, FormatError> {
        Ok(self.index(column).and_then(|index| self.record.get(index)).map(str::trim))
    }

    fn number<T: FromStr>(&self, column: &str) -> Result<T, FormatError> {
        let text = self.text(column)?;
        text.parse().map_err(|_| self.not_a_number(column, text))
    }

    fn optional_number<T: FromStr>(&self, column: &str) -> Result<Option<T>, FormatError> {
        match self.optional_text(column)? {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| self.not_a_number(column, text)),
        }
    }

    fn not_a_number(&self, column: &str, text: &str) -> FormatError {
        let message = if text.starts_with('-') {
            format!("expected a non-negative whole number, found {text:?}")
        } else if text.parse::<u128>().is_ok() {
            format!("{text} is too large")
        } else {
            format!("expected a whole number, found {text:?}")
        };
        self.error(column, "invalid_value", message)
    }

    fn error(&self, column: &str, code: &'static str, message: impl Into<String>) -> FormatError {
        let field_number = self.index(column).map(|i| i as u64 + 1);
        FormatError::new(self.source, code, message).at(self.line, field_number).field(column)
    }

    fn error_line(&self, code: &'static str, message: impl Into<String>) -> FormatError {
        FormatError::new(self.source, code, message).at(self.line, None)
    }
}

fn csv_error(source: &str, error: &csv::Error) -> FormatError {
    let line = error.position().map(|p| p.line());
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("expected {expected_len} fields like the header, found {len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the line is not valid UTF-8".to_owned(),
        _ => error.to_string(),
    };
    let error = FormatError::new(source, "malformed_csv", message);
    match line {
        Some(line) => error.at(line, None),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;
    use crate::catalog::builtin;

    fn check_nodes(text: &str, expect: Expect) {
        let actual = match parse_nodes("nodes.csv", text, &builtin()) {
            Ok(nodes) => nodes
                .iter()
                .map(|n| {
                    format!(
                        "{} {} {} {}x{:?}",
                        n.name,
                        n.cpu_milli,
                        n.memory_mib,
                        n.accelerators,
                        n.accelerator.is_some()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("error[{}]: {e}", e.code),
        };
        expect.assert_eq(&actual);
    }

    fn check_tasks(text: &str, expect: Expect) {
        let actual = match parse_tasks("tasks.csv", text, &builtin()) {
            Ok(tasks) => tasks
                .iter()
                .map(|t| {
                    let a = t.spec.accelerators();
                    format!(
                        "{} line {} cpu {} gpu {}x{} any={} t={:?}..{:?}",
                        t.name,
                        t.line,
                        t.spec.cpu_milli(),
                        a.count(),
                        a.milli_per_device(),
                        t.spec.accepted_models().is_any(),
                        t.creation_time_s,
                        t.deletion_time_s
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("error[{}]: {e}", e.code),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn nodes() {
        check_nodes(
            "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,32000,262144,0,\n",
            expect![[r#"
                n0 64000 262144 2xtrue
                n1 32000 262144 0xfalse"#]],
        );
        // Columns by name, in any order.
        check_nodes("model,gpu,sn,memory_mib,cpu_milli\nV100M16,8,n0,1024,1000\n", expect!["n0 1000 1024 8xtrue"]);
    }

    #[test]
    fn bad_nodes() {
        check_nodes(
            "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,6a000,262144,2,P100\n",
            expect![[r#"error[invalid_value]: nodes.csv:3:2 (cpu_milli): expected a whole number, found "6a000""#]],
        );
        check_nodes(
            "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,Z900\n",
            expect![[
                r#"error[unknown_reference]: nodes.csv:2:5 (model): unknown accelerator model "Z900"; add it (or an alias) to the accelerator catalog"#
            ]],
        );
        check_nodes(
            "sn,cpu_milli,memory_mib,gpu\nn0,64000,262144,2\n",
            expect![[
                r#"error[malformed_csv]: nodes.csv:1: missing column "model"; the header must name sn,cpu_milli,memory_mib,gpu,model"#
            ]],
        );
        check_nodes(
            "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144\n",
            expect!["error[malformed_csv]: nodes.csv:2: expected 5 fields like the header, found 3"],
        );
        check_nodes("", expect!["error[empty_input]: nodes.csv: the file is empty; expected a CSV header line"]);
        check_nodes(
            "sn,cpu_milli,memory_mib,gpu,model\n",
            expect!["error[empty_input]: nodes.csv: the node list has no nodes"],
        );
        check_nodes(
            "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,-2,P100\n",
            expect![[r#"error[invalid_value]: nodes.csv:2:4 (gpu): expected a non-negative whole number, found "-2""#]],
        );
        check_nodes(
            "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,40,P100\n",
            expect!["error[invalid_value]: nodes.csv:2: node n0 accelerators must be at most 16, got 40"],
        );
    }

    #[test]
    fn tasks() {
        check_tasks(
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n\
             p0,12000,16384,1,1000,,LS,Running,0,12537496,0\n\
             p1,6000,12288,1,460,T4|P100,LS,Running,5,,0\n\
             p2,8000,100,0,0,,BE,Failed,7,9,0\n",
            expect![[r#"
                p0 line 2 cpu 12000 gpu 1x1000 any=true t=Some(0)..Some(12537496)
                p1 line 3 cpu 6000 gpu 1x460 any=false t=Some(5)..None
                p2 line 4 cpu 8000 gpu 0x0 any=true t=Some(7)..Some(9)"#]],
        );
        // The multigpu files have only the first five columns.
        check_tasks(
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,1,8,1000\n",
            expect!["p0 line 2 cpu 1000 gpu 8x1000 any=true t=None..None"],
        );
    }

    #[test]
    fn bad_tasks() {
        check_tasks(
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,1,2,500\n",
            expect![
                "error[invalid_value]: tasks.csv:2:5 (gpu_milli): accelerator share must be 0 with no devices, 1..=1000 with one device, 1000 with several, got 2 × 500"
            ],
        );
        check_tasks(
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np0,1000,1,1,500,T4|X1\n",
            expect![[
                r#"error[unknown_reference]: tasks.csv:2:6 (gpu_spec): unknown accelerator model "X1"; add it (or an alias) to the accelerator catalog"#
            ]],
        );
        check_tasks(
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,1,1,500\np1,,1,1,500\n",
            expect![[r#"error[invalid_value]: tasks.csv:3:2 (cpu_milli): expected a whole number, found """#]],
        );
        check_tasks(
            "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,99999999999,1,1,500\n",
            expect!["error[invalid_value]: tasks.csv:2:2 (cpu_milli): 99999999999 is too large"],
        );
    }
}
