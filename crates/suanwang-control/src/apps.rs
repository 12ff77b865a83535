//! Applications (job templates) and data sets, and which tenant a caller acts for.

use suanwang_api::apps::{DatasetView, NewDataset};
use suanwang_formats::apps::App;
use suanwang_model::platform::{Role, TenantId};
use suanwang_store::model::{DatasetRecord, Outcome, Write};

use crate::Control;
use crate::access::{Action, Scope, require};
use crate::admin::valid_name;
use crate::auth::Caller;
use crate::clock::rfc3339;
use crate::error::Error;

/// The applications (any signed-in caller).
pub fn list_apps(ctl: &Control, caller: &Caller) -> Result<Vec<App>, Error> {
    require(caller, Action::ReadCatalogue)?;
    Ok(ctl.config.apps.apps.clone())
}

/// One application.
pub fn show_app(ctl: &Control, caller: &Caller, name: &str) -> Result<App, Error> {
    require(caller, Action::ReadCatalogue)?;
    ctl.config.apps.get(name).cloned().ok_or_else(|| Error::not_found(format!("application {name:?}")))
}

/// A data set as the API shows it.
pub fn dataset_view(d: DatasetRecord) -> DatasetView {
    DatasetView {
        id: d.id,
        tenant_id: d.tenant_id.0,
        name: d.name,
        site: d.site,
        size_bytes: d.size_bytes,
        created_at: rfc3339(d.created_ms),
    }
}

/// Which tenant a caller acts for (submits a job, registers a data set): a tenant for itself; an
/// operator for the tenant it names. `code` is the error code for a body that gets this wrong.
pub async fn acting_tenant(
    ctl: &Control,
    caller: &Caller,
    named: Option<&str>,
    code: &'static str,
) -> Result<TenantId, Error> {
    match caller.role() {
        Role::Tenant => {
            if named.is_some() {
                return Err(Error::bad_request(code, "tenants act for themselves; leave out \"tenant\"").at("tenant"));
            }
            caller.tenant().ok_or_else(|| Error::forbidden("this tenant token has no tenant"))
        }
        Role::Operator => {
            let name = named.ok_or_else(|| {
                Error::bad_request(code, "operators must name the \"tenant\" to act for").at("tenant")
            })?;
            Ok(ctl
                .store
                .tenant_by_name(name)
                .await?
                .ok_or_else(|| Error::bad_request("unknown_tenant", format!("unknown tenant {name:?}")).at("tenant"))?
                .id)
        }
        role => Err(Error::forbidden(format!("a {} token cannot do this", role.as_str()))),
    }
}

/// Registers a data set (tenant for itself, operator for a tenant).
pub async fn register_dataset(ctl: &Control, caller: &Caller, body: NewDataset) -> Result<DatasetView, Error> {
    require(caller, Action::RegisterDataset)?;
    let tenant_id = acting_tenant(ctl, caller, body.tenant.as_deref(), "invalid_request").await?;
    if !valid_name(&body.name) {
        return Err(Error::bad_request("invalid_name", "a data set name is 1 to 64 letters, digits, '-', '_' or '.'")
            .at("name"));
    }
    if ctl.federation.site_id(&body.site).is_none() {
        return Err(Error::bad_request("unknown_site", format!("unknown site {:?}", body.site)).at("site"));
    }
    let size_bytes = i64::try_from(body.size_bytes)
        .ok()
        .filter(|&b| b <= suanwang_model::job::limits::DATASET_BYTES_MAX as i64)
        .ok_or_else(|| Error::bad_request("invalid_size", "size_bytes is at most 10 PiB").at("size_bytes"))?;
    let most = crate::quota::of(ctl, tenant_id).await?.datasets;
    if ctl.store.datasets(Some(tenant_id)).await?.len() >= usize::try_from(most).unwrap_or(usize::MAX) {
        return Err(crate::quota::exceeded("data sets", most));
    }
    let write = Write::RegisterDataset { tenant_id, name: body.name, site: body.site, size_bytes };
    match ctl.committer.write(caller.actor(), write).await? {
        Outcome::Dataset(d) => Ok(dataset_view(d)),
        other => Err(Error::unavailable(format!("unexpected write outcome {other:?}"))),
    }
}

/// The data sets the caller may see (a tenant its own; operators and auditors all).
pub async fn list_datasets(ctl: &Control, caller: &Caller) -> Result<Vec<DatasetView>, Error> {
    let tenant = match require(caller, Action::ReadDatasets)? {
        Scope::Own => Some(caller.tenant().ok_or_else(|| Error::forbidden("this tenant token has no tenant"))?),
        _ => None,
    };
    Ok(ctl.store.datasets(tenant).await?.into_iter().map(dataset_view).collect())
}
