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

    /// The database refused the data of some write (a constraint, a value it cannot store) rather
    /// than failed: the same write alone would fail again, and the others of its batch would not.
    pub fn is_data_error(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(e)) = self else { return false };
        let code = e.code();
        let code = code.as_deref().unwrap_or_default();
        // PostgreSQL: class 22 (data exception) and 23 (integrity). SQLite: constraint
        // violations, SQLITE_TOOBIG (18) and SQLITE_MISMATCH (20).
        !matches!(e.kind(), sqlx::error::ErrorKind::Other)
            || code.starts_with("22")
            || code.starts_with("23")
            || matches!(code, "18" | "20")
            || code.parse::<u32>().is_ok_and(|c| c & 0xff == 19)
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
