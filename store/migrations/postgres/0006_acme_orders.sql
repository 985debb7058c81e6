-- ACME orders. Their one authorization is valid from the start (the external account binding
-- is the proof of control), so it is not stored apart: /acme/authz/{order id} shows it.
CREATE TABLE acme_orders (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES acme_accounts(id),
    agent_id     TEXT NOT NULL REFERENCES agents(id),
    identifier   TEXT NOT NULL,     -- the agent's DNS name
    status       TEXT NOT NULL CHECK (status IN ('ready', 'processing', 'valid', 'invalid')),
    expires_at   BIGINT NOT NULL,
    cert_serial  TEXT REFERENCES certificates(serial),
    created_at   BIGINT NOT NULL
);
CREATE INDEX acme_orders_account ON acme_orders(account_id, created_at);
CREATE INDEX acme_orders_serial ON acme_orders(cert_serial);
