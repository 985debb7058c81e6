-- Mandate breaches and retired certificates (issue 18).
--
-- incidents: a third kind, `mandate_breach` (a reported event outside the approved mandate),
-- with its reasons (JSON: [{code, limit, requested}]); `revokes` marks the incidents whose
-- kind of response is the kill switch (every auto_revocation, and breaches of mandates with
-- onBreach = revoke), which the scoring loop finishes after a crash and which must be resolved
-- before the agent is reinstated. SQLite cannot change a CHECK constraint: the table is rebuilt
-- (nothing references it).
CREATE TABLE incidents_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id          TEXT NOT NULL REFERENCES agents(id),
    kind              TEXT NOT NULL CHECK (kind IN ('risk_warning', 'auto_revocation', 'mandate_breach')),
    status            TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    score             DOUBLE PRECISION NOT NULL,
    threshold         DOUBLE PRECISION NOT NULL,
    contributions     TEXT NOT NULL,        -- JSON
    event_id          BIGINT,
    kill_switch_id    BIGINT,               -- set by the revoking transaction
    created_at_ms     BIGINT NOT NULL,
    acknowledged_by   TEXT,
    acknowledged_at   BIGINT,
    resolved_by       TEXT,
    resolved_at       BIGINT,
    resolution        TEXT,
    reasons           TEXT,                 -- JSON, mandate_breach only
    revokes           BOOLEAN NOT NULL DEFAULT FALSE
);
INSERT INTO incidents_new (id, agent_id, kind, status, score, threshold, contributions, event_id,
    kill_switch_id, created_at_ms, acknowledged_by, acknowledged_at, resolved_by, resolved_at,
    resolution, reasons, revokes)
SELECT id, agent_id, kind, status, score, threshold, contributions, event_id, kill_switch_id,
    created_at_ms, acknowledged_by, acknowledged_at, resolved_by, resolved_at, resolution, NULL,
    kind = 'auto_revocation'
FROM incidents;
DROP TABLE incidents;
ALTER TABLE incidents_new RENAME TO incidents;
CREATE INDEX incidents_agent ON incidents(agent_id, status);
CREATE INDEX incidents_status ON incidents(status, id);

-- certificates: when a certificate of an older mandate version stops being valid. Set when a
-- new version is approved: now for a version that narrows (the certificate is revoked
-- `superseded` in the approving transaction), now + ca.supersede_grace_secs for one that only
-- widens (ARI says "renew now" meanwhile; the retirement task revokes it when due).
ALTER TABLE certificates ADD COLUMN retire_at BIGINT;
CREATE INDEX certificates_retire_at ON certificates(retire_at) WHERE retire_at IS NOT NULL AND status = 'issued';
