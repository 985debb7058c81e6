-- Key rotation. A rotated intermediate or a rolled-over root stays in ca_certificates with
-- active = FALSE: it keeps answering OCSP and signing CRLs for what it issued. At a root
-- rollover each root certifies the other's key (a cross-certificate), so chains verify from
-- either root while relying parties move to the new one.
CREATE TABLE ca_cross_certificates (
    id          INTEGER PRIMARY KEY,
    subject_id  INTEGER NOT NULL REFERENCES ca_certificates(id),  -- the root whose key it certifies
    issuer_id   INTEGER NOT NULL REFERENCES ca_certificates(id),  -- the root that signed it
    serial      TEXT NOT NULL,
    der         BLOB NOT NULL,
    sha256      TEXT NOT NULL UNIQUE,
    not_before  BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX ca_cross_certificates_subject ON ca_cross_certificates(subject_id);

-- CA certificates are never edited except to retire them.
CREATE TRIGGER ca_certificates_no_delete BEFORE DELETE ON ca_certificates
BEGIN
    SELECT RAISE(ABORT, 'CA certificates are kept: retire them (active = FALSE) instead');
END;
CREATE TRIGGER ca_cross_certificates_no_change BEFORE UPDATE ON ca_cross_certificates
BEGIN
    SELECT RAISE(ABORT, 'cross-certificates are never changed');
END;
CREATE TRIGGER ca_cross_certificates_no_delete BEFORE DELETE ON ca_cross_certificates
BEGIN
    SELECT RAISE(ABORT, 'cross-certificates are never deleted');
END;
