-- Tokens may expire: a token past expires_ms is refused with token_expired (NULL: never).
ALTER TABLE tokens ADD COLUMN expires_ms BIGINT;
