use der::{Decode, Encode};
use mandate_hsm::{KeyId, SignatureAlgorithm};
use sha1::Digest as _;
use x509_ocsp::CertId;

use crate::Refusal;

/// SHA-1 (1.3.14.3.2.26), the CertID hash RFC 5019 clients send by default.
const SHA1: const_oid::ObjectIdentifier = const_oid::db::rfc5912::ID_SHA_1;
/// SHA-256, what `openssl ocsp -sha256` sends.
const SHA256: const_oid::ObjectIdentifier = const_oid::db::rfc5912::ID_SHA_256;

/// An issuer this responder answers for, with the hashes a CertID names it by.
#[derive(Debug, Clone)]
pub struct OcspIssuer {
    /// The store's id of the issuing CA certificate.
    pub id: i64,
    /// Its key in the HSM, which signs the responses.
    pub key_id: KeyId,
    /// How that key signs.
    pub algorithm: SignatureAlgorithm,
    name_sha1: Vec<u8>,
    key_sha1: Vec<u8>,
    name_sha256: Vec<u8>,
    key_sha256: Vec<u8>,
}

impl OcspIssuer {
    /// From the issuer's DER certificate.
    pub fn new(
        id: i64,
        cert_der: &[u8],
        key_id: KeyId,
        algorithm: SignatureAlgorithm,
    ) -> Result<Self, der::Error> {
        let cert = x509_cert::Certificate::from_der(cert_der)?;
        let name = cert.tbs_certificate.subject.to_der()?;
        let key = cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
            .to_vec();
        Ok(OcspIssuer {
            id,
            key_id,
            algorithm,
            name_sha1: sha1::Sha1::digest(&name).to_vec(),
            key_sha1: sha1::Sha1::digest(&key).to_vec(),
            name_sha256: sha2::Sha256::digest(&name).to_vec(),
            key_sha256: sha2::Sha256::digest(&key).to_vec(),
        })
    }

    /// The responder id: SHA-1 of the signing key's subjectPublicKey bits (RFC 6960 §4.2.1).
    pub(crate) fn key_hash_sha1(&self) -> &[u8] {
        &self.key_sha1
    }

    fn names(&self, id: &CertId) -> Result<bool, Refusal> {
        let (name, key) = match id.hash_algorithm.oid {
            SHA1 => (&self.name_sha1, &self.key_sha1),
            SHA256 => (&self.name_sha256, &self.key_sha256),
            _ => return Err(Refusal::MalformedRequest),
        };
        Ok(id.issuer_name_hash.as_bytes() == name.as_slice()
            && id.issuer_key_hash.as_bytes() == key.as_slice())
    }

    /// The issuer a CertID names, among `issuers`: `unauthorized` if none, `malformedRequest`
    /// for a hash algorithm other than SHA-1 or SHA-256.
    pub fn find<'a>(issuers: &'a [OcspIssuer], id: &CertId) -> Result<&'a OcspIssuer, Refusal> {
        for issuer in issuers {
            if issuer.names(id)? {
                return Ok(issuer);
            }
        }
        Err(Refusal::Unauthorized)
    }
}
