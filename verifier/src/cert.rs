//! Certificates as this crate needs them: parsed, with the exact signed bytes kept, their keys,
//! their signatures (through `ring`) and the certification path up to a trusted root.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{
    ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_EXT_KEY_USAGE, ID_CE_KEY_USAGE,
    ID_CE_SUBJECT_ALT_NAME, ID_CE_SUBJECT_KEY_IDENTIFIER,
};
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1,
    SECP_384_R_1, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};
use der::{Decode, Header, Reader, SliceReader, Tag, Tagged};
use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

use crate::{MAX_CERT_LEN, MAX_CHAIN_LEN, Reason};

/// id-at-commonName.
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// Critical extensions this crate understands; a certificate with any other critical extension
/// is refused (RFC 5280 §4.2).
const UNDERSTOOD_CRITICAL: [ObjectIdentifier; 6] = [
    ID_CE_BASIC_CONSTRAINTS,
    ID_CE_KEY_USAGE,
    ID_CE_EXT_KEY_USAGE,
    ID_CE_SUBJECT_ALT_NAME,
    ID_CE_SUBJECT_KEY_IDENTIFIER,
    ID_CE_AUTHORITY_KEY_IDENTIFIER,
];

/// A parsed certificate with the bytes its signature covers.
pub(crate) struct Cert<'a> {
    /// The whole certificate, DER.
    pub der: &'a [u8],
    /// The DER of `tbsCertificate`, exactly as received.
    pub tbs: &'a [u8],
    /// The parsed certificate.
    pub cert: Certificate,
}

impl<'a> Cert<'a> {
    /// Parses `der` (at most [`MAX_CERT_LEN`] bytes, strict DER, nothing after it).
    pub fn parse(der: &'a [u8]) -> Result<Cert<'a>, String> {
        if der.len() > MAX_CERT_LEN {
            return Err(format!(
                "is {} bytes; at most {MAX_CERT_LEN} are accepted",
                der.len()
            ));
        }
        let cert = Certificate::from_der(der)
            .map_err(|e| format!("is not a DER X.509 certificate ({e})"))?;
        let tbs =
            first_element(der).map_err(|e| format!("is not a DER X.509 certificate ({e})"))?;
        Ok(Cert { der, tbs, cert })
    }

    /// The serial number as the CA stores it: the INTEGER content bytes, lowercase hex.
    pub fn serial_hex(&self) -> String {
        hex::encode(self.cert.tbs_certificate.serial_number.as_bytes())
    }

    /// The subject as RFC 4514 text, for messages.
    pub fn subject_text(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    /// notBefore and notAfter, unix seconds.
    pub fn validity(&self) -> (i64, i64) {
        let v = &self.cert.tbs_certificate.validity;
        (
            unix(v.not_before.to_unix_duration()),
            unix(v.not_after.to_unix_duration()),
        )
    }

    /// Every extension with this OID.
    fn extensions(&self, oid: ObjectIdentifier) -> impl Iterator<Item = &[u8]> {
        self.cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .filter(move |e| e.extn_id == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// The single extension with this OID: `Ok(None)` when absent, an error when repeated.
    pub fn extension(&self, oid: ObjectIdentifier) -> Result<Option<&[u8]>, String> {
        let mut found = self.extensions(oid);
        let first = found.next();
        if found.next().is_some() {
            return Err(format!(
                "extension {} appears more than once",
                oid_name(oid)
            ));
        }
        Ok(first)
    }

    /// The first critical extension this crate does not understand, if any.
    pub fn unknown_critical(&self) -> Option<ObjectIdentifier> {
        self.cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.critical && !UNDERSTOOD_CRITICAL.contains(&e.extn_id))
            .map(|e| e.extn_id)
    }

    /// keyUsage, when present.
    pub fn key_usage(&self) -> Result<Option<KeyUsage>, String> {
        self.extension(ID_CE_KEY_USAGE)?
            .map(|v| KeyUsage::from_der(v).map_err(|e| format!("keyUsage does not decode ({e})")))
            .transpose()
    }

    /// Whether extendedKeyUsage is present and lists `purpose`.
    pub fn has_eku(&self, purpose: ObjectIdentifier) -> Result<bool, String> {
        match self.extension(ID_CE_EXT_KEY_USAGE)? {
            None => Ok(false),
            Some(v) => ExtendedKeyUsage::from_der(v)
                .map(|eku| eku.0.contains(&purpose))
                .map_err(|e| format!("extendedKeyUsage does not decode ({e})")),
        }
    }

    /// Checks that this certificate may issue certificates with `below` CA certificates under
    /// it: basicConstraints cA, pathLenConstraint, keyUsage keyCertSign (when keyUsage is present).
    pub fn check_ca(&self, below: usize) -> Result<(), String> {
        let bc = match self.extension(ID_CE_BASIC_CONSTRAINTS)? {
            Some(v) => BasicConstraints::from_der(v)
                .map_err(|e| format!("basicConstraints does not decode ({e})"))?,
            None => return Err("has no basicConstraints: not a CA certificate".into()),
        };
        if !bc.ca {
            return Err("has basicConstraints cA=false: not a CA certificate".into());
        }
        if let Some(limit) = bc.path_len_constraint
            && below > usize::from(limit)
        {
            return Err(format!(
                "allows {limit} intermediate CA certificate(s) below it, the path has {below}"
            ));
        }
        if let Some(ku) = self.key_usage()?
            && !ku.key_cert_sign()
        {
            return Err("its keyUsage lacks keyCertSign".into());
        }
        Ok(())
    }

    /// The common names in the subject (UTF8String, PrintableString or IA5String values).
    pub fn common_names(&self) -> Vec<String> {
        self.cert
            .tbs_certificate
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .filter(|atv| atv.oid == COMMON_NAME)
            .filter(|atv| {
                matches!(
                    atv.value.tag(),
                    Tag::Utf8String | Tag::PrintableString | Tag::Ia5String
                )
            })
            .filter_map(|atv| std::str::from_utf8(atv.value.value()).ok())
            .map(str::to_owned)
            .collect()
    }

    /// The subject public key.
    pub fn public_key(&self) -> Result<PublicKey<'_>, String> {
        PublicKey::from_spki(&self.cert.tbs_certificate.subject_public_key_info)
    }

    /// Checks that `issuer` issued this certificate: names chain and the signature verifies
    /// under the issuer's key.
    pub fn check_issued_by(&self, issuer: &Cert<'_>) -> Result<(), String> {
        if self.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject {
            return Err(format!(
                "names issuer \"{}\", not \"{}\"",
                self.cert.tbs_certificate.issuer,
                issuer.subject_text()
            ));
        }
        if self.cert.signature_algorithm != self.cert.tbs_certificate.signature {
            return Err("has different inner and outer signature algorithms".into());
        }
        let signature = self
            .cert
            .signature
            .as_bytes()
            .ok_or("has a signature that is not a whole number of bytes")?;
        issuer
            .public_key()?
            .verify(&self.cert.signature_algorithm, self.tbs, signature)
            .map_err(|e| format!("is not signed by \"{}\": {e}", issuer.subject_text()))
    }
}

fn unix(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The complete first element inside the outer SEQUENCE of `der`: the signed part of a
/// certificate or of a BasicOCSPResponse, byte for byte as received.
pub(crate) fn first_element(der: &[u8]) -> der::Result<&[u8]> {
    let mut reader = SliceReader::new(der)?;
    let outer = Header::decode(&mut reader)?;
    outer.tag.assert_eq(Tag::Sequence)?;
    reader.tlv_bytes()
}

/// An OID by its name where known, e.g. `ecdsa-with-SHA256`, else dotted.
pub(crate) fn oid_name(oid: ObjectIdentifier) -> String {
    const_oid::db::DB
        .by_oid(&oid)
        .map_or_else(|| oid.to_string(), str::to_owned)
}

/// Key types this crate verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// RSA (rsaEncryption).
    Rsa,
    /// ECDSA on P-256.
    P256,
    /// ECDSA on P-384.
    P384,
}

/// A public key: its kind and the subjectPublicKey bit string contents (the RSAPublicKey DER
/// or the uncompressed EC point), which is what `ring` takes.
pub(crate) struct PublicKey<'a> {
    /// Key type.
    pub kind: KeyKind,
    /// The key bytes.
    pub bytes: &'a [u8],
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyKind::Rsa => "RSA",
            KeyKind::P256 => "P-256",
            KeyKind::P384 => "P-384",
        })
    }
}

impl<'a> PublicKey<'a> {
    fn from_spki(spki: &'a spki::SubjectPublicKeyInfoOwned) -> Result<PublicKey<'a>, String> {
        let bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or("the public key is not a whole number of bytes")?;
        let kind = match spki.algorithm.oid {
            RSA_ENCRYPTION => KeyKind::Rsa,
            ID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                match curve {
                    Some(SECP_256_R_1) => KeyKind::P256,
                    Some(SECP_384_R_1) => KeyKind::P384,
                    Some(other) => {
                        return Err(format!("unsupported elliptic curve {}", oid_name(other)));
                    }
                    None => return Err("EC key without a named curve".into()),
                }
            }
            other => {
                return Err(format!(
                    "unsupported public key algorithm {}",
                    oid_name(other)
                ));
            }
        };
        Ok(PublicKey { kind, bytes })
    }

    /// Verifies an X.509-style signature (certificate, OCSP response) made with `alg`.
    pub fn verify(
        &self,
        alg: &AlgorithmIdentifierOwned,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), String> {
        let ring_alg: &'static dyn VerificationAlgorithm = match (self.kind, alg.oid) {
            (KeyKind::Rsa, SHA_256_WITH_RSA_ENCRYPTION) => &sig::RSA_PKCS1_2048_8192_SHA256,
            (KeyKind::Rsa, SHA_384_WITH_RSA_ENCRYPTION) => &sig::RSA_PKCS1_2048_8192_SHA384,
            (KeyKind::Rsa, SHA_512_WITH_RSA_ENCRYPTION) => &sig::RSA_PKCS1_2048_8192_SHA512,
            (KeyKind::P256, ECDSA_WITH_SHA_256) => &sig::ECDSA_P256_SHA256_ASN1,
            (KeyKind::P256, ECDSA_WITH_SHA_384) => &sig::ECDSA_P256_SHA384_ASN1,
            (KeyKind::P384, ECDSA_WITH_SHA_384) => &sig::ECDSA_P384_SHA384_ASN1,
            (KeyKind::P384, ECDSA_WITH_SHA_256) => &sig::ECDSA_P384_SHA256_ASN1,
            (kind, oid) => {
                return Err(format!(
                    "signature algorithm {} is not supported with a {kind} key",
                    oid_name(oid)
                ));
            }
        };
        UnparsedPublicKey::new(ring_alg, self.bytes)
            .verify(message, signature)
            .map_err(|_| "the signature does not verify".to_string())
    }

    /// Verifies a signature over an order payload: SHA-256 (P-256, RSA PKCS#1 v1.5) or
    /// SHA-384 (P-384); ECDSA signatures as ASN.1 DER or fixed-size `r || s`.
    pub fn verify_payload(&self, message: &[u8], signature: &[u8]) -> bool {
        let ok = |alg: &'static dyn VerificationAlgorithm| {
            UnparsedPublicKey::new(alg, self.bytes)
                .verify(message, signature)
                .is_ok()
        };
        match self.kind {
            KeyKind::Rsa => ok(&sig::RSA_PKCS1_2048_8192_SHA256),
            KeyKind::P256 => {
                ok(&sig::ECDSA_P256_SHA256_ASN1)
                    || (signature.len() == 64 && ok(&sig::ECDSA_P256_SHA256_FIXED))
            }
            KeyKind::P384 => {
                ok(&sig::ECDSA_P384_SHA384_ASN1)
                    || (signature.len() == 96 && ok(&sig::ECDSA_P384_SHA384_FIXED))
            }
        }
    }
}

fn untrusted(detail: String) -> Reason {
    Reason::new("untrusted_chain", detail)
}

/// How a certificate is named in messages.
fn label(position: usize) -> String {
    match position {
        0 => "the agent certificate".to_string(),
        n => format!("chain[{}]", n - 1),
    }
}

/// Parses the intermediates (at most [`MAX_CHAIN_LEN`]), pushing an `untrusted_chain` reason
/// for each problem. The flag is false if any was refused: the path cannot be checked then.
pub(crate) fn parse_chain<'a>(
    chain_der: &'a [Vec<u8>],
    reasons: &mut Vec<Reason>,
) -> (Vec<Cert<'a>>, bool) {
    if chain_der.len() > MAX_CHAIN_LEN {
        reasons.push(untrusted(format!(
            "the chain has {} certificates; at most {MAX_CHAIN_LEN} are accepted",
            chain_der.len()
        )));
        return (Vec::new(), false);
    }
    let mut certs = Vec::with_capacity(chain_der.len());
    let mut complete = true;
    for (i, der) in chain_der.iter().enumerate() {
        match Cert::parse(der) {
            Ok(c) => certs.push(c),
            Err(why) => {
                reasons.push(untrusted(format!("chain[{i}] {why}")));
                complete = false;
            }
        }
    }
    (certs, complete)
}

/// Checks the path leaf → chain → a trusted root and the validity of every certificate in it
/// at `now`, pushing `untrusted_chain`, `certificate_expired` and `certificate_not_yet_valid`
/// reasons. `complete` is false when some intermediate could not be parsed: then only validity
/// is checked. Returns the certificate that verifiably issued the leaf (chain[0], or the root
/// for an empty chain), which the OCSP check needs; `None` if that link did not verify.
pub(crate) fn check_path<'c>(
    leaf: &'c Cert<'c>,
    chain: &'c [Cert<'c>],
    complete: bool,
    roots: &'c [Cert<'c>],
    now: i64,
    reasons: &mut Vec<Reason>,
) -> Option<&'c Cert<'c>> {
    let certs: Vec<&'c Cert<'c>> = std::iter::once(leaf).chain(chain.iter()).collect();
    for (i, c) in certs.iter().enumerate() {
        check_validity(c, &label(i), now, reasons);
    }
    let mut ok = complete;
    for (i, c) in certs.iter().enumerate() {
        if let Some(oid) = c.unknown_critical() {
            reasons.push(untrusted(format!(
                "{} has a critical extension this verifier does not process ({})",
                label(i),
                oid_name(oid)
            )));
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    if roots.is_empty() {
        reasons.push(untrusted("no trusted root certificates were given".into()));
    }

    // Walk up: certs[i] must be issued by certs[i + 1]; the last one by a trusted root.
    let mut leaf_issuer = None;
    for (i, child) in certs.iter().enumerate() {
        // A bundle may end with the trust anchor itself: it needs no issuer.
        if i > 0 && roots.iter().any(|r| r.der == child.der) {
            break;
        }
        // The issuer of certs[i] has the `i` CA certificates certs[1..=i] below it.
        let below = i;
        // Trusted first: a chain that carries a cross-certificate for the other root (after a
        // root rollover) must also verify from the root that signed certs[i] directly.
        if let Some(root) = roots.iter().find(|r| child.check_issued_by(r).is_ok()) {
            check_validity(root, "the trusted root", now, reasons);
            match root.check_ca(below) {
                Ok(()) if i == 0 => leaf_issuer = Some(root),
                Ok(()) => {}
                Err(why) => reasons.push(untrusted(format!(
                    "the trusted root \"{}\" {why}",
                    root.subject_text()
                ))),
            }
            break;
        }
        if let Some(parent) = certs.get(i + 1).copied() {
            let mut link_ok = true;
            if let Err(why) = child.check_issued_by(parent) {
                reasons.push(untrusted(format!("{} {why}", label(i))));
                link_ok = false;
            }
            if let Err(why) = parent.check_ca(below) {
                reasons.push(untrusted(format!("{} {why}", label(i + 1))));
                link_ok = false;
            }
            if i == 0 && link_ok {
                leaf_issuer = Some(parent);
            }
        } else if !roots.is_empty() {
            reasons.push(untrusted(format!(
                "{} (issuer \"{}\") is not issued by any of the {} trusted root(s)",
                label(i),
                child.cert.tbs_certificate.issuer,
                roots.len()
            )));
        }
    }
    leaf_issuer
}

/// Pushes `certificate_expired` or `certificate_not_yet_valid` if `now` is outside the
/// validity of `c` (both ends inclusive, RFC 5280 §4.1.2.5).
pub(crate) fn check_validity(c: &Cert<'_>, what: &str, now: i64, reasons: &mut Vec<Reason>) {
    let (not_before, not_after) = c.validity();
    if now > not_after {
        reasons.push(Reason::new(
            "certificate_expired",
            format!(
                "{what} (\"{}\") expired at {}",
                c.subject_text(),
                crate::time_text(not_after)
            ),
        ));
    } else if now < not_before {
        reasons.push(Reason::new(
            "certificate_not_yet_valid",
            format!(
                "{what} (\"{}\") is valid only from {}",
                c.subject_text(),
                crate::time_text(not_before)
            ),
        ));
    }
}
