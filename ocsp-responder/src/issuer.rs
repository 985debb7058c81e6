use std::sync::{Arc, RwLock};

use der::{Decode, Encode};
use mandate_hsm::{KeyId, SignatureAlgorithm};
use sha1::Digest as _;
use x509_ocsp::CertId;

use crate::{OcspError, Refusal};

/// SHA-1 (1.3.14.3.2.26), the CertID hash RFC 5019 clients send by default.
const SHA1: const_oid::ObjectIdentifier = const_oid::db::rfc5912::ID_SHA_1;
/// SHA-256, what `openssl ocsp -sha256` sends.
const SHA256: const_oid::ObjectIdentifier = const_oid::db::rfc5912::ID_SHA_256;

/// A CertID hash algorithm this responder answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// SHA-1, what RFC 5019 clients send by default.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl CertIdHash {
    /// Both, in the order responses are pre-signed.
    pub const ALL: [CertIdHash; 2] = [CertIdHash::Sha1, CertIdHash::Sha256];

    /// The name the store keeps it under.
    pub fn as_str(self) -> &'static str {
        match self {
            CertIdHash::Sha1 => "sha1",
            CertIdHash::Sha256 => "sha256",
        }
    }

    /// The algorithm a CertID was hashed with, if one we answer for.
    pub fn of(id: &CertId) -> Option<CertIdHash> {
        match id.hash_algorithm.oid {
            SHA1 => Some(CertIdHash::Sha1),
            SHA256 => Some(CertIdHash::Sha256),
            _ => None,
        }
    }
}

/// The key that signs an issuer's responses: the issuer's own, or a delegated OCSP signer whose
/// certificate (issued by the issuer, id-kp-OCSPSigning) is sent along in every response.
#[derive(Debug)]
pub struct OcspSigner {
    /// The key in the HSM.
    pub key_id: KeyId,
    /// How it signs.
    pub algorithm: SignatureAlgorithm,
    /// The responder id: SHA-1 of the key's subjectPublicKey bits (RFC 6960 §4.2.1).
    pub(crate) key_hash_sha1: Vec<u8>,
    /// The delegated signer's certificate, included in responses; none for the issuer itself.
    pub(crate) certificate: Option<x509_cert::Certificate>,
}

impl OcspSigner {
    /// A delegated signer from its DER certificate and its key.
    pub fn delegated(
        cert_der: &[u8],
        key_id: KeyId,
        algorithm: SignatureAlgorithm,
    ) -> Result<Self, der::Error> {
        let cert = x509_cert::Certificate::from_der(cert_der)?;
        let key = cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        Ok(OcspSigner {
            key_id,
            algorithm,
            key_hash_sha1: sha1::Sha1::digest(key).to_vec(),
            certificate: Some(cert),
        })
    }
}

/// An issuer this responder answers for, with the hashes a CertID names it by.
#[derive(Debug)]
pub struct OcspIssuer {
    /// The store's id of the issuing CA certificate.
    pub id: i64,
    signer: RwLock<Arc<OcspSigner>>,
    name_sha1: Vec<u8>,
    key_sha1: Vec<u8>,
    name_sha256: Vec<u8>,
    key_sha256: Vec<u8>,
}

impl OcspIssuer {
    /// From the issuer's DER certificate; it signs its own responses until
    /// [`OcspIssuer::set_signer`] names a delegated signer.
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
            signer: RwLock::new(Arc::new(OcspSigner {
                key_id,
                algorithm,
                key_hash_sha1: sha1::Sha1::digest(&key).to_vec(),
                certificate: None,
            })),
            name_sha1: sha1::Sha1::digest(&name).to_vec(),
            key_sha1: sha1::Sha1::digest(&key).to_vec(),
            name_sha256: sha2::Sha256::digest(&name).to_vec(),
            key_sha256: sha2::Sha256::digest(&key).to_vec(),
        })
    }

    /// The key that signs this issuer's responses now.
    pub fn signer(&self) -> Arc<OcspSigner> {
        match self.signer.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Hands signing over to another key (a new delegated signer); responses signed from now on
    /// use it.
    pub fn set_signer(&self, signer: OcspSigner) {
        let signer = Arc::new(signer);
        match self.signer.write() {
            Ok(mut s) => *s = signer,
            Err(poisoned) => *poisoned.into_inner() = signer,
        }
    }

    fn hashes(&self, hash: CertIdHash) -> (&[u8], &[u8]) {
        match hash {
            CertIdHash::Sha1 => (&self.name_sha1, &self.key_sha1),
            CertIdHash::Sha256 => (&self.name_sha256, &self.key_sha256),
        }
    }

    fn names(&self, id: &CertId) -> Result<bool, Refusal> {
        let (name, key) = self.hashes(CertIdHash::of(id).ok_or(Refusal::MalformedRequest)?);
        Ok(id.issuer_name_hash.as_bytes() == name && id.issuer_key_hash.as_bytes() == key)
    }

    /// The CertID of one of this issuer's certificates (`serial`: the INTEGER's content octets),
    /// hashed with `hash`, with NULL algorithm parameters as openssl and most clients send it:
    /// what a pre-signed response echoes.
    pub fn cert_id(&self, hash: CertIdHash, serial: &[u8]) -> Result<CertId, der::Error> {
        let (name, key) = self.hashes(hash);
        let oid = match hash {
            CertIdHash::Sha1 => SHA1,
            CertIdHash::Sha256 => SHA256,
        };
        Ok(CertId {
            hash_algorithm: spki::AlgorithmIdentifierOwned {
                oid,
                parameters: Some(der::asn1::Null.into()),
            },
            issuer_name_hash: der::asn1::OctetString::new(name)?,
            issuer_key_hash: der::asn1::OctetString::new(key)?,
            serial_number: x509_cert::serial_number::SerialNumber::new(serial)?,
        })
    }
}

/// The issuers a responder answers for: every intermediate in the store, current or retired.
/// An intermediate added by a rotation joins at [`IssuerSet::refresh`]; those already known keep
/// their state (their delegated signer).
#[derive(Debug, Default)]
pub struct IssuerSet {
    list: RwLock<Arc<Vec<Arc<OcspIssuer>>>>,
}

impl IssuerSet {
    /// Every intermediate in the store, each signing its own responses until a delegated
    /// signer is set.
    pub async fn load(store: &mandate_store::Store) -> Result<IssuerSet, OcspError> {
        let set = IssuerSet::default();
        set.refresh(store).await?;
        Ok(set)
    }

    /// Adds the intermediates stored since the last look; returns the ids added.
    pub async fn refresh(&self, store: &mandate_store::Store) -> Result<Vec<i64>, OcspError> {
        let known: Vec<i64> = self.current().iter().map(|i| i.id).collect();
        let fresh = load_issuers(store, &known).await?;
        let added: Vec<i64> = fresh.iter().map(|i| i.id).collect();
        if !fresh.is_empty() {
            let mut list: Vec<Arc<OcspIssuer>> = self.current().iter().cloned().collect();
            list.extend(fresh.into_iter().map(Arc::new));
            let list = Arc::new(list);
            match self.list.write() {
                Ok(mut l) => *l = list,
                Err(poisoned) => *poisoned.into_inner() = list,
            }
        }
        Ok(added)
    }

    /// A snapshot of the issuers.
    pub fn current(&self) -> Arc<Vec<Arc<OcspIssuer>>> {
        match self.list.read() {
            Ok(l) => Arc::clone(&l),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.current().len()
    }

    /// Whether there are none (no CA in the store).
    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }

    /// The issuer with this store id.
    pub fn get(&self, id: i64) -> Option<Arc<OcspIssuer>> {
        self.current().iter().find(|i| i.id == id).cloned()
    }

    /// The issuer a CertID names: `unauthorized` if none, `malformedRequest` for a hash
    /// algorithm other than SHA-1 or SHA-256.
    pub fn find(&self, id: &CertId) -> Result<Arc<OcspIssuer>, Refusal> {
        for issuer in self.current().iter() {
            if issuer.names(id)? {
                return Ok(Arc::clone(issuer));
            }
        }
        Err(Refusal::Unauthorized)
    }
}

/// The intermediates in the store other than `known`, as issuers OCSP answers for (each
/// signing its own responses until a delegated signer is set).
async fn load_issuers(
    store: &mandate_store::Store,
    known: &[i64],
) -> Result<Vec<OcspIssuer>, OcspError> {
    let mut out = Vec::new();
    for row in store.ca_certificates().await? {
        if row.role != mandate_store::CaRole::Intermediate || known.contains(&row.id) {
            continue;
        }
        let bad = |what: String| OcspError::BadCaRecord { id: row.id, what };
        let kind: mandate_hsm::KeyKind = row
            .key_kind
            .parse()
            .map_err(|_| bad(format!("key kind {:?}", row.key_kind)))?;
        let key_id = row
            .key_id
            .parse()
            .map_err(|_| bad(format!("key id {:?}", row.key_id)))?;
        out.push(OcspIssuer::new(
            row.id,
            &row.der,
            key_id,
            kind.default_signature_algorithm(),
        )?);
    }
    Ok(out)
}
