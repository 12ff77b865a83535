//! API errors: `{"error":{"code":"…","message":"…"}}` with a 4xx for anything the caller did
//! wrong and a 5xx only for the server's own trouble.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use suanwang_store::error::StoreError;
use suanwang_store::model::WriteError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// The body field at fault, when one is (forms show the message next to it).
    pub field: Option<String>,
}

impl ApiError {
    /// Any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None }
    }

    /// The same error, naming the body field at fault.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 (also what a tenant gets for someone else's job: ids leak nothing).
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 401.
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 503: try again later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.field {
            Some(field) => json!({"error": {"code": self.code, "message": self.message, "field": field}}),
            None => json!({"error": {"code": self.code, "message": self.message}}),
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        // Internal details stay in the server's log, not in the answer.
        tracing::error!(%error, "store error");
        ApiError::unavailable("the database is unavailable; try again")
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        let status = match error {
            WriteError::Duplicate(_)
            | WriteError::IdempotencyConflict { .. }
            | WriteError::WrongState { .. }
            | WriteError::UsageConflict(_) => StatusCode::CONFLICT,
            WriteError::NotFound(_) => StatusCode::NOT_FOUND,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => {
                let message = body_message(&e.body_text());
                let error = ApiError::bad_request("invalid_body", message.clone());
                match field_of(&message) {
                    Some(field) => error.at(field),
                    None => error,
                }
            }
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("malformed_json", body_message(&e.body_text())),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the request body is larger than 1 MiB")
            }
            other => ApiError::bad_request("invalid_body", other.body_text()),
        }
    }
}

/// The top-level field a "the body is not valid: cpu_milli: invalid type…" message names.
pub fn field_of(message: &str) -> Option<String> {
    let rest = message.strip_prefix("the body is not valid: ")?;
    let (path, _) = rest.split_once(": ")?;
    let first = path.split(['.', '[']).next()?;
    (!first.is_empty() && first.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then(|| first.to_owned())
}

/// axum's rejection texts start with "Failed to deserialize the JSON body into the target type: ".
fn body_message(text: &str) -> String {
    let trimmed = text
        .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        .trim_start_matches("Failed to parse the request body as JSON: ");
    format!("the body is not valid: {trimmed}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_error_names_its_field() {
        let m = "the body is not valid: cpu_milli: invalid type: string \"x\", expected u32 at line 1 column 9";
        assert_eq!(field_of(m).as_deref(), Some("cpu_milli"));
        assert_eq!(field_of("the body is not valid: latency.max_ms: bad").as_deref(), Some("latency"));
        assert_eq!(field_of("the body is not valid: expected value at line 1 column 1"), None);
    }
}
