-- mandate store, version 1. Written in the SQL that SQLite and PostgreSQL share (BIGINT times in
-- unix seconds, TEXT, BLOB <-> BYTEA in the PostgreSQL copy) so the second backend is a copy of
-- this file, not a rewrite.

CREATE TABLE ca_keys (
    id          TEXT PRIMARY KEY,           -- CKA_ID in hex: how the HSM finds the key
    label       TEXT NOT NULL,              -- CKA_LABEL
    kind        TEXT NOT NULL,              -- rsa-2048 | ... | ec-p384
    role        TEXT NOT NULL CHECK (role IN ('root', 'intermediate')),
    spki        BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE ca_certificates (
    id          INTEGER PRIMARY KEY,
    key_id      TEXT NOT NULL REFERENCES ca_keys(id),
    role        TEXT NOT NULL CHECK (role IN ('root', 'intermediate')),
    subject     TEXT NOT NULL,
    serial      TEXT NOT NULL,
    der         BLOB NOT NULL,
    sha256      TEXT NOT NULL UNIQUE,
    ski         BLOB NOT NULL,
    not_before  BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    active      BOOLEAN NOT NULL,           -- the root and intermediate new issuance uses
    created_at  BIGINT NOT NULL
);

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    organization  TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending_approval', 'active', 'suspended')),
    created_by    TEXT NOT NULL,            -- API key id of the registrant
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX agents_organization ON agents(organization);

-- A mandate is never edited: a change is a new version.
CREATE TABLE mandates (
    agent_id     TEXT NOT NULL REFERENCES agents(id),
    version      BIGINT NOT NULL,
    mandate      TEXT NOT NULL,             -- canonical JSON
    status       TEXT NOT NULL CHECK (status IN ('pending_approval', 'approved', 'rejected', 'superseded', 'withdrawn')),
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    decided_by   TEXT,
    decided_at   BIGINT,
    PRIMARY KEY (agent_id, version)
);

CREATE TABLE approvals (
    id               INTEGER PRIMARY KEY,
    agent_id         TEXT NOT NULL,
    mandate_version  BIGINT NOT NULL,
    decision         TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
    decided_by       TEXT NOT NULL,
    comment          TEXT,
    created_at       BIGINT NOT NULL,
    FOREIGN KEY (agent_id, mandate_version) REFERENCES mandates(agent_id, version)
);

-- A row exists (status 'reserved', with the exact to-be-signed bytes) before the HSM signs, so a
-- crash after signing never leaves a certificate that cannot be found and revoked.
CREATE TABLE certificates (
    serial             TEXT PRIMARY KEY,    -- lowercase hex of the DER INTEGER content
    agent_id           TEXT NOT NULL REFERENCES agents(id),
    mandate_version    BIGINT NOT NULL,
    issuer_id          INTEGER NOT NULL REFERENCES ca_certificates(id),
    status             TEXT NOT NULL CHECK (status IN ('reserved', 'issued', 'revoked')),
    tbs                BLOB NOT NULL,
    der                BLOB,
    sha256             TEXT,
    not_before         BIGINT NOT NULL,
    not_after          BIGINT NOT NULL,
    requested_by       TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    issued_at          BIGINT,
    revoked_at         BIGINT,
    revocation_reason  INTEGER,
    FOREIGN KEY (agent_id, mandate_version) REFERENCES mandates(agent_id, version)
);
CREATE INDEX certificates_agent ON certificates(agent_id, created_at);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,          -- public part of the key, used to look it up
    secret_hash  BLOB NOT NULL,             -- SHA-256 of the secret part; the secret is never stored
    role         TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'compliance', 'auditor', 'agent')),
    agent_id     TEXT REFERENCES agents(id),
    label        TEXT NOT NULL,
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    CHECK ((role = 'agent') = (agent_id IS NOT NULL))
);

-- Append-only: every state change writes here in its own transaction. Hash chaining and signed
-- checkpoints come later; refusing UPDATE and DELETE starts now.
CREATE TABLE audit_events (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms             BIGINT NOT NULL,
    actor             TEXT NOT NULL,
    action            TEXT NOT NULL,
    subject           TEXT NOT NULL,
    cert_fingerprint  TEXT,
    details           TEXT NOT NULL         -- JSON object
);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
