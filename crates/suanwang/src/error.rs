//! The CLI's error: a stable code, a sentence, and whether the user (exit 2) or the machine
//! (exit 1) is at fault.

use std::borrow::Cow;
use std::fmt;

/// An error to report and exit with.
#[derive(Debug)]
pub struct CliError {
    /// Stable machine-readable code, printed in brackets.
    pub code: Cow<'static, str>,
    /// What went wrong, for people.
    pub message: String,
    /// True when the input was at fault (exit code 2), false for everything else (exit code 1).
    pub bad_input: bool,
}

impl CliError {
    /// Bad input: a file, a flag value, a combination of them.
    pub fn input(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        CliError { code: code.into(), message: message.into(), bad_input: true }
    }

    /// Something that is not the user's fault (an IO error writing output, a bug).
    pub fn internal(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        CliError { code: code.into(), message: message.into(), bad_input: false }
    }

    pub fn exit_code(&self) -> u8 {
        if self.bad_input { 2 } else { 1 }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)
    }
}

impl From<suanwang_formats::error::FormatError> for CliError {
    fn from(error: suanwang_formats::error::FormatError) -> Self {
        CliError::input(error.code, error.to_string())
    }
}

impl From<suanwang_sim::placement::SimError> for CliError {
    fn from(error: suanwang_sim::placement::SimError) -> Self {
        CliError::input(error.code(), error.to_string())
    }
}
