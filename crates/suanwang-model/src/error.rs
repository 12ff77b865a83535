//! The one error type of the domain model.

/// Why a domain value was rejected. Each variant has a stable machine-readable [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A value is outside the range the model accepts.
    #[error("{what} must be {expected}, got {got}")]
    OutOfRange {
        /// The field, e.g. `node cpu_milli`.
        what: String,
        /// The accepted range in words.
        expected: String,
        /// The rejected value.
        got: String,
    },
    /// Two things that must have distinct names share one.
    #[error("duplicate {kind} name {name:?}")]
    Duplicate {
        /// `site`, `pool`, `accelerator`, …
        kind: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A name refers to something that does not exist.
    #[error("unknown {kind} {name:?}{hint}")]
    Unknown {
        /// `site`, `accelerator`, …
        kind: &'static str,
        /// The unknown name.
        name: String,
        /// Extra guidance, starting with "; " or empty.
        hint: String,
    },
    /// A limit on collection sizes was exceeded.
    #[error("too many {what}: {got} (the limit is {limit})")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// How many there were.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// Values are individually valid but do not fit together.
    #[error("{0}")]
    Inconsistent(String),
}

impl ModelError {
    /// A stable code for scripts and API clients.
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::OutOfRange { .. } => "out_of_range",
            ModelError::Duplicate { .. } => "duplicate_name",
            ModelError::Unknown { .. } => "unknown_reference",
            ModelError::TooMany { .. } => "limit_exceeded",
            ModelError::Inconsistent(_) => "inconsistent",
        }
    }

    pub(crate) fn out_of_range(what: impl Into<String>, expected: impl Into<String>, got: impl ToString) -> Self {
        ModelError::OutOfRange { what: what.into(), expected: expected.into(), got: got.to_string() }
    }
}
