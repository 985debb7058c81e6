-- HSM keys the daemon uses besides the CA and OCSP keys, one per role (e.g. `eab-master`).
CREATE TABLE hsm_secrets (
    role        TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL,      -- CKA_ID, hex
    created_at  BIGINT NOT NULL
);

-- ACME external account bindings: single use, each bound to one agent. The HMAC key is derived
-- in the HSM from the `eab-master` key and the key id, so it is stored nowhere.
CREATE TABLE acme_eab (
    key_id      TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES agents(id),
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,             -- set when an ACME account is created with it
    account_id  TEXT
);
CREATE INDEX acme_eab_agent ON acme_eab(agent_id, created_at);
