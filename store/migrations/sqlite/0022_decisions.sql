-- Pre-trade decisions (issue 19): every preflight answer and every signed order is named by a
-- decision id, which orders, signed payloads and events refer to; the audit links
-- order -> decision -> fill, and the compliance report lists each order with its decision.
CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    via TEXT NOT NULL,
    allowed BOOLEAN NOT NULL,
    hypothetical BOOLEAN NOT NULL,
    order_json TEXT NOT NULL,
    reasons TEXT NOT NULL,
    decided_by TEXT NOT NULL
);
CREATE INDEX decisions_agent_at ON decisions(agent_id, at_ms);
CREATE INDEX events_decision ON events(decision_id) WHERE decision_id IS NOT NULL;
