//! Reading input files, with errors that name the file.

use std::path::Path;

use suanwang_model::catalog::Catalog;

use crate::error::CliError;

/// The most bytes read from one input file (traces are tens of MB; federations a few KB).
const FILE_BYTES_MAX: u64 = 2 << 30;

/// Reads a whole UTF-8 text file.
pub fn read_text(path: &Path) -> Result<String, CliError> {
    let shown = path.display();
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CliError::input("file_not_found", format!("{shown}: no such file")),
        _ => CliError::input("file_unreadable", format!("{shown}: {e}")),
    })?;
    if metadata.is_dir() {
        return Err(CliError::input("file_unreadable", format!("{shown}: is a directory, expected a file")));
    }
    if metadata.len() > FILE_BYTES_MAX {
        return Err(CliError::input("limit_exceeded", format!("{shown}: larger than {FILE_BYTES_MAX} bytes")));
    }
    let bytes = std::fs::read(path).map_err(|e| CliError::input("file_unreadable", format!("{shown}: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        CliError::input("malformed_text", format!("{shown}: not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
    })
}

/// The built-in catalog, or the one at `path`.
pub fn catalog(path: Option<&Path>) -> Result<Catalog, CliError> {
    match path {
        None => Ok(suanwang_formats::catalog::builtin()),
        Some(path) => Ok(suanwang_formats::catalog::parse(&path.display().to_string(), &read_text(path)?)?),
    }
}
