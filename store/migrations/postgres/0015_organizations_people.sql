-- Organizations and people: every API key acts for one person (or one agent), every person
-- belongs to one organization (CA staff to none). An existing database is upgraded in place:
-- each organization named by an agent becomes an organization, each key a person named by its
-- label, in the organization of the agents it acted on (admin keys: CA staff).

CREATE TABLE organizations (
    id                  TEXT PRIMARY KEY,       -- a DNS label; agents are named under it
    legal_name          TEXT NOT NULL,          -- what a mandate's operator (the certificate's O) must say
    legal_entities      TEXT NOT NULL DEFAULT '[]', -- JSON array: further legal names it may use
    regulator_id        TEXT,                   -- e.g. ESMA-001234
    approvals_required  BIGINT NOT NULL DEFAULT 1 CHECK (approvals_required IN (1, 2)),
    created_by          TEXT,
    created_at          BIGINT NOT NULL
);

CREATE TABLE people (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT,
    organization  TEXT REFERENCES organizations(id),  -- NULL: CA staff
    roles         TEXT NOT NULL,                       -- comma-separated, e.g. operator,compliance
    created_by    TEXT,
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);
CREATE INDEX people_organization ON people(organization);

ALTER TABLE api_keys ADD COLUMN person_id TEXT REFERENCES people(id);
CREATE INDEX api_keys_person ON api_keys(person_id);

-- Who decided, as a person (four-eyes is between people, not keys); one decision per person
-- and version.
ALTER TABLE approvals ADD COLUMN person_id TEXT;
CREATE UNIQUE INDEX approvals_one_per_person ON approvals(agent_id, mandate_version, person_id);

-- Upgrade: organizations of the agents there are, with the operators their mandates named.
INSERT INTO organizations (id, legal_name, legal_entities, created_by, created_at)
SELECT a.organization,
       COALESCE((SELECT (m.mandate::jsonb ->> 'operator')
                   FROM mandates m JOIN agents b ON b.id = m.agent_id
                  WHERE b.organization = a.organization
                  ORDER BY m.created_at DESC, m.version DESC LIMIT 1), a.organization),
       COALESCE((SELECT json_agg(DISTINCT (m.mandate::jsonb ->> 'operator'))
                   FROM mandates m JOIN agents b ON b.id = m.agent_id
                  WHERE b.organization = a.organization
                    AND (m.mandate::jsonb ->> 'operator') IS NOT NULL)::text, '[]'),
       'system:upgrade',
       MIN(a.created_at)
  FROM agents a
 GROUP BY a.organization;

-- Each key of a person's role becomes a person named by its label, in the organization of
-- the agents it registered, submitted mandates for or decided on (the most often). Admin and
-- auditor keys were CA-wide: they become CA staff.
WITH acts (key_id, org) AS (
    SELECT created_by, organization FROM agents
    UNION ALL
    SELECT m.created_by, a.organization FROM mandates m JOIN agents a ON a.id = m.agent_id
    UNION ALL
    SELECT m.decided_by, a.organization FROM mandates m JOIN agents a ON a.id = m.agent_id
     WHERE m.decided_by IS NOT NULL
    UNION ALL
    SELECT p.decided_by, a.organization FROM approvals p JOIN agents a ON a.id = p.agent_id
), ranked (key_id, org, n) AS (
    SELECT key_id, org, COUNT(*) FROM acts GROUP BY key_id, org
)
INSERT INTO people (id, name, organization, roles, created_by, created_at, disabled_at)
SELECT 'key-' || k.id,
       k.label,
       CASE WHEN k.role IN ('admin', 'auditor') THEN NULL ELSE
           (SELECT r.org FROM ranked r WHERE r.key_id = k.id ORDER BY r.n DESC, r.org LIMIT 1)
       END,
       k.role,
       'system:upgrade',
       k.created_at,
       k.revoked_at
  FROM api_keys k
 WHERE k.role <> 'agent';

-- An operator or compliance key that never acted on an agent: with one organization it is
-- that one's; otherwise it goes to `unassigned`, which has no agents (so it sees nothing)
-- until an admin gives its holder a key in the right organization.
UPDATE people SET organization = (SELECT MIN(id) FROM organizations)
 WHERE organization IS NULL AND roles IN ('operator', 'compliance')
   AND (SELECT COUNT(*) FROM organizations) = 1;
INSERT INTO organizations (id, legal_name, created_by, created_at)
SELECT 'unassigned', 'Unassigned (database upgrade)', 'system:upgrade',
       (SELECT MIN(created_at) FROM people)
 WHERE EXISTS (SELECT 1 FROM people
                WHERE organization IS NULL AND roles IN ('operator', 'compliance'));
UPDATE people SET organization = 'unassigned'
 WHERE organization IS NULL AND roles IN ('operator', 'compliance');

UPDATE api_keys SET person_id = 'key-' || id WHERE role <> 'agent';
UPDATE approvals SET person_id = (SELECT k.person_id FROM api_keys k WHERE k.id = approvals.decided_by);

-- A revoked key or a disabled person: every node reads its cached keys again.
CREATE TRIGGER api_keys_notify AFTER UPDATE OF revoked_at ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION mandate_notify('keys');
CREATE TRIGGER people_notify AFTER UPDATE OF disabled_at ON people
    FOR EACH STATEMENT EXECUTE FUNCTION mandate_notify('keys');
