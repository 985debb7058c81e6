-- The first of two approvals an organization with `approvals_required = 2` asks for, on a
-- baseline, the lifting of a suspension or the resolution of an incident (mandate versions keep
-- theirs in `approvals`). One row per person: the same person approving again is a conflict.
CREATE TABLE pending_approvals (
    kind        TEXT NOT NULL CHECK (kind IN ('baseline', 'reinstatement', 'incident')),
    ref         TEXT NOT NULL,        -- agent:version | agent:suspension time | incident id
    person_id   TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    comment     TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, ref, person_id)
);
