-- Revocation: who revoked a certificate, and the kill switch record (who pulled it, why, on what).

ALTER TABLE certificates ADD COLUMN revoked_by TEXT;
CREATE INDEX certificates_revoked ON certificates(issuer_id, status);

CREATE TABLE kill_switches (
    id                    INTEGER PRIMARY KEY,
    scope                 TEXT NOT NULL CHECK (scope IN ('agent', 'operator')),
    target                TEXT NOT NULL,     -- agent id, or operator organization
    pulled_by             TEXT NOT NULL,     -- API key id or cli:<command>
    reason                TEXT NOT NULL,
    agents_suspended      BIGINT NOT NULL,
    certificates_revoked  BIGINT NOT NULL,
    created_at            BIGINT NOT NULL
);

-- One CRL stream per issuer. The number is reserved (last_number) before the HSM signs, so two
-- publishers never sign the same number; a CRL is stored only if it is newer than the one held.
CREATE TABLE crl_state (
    issuer_id         INTEGER PRIMARY KEY REFERENCES ca_certificates(id),
    last_number       BIGINT NOT NULL,
    published_number  BIGINT NOT NULL,
    this_update       BIGINT,
    next_update       BIGINT,
    der               BLOB
);

-- Delegated OCSP signers: a short-lived key per intermediate, certified by it for OCSP signing
-- only (id-kp-OCSPSigning, ocsp-nocheck), renewed before it expires.
CREATE TABLE ocsp_signers (
    id          INTEGER PRIMARY KEY,
    issuer_id   INTEGER NOT NULL REFERENCES ca_certificates(id),
    key_id      TEXT NOT NULL,
    key_kind    TEXT NOT NULL,
    der         BLOB NOT NULL,
    not_before  BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX ocsp_signers_issuer ON ocsp_signers(issuer_id, not_after);
