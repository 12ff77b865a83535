-- A job's stored log is capped (LOG_BYTES_MAX in store.rs): the bytes kept so far.
ALTER TABLE jobs ADD COLUMN log_bytes BIGINT NOT NULL DEFAULT 0;
