-- Each audit record names the organization it concerns and the person who acted (when a
-- person did), so an organization's auditor reads its own records and reports name people.
-- Both are covered by the record's hash from here on (see `record_hash`); records written
-- before carry neither, and their hashes are unchanged.
ALTER TABLE audit_events ADD COLUMN organization TEXT;
ALTER TABLE audit_events ADD COLUMN person TEXT;
CREATE INDEX audit_events_organization ON audit_events(organization, seq);
