//! Applications (job templates) and data sets: the routes, and how a submitted body that names a
//! template or a registered data set becomes a plain job body.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use suanwang_formats::apps::App;
use suanwang_store::model::{Outcome, Role, Write};

use crate::admin::valid_name;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::jobs::Body;
use crate::state::{AppState, rfc3339};

/// The most data sets one tenant may register.
pub const DATASETS_PER_TENANT_MAX: usize = 1_000;

/// `GET /api/v1/apps` (any token).
pub async fn list_apps(State(state): State<AppState>, _caller: Caller) -> Json<Vec<App>> {
    Json(state.config.apps.apps.clone())
}

/// `GET /api/v1/apps/{name}` (any token).
pub async fn show_app(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<App>, ApiError> {
    state.config.apps.get(&name).cloned().map(Json).ok_or_else(|| ApiError::not_found(format!("application {name:?}")))
}

/// Expands `{"template": NAME, "params": {...}, ...}` into a job body: the template's fields, then
/// the body's own fields over them. The result keeps `"template"` (where the job came from) and
/// drops `"params"`. A body without `"template"` is returned as it is.
pub fn expand_template(state: &AppState, mut body: Value) -> Result<Value, ApiError> {
    let Some(fields) = body.as_object_mut() else { return Ok(body) };
    let Some(template) = fields.get("template") else {
        if fields.contains_key("params") {
            return Err(ApiError::bad_request("invalid_job", "\"params\" needs a \"template\""));
        }
        return Ok(body);
    };
    let name = template
        .as_str()
        .ok_or_else(|| ApiError::bad_request("invalid_job", "\"template\" must be an application's name"))?
        .to_owned();
    let app = state.config.apps.get(&name).ok_or_else(|| {
        ApiError::bad_request("unknown_template", format!("unknown application {name:?}; GET /api/v1/apps lists them"))
    })?;
    let params = match fields.remove("params") {
        None => Map::new(),
        Some(Value::Object(params)) => params,
        Some(_) => return Err(ApiError::bad_request("invalid_job", "\"params\" must be an object")),
    };
    let mut job = app.expand(&params).map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    for (key, value) in std::mem::take(fields) {
        job.insert(key, value);
    }
    Ok(Value::Object(job))
}

/// `POST /api/v1/datasets`.
#[derive(Debug, Deserialize)]
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
#[derive(Debug, Serialize)]
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

impl From<suanwang_store::model::DatasetRecord> for DatasetView {
    fn from(d: suanwang_store::model::DatasetRecord) -> Self {
        DatasetView {
            id: d.id,
            tenant_id: d.tenant_id,
            name: d.name,
            site: d.site,
            size_bytes: d.size_bytes,
            created_at: rfc3339(d.created_ms),
        }
    }
}

/// Which tenant a caller acts for (submits a job, registers a data set): a tenant for itself; an
/// operator for the tenant it names. `code` is the error code for a body that gets this wrong.
pub async fn acting_tenant(
    state: &AppState,
    caller: &Caller,
    named: Option<&str>,
    code: &'static str,
) -> Result<i64, ApiError> {
    match caller.role() {
        Role::Tenant => {
            if named.is_some() {
                return Err(ApiError::bad_request(code, "tenants act for themselves; leave out \"tenant\""));
            }
            caller.principal.tenant_id.ok_or_else(|| ApiError::forbidden("this tenant token has no tenant"))
        }
        Role::Operator => {
            let name =
                named.ok_or_else(|| ApiError::bad_request(code, "operators must name the \"tenant\" to act for"))?;
            Ok(state
                .store
                .tenant_by_name(name)
                .await?
                .ok_or_else(|| ApiError::bad_request("unknown_tenant", format!("unknown tenant {name:?}")))?
                .id)
        }
        role => Err(ApiError::forbidden(format!("a {} token cannot do this", role.as_str()))),
    }
}

/// `POST /api/v1/datasets` (tenant for itself, operator for a tenant).
pub async fn register_dataset(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewDataset>,
) -> Result<(StatusCode, Json<DatasetView>), ApiError> {
    let tenant_id = acting_tenant(&state, &caller, body.tenant.as_deref(), "invalid_request").await?;
    if !valid_name(&body.name) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "a data set name is 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    if state.federation.site_id(&body.site).is_none() {
        return Err(ApiError::bad_request("unknown_site", format!("unknown site {:?}", body.site)));
    }
    let size_bytes =
        i64::try_from(body.size_bytes).map_err(|_| ApiError::bad_request("invalid_size", "size_bytes is too large"))?;
    if state.store.datasets(Some(tenant_id)).await?.len() >= DATASETS_PER_TENANT_MAX {
        return Err(ApiError::conflict(
            "too_many_datasets",
            format!("a tenant may register at most {DATASETS_PER_TENANT_MAX} data sets"),
        ));
    }
    let write = Write::RegisterDataset { tenant_id, name: body.name, site: body.site, size_bytes };
    match state.committer.write(caller.actor(), write).await? {
        Outcome::Dataset(d) => Ok((StatusCode::CREATED, Json(d.into()))),
        other => Err(ApiError::unavailable(format!("unexpected write outcome {other:?}"))),
    }
}

/// `GET /api/v1/datasets` (a tenant its own; operators and auditors all).
pub async fn list_datasets(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<DatasetView>>, ApiError> {
    let tenant = match caller.role() {
        Role::Tenant => {
            Some(caller.principal.tenant_id.ok_or_else(|| ApiError::forbidden("this tenant token has no tenant"))?)
        }
        Role::Operator | Role::Auditor => None,
        role => return Err(ApiError::forbidden(format!("a {} token cannot list data sets", role.as_str()))),
    };
    Ok(Json(state.store.datasets(tenant).await?.into_iter().map(DatasetView::from).collect()))
}
