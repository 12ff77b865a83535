//! The store's error type.

/// Why the store could not do what was asked (as opposed to a write that was refused, which is a
/// [`WriteError`](crate::model::WriteError)).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached.
    #[error("cannot open the database: {0}")]
    Open(String),
    /// The database answered with an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Something in the database or a request is not as it must be.
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    pub(crate) fn open(error: impl std::fmt::Display) -> Self {
        StoreError::Open(error.to_string())
    }

    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Open(_) => "database_unavailable",
            StoreError::Database(_) => "database_error",
            StoreError::Invalid(_) => "invalid",
        }
    }
}
