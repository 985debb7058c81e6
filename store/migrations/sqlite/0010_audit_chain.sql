-- Issue 6: the audit log becomes a hash chain. Every record carries the SHA-256 of its canonical
-- encoding and of the previous record (see store/src/audit.rs), and the risk score where there
-- is one. Records written before this migration are sealed into the chain once, by the store at
-- its next start; after that, the triggers refuse every UPDATE and DELETE, and any INSERT
-- without a hash.

ALTER TABLE audit_events ADD COLUMN risk_score DOUBLE PRECISION;
ALTER TABLE audit_events ADD COLUMN prev_hash BLOB;
ALTER TABLE audit_events ADD COLUMN hash BLOB;

-- The last record that existed unsealed: only those may be sealed (once).
CREATE TABLE audit_legacy (max_seq BIGINT NOT NULL);
INSERT INTO audit_legacy (max_seq) SELECT COALESCE(MAX(seq), 0) FROM audit_events;
CREATE TRIGGER audit_legacy_no_update BEFORE UPDATE ON audit_legacy
BEGIN
    SELECT RAISE(ABORT, 'audit_legacy is write-once');
END;
CREATE TRIGGER audit_legacy_no_delete BEFORE DELETE ON audit_legacy
BEGIN
    SELECT RAISE(ABORT, 'audit_legacy is write-once');
END;

DROP TRIGGER audit_events_no_update;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN OLD.hash IS NOT NULL
  OR OLD.seq > (SELECT max_seq FROM audit_legacy)
  OR NEW.seq IS NOT OLD.seq OR NEW.at_ms IS NOT OLD.at_ms OR NEW.actor IS NOT OLD.actor
  OR NEW.action IS NOT OLD.action OR NEW.subject IS NOT OLD.subject
  OR NEW.cert_fingerprint IS NOT OLD.cert_fingerprint OR NEW.details IS NOT OLD.details
  OR NEW.risk_score IS NOT OLD.risk_score
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_sealed_insert BEFORE INSERT ON audit_events
WHEN NEW.hash IS NULL OR NEW.prev_hash IS NULL
BEGIN
    SELECT RAISE(ABORT, 'audit records are inserted with their hash chain');
END;
