//! The accelerator catalog file format (`catalog/accelerators.toml`; the file's header comment
//! documents each field).

use serde::Deserialize;
use suanwang_model::catalog::{Accelerator, AdaptationMatrix, Catalog};

use crate::error::{FormatError, line_column};

/// The adaptation matrix shipped with Suanwang, as text.
pub const ADAPTATION_TEXT: &str = include_str!("../../../catalog/adaptation.toml");

/// The adaptation matrix shipped with Suanwang.
pub fn builtin_adaptation() -> AdaptationMatrix {
    parse_adaptation("catalog/adaptation.toml", ADAPTATION_TEXT)
        .expect("the built-in adaptation matrix is valid (tested)")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdaptationFile {
    #[serde(default)]
    framework: Vec<FrameworkEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameworkEntry {
    name: String,
    stacks: Vec<String>,
    #[serde(default)]
    #[allow(dead_code, reason = "documentation in the file; read by people, not code")]
    note: String,
}

/// Parses an adaptation matrix file.
pub fn parse_adaptation(source: &str, text: &str) -> Result<AdaptationMatrix, FormatError> {
    let file: AdaptationFile = toml::from_str(text).map_err(|e| toml_error(source, text, &e))?;
    AdaptationMatrix::new(file.framework.into_iter().map(|f| (f.name, f.stacks)).collect())
        .map_err(|e| FormatError::new(source, e.code(), e.to_string()))
}

/// The catalog shipped with Suanwang, as text.
pub const BUILTIN_TEXT: &str = include_str!("../../../catalog/accelerators.toml");

/// The catalog shipped with Suanwang.
pub fn builtin() -> Catalog {
    parse("catalog/accelerators.toml", BUILTIN_TEXT).expect("the built-in catalog is valid (tested)")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    accelerator: Vec<AcceleratorEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceleratorEntry {
    model: String,
    #[serde(default)]
    aliases: Vec<String>,
    vendor: String,
    memory_gib: Option<u32>,
    fp16_dense_tflops: Option<f64>,
    bf16_dense_tflops: Option<f64>,
    domestic: bool,
    software_stack: String,
    board_power_w: Option<u32>,
    #[serde(default)]
    note: String,
}

/// Parses a catalog file.
pub fn parse(source: &str, text: &str) -> Result<Catalog, FormatError> {
    let file: CatalogFile = toml::from_str(text).map_err(|e| toml_error(source, text, &e))?;
    if file.accelerator.is_empty() {
        return Err(FormatError::new(source, "empty_input", "the catalog has no [[accelerator]] entries"));
    }
    let accelerators = file
        .accelerator
        .into_iter()
        .map(|a| Accelerator {
            model: a.model,
            aliases: a.aliases,
            vendor: a.vendor,
            memory_gib: a.memory_gib,
            fp16_dense_tflops: a.fp16_dense_tflops,
            bf16_dense_tflops: a.bf16_dense_tflops,
            domestic: a.domestic,
            software_stack: a.software_stack,
            board_power_w: a.board_power_w,
            note: a.note,
        })
        .collect();
    Catalog::new(accelerators).map_err(|e| FormatError::new(source, e.code(), e.to_string()))
}

/// A TOML syntax or type error, located.
pub(crate) fn toml_error(source: &str, text: &str, error: &toml::de::Error) -> FormatError {
    let message = error.message().trim_end_matches('\n').to_owned();
    let located = FormatError::new(source, "malformed_toml", message);
    match error.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            located.at(line, Some(column))
        }
        None => located,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_covers_the_trace_and_the_market() {
        let catalog = builtin();
        for name in [
            "G1",
            "G2",
            "G3",
            "T4",
            "P100",
            "V100M16",
            "V100M32",
            "A10",
            "A800",
            "H800",
            "H20",
            "H100",
            "A100",
            "Ascend-910B",
            "MLU370",
            "DCU",
        ] {
            assert!(catalog.lookup(name).is_some(), "{name} missing from the catalog");
        }
        let domestic: Vec<&str> = catalog.iter().filter(|(_, a)| a.domestic).map(|(_, a)| a.vendor.as_str()).collect();
        assert!(domestic.contains(&"Huawei") && domestic.contains(&"Cambricon") && domestic.contains(&"Hygon"));
    }

    #[test]
    fn the_builtin_adaptation_matrix_uses_stacks_the_catalog_has() {
        let catalog = builtin();
        let matrix = builtin_adaptation();
        for (framework, stacks) in matrix.iter() {
            for stack in stacks {
                assert!(
                    catalog.iter().any(|(_, a)| &a.software_stack == stack),
                    "{framework}: no accelerator uses {stack}"
                );
            }
        }
        let mindspore = matrix.models("mindspore", &catalog).unwrap();
        assert!(mindspore.contains(catalog.lookup("910B").unwrap()));
        assert!(!mindspore.contains(catalog.lookup("MLU370").unwrap()));
    }

    #[test]
    fn errors_are_located() {
        let err = parse("c.toml", "[[accelerator]]\nmodel = \"X\"\nvendor = 3\n").unwrap_err();
        assert_eq!(err.code, "malformed_toml");
        assert_eq!((err.line, err.column), (Some(3), Some(10)), "{err}");
        let err = parse("c.toml", "[[accelerator]]\nmodel = \"X\"\nvendr = \"a\"\n").unwrap_err();
        assert!(err.to_string().starts_with("c.toml:3:1: unknown field `vendr`"), "{err}");
        let err = parse("c.toml", "").unwrap_err();
        assert_eq!(err.code, "empty_input");
    }
}
