-- Controlled overrides of a limit (issue 19, RTS 6 Art. 15(6)): one version-2 limit of one
-- agent takes another value from starts_at until expires_at (or until ended early), granted
-- by compliance people (four eyes per the organization's rule).
CREATE TABLE limit_overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    limit_name TEXT NOT NULL,
    market TEXT,
    value_json TEXT NOT NULL,
    reason TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT,
    ended_by TEXT
);
CREATE INDEX limit_overrides_agent ON limit_overrides(agent_id, expires_at);

-- A limit override is granted by two people where the organization asks for four eyes: the
-- first request waits in pending_approvals, whose CHECK on kind grows (SQLite cannot alter a
-- CHECK: the table is rebuilt).
CREATE TABLE pending_approvals_new (
    kind        TEXT NOT NULL CHECK (kind IN ('baseline', 'reinstatement', 'incident', 'override')),
    ref         TEXT NOT NULL,        -- agent:version | agent:suspension time | incident id | override request
    person_id   TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    comment     TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, ref, person_id)
);
INSERT INTO pending_approvals_new SELECT kind, ref, person_id, key_id, comment, created_at
    FROM pending_approvals;
DROP TABLE pending_approvals;
ALTER TABLE pending_approvals_new RENAME TO pending_approvals;
