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
    ("get", "/api/v1/agent/work", "Jobs to start and stop", "provider (pool token)"),
    ("post", "/api/v1/agent/jobs/{id}/state", "A job started, succeeded or failed", "provider (pool token)"),
    ("post", "/api/v1/agent/jobs/{id}/logs", "A piece of a job's output (idempotent by seq)", "provider (pool token)"),
    ("post", "/api/v1/agent/usage", "Accelerator usage (idempotent by event_id)", "provider (pool token)"),
];

/// The document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, roles) in OPERATIONS {
        let entry = paths.entry(*path).or_insert_with(|| json!({}));
        let mut operation = json!({
            "summary": summary,
            "description": format!("Roles: {roles}."),
            "responses": {
                "200": {"description": "OK"},
                "4XX": {"description": "The caller's mistake", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if *roles != "none" {
            operation["security"] = json!([{"bearer": []}]);
        }
        if path.contains("{id}") {
            operation["parameters"] =
                json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]);
        } else if path.contains("{name}") {
            operation["parameters"] =
                json!([{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        if *method == "post" && *path == "/api/v1/jobs" {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubmitJob"}}}});
            operation["responses"]["201"] = json!({"description": "Accepted (durably)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}});
        }
        entry[*method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Suanwang (算网) control plane", "version": "v1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The dashboard's sw_token cookie is accepted too; a change sent with the cookie must carry X-Suanwang-CSRF"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string", "description": "the body field at fault, when one is"}}}}},
                "SubmitJob": {
                    "type": "object",
                    "description": "\"name\" is required unless \"template\" provides it",
                    "additionalProperties": false,
                    "properties": {
                        "template": {"type": "string", "description": "an application's name (GET /api/v1/apps); its job fields come first, this body's fields override them"},
                        "contract": {"type": "string", "description": "a market contract (contract:ID) to run under: its pool, its price"},
                        "params": {"type": "object", "description": "the application's parameters (on submission only)"},
                        "name": {"type": "string", "maxLength": 128},
                        "command": {"type": "array", "items": {"type": "string"}, "maxItems": 256},
                        "accelerators": {"type": "integer", "minimum": 0, "maximum": 16},
                        "accelerator_milli": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1000},
                        "accelerator_models": {"type": "array", "items": {"type": "string"}},
                        "cpu_milli": {"type": "integer", "minimum": 0},
                        "memory_mib": {"type": "integer", "minimum": 0},
                        "tasks": {"type": "integer", "minimum": 1, "default": 1},
                        "priority": {"type": "integer"},
                        "preemptible": {"type": "boolean"},
                        "pool": {"type": "string", "description": "pin the job to one pool"},
                        "estimate_s": {"type": "integer"},
                        "duration_s": {"type": "integer", "description": "how long a simulated pool runs it"},
                        "dataset": {"oneOf": [
                            {"type": "string", "description": "a registered data set's name"},
                            {"type": "object", "properties": {"name": {"type": "string"}, "site": {"type": "string"}, "size_bytes": {"type": "integer"}}, "required": ["site", "size_bytes"]}
                        ]},
                        "residency_region": {"type": "string"},
                        "latency": {"type": "object", "properties": {"site": {"type": "string"}, "max_ms": {"type": "number"}}},
                        "max_price_fen_per_card_hour": {"type": "integer"},
                        "green": {"type": "boolean"},
                        "tenant": {"type": "string", "description": "operators only"}
                    }
                },
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
            }
        }
    })
}
