//! The control plane's one error: a kind (what the caller should do about it), a stable code, a
//! sentence and the field at fault. Only the server maps kinds to HTTP statuses.

use suanwang_billing::{ErrorKind as MoneyKind, MoneyError};
use suanwang_store::error::StoreError;
use suanwang_store::model::WriteError;

/// What kind of refusal or failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The request is malformed or a value is out of range (HTTP 400).
    Invalid,
    /// The request is well formed but cannot be done, ever, as asked (422): an unschedulable job.
    Unprocessable,
    /// No valid token (401).
    Unauthenticated,
    /// The caller may not do this (403).
    Forbidden,
    /// No such thing, or not the caller's to see (404).
    NotFound,
    /// It conflicts with the state of things (409).
    Conflict,
    /// The body is too large (413).
    TooLarge,
    /// The body is not JSON (415).
    Unsupported,
    /// Busy with another request of the same kind; try again later (429).
    TooMany,
    /// The request's body did not arrive in time (408).
    TimedOut,
    /// The platform cannot now; try again (503).
    Unavailable,
    /// The platform's own fault (500).
    Internal,
}

/// A refusal or failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What kind.
    pub kind: Kind,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Any kind.
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Error { kind, code, message: message.into(), field: None }
    }

    /// The same error, naming the request field at fault.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The same error for a body nested under `outer`: a refusal of the body (400, 422) names
    /// `outer.field` (or `outer` when it named none); other errors are left as they are.
    pub fn under(mut self, outer: &str) -> Self {
        if !matches!(self.kind, Kind::Invalid | Kind::Unprocessable) {
            return self;
        }
        self.field = Some(match self.field.take() {
            Some(field) => format!("{outer}.{field}"),
            None => outer.to_owned(),
        });
        self
    }

    /// Malformed or out of range.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, code, message)
    }

    /// A string that breaks the text rule (`suanwang_api::text`), with the field: a control
    /// character is 422 `invalid_text`, a string past its limit 400 `too_long`.
    pub fn bad_text(field: &str, error: &suanwang_api::text::TextError) -> Self {
        let (kind, code) = match error {
            suanwang_api::text::TextError::Forbidden(_) => (Kind::Unprocessable, "invalid_text"),
            suanwang_api::text::TextError::TooLong { .. } => (Kind::Invalid, "too_long"),
        };
        Self::new(kind, code, format!("{field} {error}")).at(field)
    }

    /// Checks one string field against the text rule, its kind and its limit.
    pub fn check_text(
        field: &str,
        value: &str,
        kind: suanwang_api::text::TextKind,
        max_bytes: usize,
    ) -> Result<(), Self> {
        suanwang_api::text::check(value, kind, max_bytes).map_err(|e| Self::bad_text(field, &e))
    }

    /// Can never be done as asked.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Unprocessable, code, message)
    }

    /// Not found (also what a caller gets for what is not its to see: ids leak nothing).
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(Kind::NotFound, "not_found", format!("{what} not found"))
    }

    /// Not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, "forbidden", message)
    }

    /// No valid token.
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Unauthenticated, code, message)
    }

    /// Conflicts with the state of things.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, code, message)
    }

    /// Try again later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Kind::Unavailable, "unavailable", message)
    }

    /// The platform's own fault.
    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, code, message)
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        // Internal details stay in the server's log, not in the answer.
        tracing::error!(%error, "store error");
        Error::unavailable("the database is unavailable; try again")
    }
}

impl From<WriteError> for Error {
    fn from(error: WriteError) -> Self {
        let kind = match error {
            WriteError::Duplicate(_)
            | WriteError::IdempotencyConflict { .. }
            | WriteError::WrongState { .. }
            | WriteError::UsageConflict(_) => Kind::Conflict,
            WriteError::NotFound(_) => Kind::NotFound,
            WriteError::Unstorable(_) => Kind::Unprocessable,
        };
        Error::new(kind, error.code(), error.to_string())
    }
}

impl From<MoneyError> for Error {
    fn from(e: MoneyError) -> Self {
        let kind = match e.kind {
            MoneyKind::Invalid => Kind::Invalid,
            MoneyKind::NotFound => Kind::NotFound,
            MoneyKind::Conflict => Kind::Conflict,
        };
        Error::new(kind, e.code, e.message)
    }
}
