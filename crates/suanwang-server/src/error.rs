//! The control plane's errors on the wire: `{"error":{"code","message","field"}}` with a 4xx for
//! anything the caller did wrong and a 5xx only for the server's own trouble. This is the one
//! place kinds become HTTP statuses.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use suanwang_api::error::{ErrorBody, ErrorDetail};
use suanwang_control::error::{Error, Kind};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub Error);

/// The HTTP status of an error kind.
pub fn status(kind: Kind) -> StatusCode {
    match kind {
        Kind::Invalid => StatusCode::BAD_REQUEST,
        Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        Kind::Forbidden => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Conflict => StatusCode::CONFLICT,
        Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Kind::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Kind::TooMany => StatusCode::TOO_MANY_REQUESTS,
        Kind::TimedOut => StatusCode::REQUEST_TIMEOUT,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        status(self.0.kind)
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let Error { code, message, field, .. } = self.0;
        let limited = code == "rate_limited";
        let mut response =
            (status, Json(ErrorBody { error: ErrorDetail { code: code.to_owned(), message, field } })).into_response();
        if limited {
            // Token buckets refill at least one request a second. Only a rate refusal says when
            // to come back: a full quota or busy simulation slots are not a matter of seconds,
            // and clients that honour Retry-After send the same request again.
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

/// axum's rejection texts start with "Failed to deserialize the JSON body into the target type: ".
fn body_message(text: &str) -> String {
    let trimmed = text
        .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        .trim_start_matches("Failed to parse the request body as JSON: ");
    format!("the body is not valid: {trimmed}")
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError(match rejection {
            JsonRejection::JsonDataError(e) => {
                let message = body_message(&e.body_text());
                let error = Error::bad_request("invalid_body", message.clone());
                match suanwang_control::jobs::field_of(&message) {
                    Some(field) => error.at(field),
                    None => error,
                }
            }
            JsonRejection::JsonSyntaxError(e) => Error::bad_request("malformed_json", body_message(&e.body_text())),
            JsonRejection::MissingJsonContentType(_) => Error::new(
                Kind::Unsupported,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            other if crate::listen::timed_out(&other) => {
                Error::new(Kind::TimedOut, "body_timeout", "the request body did not arrive in time; send it at once")
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Error::new(Kind::TooLarge, "body_too_large", "the request body is larger than the limit")
            }
            other => Error::bad_request("invalid_body", other.body_text()),
        })
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError(Error::bad_request("invalid_query", rejection.body_text()))
    }
}
