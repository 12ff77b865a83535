-- Suanwang store, version 1 (SQLite). Forward-only: later versions add files, never edit this one.
CREATE TABLE tenants (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    registration_city TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    tenant_id BIGINT,
    pool TEXT,
    label TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    pool TEXT,
    explanation TEXT,
    idempotency_key TEXT,
    request_digest TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_tenant ON jobs (tenant_id, id);
CREATE TABLE job_events (
    id INTEGER PRIMARY KEY,
    job_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX job_events_by_job ON job_events (job_id, id);
CREATE TABLE job_logs (
    job_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    chunk TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE usage_events (
    source TEXT NOT NULL,
    event_id TEXT NOT NULL,
    job_id BIGINT NOT NULL,
    pool TEXT NOT NULL,
    accelerator_ms BIGINT NOT NULL,
    digest TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (source, event_id)
);
CREATE TABLE pool_status (
    name TEXT PRIMARY KEY,
    healthy BIGINT NOT NULL,
    drained BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before_digest TEXT NOT NULL,
    after_digest TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
