-- Issue 15: limits for hostile tenants, and an audit record that covers everything.
-- A job's stored log is capped (LOG_BYTES_MAX in store.rs): the bytes kept so far.
ALTER TABLE jobs ADD COLUMN log_bytes BIGINT NOT NULL DEFAULT 0;
-- Quota checks count a tenant's jobs by state.
CREATE INDEX jobs_by_tenant_state ON jobs (tenant_id, state);
-- A tenant's quotas where an operator changed them (JSON; no row: the defaults).
CREATE TABLE tenant_quotas (
    tenant_id BIGINT PRIMARY KEY,
    quotas TEXT NOT NULL
);
-- `audit verify` cross-checks each token, tenant and job against its newest audit entry.
CREATE INDEX audit_by_subject ON audit (subject, seq);
