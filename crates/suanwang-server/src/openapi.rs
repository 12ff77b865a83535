//! The OpenAPI 3.1 document of the API (`GET /api/v1/openapi.json`), written by hand and kept in
//! step with the router by a snapshot test and a test that every route is documented.

use serde_json::{Value, json};

/// Every documented operation: method, path, summary, roles.
pub const OPERATIONS: &[(&str, &str, &str, &str)] = &[
    (
        "get",
        "/healthz",
        "Liveness, and whether this server schedules: {\"status\":\"ok\",\"scheduler\":\"leader\"|\"standby\"}",
        "none",
    ),
    (
        "get",
        "/metrics",
        "Prometheus metrics (OpenMetrics text): requests and latency by route, jobs by state, queue length, pools' health, capacity and use",
        "none",
    ),
    ("get", "/api/v1/openapi.json", "This document", "none"),
    (
        "post",
        "/api/v1/jobs",
        "Submit a job (Idempotency-Key header: the same key returns the same job; another body is 409)",
        "tenant, operator (with \"tenant\")",
    ),
    (
        "post",
        "/api/v1/job-arrays",
        "Submit an array: \"size\" jobs from one body, job i named NAME[i] with SUANWANG_ARRAY_INDEX=i and SUANWANG_ARRAY_SIZE (Idempotency-Key K: job i gets K/i)",
        "tenant, operator (with \"tenant\")",
    ),
    (
        "get",
        "/api/v1/jobs",
        "List jobs (?state=&pool=&tenant=&after=&limit=&order=asc|desc), oldest first unless order=desc",
        "tenant (own), provider (own pool), operator, auditor",
    ),
    (
        "get",
        "/api/v1/jobs/{id}",
        "A job with its history and usage",
        "tenant (own), provider (own pool), operator, auditor",
    ),
    ("post", "/api/v1/jobs/{id}/cancel", "Cancel a job", "tenant (own), operator"),
    (
        "get",
        "/api/v1/jobs/{id}/logs",
        "A job's output (?after=&limit= pages forward; ?tail=N: the last N chunks)",
        "tenant (own), provider (own pool), operator, auditor",
    ),
    (
        "get",
        "/api/v1/jobs/{id}/explain",
        "Where the job went and why",
        "tenant (own), provider (own pool), operator, auditor",
    ),
    ("post", "/api/v1/tenants", "Create a tenant", "operator"),
    ("get", "/api/v1/tenants", "List tenants", "operator, auditor"),
    ("post", "/api/v1/tokens", "Create a token (shown once; \"ttl_seconds\" makes it expire)", "operator"),
    (
        "get",
        "/api/v1/tokens",
        "Every token (?after=): role, scope, label, dates; never the secret",
        "operator, auditor",
    ),
    (
        "post",
        "/api/v1/tokens/{id}/revoke",
        "Revoke a token: it stops working at once here, within 10 s on other servers (audited)",
        "operator",
    ),
    (
        "get",
        "/api/v1/tenants/{id}/quotas",
        "A tenant's quotas: requests_per_s (per token), queued_jobs, open_orders, book_share_bps, running_simulations, datasets",
        "tenant (own), operator, auditor",
    ),
    (
        "post",
        "/api/v1/tenants/{id}/quotas",
        "Change a tenant's quotas (fields left out keep their value; audited)",
        "operator",
    ),
    ("get", "/api/v1/pools", "Pools with capacity, prices and health", "any"),
    ("get", "/api/v1/pools/{name}", "One pool", "any"),
    (
        "post",
        "/api/v1/pools/{name}/drain",
        "Drain a pool: no new work, running jobs finish",
        "operator, provider (own pool)",
    ),
    (
        "post",
        "/api/v1/pools/{name}/undrain",
        "Undrain a pool: it takes new work again",
        "operator, provider (own pool)",
    ),
    (
        "get",
        "/api/v1/apps",
        "Applications: job templates with typed parameters (POST /api/v1/jobs with \"template\" and \"params\")",
        "any",
    ),
    ("get", "/api/v1/apps/{name}", "One application", "any"),
    (
        "post",
        "/api/v1/datasets",
        "Register a data set {\"name\",\"site\",\"size_bytes\"}; jobs name it in \"dataset\" and placement counts its transfer",
        "tenant (own), operator (with \"tenant\")",
    ),
    ("get", "/api/v1/datasets", "Registered data sets", "tenant (own), operator, auditor"),
    (
        "post",
        "/api/v1/ledger/accounts",
        "Open a ledger account {\"id\",\"kind\",\"limit\"} (the same account again is 200)",
        "operator",
    ),
    (
        "get",
        "/api/v1/ledger/accounts/{id}",
        "An account's posted and pending debits and credits, in fen",
        "operator, auditor",
    ),
    (
        "post",
        "/api/v1/ledger/transfers",
        "One transfer {\"id\",\"kind\":single|pending|post|void,\"debit\",\"credit\",\"amount_fen\",\"pending_id\",\"timeout_s\"}; idempotent by id, a refused id stays refused",
        "operator",
    ),
    (
        "get",
        "/api/v1/ledger/trial-balance",
        "{\"posted\":{\"debits_fen\",\"credits_fen\"},\"pending\":{…}}: debits equal credits in each",
        "operator, auditor",
    ),
    (
        "get",
        "/api/v1/ledger/entries",
        "The books' history (?after=&limit=): ledger events and facts, one line each, in order",
        "operator, auditor",
    ),
    (
        "get",
        "/api/v1/tenants/{id}/balance",
        "A tenant's cash: paid in and subsidies less charges (negative: owed)",
        "tenant (own), operator, auditor",
    ),
    (
        "post",
        "/api/v1/tenants/{id}/payments",
        "Money a tenant paid in {\"amount_fen\",\"key\"} (idempotent by key)",
        "operator",
    ),
    (
        "get",
        "/api/v1/pools/{name}/earnings",
        "What a pool's provider earned (charges less the platform fee), was paid and is owed",
        "provider (own pool), operator, auditor",
    ),
    (
        "post",
        "/api/v1/pools/{name}/payouts",
        "Pay a provider {\"amount_fen\",\"key\"}, at most what it is owed (idempotent by key)",
        "operator",
    ),
    (
        "get",
        "/api/v1/invoices",
        "Invoices by tenant and month (?tenant=): amount, subsidy, tenant share",
        "tenant (own), operator, auditor",
    ),
    (
        "get",
        "/api/v1/invoices/{tenant}/{period}",
        "An invoice (period YYYY-MM, China Standard Time) with a line per job and pool",
        "tenant (own), operator, auditor",
    ),
    (
        "post",
        "/api/v1/programs",
        "Load a voucher programme (docs/programs.md) and fund its budget; the same programme again is 200",
        "operator",
    ),
    ("get", "/api/v1/programs", "Voucher programmes (figures for operators, auditors, their administrators)", "any"),
    ("get", "/api/v1/programs/{id}", "A programme, with its report for those who may read it", "any"),
    (
        "post",
        "/api/v1/programs/{id}/expire",
        "End a programme's year: open claims are voided to the budget or to breakage",
        "operator, its program-admin",
    ),
    (
        "post",
        "/api/v1/programs/{id}/applications",
        "Apply to a programme {\"affiliations\":[providers]}; again returns the first application",
        "tenant",
    ),
    (
        "post",
        "/api/v1/programs/{id}/claims",
        "Claim a voucher for a contract {\"contract\":\"job:ID\",\"amount_fen\"}: reserves budget and the firm's cap",
        "tenant",
    ),
    (
        "get",
        "/api/v1/applications",
        "Applications (?program=)",
        "tenant (own), program-admin (own programme), operator, auditor",
    ),
    (
        "post",
        "/api/v1/applications/{id}/decision",
        "Approve or reject {\"approve\",\"reason\"}; approval grants the firm's annual cap",
        "program-admin (own programme), operator",
    ),
    ("get", "/api/v1/claims", "Claims (?program=)", "tenant (own), program-admin (own programme), operator, auditor"),
    ("get", "/api/v1/claims/{id}", "A claim", "tenant (own), program-admin (own programme), operator, auditor"),
    (
        "post",
        "/api/v1/claims/{id}/redemptions",
        "Redeem a claim against an invoice line {\"period\",\"job\",\"pool\"} of its contract (the job succeeded)",
        "tenant (own), program-admin (own programme), operator",
    ),
    (
        "get",
        "/api/v1/market/prices",
        "Posted and spot prices per pool (spot = list × (50% + utilisation)), the auction interval, the last clearing prices",
        "any",
    ),
    (
        "post",
        "/api/v1/market/orders",
        "A limit order for reserved capacity {\"side\",\"model\",\"region\",\"start_s\",\"end_s\",\"cards\",\"limit_fen_per_card_hour\",\"all_or_none\",\"standing\"} (Idempotency-Key header)",
        "tenant (buy), provider (sell, own pool)",
    ),
    ("post", "/api/v1/market/orders/{id}/cancel", "Take a resting order out of the book", "its owner"),
    ("get", "/api/v1/market/book", "The book's depth by product, and the caller's own orders", "any"),
    ("post", "/api/v1/market/auctions", "Run a call auction now (uniform price)", "operator"),
    ("get", "/api/v1/market/auctions", "The last 100 auctions: prices, contracts, cards", "any"),
    (
        "get",
        "/api/v1/market/contracts",
        "Contracts made by auctions",
        "tenant (own), provider (own pool), operator, auditor",
    ),
    (
        "post",
        "/api/v1/quotes",
        "What a job {\"accelerators\",\"tasks\",\"duration_s\",\"model\"} would cost in each pool, at list and spot, and whether it starts now",
        "any",
    ),
    ("get", "/api/v1/sites", "Sites", "any"),
    ("get", "/api/v1/links", "Network links", "any"),
    ("get", "/api/v1/audit", "Audit entries (?after=&limit=)", "operator, auditor"),
    (
        "get",
        "/api/v1/audit/head",
        "The newest audit entry {\"seq\",\"hash\"}: keep it; `suanwang audit verify --since-head` proves the chain still extends it",
        "operator, auditor",
    ),
    (
        "get",
        "/api/v1/audit/verify",
        "Walk the whole audit chain and cross-check every token, tenant and job against it: {\"intact\":true,\"entries\":N} or the first broken entry",
        "operator, auditor",
    ),
    (
        "post",
        "/api/v1/simulations",
        "Run a queue simulation (trace text or trace_file, federation, trace_format, policy; one at a time, 429 busy; bodies up to 8 MiB)",
        "any",
    ),
    ("get", "/api/v1/simulations", "Your simulation runs (all for operators, auditors), newest first", "any"),
    ("get", "/api/v1/simulations/{id}", "One simulation run's summary", "any"),
    ("post", "/api/v1/agent/heartbeat", "An agent reports its pool's health", "provider (pool token)"),
    (
        "get",
        "/api/v1/agent/work",
        "Jobs to start and stop, with the pool's work version (with wait_s and after: answered once the version is no longer after, or after wait_s)",
        "provider (pool token)",
    ),
    (
        "post",
        "/api/v1/agent/jobs/{id}/state",
        "A job waits in the cluster (why), started, succeeded or failed",
        "provider (pool token)",
    ),
    ("post", "/api/v1/agent/jobs/{id}/logs", "A piece of a job's output (idempotent by seq)", "provider (pool token)"),
    (
        "post",
        "/api/v1/agent/jobs/{id}/log-batches",
        "Up to 1,024 consecutive pieces of a job's output in one request (each idempotent by seq)",
        "provider (pool token)",
    ),
    ("post", "/api/v1/agent/usage", "Accelerator usage (idempotent by event_id)", "provider (pool token)"),
];

/// POSTs that answer 201 when they create something (200 for an idempotent repeat).
const CREATES: &[&str] = &[
    "/api/v1/jobs",
    "/api/v1/job-arrays",
    "/api/v1/tenants",
    "/api/v1/tokens",
    "/api/v1/datasets",
    "/api/v1/ledger/accounts",
    "/api/v1/programs",
    "/api/v1/programs/{id}/applications",
    "/api/v1/programs/{id}/claims",
    "/api/v1/market/orders",
    "/api/v1/market/auctions",
    "/api/v1/simulations",
];

/// The request body of each POST that takes one: its schema's name in `components`.
const BODIES: &[(&str, &str)] = &[
    ("/api/v1/jobs", "SubmitJob"),
    ("/api/v1/job-arrays", "SubmitJobArray"),
    ("/api/v1/tenants", "NewTenant"),
    ("/api/v1/tokens", "NewToken"),
    ("/api/v1/tenants/{id}/quotas", "QuotaChange"),
    ("/api/v1/datasets", "NewDataset"),
    ("/api/v1/ledger/accounts", "NewAccount"),
    ("/api/v1/ledger/transfers", "NewTransfer"),
    ("/api/v1/tenants/{id}/payments", "Movement"),
    ("/api/v1/pools/{name}/payouts", "Movement"),
    ("/api/v1/programs", "Program"),
    ("/api/v1/programs/{id}/applications", "NewApplication"),
    ("/api/v1/programs/{id}/claims", "NewClaim"),
    ("/api/v1/applications/{id}/decision", "Decision"),
    ("/api/v1/claims/{id}/redemptions", "NewRedemption"),
    ("/api/v1/market/orders", "Order"),
    ("/api/v1/quotes", "QuoteRequest"),
    ("/api/v1/simulations", "NewRun"),
    ("/api/v1/agent/heartbeat", "Heartbeat"),
    ("/api/v1/agent/jobs/{id}/state", "StateReport"),
    ("/api/v1/agent/jobs/{id}/logs", "LogChunk"),
    ("/api/v1/agent/jobs/{id}/log-batches", "LogBatch"),
    ("/api/v1/agent/usage", "UsageReport"),
];

/// A name: letters, digits, `.`, `_`, `-` (pools, sites, applications, programmes).
const NAME: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";

/// One line of text with no control characters (the text rule of `suanwang_api::text`).
const LINE: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

fn line(max: usize) -> Value {
    json!({"type": "string", "maxLength": max, "pattern": LINE})
}

fn int(min: i64, max: i64) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max})
}

/// A path parameter's schema.
fn path_param(path: &str, name: &str) -> Value {
    let schema = match name {
        "period" => json!({"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}),
        "tenant" => int(1, i64::MAX),
        "id" if path.starts_with("/api/v1/programs/") => json!({"type": "string", "pattern": NAME}),
        "id" => int(1, i64::MAX),
        _ => json!({"type": "string", "pattern": NAME}),
    };
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

/// The query parameters an operation takes.
fn query_params(method: &str, path: &str) -> Vec<Value> {
    let q = |name: &str, schema: Value, description: &str| json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description});
    let after = || q("after", json!({"type": "integer"}), "the previous page's next_after");
    let limit = |max: i64| {
        q(
            "limit",
            json!({"type": "integer", "minimum": 0}),
            &format!("page size (1 to {max}; others are brought into that range)"),
        )
    };
    // A filter that matches nothing answers an empty list: any one line of text is a filter.
    let filter = || json!({"type": "string", "pattern": LINE});
    match (method, path) {
        ("get", "/api/v1/jobs") => vec![
            q("state", filter(), "states, comma-separated (an unknown state is 400)"),
            q("pool", filter(), "only this pool"),
            q("tenant", filter(), "only this tenant (operators, auditors)"),
            after(),
            limit(1000),
            q("order", json!({"enum": ["asc", "desc"]}), "oldest (asc, default) or newest first"),
        ],
        ("get", "/api/v1/jobs/{id}/logs") => {
            vec![
                after(),
                limit(1000),
                q("tail", json!({"type": "integer", "minimum": 0}), "instead: the last this many chunks (1 to 1000)"),
            ]
        }
        ("get", "/api/v1/audit") => vec![after(), limit(1000)],
        ("get", "/api/v1/agent/work") => vec![
            q("wait_s", json!({"type": "integer", "minimum": 0, "maximum": 30}), "seconds to wait for new work"),
            q("after", json!({"type": "integer", "minimum": 0}), "the work version last seen"),
        ],
        ("get", "/api/v1/ledger/entries") => vec![after(), limit(10_000)],
        ("get", "/api/v1/tokens") => vec![after()],
        ("get", "/api/v1/invoices") => vec![q("tenant", json!({"type": "integer"}), "only this tenant")],
        ("get", "/api/v1/applications") | ("get", "/api/v1/claims") => {
            vec![q("program", filter(), "only this programme")]
        }
        _ => Vec::new(),
    }
}

/// The document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    let error = json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
    for (method, path, summary, roles) in OPERATIONS {
        let entry = paths.entry(*path).or_insert_with(|| json!({}));
        let mut responses = json!({
            "200": {"description": "OK"},
            "4XX": {"description": "The caller's mistake: {\"error\":{\"code\",\"message\",\"field\"}} (429 rate_limited carries Retry-After)", "content": error},
            "503": {"description": "The database or the scheduler cannot take it now; try again", "content": error}
        });
        if *method == "post" && CREATES.contains(path) {
            responses["201"] = json!({"description": "Created (durably)"});
        }
        let mut operation = json!({
            "summary": summary,
            "description": format!("Roles: {roles}."),
            "responses": responses,
        });
        if *roles != "none" {
            operation["security"] = json!([{"bearer": []}]);
        }
        let mut parameters: Vec<Value> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| path_param(path, name))
            .collect();
        parameters.extend(query_params(method, path));
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some((_, name)) = BODIES.iter().find(|(p, _)| p == path).filter(|_| *method == "post") {
            let schema = json!({"$ref": format!("#/components/schemas/{name}")});
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        if *method == "post" && *path == "/api/v1/jobs" {
            operation["responses"]["201"] = json!({"description": "Accepted (durably)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}});
        }
        if *method == "post" && *path == "/api/v1/job-arrays" {
            operation["responses"]["201"] = json!({"description": "Accepted (durably)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobArray"}}}});
        }
        entry[*method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Suanwang (算网) control plane", "version": "v1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The dashboard's sw_token cookie is accepted too; a change sent with the cookie must carry X-Suanwang-CSRF"}},
            "schemas": schemas(),
        }
    })
}

/// Lets every optional property of `schema` (and of the objects inside it) be `null`: the API
/// reads an absent field and a `null` one alike.
fn nullable_optionals(schema: &mut Value) {
    if let Some(object) = schema.as_object_mut() {
        let required: Vec<String> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
            for (name, property) in properties.iter_mut() {
                nullable_optionals(property);
                if !required.contains(name) {
                    *property = json!({"anyOf": [property.take(), {"type": "null"}]});
                }
            }
        }
        for key in ["oneOf", "anyOf", "items", "additionalProperties"] {
            match object.get_mut(key) {
                Some(Value::Array(options)) => options.iter_mut().for_each(nullable_optionals),
                Some(inner @ Value::Object(_)) => nullable_optionals(inner),
                _ => {}
            }
        }
    }
}

/// The request bodies' schemas: every string has a length limit and the text rule.
fn schemas() -> Value {
    let mut schemas = request_schemas();
    if let Some(all) = schemas.as_object_mut() {
        for (name, schema) in all.iter_mut() {
            if !matches!(name.as_str(), "Error" | "Job") {
                nullable_optionals(schema);
            }
        }
    }
    schemas
}

fn request_schemas() -> Value {
    let name = || json!({"type": "string", "pattern": NAME});
    let money = || int(0, 1_000_000_000_000_000);
    let key = || json!({"type": "string", "minLength": 1, "maxLength": 128, "pattern": LINE});
    let model = || json!({"oneOf": [line(128), {"type": "object", "additionalProperties": false, "required": ["model", "speed"], "properties": {"model": line(128), "speed": {"type": "number", "exclusiveMinimum": 0, "maximum": 100}}}]});
    let latency = || json!({"type": "object", "additionalProperties": false, "required": ["site", "max_ms"], "properties": {"site": name(), "max_ms": {"type": "number", "exclusiveMinimum": 0, "maximum": 100_000}}});
    let dataset = || {
        json!({"oneOf": [
            {"type": "string", "pattern": NAME, "description": "a registered data set's name"},
            {"type": "object", "additionalProperties": false, "required": ["site", "size_bytes"], "properties": {"name": name(), "site": name(), "size_bytes": int(0, 1 << 53)}}
        ]})
    };
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string", "description": "the body field at fault, when one is"}}}}},
        "SubmitJobArray": {
            "type": "object", "additionalProperties": false, "required": ["size", "job"],
            "properties": {"size": int(1, 1000), "job": {"$ref": "#/components/schemas/SubmitJob"}},
        },
        "JobArray": {
            "type": "object", "required": ["size", "job_ids"],
            "properties": {"size": int(1, 1000), "job_ids": {"type": "array", "maxItems": 1000, "items": int(1, i64::MAX)}},
        },
        "SubmitJob": {
            "type": "object",
            "description": "\"name\" is required unless \"template\" provides it",
            "additionalProperties": false,
            "properties": {
                "template": name(),
                "contract": {"type": "string", "pattern": "^contract:[0-9]{1,19}$", "description": "a market contract to run under: its pool, its price"},
                "params": {"type": "object", "maxProperties": 64, "description": "the application's parameters (on submission only)"},
                "name": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]*[^\\s\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069][^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]*$"},
                "command": {"type": "array", "items": {"type": "string", "maxLength": 65_536, "pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"}, "maxItems": 256, "description": "at most 64 KiB in all"},
                "env": {"type": "object", "maxProperties": 64, "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,127}$"}, "additionalProperties": {"type": "string", "maxLength": 4096, "pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"}},
                "accelerators": int(0, 16),
                "accelerator_milli": int(1, 1000),
                "accelerator_models": {"type": "array", "items": model(), "maxItems": 64},
                "framework": line(128),
                "cpu_milli": int(0, 4_294_967_295),
                "memory_mib": int(0, 4_294_967_295),
                "tasks": int(1, 65_535),
                "priority": int(-2_147_483_648, 2_147_483_647),
                "preemptible": {"type": "boolean"},
                "pool": name(),
                "estimate_s": int(0, 31_622_400),
                "duration_s": int(0, 31_622_400),
                "time_limit_s": int(1, 31_622_400),
                "dataset": dataset(),
                "residency_region": line(128),
                "latency": latency(),
                "max_price_fen_per_card_hour": int(0, 1_000_000_000),
                "green": {"type": "boolean"},
                "tenant": {"type": "string", "pattern": NAME, "description": "operators only"}
            }
        },
        "NewTenant": {"type": "object", "additionalProperties": false, "required": ["name"], "properties": {
            "name": name(),
            "kind": {"enum": ["startup", "sme", "manufacturer", "research-institute", "university", "government", "enterprise"]},
            "registration_city": line(256)
        }},
        "NewToken": {"type": "object", "additionalProperties": false, "required": ["role"], "properties": {
            "role": {"enum": ["operator", "provider", "tenant", "program-admin", "auditor"]},
            "tenant": name(), "pool": name(), "program": name(),
            "label": line(256),
            "ttl_seconds": int(1, 315_360_000)
        }},
        "QuotaChange": {"type": "object", "additionalProperties": false, "properties": {
            "requests_per_s": int(1, 100_000), "queued_jobs": int(0, 1_000_000), "open_orders": int(0, 100_000),
            "book_share_bps": int(0, 10_000), "running_simulations": int(0, 20), "datasets": int(0, 10_000)
        }},
        "NewDataset": {"type": "object", "additionalProperties": false, "required": ["name", "site", "size_bytes"], "properties": {
            "name": name(), "site": name(), "size_bytes": int(0, 1 << 53), "tenant": name()
        }},
        "NewAccount": {"type": "object", "additionalProperties": false, "required": ["id", "kind"], "properties": {
            "id": int(1, i64::MAX), "kind": line(64), "limit": line(64)
        }},
        "NewTransfer": {"type": "object", "additionalProperties": false, "required": ["id", "kind"], "properties": {
            "id": int(1, i64::MAX), "kind": {"enum": ["single", "pending", "post", "void"]},
            "debit": int(1, i64::MAX), "credit": int(1, i64::MAX), "amount_fen": money(),
            "pending_id": int(1, i64::MAX), "timeout_s": int(0, 31_622_400), "code": int(0, 65_535)
        }},
        "Movement": {"type": "object", "additionalProperties": false, "required": ["amount_fen", "key"], "properties": {"amount_fen": money(), "key": key()}},
        "Program": {"type": "object", "description": "a voucher programme's rules (examples/programs/*.toml as JSON)", "required": ["id", "name", "issuer", "fiscal_year", "budget_fen", "subsidy"]},
        "NewApplication": {"type": "object", "additionalProperties": false, "properties": {"affiliations": {"type": "array", "maxItems": 100, "items": line(200)}}},
        "NewClaim": {"type": "object", "additionalProperties": false, "required": ["contract", "amount_fen"], "properties": {"contract": line(128), "amount_fen": money()}},
        "Decision": {"type": "object", "additionalProperties": false, "required": ["approve"], "properties": {"approve": {"type": "boolean"}, "reason": {"type": "string", "maxLength": 1000, "pattern": LINE}}},
        "NewRedemption": {"type": "object", "additionalProperties": false, "required": ["period", "job"], "properties": {
            "period": {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}, "job": int(1, i64::MAX), "pool": name()
        }},
        "Order": {"type": "object", "additionalProperties": false, "required": ["side", "start_s", "end_s", "cards", "limit_fen_per_card_hour"], "properties": {
            "side": {"enum": ["buy", "sell"]}, "model": line(128), "region": line(64),
            "start_s": int(0, 1 << 40), "end_s": int(0, 1 << 40), "cards": int(1, 1_000_000),
            "limit_fen_per_card_hour": int(1, 1_000_000_000), "all_or_none": {"type": "boolean"}, "standing": {"type": "boolean"}
        }},
        "QuoteRequest": {"type": "object", "additionalProperties": false, "required": ["accelerators", "duration_s"], "properties": {
            "accelerators": int(0, 16), "accelerator_milli": int(1, 1000), "tasks": int(1, 65_535), "duration_s": int(1, 31_622_400),
            "model": line(128), "accelerator_models": {"type": "array", "items": model(), "maxItems": 64}, "framework": line(128),
            "cpu_milli": int(0, 4_294_967_295), "memory_mib": int(0, 4_294_967_295), "residency_region": line(128),
            "latency": latency(), "dataset": dataset(), "max_price_fen_per_card_hour": int(0, 1_000_000_000), "pool": name()
        }},
        "NewRun": {"type": "object", "additionalProperties": false, "properties": {
            "federation": line(128), "trace": {"type": "string", "maxLength": 8_388_608}, "trace_file": line(1024),
            "trace_format": {"enum": ["philly", "openb", "swf", "jsonl"]}, "policy": line(64)
        }},
        "Heartbeat": {"type": "object", "additionalProperties": false, "required": ["healthy", "running"], "properties": {
            "healthy": {"type": "boolean"}, "running": {"type": "array", "maxItems": 4096, "items": int(1, i64::MAX)},
            "running_unknown": {"type": "boolean"},
            "capacity": {"type": "object", "additionalProperties": false, "required": ["nodes", "nodes_usable", "cpus", "memory_mb", "gpus", "gpus_usable"], "properties": {
                "nodes": int(0, 1 << 32), "nodes_usable": int(0, 1 << 32), "cpus": int(0, 1 << 40), "memory_mb": int(0, 1 << 50), "gpus": int(0, 1 << 32), "gpus_usable": int(0, 1 << 32)
            }},
            "problem": line(1024)
        }},
        "StateReport": {"type": "object", "additionalProperties": false, "required": ["state", "detail"], "properties": {
            "state": {"enum": ["pending", "running", "succeeded", "failed"]}, "detail": {"type": "string", "maxLength": 1024, "pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"},
            "at_ms": int(0, 1 << 50), "started_ms": int(0, 1 << 50)
        }},
        "LogChunk": {"type": "object", "additionalProperties": false, "required": ["seq", "chunk"], "properties": {"seq": int(1, i64::MAX), "chunk": {"type": "string", "maxLength": 65_536}}},
        "LogBatch": {"type": "object", "additionalProperties": false, "required": ["chunks"], "properties": {"chunks": {"type": "array", "maxItems": 1024, "items": {"$ref": "#/components/schemas/LogChunk"}}}},
        "UsageReport": {"type": "object", "additionalProperties": false, "required": ["event_id", "job_id", "accelerator_ms"], "properties": {
            "event_id": key(), "job_id": int(1, i64::MAX), "accelerator_ms": int(0, i64::MAX)
        }},
        "Job": {
            "type": "object",
            "required": ["id", "state"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "tenant_id": {"type": "integer"},
                "state": {"enum": ["queued", "placed", "running", "succeeded", "failed", "cancelled", "preempted"]},
                "pool": {"type": ["string", "null"]},
                "explanation": {"type": ["string", "null"]},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "request": {"$ref": "#/components/schemas/SubmitJob"}
            }
        }
    })
}
