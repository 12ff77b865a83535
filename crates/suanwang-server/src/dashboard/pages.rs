//! The pages. Each reads through the API's own handler functions (so it shows what the API
//! answers to the same token), then renders HTML. Elements marked `data-live` are refreshed in
//! place by the script; forms marked `data-api` are sent to the API by the script.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use suanwang_control::access::{Action, Owner, Scope, may, scope};
use suanwang_model::platform::{JobState, Role, TenantId};

use super::i18n::M;
use super::{Viewer, charts, escape, group, ok, time, time_text, yuan};
use suanwang_api::admin::AuditQuery as ApiAuditQuery;
use suanwang_api::jobs::{ListQuery, LogQuery};
use suanwang_control::error::Error;
use suanwang_control::{Control, admin, books, jobs, market, money};

type Page = Result<Response, Response>;

/// Rows a list page shows at once.
pub const ROWS: u32 = 50;

/// Log chunks a job's page shows (the newest).
pub const LOG_TAIL: u32 = 200;

/// A table with column heads in the viewer's language, or `empty` said when there are no rows.
pub fn table(viewer: &Viewer, head: &[M], rows: &str, empty: M) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}</p>", escape(viewer.t(empty)));
    }
    let head: String = head.iter().map(|h| format!("<th scope=\"col\">{}</th>", escape(viewer.t(*h)))).collect();
    format!("<div class=\"scroll\"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>")
}

fn tile(label: &str, value: &str, id: &str) -> String {
    format!("<div class=\"tile\"><dt>{}</dt><dd id=\"{id}\" data-live>{value}</dd></div>", escape(label))
}

/// Tenants' names where the viewer may know them: all for operators and auditors (the API's
/// tenant list), a tenant its own; others see ids.
pub struct Names(BTreeMap<i64, String>);

impl Names {
    /// The names `viewer` may see.
    pub async fn load(ctl: &Control, viewer: &Viewer) -> Self {
        let mut names = BTreeMap::new();
        if viewer.sees_everything() {
            if let Ok(list) = admin::list_tenants(ctl, &viewer.caller).await {
                names.extend(list.into_iter().map(|t| (t.id, t.name)));
            }
        } else if let Some(id) = viewer.caller.tenant()
            && let Ok(Some(t)) = ctl.store.tenant(id).await
        {
            names.insert(t.id.0, t.name);
        }
        Names(names)
    }

    /// `acme (#3)`, or `#3` when the name is not the viewer's to see; escaped.
    pub fn show(&self, id: i64) -> String {
        match self.0.get(&id) {
            Some(name) => format!("{} (#{id})", escape(name)),
            None => format!("#{id}"),
        }
    }
}

fn one_decimal(x: f64) -> String {
    format!("{x:.1}")
}

/// A form the script sends to the API. `fields` is the inputs' HTML (see [`field`]).
pub fn api_form(id: &str, method: &str, action: &str, then: &str, fields: &str, submit: &str) -> String {
    format!(
        "<form id=\"{id}\" class=\"api\" data-api=\"{}\" data-method=\"{method}\" data-then=\"{}\" novalidate>\
         {fields}<p class=\"form-error\" role=\"alert\" hidden></p><button type=\"submit\">{}</button></form>",
        escape(action),
        escape(then),
        escape(submit)
    )
}

/// A labelled input whose API errors (by the error's `field`) show next to it.
pub fn field(form: &str, name: &str, label: &str, kind: &str, value: &str, extra: &str) -> String {
    let id = format!("{form}-{name}");
    format!(
        "<div class=\"field\"><label for=\"{id}\">{}</label>\
         <input id=\"{id}\" name=\"{name}\" type=\"{kind}\" value=\"{}\" {extra} aria-describedby=\"{id}-error\">\
         <span class=\"field-error\" id=\"{id}-error\" data-field=\"{name}\"></span></div>",
        escape(label),
        escape(value)
    )
}

/// A button that posts a JSON body to the API (cancel, drain, decide).
fn action_button(id: &str, action: &str, body: &str, label: &str, then: &str) -> String {
    format!(
        "<form id=\"{id}\" class=\"api inline\" data-api=\"{}\" data-method=\"POST\" data-body=\"{}\" data-then=\"{}\">\
         <p class=\"form-error\" role=\"alert\" hidden></p><button type=\"submit\">{}</button></form>",
        escape(action),
        escape(body),
        escape(then),
        escape(label)
    )
}

// --- Overview ---

/// `GET /ui/`: capacity by site and accelerator, utilisation and queue over time, the map.
pub async fn overview(State(ctl): State<Control>, viewer: Viewer) -> Page {
    let federation = &ctl.federation;
    let capacity = federation.capacity();
    let pools = ok(&viewer, admin::list_pools(&ctl, &viewer.caller).await)?;
    let view = ctl.metrics.view.lock().ok().and_then(|v| v.clone());
    let (allocated, cards_milli) = view.as_ref().map_or((0, 0), |v| {
        v.pools.iter().fold((0, 0), |(a, c), p| (a + p.gpu_milli_allocated, c + p.gpu_milli_capacity))
    });
    let utilisation = if cards_milli > 0 {
        format!("{:.1}%", allocated as f64 * 100.0 / cards_milli as f64)
    } else {
        "—".to_owned()
    };
    let mut tiles = String::new();
    tiles += &tile(viewer.t(M::Sites), &federation.sites().len().to_string(), "t-sites");
    tiles += &tile(viewer.t(M::Pools), &pools.len().to_string(), "t-pools");
    tiles += &tile(viewer.t(M::Cards), &group(capacity.total.cards), "t-cards");
    tiles += &tile(viewer.t(M::Pflops), &one_decimal(capacity.total.pflops_fp16), "t-pflops");
    let healthy = pools.iter().filter(|p| p.healthy && !p.drained).count();
    tiles += &tile(viewer.t(M::HealthyPools), &format!("{healthy} / {}", pools.len()), "t-healthy");
    tiles += &tile(viewer.t(M::Utilisation), &utilisation, "t-util");
    tiles += &tile(viewer.t(M::Queued), &view.as_ref().map_or("—".to_owned(), |v| v.queued.to_string()), "t-queued");
    if viewer.sees_everything() {
        let counts = ctl.store.job_counts().await.map_err(|e| viewer.error(&Error::from(e)))?;
        let running: i64 = counts.iter().filter(|(s, _)| *s == JobState::Running).map(|(_, n)| n).sum();
        tiles += &tile(viewer.t(M::Running), &running.to_string(), "t-running");
    }

    let mut by_site = String::new();
    for (i, site) in federation.sites().iter().enumerate() {
        let row = &capacity.by_site[i];
        let n_pools = federation.pools().filter(|(_, p)| p.site.index() == i).count();
        let _ = write!(
            by_site,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{n_pools}</td><td>{}</td><td>{}</td></tr>",
            escape(&site.name),
            escape(&site.city),
            escape(&site.region),
            group(row.cards),
            one_decimal(row.pflops_fp16)
        );
    }
    let mut by_model = String::new();
    for (model, row) in &capacity.by_accelerator {
        let _ = write!(
            by_model,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&federation.catalog().get(*model).model),
            group(row.nodes),
            group(row.cards),
            one_decimal(row.pflops_fp16)
        );
    }
    let (util_chart, queue_chart) = charts::history_charts(&ctl.history.samples(), &viewer, ctl.now_ms());
    let body = format!(
        "<p class=\"note\">{refresh}</p><dl class=\"tiles\">{tiles}</dl>\
         <section aria-labelledby=\"h-map\"><h2 id=\"h-map\">{map_h}</h2><figure>{map}<figcaption>{map_c}</figcaption></figure></section>\
         <section aria-labelledby=\"h-hist\"><h2 id=\"h-hist\">{util_h}</h2><div id=\"history\" data-live>{util_chart}{queue_chart}</div></section>\
         <section aria-labelledby=\"h-site\"><h2 id=\"h-site\">{site_h}</h2>{site_t}</section>\
         <section aria-labelledby=\"h-model\"><h2 id=\"h-model\">{model_h}</h2>{model_t}</section>",
        refresh = viewer.t(M::Refreshes),
        map_h = viewer.t(M::MapTitle),
        map = charts::site_map(federation, &viewer),
        map_c = viewer.t(M::MapCaption),
        util_h = viewer.t(M::UtilisationOverTime),
        site_h = viewer.t(M::CapacityBySite),
        site_t =
            table(&viewer, &[M::Site, M::City, M::Region, M::Pools, M::Cards, M::PflopsShort], &by_site, M::Nothing),
        model_h = viewer.t(M::CapacityByModel),
        model_t = table(&viewer, &[M::Model, M::Nodes, M::Cards, M::PflopsShort], &by_model, M::Nothing),
    );
    Ok(viewer.page(M::Overview, &body))
}

// --- Pools ---

/// `GET /ui/pools`: health, capacity, prices, utilisation; drain for those allowed; earnings.
pub async fn pools(State(ctl): State<Control>, viewer: Viewer) -> Page {
    let pools = ok(&viewer, admin::list_pools(&ctl, &viewer.caller).await)?;
    let prices = ok(&viewer, market::prices(&ctl, &viewer.caller).await)?;
    let mut rows = String::new();
    for p in &pools {
        let price = prices.pools.iter().find(|x| x.pool == p.name);
        let health = match (p.healthy, p.drained) {
            (_, true) => format!("<span class=\"badge warn\">{}</span>", viewer.t(M::Drained)),
            (true, false) => format!("<span class=\"badge ok\">{}</span>", viewer.t(M::Healthy)),
            (false, false) => format!("<span class=\"badge bad\">{}</span>", viewer.t(M::Unhealthy)),
        };
        let may_drain = may(&viewer.caller, Action::DrainPool, Owner::pool(&p.name));
        let action = if may_drain {
            let (verb, label) = if p.drained { ("undrain", M::Undrain) } else { ("drain", M::Drain) };
            action_button(
                &format!("{verb}-{}", p.name),
                &format!("/api/v1/pools/{}/{verb}", p.name),
                "{}",
                viewer.t(label),
                "reload",
            )
        } else {
            String::new()
        };
        let _ = write!(
            rows,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td id=\"health-{0}\" data-live>{health}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td id=\"util-{0}\" data-live>{}</td><td>{action}</td></tr>",
            escape(&p.name),
            escape(&p.site),
            escape(&p.provider),
            p.backend,
            p.last_seen_at.as_deref().map_or_else(|| viewer.t(M::Never).to_owned(), time_text),
            group(p.cards),
            price.map_or_else(|| "—".to_owned(), |x| yuan(i128::from(x.list_fen_per_card_hour))),
            price.map_or_else(|| "—".to_owned(), |x| yuan(i128::from(x.spot_fen_per_card_hour))),
            price.and_then(|x| x.utilisation_pct).map_or_else(|| "—".to_owned(), |u| format!("{u:.1}%")),
        );
    }
    let mut body = table(
        &viewer,
        &[
            M::Pool,
            M::Site,
            M::Provider,
            M::Backend,
            M::Health,
            M::LastSeen,
            M::Cards,
            M::ListPrice,
            M::SpotPrice,
            M::Utilisation,
            M::Actions,
        ],
        &rows,
        M::Nothing,
    );
    // Earnings: a provider's own pool, or every pool for those who see everything.
    let visible: Vec<&str> = match viewer.role() {
        Role::Operator | Role::Auditor => pools.iter().map(|p| p.name.as_str()).collect(),
        Role::Provider => viewer.caller.principal.pool.as_deref().into_iter().collect(),
        _ => Vec::new(),
    };
    if !visible.is_empty() {
        let mut rows = String::new();
        for name in visible {
            let e = ok(&viewer, money::earnings(&ctl, &viewer.caller, name).await)?;
            let _ = write!(
                rows,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&e.pool),
                yuan(e.earned_fen as i128),
                yuan(e.paid_out_fen as i128),
                yuan(e.owed_fen)
            );
        }
        let _ = write!(
            body,
            "<h2>{}</h2>{}",
            viewer.t(M::Earnings),
            table(&viewer, &[M::Pool, M::Earned, M::PaidOut, M::Owed], &rows, M::Nothing)
        );
    }
    Ok(viewer.page(M::Pools, &body))
}

// --- Jobs ---

/// Query of `GET /ui/jobs`.
#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    state: Option<String>,
    pool: Option<String>,
    tenant: Option<String>,
    after: Option<i64>,
}

/// A state enum as the API writes it (`"approved"`, `"open"`).
fn wire_name(value: impl serde::Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn state_label(state: &str) -> String {
    let class = match state {
        "succeeded" => "ok",
        "failed" | "cancelled" => "bad",
        "running" => "run",
        _ => "wait",
    };
    format!("<span class=\"badge {class}\">{state}</span>")
}

/// `GET /ui/jobs`: a filterable list, newest first, and the submit form.
pub async fn jobs(
    State(ctl): State<Control>,
    viewer: Viewer,
    query: Result<Query<JobsQuery>, axum::extract::rejection::QueryRejection>,
) -> Page {
    let names = Names::load(&ctl, &viewer).await;
    let query = query.map(|q| q.0).unwrap_or_default();
    let blank = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let list_query = ListQuery {
        state: blank(&query.state),
        pool: blank(&query.pool),
        tenant: blank(&query.tenant),
        after: query.after,
        limit: Some(ROWS),
        order: Some("desc".to_owned()),
    };
    let page = ok(&viewer, jobs::list(&ctl, &viewer.caller, &list_query).await)?;
    let mut rows = String::new();
    for j in &page.jobs {
        let _ = write!(
            rows,
            "<tr><td><a href=\"/ui/jobs/{id}\">{id}</a></td><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&j.name),
            state_label(j.state.as_str()),
            j.pool.as_deref().map(escape).unwrap_or_default(),
            names.show(j.tenant_id),
            time_text(&j.created_at),
            id = j.id
        );
    }
    let selected = |s: &str| if query.state.as_deref() == Some(s) { " selected" } else { "" };
    let mut states = format!("<option value=\"\">{}</option>", viewer.t(M::AllStates));
    for s in JobState::ALL {
        let _ = write!(states, "<option{}>{}</option>", selected(s.as_str()), s.as_str());
    }
    let mut pools = format!("<option value=\"\">{}</option>", viewer.t(M::Pools));
    for (_, p) in ctl.federation.pools() {
        let sel = if query.pool.as_deref() == Some(p.name.as_str()) { " selected" } else { "" };
        let _ = write!(pools, "<option{sel}>{}</option>", escape(&p.name));
    }
    let tenant_filter = if viewer.sees_everything() {
        format!(
            "<label for=\"f-tenant\">{}</label><input id=\"f-tenant\" name=\"tenant\" value=\"{}\" size=\"12\">",
            viewer.t(M::Tenant),
            escape(query.tenant.as_deref().unwrap_or(""))
        )
    } else {
        String::new()
    };
    let filter = format!(
        "<form method=\"get\" action=\"/ui/jobs\" class=\"filter\" role=\"search\" aria-label=\"{f}\">\
         <label for=\"f-state\">{st}</label><select id=\"f-state\" name=\"state\">{states}</select>\
         <label for=\"f-pool\">{po}</label><select id=\"f-pool\" name=\"pool\">{pools}</select>{tenant_filter}\
         <button type=\"submit\">{ap}</button></form>",
        f = viewer.t(M::Filter),
        st = viewer.t(M::State),
        po = viewer.t(M::Pool),
        ap = viewer.t(M::Apply),
    );
    let more = match page.next_after {
        Some(after) => {
            let mut link = format!("/ui/jobs?after={after}");
            for (k, v) in [("state", &query.state), ("pool", &query.pool), ("tenant", &query.tenant)] {
                if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                    let _ = write!(link, "&{k}={}", escape(v));
                }
            }
            format!("<p><a href=\"{link}\">{} →</a></p>", viewer.t(M::OlderJobs))
        }
        None => String::new(),
    };
    let submit = if scope(viewer.role(), Action::SubmitJob) != Scope::None {
        let f = "submit";
        let mut fields = field(f, "name", viewer.t(M::Name), "text", "", "required maxlength=\"128\"");
        if viewer.role() == Role::Operator {
            fields += &field(f, "tenant", viewer.t(M::Tenant), "text", "", "required");
        }
        fields += &field(f, "command", viewer.t(M::Command), "text", "", "data-type=\"words\" size=\"40\"");
        fields += &field(f, "cpu_milli", viewer.t(M::CpuMilli), "number", "1000", "data-type=\"int\" min=\"0\"");
        fields += &field(f, "memory_mib", viewer.t(M::MemoryMib), "number", "1024", "data-type=\"int\" min=\"0\"");
        fields += &field(f, "accelerators", viewer.t(M::Accelerators), "number", "0", "data-type=\"int\" min=\"0\"");
        let default = ctl.config.default_framework.as_deref().unwrap_or("—");
        let mut frameworks =
            format!("<option value=\"\">{} ({})</option>", escape(viewer.t(M::DefaultFramework)), escape(default));
        for (name, stacks) in ctl.adaptation.iter() {
            let _ = write!(
                frameworks,
                "<option value=\"{0}\">{0} ({1})</option>",
                escape(name),
                escape(&stacks.join(", "))
            );
        }
        let _ = write!(
            fields,
            "<div class=\"field\"><label for=\"{f}-framework\">{}</label><select id=\"{f}-framework\" name=\"framework\" \
             aria-describedby=\"{f}-framework-error\">{frameworks}</select><span class=\"field-error\" id=\"{f}-framework-error\" \
             data-field=\"framework\"></span></div>",
            viewer.t(M::Framework)
        );
        fields += &field(
            f,
            "accelerator_models",
            viewer.t(M::AcceleratorModels),
            "text",
            "",
            "data-type=\"models\" size=\"40\" placeholder=\"A100-SXM4-80GB Ascend-910B:0.6\"",
        );
        fields += &field(f, "duration_s", viewer.t(M::DurationS), "number", "", "data-type=\"int\" min=\"1\"");
        format!(
            "<section aria-labelledby=\"h-submit\"><h2 id=\"h-submit\">{}</h2>{}</section>",
            viewer.t(M::SubmitJob),
            api_form(f, "POST", "/api/v1/jobs", "go:/ui/jobs/{id}", &fields, viewer.t(M::Submit))
        )
    } else {
        String::new()
    };
    let body = format!(
        "{filter}<div id=\"job-list\" data-live>{}</div>{more}{submit}",
        table(&viewer, &[M::Id, M::Name, M::State, M::Pool, M::Tenant, M::Created], &rows, M::NoJobs)
    );
    Ok(viewer.page(M::Jobs, &body))
}

/// `GET /ui/jobs/{id}`: state history, placement explanation, logs; cancel.
pub async fn job(State(ctl): State<Control>, viewer: Viewer, Path(id): Path<String>) -> Page {
    let names = Names::load(&ctl, &viewer).await;
    let Ok(id) = id.parse::<i64>() else {
        return Err(viewer.error(&Error::not_found(format!("job {id:?}"))));
    };
    let detail = ok(&viewer, jobs::show(&ctl, &viewer.caller, id).await)?;
    let logs = ok(
        &viewer,
        jobs::logs(&ctl, &viewer.caller, id, &LogQuery { after: None, limit: None, tail: Some(LOG_TAIL) }).await,
    )?;
    let j = &detail.job;
    let open = !j.state.is_terminal();
    let whose = Owner { tenant: Some(TenantId(j.tenant_id)), pool: j.pool.as_deref(), program: None };
    let cancel = if open && may(&viewer.caller, Action::CancelJob, whose) {
        action_button("cancel", &format!("/api/v1/jobs/{id}/cancel"), "{}", viewer.t(M::Cancel), "reload")
    } else {
        String::new()
    };
    let mut history = String::new();
    for e in &detail.history {
        let _ = write!(
            history,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            time_text(&e.at),
            state_label(e.state.as_str()),
            escape(&e.detail)
        );
    }
    let log_text: String = logs.chunks.iter().map(|(_, text)| text.as_str()).collect();
    let logs_html = if log_text.is_empty() {
        format!("<p class=\"empty\">{}</p>", viewer.t(M::NoLogs))
    } else {
        format!("<pre class=\"logs\" tabindex=\"0\">{}</pre>", escape(&log_text))
    };
    let request = serde_json::to_string_pretty(&j.request).unwrap_or_default();
    let body = format!(
        "<div id=\"job-summary\" data-live><dl class=\"facts\"><dt>{name_l}</dt><dd>{name}</dd><dt>{state_l}</dt><dd id=\"job-state\">{state}</dd>\
         <dt>{pool_l}</dt><dd>{pool}</dd><dt>{tenant_l}</dt><dd>{tenant}</dd><dt>{created_l}</dt><dd>{created}</dd>\
         <dt>{usage_l}</dt><dd>{usage:.1}</dd></dl>{cancel}</div>\
         <section aria-labelledby=\"h-why\"><h2 id=\"h-why\">{why_l}</h2><p id=\"explanation\" data-live>{why}</p></section>\
         <section aria-labelledby=\"h-hist\"><h2 id=\"h-hist\">{hist_l}</h2><div id=\"job-history\" data-live>{hist}</div></section>\
         <section aria-labelledby=\"h-logs\"><h2 id=\"h-logs\">{logs_l}</h2><div id=\"job-logs\" data-live>{logs_html}</div></section>\
         <details><summary>JSON</summary><pre>{request}</pre></details>",
        name_l = viewer.t(M::Name),
        name = escape(&j.name),
        state_l = viewer.t(M::State),
        state = state_label(j.state.as_str()),
        pool_l = viewer.t(M::Pool),
        pool = j.pool.as_deref().map(escape).unwrap_or_else(|| "—".to_owned()),
        tenant_l = viewer.t(M::Tenant),
        tenant = names.show(j.tenant_id),
        created_l = viewer.t(M::Created),
        created = time_text(&j.created_at),
        usage_l = viewer.t(M::Usage),
        usage = detail.usage_accelerator_s,
        why_l = viewer.t(M::Placement),
        why = j.explanation.as_deref().map(escape).unwrap_or_else(|| "—".to_owned()),
        hist_l = viewer.t(M::History),
        hist = table(&viewer, &[M::Time, M::State, M::Detail], &history, M::Nothing),
        logs_l = viewer.t(M::Logs),
        request = escape(&request),
    );
    let title = format!("{} {id}", viewer.t(M::Job));
    Ok(viewer.page_titled(&title, M::Jobs, &body))
}

// --- Market ---

/// `GET /ui/market`: prices, the book's depth, clearing prices over time, contracts.
pub async fn market(State(ctl): State<Control>, viewer: Viewer) -> Page {
    let names = Names::load(&ctl, &viewer).await;
    let prices = ok(&viewer, market::prices(&ctl, &viewer.caller).await)?;
    let book = ok(&viewer, market::book(&ctl, &viewer.caller).await)?;
    let contracts = ok(&viewer, market::contracts(&ctl, &viewer.caller).await)?;
    let auctions = ctl
        .read_books(|books| {
            books.auctions().iter().rev().take(500).map(|a| (a.at_ms, a.prices.clone())).collect::<Vec<_>>()
        })
        .await
        .map_err(|e| viewer.error(&e))?;

    let mut price_rows = String::new();
    for p in &prices.pools {
        let _ = write!(
            price_rows,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.pool),
            escape(&p.model),
            escape(&p.region),
            group(p.cards),
            yuan(i128::from(p.list_fen_per_card_hour)),
            yuan(i128::from(p.spot_fen_per_card_hour)),
        );
    }
    let levels = |levels: &[suanwang_api::market::Level]| -> String {
        levels
            .iter()
            .map(|l| format!("{} × {}", yuan(i128::from(l.price_fen_per_card_hour)), l.cards))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    let mut depth_rows = String::new();
    for d in &book.depth {
        let _ = write!(
            depth_rows,
            "<tr><th scope=\"row\">{} · {}</th><td>{} – {}</td><td>{}</td><td>{}</td></tr>",
            escape(&d.model),
            escape(&d.region),
            time(i64::try_from(d.start_s).unwrap_or(0) * 1000),
            time(i64::try_from(d.end_s).unwrap_or(0) * 1000),
            levels(&d.buys),
            levels(&d.sells),
        );
    }
    let mut contract_rows = String::new();
    for c in &contracts {
        let _ = write!(
            contract_rows,
            "<tr><td>contract:{}</td><td>{}</td><th scope=\"row\">{}</th><td>{}</td><td>{} – {}</td><td>{}</td><td>{}</td></tr>",
            c.id,
            names.show(c.tenant),
            escape(&c.pool),
            escape(&c.model),
            time(i64::try_from(c.start_s).unwrap_or(0) * 1000),
            time(i64::try_from(c.end_s).unwrap_or(0) * 1000),
            c.cards,
            yuan(i128::from(c.price_fen_per_card_hour)),
        );
    }
    let mut order_form = order_form(&viewer, &prices.pools);
    let mut mine = String::new();
    for o in &book.mine {
        let _ = write!(
            mine,
            "<tr><td>{}</td><td>{}</td><th scope=\"row\">{} · {}</th><td>{} – {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            o.id,
            escape(&o.side),
            escape(&o.model),
            escape(&o.region),
            time(i64::try_from(o.start_s).unwrap_or(0) * 1000),
            time(i64::try_from(o.end_s).unwrap_or(0) * 1000),
            o.cards,
            yuan(i128::from(o.limit_fen_per_card_hour)),
            action_button(
                &format!("cancel-order-{}", o.id),
                &format!("/api/v1/market/orders/{}/cancel", o.id),
                "{}",
                viewer.t(M::CancelOrder),
                "reload"
            ),
        );
    }
    if !mine.is_empty() {
        let _ = write!(
            order_form,
            "<section aria-labelledby=\"h-mine\"><h2 id=\"h-mine\">{}</h2><div id=\"my-orders\">{}</div></section>",
            viewer.t(M::YourOrders),
            table(&viewer, &[M::Id, M::Side, M::Model, M::Window, M::Cards, M::Price, M::Actions], &mine, M::Nothing)
        );
    }
    let body = format!(
        "{order_form}<section aria-labelledby=\"h-prices\"><h2 id=\"h-prices\">{prices_h}</h2><div id=\"prices\" data-live>{prices_t}</div></section>\
         <section aria-labelledby=\"h-book\"><h2 id=\"h-book\">{book_h}</h2><div id=\"book\" data-live>{book_t}</div></section>\
         <section aria-labelledby=\"h-clear\"><h2 id=\"h-clear\">{clear_h}</h2>{clear}</section>\
         <section aria-labelledby=\"h-contracts\"><h2 id=\"h-contracts\">{contracts_h}</h2><div id=\"contracts\" data-live>{contracts_t}</div></section>",
        prices_h = viewer.t(M::Prices),
        prices_t = table(
            &viewer,
            &[M::Pool, M::Model, M::Region, M::Cards, M::ListPrice, M::SpotPrice],
            &price_rows,
            M::Nothing
        ),
        book_h = viewer.t(M::OrderBook),
        book_t = table(&viewer, &[M::Model, M::Window, M::Bids, M::Asks], &depth_rows, M::EmptyBook),
        clear_h = viewer.t(M::ClearingPrices),
        clear = charts::clearing_chart(&auctions, &viewer, ctl.now_ms()),
        contracts_h = viewer.t(M::Contracts),
        contracts_t = table(
            &viewer,
            &[M::Id, M::Tenant, M::Pool, M::Model, M::Window, M::Cards, M::Price],
            &contract_rows,
            M::NoContracts
        ),
    );
    Ok(viewer.page(M::Market, &body))
}

/// A tenant's buy or a provider's sell, sent to `POST /api/v1/market/orders` with an
/// idempotency key drawn when the page was made (so a retried click places one order).
fn order_form(viewer: &Viewer, pools: &[suanwang_api::market::PoolPrice]) -> String {
    let side = match viewer.role() {
        Role::Tenant => "buy",
        Role::Provider => "sell",
        _ => return String::new(),
    };
    let f = "order";
    let mut fields = format!("<input type=\"hidden\" name=\"side\" value=\"{side}\">");
    if side == "buy" {
        let mut models: Vec<&str> = pools.iter().map(|p| p.model.as_str()).collect();
        models.sort_unstable();
        models.dedup();
        let mut regions: Vec<&str> = pools.iter().map(|p| p.region.as_str()).collect();
        regions.sort_unstable();
        regions.dedup();
        let options =
            |list: &[&str]| list.iter().map(|x| format!("<option>{}</option>", escape(x))).collect::<String>();
        for (name, label, list) in [("model", M::Model, &models), ("region", M::Region, &regions)] {
            let _ = write!(
                fields,
                "<div class=\"field\"><label for=\"{f}-{name}\">{}</label><select id=\"{f}-{name}\" name=\"{name}\" \
                 aria-describedby=\"{f}-{name}-error\">{}</select><span class=\"field-error\" id=\"{f}-{name}-error\" data-field=\"{name}\"></span></div>",
                viewer.t(label),
                options(list)
            );
        }
    }
    fields += &field(f, "start_s", viewer.t(M::WindowStart), "datetime-local", "", "data-type=\"time\" required");
    fields += &field(f, "end_s", viewer.t(M::WindowEnd), "datetime-local", "", "data-type=\"time\" required");
    fields += &field(f, "cards", viewer.t(M::Cards), "number", "8", "data-type=\"int\" min=\"1\" required");
    fields += &field(
        f,
        "limit_fen_per_card_hour",
        viewer.t(M::Price),
        "text",
        "",
        "data-type=\"yuan\" inputmode=\"decimal\" required",
    );
    let heading = if side == "buy" { M::PlaceBuy } else { M::PlaceSell };
    let form = api_form(f, "POST", "/api/v1/market/orders", "reload", &fields, viewer.t(heading)).replacen(
        "<form ",
        &format!("<form data-key=\"dash-{}\" ", suanwang_control::auth::new_token()),
        1,
    );
    format!("<section aria-labelledby=\"h-order\"><h2 id=\"h-order\">{}</h2>{form}</section>", viewer.t(heading))
}

// --- Vouchers ---

/// `GET /ui/vouchers`: programmes with budget burn-down and use by firm; applications and
/// claims awaiting action, with the actions for those who may take them.
pub async fn vouchers(State(ctl): State<Control>, viewer: Viewer) -> Page {
    let names = Names::load(&ctl, &viewer).await;
    let programs = ok(&viewer, money::list_programs(&ctl, &viewer.caller).await)?;
    // Roles that read no applications or claims (providers) see the programmes' rules only.
    let reads_vouchers = scope(viewer.role(), Action::ReadVouchers) != Scope::None;
    let (applications, claims) = if reads_vouchers {
        (
            ok(&viewer, money::list_applications(&ctl, &viewer.caller, None).await)?,
            ok(&viewer, money::list_claims(&ctl, &viewer.caller, None).await)?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let admin_of = |program: &str| may(&viewer.caller, Action::Decide, Owner::program(program));
    // Paid subsidy by programme and invoice period, for the burn-down.
    let paid_by_period: BTreeMap<String, BTreeMap<String, u64>> = ctl
        .read_books(|books| {
            let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
            for line in books.all_lines() {
                for s in &line.subsidies {
                    *out.entry(s.program.clone()).or_default().entry(line.key.period.clone()).or_default() +=
                        s.subsidy_fen;
                }
            }
            out
        })
        .await
        .map_err(|e| viewer.error(&e))?;

    let mut body = String::new();
    if programs.is_empty() {
        let _ = write!(body, "<p class=\"empty\">{}</p>", viewer.t(M::NoPrograms));
    }
    for p in &programs {
        let program = &p.program;
        let status = if p.expired { viewer.t(M::Expired) } else { viewer.t(M::Active) };
        let _ = write!(
            body,
            "<section class=\"program\" aria-labelledby=\"p-{id}\"><h2 id=\"p-{id}\">{name} <small>{id} · {status}</small></h2>\
             <p>{issuer_l}: {issuer} · {year}</p>",
            id = escape(&program.id),
            name = escape(&program.name),
            issuer_l = viewer.t(M::Issuer),
            issuer = escape(&program.issuer),
            year = program.fiscal_year,
        );
        let Some(report) = &p.report else {
            let _ = write!(body, "<p>{}: {}</p></section>", viewer.t(M::Budget), yuan(i128::from(program.budget_fen)));
            continue;
        };
        let mut tiles = String::new();
        tiles += &tile(viewer.t(M::Budget), &yuan(i128::from(report.budget_fen)), &format!("b-{}", program.id));
        tiles += &tile(viewer.t(M::Paid), &yuan(i128::from(report.paid_fen)), &format!("paid-{}", program.id));
        tiles += &tile(viewer.t(M::Reserved), &yuan(i128::from(report.reserved_fen)), &format!("res-{}", program.id));
        tiles +=
            &tile(viewer.t(M::Available), &yuan(i128::from(report.available_fen)), &format!("avail-{}", program.id));
        let empty = BTreeMap::new();
        let burn = charts::burn_down(
            report.budget_fen,
            program.fiscal_year,
            paid_by_period.get(&program.id).unwrap_or(&empty),
            &viewer,
            ctl.now_ms(),
        );
        let mut firms = String::new();
        for f in &report.firms {
            let _ = write!(
                firms,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                names.show(f.tenant),
                f.cap_fen.map_or_else(|| "—".to_owned(), |c| yuan(i128::from(c))),
                yuan(i128::from(f.reserved_fen)),
                yuan(i128::from(f.redeemed_fen))
            );
        }
        let _ = write!(
            body,
            "<dl class=\"tiles\">{tiles}</dl><figure>{burn}</figure><h3>{firms_h}</h3>{firms_t}</section>",
            firms_h = viewer.t(M::PerFirm),
            firms_t = table(&viewer, &[M::Tenant, M::Cap, M::Reserved, M::Redeemed], &firms, M::Nothing),
        );
    }

    let mut app_rows = String::new();
    for a in &applications {
        let pending = matches!(a.state, suanwang_billing::books::ApplicationState::Pending);
        let actions = if pending && admin_of(&a.program) {
            format!(
                "{}{}",
                action_button(
                    &format!("approve-app-{}", a.id),
                    &format!("/api/v1/applications/{}/decision", a.id),
                    "{\"approve\":true}",
                    viewer.t(M::Approve),
                    "reload"
                ),
                {
                    let form = format!("reject-app-{}", a.id);
                    let fields = format!(
                        "<input type=\"hidden\" name=\"approve\" value=\"false\" data-type=\"bool\">{}",
                        field(&form, "reason", viewer.t(M::Reason), "text", "", "required maxlength=\"200\"")
                    );
                    api_form(
                        &form,
                        "POST",
                        &format!("/api/v1/applications/{}/decision", a.id),
                        "reload",
                        &fields,
                        viewer.t(M::Reject),
                    )
                }
            )
        } else {
            String::new()
        };
        let state_text = wire_name(a.state);
        let _ = write!(
            app_rows,
            "<tr><td>{}</td><td>{}</td><th scope=\"row\">{} ({})</th><td>{}</td><td>{}</td><td>{}</td><td>{actions}</td></tr>",
            a.id,
            escape(&a.program),
            names.show(a.tenant.id),
            escape(&a.tenant.kind),
            state_label(&state_text),
            escape(&a.reason),
            time(a.at_ms),
        );
    }
    let period = suanwang_billing::rating::period(ctl.now_ms());
    let mut claim_rows = String::new();
    for c in &claims {
        let open = matches!(c.state, suanwang_billing::books::ClaimState::Open);
        let action = if open && admin_of(&c.program) {
            let form = format!("redeem-{}", c.id);
            let job = c.contract.strip_prefix("job:").unwrap_or("");
            let mut fields = field(
                &form,
                "period",
                viewer.t(M::Period),
                "text",
                &period,
                "required pattern=\"[0-9]{4}-[0-9]{2}\" size=\"8\"",
            );
            fields += &field(&form, "job", viewer.t(M::Job), "number", job, "data-type=\"int\" required min=\"1\"");
            api_form(
                &form,
                "POST",
                &format!("/api/v1/claims/{}/redemptions", c.id),
                "reload",
                &fields,
                viewer.t(M::ApproveClaim),
            )
        } else {
            String::new()
        };
        let state_text = wire_name(c.state);
        let _ = write!(
            claim_rows,
            "<tr><td>{}</td><td>{}</td><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td id=\"claim-{0}-left\">{}</td><td>{}</td><td>{action}</td></tr>",
            c.id,
            escape(&c.program),
            names.show(c.tenant),
            escape(&c.contract),
            yuan(i128::from(c.face_fen)),
            yuan(i128::from(c.remaining_fen())),
            state_label(&state_text),
        );
    }
    let pending =
        applications.iter().filter(|a| matches!(a.state, suanwang_billing::books::ApplicationState::Pending)).count();
    let _ = write!(
        body,
        "<section aria-labelledby=\"h-apps\"><h2 id=\"h-apps\">{apps_h} <small>({pending} {awaiting})</small></h2>{apps_t}</section>\
         <section aria-labelledby=\"h-claims\"><h2 id=\"h-claims\">{claims_h}</h2><div id=\"claims\">{claims_t}</div></section>",
        apps_h = viewer.t(M::Applications),
        awaiting = viewer.t(M::AwaitingDecision),
        apps_t = table(
            &viewer,
            &[M::Id, M::Programs, M::Tenant, M::State, M::Reason, M::Time, M::Actions],
            &app_rows,
            M::NoApplications
        ),
        claims_h = viewer.t(M::Claims),
        claims_t = table(
            &viewer,
            &[M::Id, M::Programs, M::Tenant, M::Contract, M::Face, M::Remaining, M::State, M::Actions],
            &claim_rows,
            M::NoClaims
        ),
    );
    Ok(viewer.page(M::Vouchers, &body))
}

// --- Invoices and payouts ---

/// Query of `GET /ui/money`.
#[derive(Debug, Default, Deserialize)]
pub struct MoneyQuery {
    tenant: Option<i64>,
    period: Option<String>,
}

/// `GET /ui/money`: balance, invoices (one opened with its lines), earnings and payouts.
pub async fn money(
    State(ctl): State<Control>,
    viewer: Viewer,
    query: Result<Query<MoneyQuery>, axum::extract::rejection::QueryRejection>,
) -> Page {
    let names = Names::load(&ctl, &viewer).await;
    let query = query.map(|q| q.0).unwrap_or_default();
    let mut body = String::new();
    if let Some(tenant) = viewer.caller.tenant() {
        let b = ok(&viewer, money::balance(&ctl, &viewer.caller, tenant.0).await)?;
        let mut tiles = tile(viewer.t(M::Balance), &yuan(b.balance_fen), "t-balance");
        tiles += &tile(viewer.t(M::Charged), &yuan(b.charged_fen as i128), "t-charged");
        tiles += &tile(viewer.t(M::Credited), &yuan(b.credited_fen as i128), "t-credited");
        let _ = write!(body, "<dl class=\"tiles\">{tiles}</dl>");
    }
    if viewer.role() != Role::Provider {
        let list = ok(&viewer, money::invoices(&ctl, &viewer.caller, None).await);
        // Programme administrators see no invoices: the API says so, the page shows nothing.
        let list = list.unwrap_or_default();
        let mut rows = String::new();
        for i in list.iter().rev().take(ROWS as usize) {
            let _ = write!(
                rows,
                "<tr><th scope=\"row\"><a href=\"/ui/money?tenant={t}&amp;period={p}\">{who} · {p}</a></th><td>{}</td><td>{}</td><td>{}</td></tr>",
                yuan(i128::from(i.amount_fen)),
                yuan(i128::from(i.subsidy_fen)),
                yuan(i128::from(i.tenant_share_fen)),
                t = i.tenant,
                who = names.show(i.tenant),
                p = escape(&i.period),
            );
        }
        let _ = write!(
            body,
            "<section aria-labelledby=\"h-inv\"><h2 id=\"h-inv\">{}</h2><div id=\"invoices\" data-live>{}</div></section>",
            viewer.t(M::Invoices),
            table(&viewer, &[M::Invoices, M::Amount, M::Subsidy, M::TenantShare], &rows, M::NoInvoices)
        );
    }
    if let (Some(tenant), Some(period)) = (query.tenant, query.period) {
        let inv = ok(&viewer, money::invoice(&ctl, &viewer.caller, tenant, &period).await)?;
        let mut rows = String::new();
        for l in &inv.lines {
            let _ = write!(
                rows,
                "<tr><td><a href=\"/ui/jobs/{j}\">{j}</a></td><th scope=\"row\">{}</th><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&l.pool),
                escape(&l.contract),
                l.card_hours,
                yuan(i128::from(l.amount_fen)),
                yuan(i128::from(l.subsidy_fen)),
                yuan(i128::from(l.tenant_share_fen)),
                j = l.job,
            );
        }
        let _ = write!(
            body,
            "<section aria-labelledby=\"h-lines\"><h2 id=\"h-lines\">{} {tenant} · {}</h2>{}</section>",
            viewer.t(M::Lines),
            escape(&period),
            table(
                &viewer,
                &[M::Job, M::Pool, M::Contract, M::CardHours, M::Amount, M::Subsidy, M::TenantShare],
                &rows,
                M::NoInvoices
            )
        );
    }
    let payable: Vec<String> = match viewer.role() {
        Role::Operator | Role::Auditor => ctl.federation.pools().map(|(_, p)| p.name.clone()).collect(),
        Role::Provider => viewer.caller.principal.pool.clone().into_iter().collect(),
        _ => Vec::new(),
    };
    if !payable.is_empty() {
        let mut rows = String::new();
        for name in &payable {
            let e = ok(&viewer, money::earnings(&ctl, &viewer.caller, name).await)?;
            let action = if may(&viewer.caller, Action::Payout, Owner::pool(name)) && e.owed_fen > 0 {
                let form = format!("payout-{name}");
                let mut fields = field(
                    &form,
                    "amount_fen",
                    viewer.t(M::AmountFen),
                    "number",
                    &e.owed_fen.to_string(),
                    "data-type=\"int\" min=\"1\" required",
                );
                fields += &field(
                    &form,
                    "key",
                    viewer.t(M::IdempotencyKey),
                    "text",
                    &format!("payout-{name}-{}", ctl.now_ms()),
                    "required",
                );
                api_form(
                    &form,
                    "POST",
                    &format!("/api/v1/pools/{name}/payouts"),
                    "reload",
                    &fields,
                    viewer.t(M::PayOut),
                )
            } else {
                String::new()
            };
            let _ = write!(
                rows,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td id=\"owed-{0}\">{}</td><td>{action}</td></tr>",
                escape(name),
                yuan(e.earned_fen as i128),
                yuan(e.paid_out_fen as i128),
                yuan(e.owed_fen)
            );
        }
        let _ = write!(
            body,
            "<section aria-labelledby=\"h-pay\"><h2 id=\"h-pay\">{}</h2>{}</section>",
            viewer.t(M::Payouts),
            table(&viewer, &[M::Pool, M::Earned, M::PaidOut, M::Owed, M::Actions], &rows, M::Nothing)
        );
    }
    Ok(viewer.page(M::Money, &body))
}

// --- Audit ---

/// Query of `GET /ui/audit`.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

/// `GET /ui/audit`: the newest entries (operators, auditors), the ledger's trial balance and a
/// button that verifies the whole chain through the API.
pub async fn audit(
    State(ctl): State<Control>,
    viewer: Viewer,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Page {
    let head = ctl.store.audit_head().await.map_err(|e| viewer.error(&Error::from(e)))?;
    let before = query.ok().and_then(|q| q.0.before).filter(|b| *b > 0 && *b <= head + 1).unwrap_or(head + 1);
    let after = (before - 1 - i64::from(ROWS)).max(0);
    let limit = u32::try_from(before - 1 - after).unwrap_or(0).max(1);
    let entries = ok(
        &viewer,
        admin::audit(&ctl, &viewer.caller, &ApiAuditQuery { after: Some(after), limit: Some(limit) }).await,
    )?;
    let balance = ok(&viewer, books::trial_balance(&ctl, &viewer.caller).await)?;
    let mut rows = String::new();
    for e in entries.iter().rev() {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><th scope=\"row\">{}</th><td>{}</td><td><code title=\"{}\">{}</code></td></tr>",
            e.seq,
            time_text(&e.at),
            escape(&e.actor),
            escape(&e.action),
            escape(&e.subject),
            escape(&e.hash),
            escape(e.hash.get(..12).unwrap_or(&e.hash)),
        );
    }
    let mut pager = String::new();
    if before <= head {
        let _ = write!(pager, "<a href=\"/ui/audit\">← {}</a> ", viewer.t(M::NewerEntries));
    }
    if after > 0 {
        let _ = write!(pager, "<a href=\"/ui/audit?before={}\">{} →</a>", after + 1, viewer.t(M::OlderEntries));
    }
    let posted = balance.posted;
    let balanced = posted.debits_fen == posted.credits_fen;
    let body = format!(
        "<section aria-labelledby=\"h-chain\"><h2 id=\"h-chain\">{chain_h}</h2>\
         <p>{entries_l}: <span id=\"audit-head\" data-live>{head}</span>. Ledger: <span id=\"trial-balance\" data-live>{tb}</span></p>\
         <button type=\"button\" id=\"verify\" data-verify=\"/api/v1/audit/verify\">{verify}</button>\
         <p id=\"verify-result\" role=\"status\" aria-live=\"polite\"></p></section>\
         <div id=\"audit-list\">{rows_t}</div><p class=\"pager\">{pager}</p>",
        chain_h = viewer.t(M::AuditChain),
        entries_l = viewer.t(M::Seq),
        tb = if balanced {
            format!("debits = credits = {}", yuan(i128::try_from(posted.debits_fen).unwrap_or(i128::MAX)))
        } else {
            format!("UNBALANCED {} ≠ {}", posted.debits_fen, posted.credits_fen)
        },
        verify = viewer.t(M::Verify),
        rows_t = table(&viewer, &[M::Seq, M::Time, M::Actor, M::Action, M::Subject, M::Hash], &rows, M::Nothing),
    );
    Ok(viewer.page(M::Audit, &body))
}

// --- Tokens ---

/// Query of `GET /ui/tokens`.
#[derive(Debug, Deserialize)]
pub struct TokensQuery {
    /// Show tokens after this id.
    after: Option<i64>,
}

/// `GET /ui/tokens`: every token (never the secret), whose it is and whether it still works;
/// revoke for operators.
pub async fn tokens(
    State(ctl): State<Control>,
    viewer: Viewer,
    query: Result<Query<TokensQuery>, axum::extract::rejection::QueryRejection>,
) -> Page {
    let after = query.ok().and_then(|q| q.0.after).filter(|a| *a > 0);
    let page = ok(&viewer, admin::list_tokens(&ctl, &viewer.caller, after).await)?;
    let names = Names::load(&ctl, &viewer).await;
    let may_revoke = suanwang_control::access::require(&viewer.caller, Action::RevokeToken).is_ok();
    let now = suanwang_control::clock::rfc3339(ctl.now_ms());
    // RFC 3339 in UTC with the same precision compares as text.
    let works = |t: &suanwang_api::admin::TokenInfo| {
        t.revoked_at.is_none() && t.expires_at.as_deref().is_none_or(|e| e > now.as_str())
    };
    // The last working operator token gets no button (the API would refuse with `last_operator`).
    let operators = page.tokens.iter().filter(|t| t.role == Role::Operator && works(t)).count();
    let mut rows = String::new();
    for t in &page.tokens {
        let expired = !works(t) && t.revoked_at.is_none();
        let (state, class) = match (&t.revoked_at, expired) {
            (Some(_), _) => (viewer.t(M::RevokedState), "bad"),
            (None, true) => (viewer.t(M::Expired), "warn"),
            (None, false) => (viewer.t(M::Active), "ok"),
        };
        let last_operator = t.role == Role::Operator && operators == 1 && page.next_after.is_none();
        let action = if may_revoke && works(t) && !last_operator {
            action_button(
                &format!("revoke-{}", t.id),
                &format!("/api/v1/tokens/{}/revoke", t.id),
                "{}",
                viewer.t(M::Revoke),
                "reload",
            )
        } else {
            String::new()
        };
        let _ = write!(
            rows,
            "<tr id=\"token-{id}\"><td>{id}</td><th scope=\"row\">{label}</th><td>{role}</td><td>{tenant}</td><td>{scope}</td>\
             <td>{issued}</td><td>{expires}</td><td><span class=\"badge {class}\">{state}</span></td><td>{action}</td></tr>",
            id = t.id,
            label = escape(&t.label),
            role = t.role.as_str(),
            tenant = t.tenant_id.map(|id| names.show(id)).unwrap_or_default(),
            scope = t.scope.as_deref().map(escape).unwrap_or_default(),
            issued = time_text(&t.created_at),
            expires = t.expires_at.as_deref().map(time_text).unwrap_or_else(|| viewer.t(M::Never).to_owned()),
        );
    }
    let pager = match page.next_after {
        Some(next) => {
            format!("<p class=\"pager\"><a href=\"/ui/tokens?after={next}\">{} →</a></p>", viewer.t(M::OlderTokens))
        }
        None => String::new(),
    };
    let body = format!(
        "<p>{intro}</p><div id=\"token-list\">{rows_t}</div>{pager}",
        intro = escape(viewer.t(M::TokensIntro)),
        rows_t = table(
            &viewer,
            &[M::Id, M::Label, M::Role, M::Tenant, M::Scope, M::Issued, M::Expires, M::State, M::Actions],
            &rows,
            M::Nothing
        ),
    );
    Ok(viewer.page(M::Tokens, &body))
}
