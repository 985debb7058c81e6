-- Pre-signed OCSP responses: the daemon signs one per certificate and CertID hash ahead of any
-- request, so stand-alone responders (which hold no key) can serve them from this store.

-- When the certificate's responses must next be signed (unix seconds): 0 right after a
-- revocation (signed first), the issue time for a new certificate, half-way through the current
-- responses' validity otherwise; NULL when nothing is left to sign (reserved, or responses
-- that outlive the certificate).
ALTER TABLE certificates ADD COLUMN ocsp_refresh_at BIGINT;
UPDATE certificates SET ocsp_refresh_at = 0 WHERE status IN ('issued', 'revoked');
CREATE INDEX certificates_ocsp_refresh ON certificates(ocsp_refresh_at)
    WHERE ocsp_refresh_at IS NOT NULL;

CREATE TABLE ocsp_responses (
    serial       TEXT NOT NULL REFERENCES certificates(serial),
    hash         TEXT NOT NULL CHECK (hash IN ('sha1', 'sha256')),  -- the CertID's hash algorithm
    issuer_id    BIGINT NOT NULL REFERENCES ca_certificates(id),
    status       TEXT NOT NULL CHECK (status IN ('issued', 'revoked')),
    der          BYTEA NOT NULL,       -- the whole OCSPResponse, ready to send
    this_update  BIGINT NOT NULL,
    next_update  BIGINT NOT NULL,
    seq          BIGINT NOT NULL,     -- change feed position: responders read what is newer
    PRIMARY KEY (serial, hash)
);
CREATE INDEX ocsp_responses_feed ON ocsp_responses(seq, serial, hash);

-- The change feed's last position. Taken by every batch of responses in the transaction that
-- writes them, so positions follow commit order even with several writers.
CREATE TABLE ocsp_feed (
    id        BIGINT PRIMARY KEY CHECK (id = 1),
    last_seq  BIGINT NOT NULL
);
INSERT INTO ocsp_feed (id, last_seq) VALUES (1, 0);
