//! Data sets on the wire (applications are `suanwang_formats::apps::App` as they are).

use serde::{Deserialize, Serialize};

/// `POST /api/v1/datasets`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDataset {
    /// Unique for the tenant: 1 to 64 letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// The federation site where it is stored.
    pub site: String,
    /// Its size.
    pub size_bytes: u64,
    /// Operators register for a tenant by name.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// A data set as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetView {
    /// Id.
    pub id: i64,
    /// Owner.
    pub tenant_id: i64,
    /// Name.
    pub name: String,
    /// Site.
    pub site: String,
    /// Size.
    pub size_bytes: i64,
    /// When registered (UTC).
    pub created_at: String,
}
