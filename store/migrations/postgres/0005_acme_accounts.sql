-- ACME accounts: one per account key, each made with one external account binding and so
-- bound to one agent.
CREATE TABLE acme_accounts (
    id          TEXT PRIMARY KEY,           -- last segment of the account URL
    thumbprint  TEXT NOT NULL UNIQUE,       -- RFC 7638 thumbprint of the account key
    jwk         TEXT NOT NULL,              -- the public key, JSON (required members only)
    agent_id    TEXT NOT NULL REFERENCES agents(id),
    eab_key_id  TEXT NOT NULL REFERENCES acme_eab(key_id),
    status      TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    contact     TEXT NOT NULL,              -- JSON array of URLs
    created_at  BIGINT NOT NULL
);
