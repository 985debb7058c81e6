-- Issue 6: the audit log becomes a hash chain. Every record carries the SHA-256 of its canonical
-- encoding and of the previous record (see store/src/audit.rs), and the risk score where there
-- is one. Records written before this migration are sealed into the chain once, by the store at
-- its next start; after that, the triggers refuse every UPDATE and DELETE, and any INSERT
-- without a hash.

ALTER TABLE audit_events ADD COLUMN risk_score DOUBLE PRECISION;
ALTER TABLE audit_events ADD COLUMN prev_hash BYTEA;
ALTER TABLE audit_events ADD COLUMN hash BYTEA;

-- The last record that existed unsealed: only those may be sealed (once).
CREATE TABLE audit_legacy (max_seq BIGINT NOT NULL);
INSERT INTO audit_legacy (max_seq) SELECT COALESCE(MAX(seq), 0) FROM audit_events;
CREATE TRIGGER audit_legacy_no_update BEFORE UPDATE ON audit_legacy
    FOR EACH ROW EXECUTE FUNCTION mandate_refuse('audit_legacy is write-once');
CREATE TRIGGER audit_legacy_no_delete BEFORE DELETE ON audit_legacy
    FOR EACH ROW EXECUTE FUNCTION mandate_refuse('audit_legacy is write-once');

-- Only sealing an unsealed legacy record (setting its hashes) is allowed.
DROP TRIGGER audit_events_no_update ON audit_events;
CREATE FUNCTION audit_events_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.hash IS NOT NULL
       OR OLD.seq > (SELECT max_seq FROM audit_legacy)
       OR NEW.seq IS DISTINCT FROM OLD.seq OR NEW.at_ms IS DISTINCT FROM OLD.at_ms
       OR NEW.actor IS DISTINCT FROM OLD.actor OR NEW.action IS DISTINCT FROM OLD.action
       OR NEW.subject IS DISTINCT FROM OLD.subject
       OR NEW.cert_fingerprint IS DISTINCT FROM OLD.cert_fingerprint
       OR NEW.details IS DISTINCT FROM OLD.details
       OR NEW.risk_score IS DISTINCT FROM OLD.risk_score THEN
        RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_guard_update();
CREATE TRIGGER audit_events_sealed_insert BEFORE INSERT ON audit_events
    FOR EACH ROW WHEN (NEW.hash IS NULL OR NEW.prev_hash IS NULL)
    EXECUTE FUNCTION mandate_refuse('audit records are inserted with their hash chain');
