-- Data sets a tenant registered: where they are and how big, for placement to count their transfer.
CREATE TABLE datasets (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    site TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (tenant_id, name)
);
