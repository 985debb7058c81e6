-- Issue 5: what agents report, the counters the pre-trade check reads, behavioural baselines,
-- incidents, and the webhook outbox.

-- What agents report they did. Scored once the agent has an approved baseline.
CREATE TABLE events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id         TEXT NOT NULL REFERENCES agents(id),
    action_type      TEXT NOT NULL,
    market           TEXT,
    size             TEXT,                  -- decimal text
    currency         TEXT,
    side             TEXT,
    counterparty     TEXT,
    region           TEXT,
    at               BIGINT NOT NULL,       -- when it happened, as the agent says (unix s)
    success          BOOLEAN NOT NULL,
    reported_by      TEXT NOT NULL,         -- API key id
    received_at_ms   BIGINT NOT NULL,
    score            DOUBLE PRECISION,      -- anomaly score, 0..1, NULL before a baseline
    contributions    TEXT,                  -- JSON: every feature's part in the score
    baseline_version BIGINT
);
CREATE INDEX events_agent_at ON events(agent_id, at);

-- One row per agent: what the pre-trade check needs without summing events, and the current
-- risk score (the highest recent event score, decaying with time).
CREATE TABLE agent_counters (
    agent_id              TEXT PRIMARY KEY REFERENCES agents(id),
    events                BIGINT NOT NULL,
    first_event_at        BIGINT NOT NULL,
    last_event_at         BIGINT NOT NULL,
    consecutive_failures  BIGINT NOT NULL,
    day_start             BIGINT NOT NULL,  -- trading day the volume is for (unix s)
    day_volume            TEXT NOT NULL,    -- decimal text, in the daily cap's currency
    risk_score            DOUBLE PRECISION,
    risk_contributions    TEXT,
    risk_event_id         BIGINT,
    risk_at_ms            BIGINT
);

-- Learnt baselines, versioned; only an approved one is scored against.
CREATE TABLE baselines (
    agent_id     TEXT NOT NULL REFERENCES agents(id),
    version      BIGINT NOT NULL,
    baseline     TEXT NOT NULL,             -- JSON
    status       TEXT NOT NULL CHECK (status IN ('pending_approval', 'approved', 'superseded', 'rejected')),
    learnt_by    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    decided_by   TEXT,
    decided_at   BIGINT,
    PRIMARY KEY (agent_id, version)
);

CREATE TABLE incidents (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id          TEXT NOT NULL REFERENCES agents(id),
    kind              TEXT NOT NULL CHECK (kind IN ('risk_warning', 'auto_revocation')),
    status            TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    score             DOUBLE PRECISION NOT NULL,
    threshold         DOUBLE PRECISION NOT NULL,
    contributions     TEXT NOT NULL,        -- JSON
    event_id          BIGINT,
    kill_switch_id    BIGINT,               -- auto_revocation: set by the revoking transaction
    created_at_ms     BIGINT NOT NULL,
    acknowledged_by   TEXT,
    acknowledged_at   BIGINT,
    resolved_by       TEXT,
    resolved_at       BIGINT,
    resolution        TEXT
);
CREATE INDEX incidents_agent ON incidents(agent_id, status);
CREATE INDEX incidents_status ON incidents(status, id);

CREATE TABLE webhooks (
    id           TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    events       TEXT NOT NULL,             -- JSON array of event types, or ["*"]
    operator     TEXT,                      -- only events of this operator's agents, if set
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    disabled_at  BIGINT
);

-- The outbox: written in the transaction of the change it reports.
CREATE TABLE webhook_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    type           TEXT NOT NULL,
    operator       TEXT,
    data           TEXT NOT NULL,           -- JSON
    created_at_ms  BIGINT NOT NULL,
    fanned_out     BOOLEAN NOT NULL
);
CREATE INDEX webhook_events_pending ON webhook_events(fanned_out, id);

CREATE TABLE webhook_deliveries (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id          TEXT NOT NULL REFERENCES webhooks(id),
    event_id            BIGINT NOT NULL REFERENCES webhook_events(id),
    status              TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts            BIGINT NOT NULL,
    next_attempt_at_ms  BIGINT NOT NULL,
    last_attempt_at_ms  BIGINT,
    last_status_code    BIGINT,
    last_error          TEXT,
    delivered_at_ms     BIGINT,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at_ms);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);
