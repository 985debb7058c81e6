-- Mandate breaches and retired certificates (issue 18); see the SQLite migration for the why.
ALTER TABLE incidents DROP CONSTRAINT incidents_kind_check;
ALTER TABLE incidents ADD CONSTRAINT incidents_kind_check
    CHECK (kind IN ('risk_warning', 'auto_revocation', 'mandate_breach'));
ALTER TABLE incidents ADD COLUMN reasons TEXT;
ALTER TABLE incidents ADD COLUMN revokes BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE incidents SET revokes = TRUE WHERE kind = 'auto_revocation';

ALTER TABLE certificates ADD COLUMN retire_at BIGINT;
CREATE INDEX certificates_retire_at ON certificates(retire_at) WHERE retire_at IS NOT NULL AND status = 'issued';
