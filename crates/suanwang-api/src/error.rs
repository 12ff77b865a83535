//! The error body: `{"error":{"code":"…","message":"…","field":"…"}}`.

use serde::{Deserialize, Serialize};

/// Every refusal's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A refusal: a stable code for programs, a sentence for people, and the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, machine-readable (`unschedulable`, `invalid_body`, …).
    pub code: String,
    /// For people, lowercase, no trailing period.
    pub message: String,
    /// The body field at fault, when one is (forms show the message next to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
