-- Usage in the order it was recorded, for the biller to rate it (keyset pages by time, source, id).
CREATE INDEX usage_by_time ON usage_events (at_ms, source, event_id);
