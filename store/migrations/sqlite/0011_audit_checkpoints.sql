-- Issue 6: signed checkpoints of the audit chain. A checkpoint signs (seq, hash) of a record with
-- a dedicated audit key in the HSM, whose certificate the intermediate issues: with only the root
-- certificate, anyone can check that the log up to seq is what the CA had then, and notice
-- records cut off the end.

CREATE TABLE audit_signers (
    id          INTEGER PRIMARY KEY,
    key_id      TEXT NOT NULL,
    key_kind    TEXT NOT NULL,
    issuer_id   INTEGER NOT NULL REFERENCES ca_certificates(id),
    der         BLOB NOT NULL,
    not_before  BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE audit_checkpoints (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    seq           BIGINT NOT NULL,
    hash          BLOB NOT NULL,
    signed_at_ms  BIGINT NOT NULL,
    signer_id     INTEGER NOT NULL REFERENCES audit_signers(id),
    signature     BLOB NOT NULL
);

CREATE TRIGGER audit_signers_no_update BEFORE UPDATE ON audit_signers
BEGIN
    SELECT RAISE(ABORT, 'audit_signers is append-only');
END;
CREATE TRIGGER audit_signers_no_delete BEFORE DELETE ON audit_signers
BEGIN
    SELECT RAISE(ABORT, 'audit_signers is append-only');
END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
