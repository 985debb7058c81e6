-- Agent keys generated inside the HSM (certify without a CSR): the key never leaves the HSM;
-- the agent refers to it by its id.
CREATE TABLE agent_keys (
    key_id      TEXT PRIMARY KEY,       -- CKA_ID, hex
    agent_id    TEXT NOT NULL REFERENCES agents(id),
    key_kind    TEXT NOT NULL,
    label       TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX agent_keys_agent ON agent_keys(agent_id, created_at);
