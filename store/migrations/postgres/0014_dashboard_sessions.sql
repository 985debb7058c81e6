-- Issue 8: browser sessions of the dashboard. The cookie holds a random token; only its SHA-256
-- is stored, so a copy of the database signs nobody in. A session acts with the rights of the
-- API key it was opened with, checked again on every request (a revoked key ends it).
CREATE TABLE dashboard_sessions (
    token_hash   BYTEA PRIMARY KEY,
    key_id       TEXT NOT NULL REFERENCES api_keys(id),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions(expires_at);
