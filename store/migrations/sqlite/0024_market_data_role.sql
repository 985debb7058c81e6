-- A market-data role (issue 19): an organization's price feed posts reference prices and may do
-- nothing else. SQLite cannot alter the CHECK on api_keys.role: the table is rebuilt.
-- dashboard_sessions refers to api_keys; its references are checked at commit
-- (defer_foreign_keys), when every key is back under its id.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE api_keys_old AS SELECT * FROM api_keys;
DROP TABLE api_keys;
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,          -- public part of the key, used to look it up
    secret_hash  BLOB NOT NULL,             -- SHA-256 of the secret part; the secret is never stored
    role         TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'compliance', 'auditor', 'agent',
                                               'market-data')),
    agent_id     TEXT REFERENCES agents(id),
    label        TEXT NOT NULL,
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    person_id    TEXT REFERENCES people(id),
    CHECK ((role = 'agent') = (agent_id IS NOT NULL))
);
INSERT INTO api_keys (id, secret_hash, role, agent_id, label, created_by, created_at, revoked_at,
                      person_id)
SELECT id, secret_hash, role, agent_id, label, created_by, created_at, revoked_at, person_id
  FROM api_keys_old;
DROP TABLE api_keys_old;
CREATE INDEX api_keys_person ON api_keys(person_id);
