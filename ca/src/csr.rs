//! Certificate signing requests: parse, verify the self-signature, check key strength and names.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519::COMMON_NAME;
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1,
    SECP_384_R_1, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
    SHA_512_WITH_RSA_ENCRYPTION,
};
use der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
use der::pem::PemLabel;
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::request::{CertReq, ExtensionReq};

/// Largest CSR accepted (PEM).
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// Why a CSR was refused; each maps to one documented problem type.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    /// Not a PEM PKCS#10 request, or over the size limit.
    #[error("the CSR cannot be parsed: {0}")]
    Malformed(String),
    /// The self-signature does not verify with the request's own key.
    #[error("the CSR's signature does not verify")]
    BadSignature,
    /// RSA shorter than 2048 bits (or longer than 8192).
    #[error("{0}")]
    WeakKey(String),
    /// A key type or curve outside the profile (RSA, P-256, P-384), or a signature algorithm we
    /// do not accept.
    #[error("{0}")]
    UnsupportedKey(String),
    /// A subject or SAN name that is not the agent's.
    #[error("{0}")]
    WrongName(String),
}

/// A request that passed every check: only its key is used; names come from the registry.
#[derive(Debug)]
pub struct ValidCsr {
    /// The key to certify.
    pub spki: SubjectPublicKeyInfoOwned,
    /// `rsa-2048`, `ec-p256`, ... for logs and audit.
    pub key_type: String,
}

/// Parses and checks a CSR for the agent `agent_id` whose certificate will name `dns_name`.
pub fn validate(pem: &str, agent_id: &str, dns_name: &str) -> Result<ValidCsr, CsrError> {
    if pem.len() > MAX_CSR_BYTES {
        return Err(CsrError::Malformed(format!(
            "larger than {MAX_CSR_BYTES} bytes"
        )));
    }
    let pem = pem.trim();
    if !pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----") {
        return Err(CsrError::Malformed(
            "expected a PEM block starting with -----BEGIN CERTIFICATE REQUEST-----".into(),
        ));
    }
    // PEM is decoded whole, then the DER parsed: der 0.7's streaming `PemReader` (what
    // `CertReq::from_pem` uses) loops forever when the DER inside the PEM ends early.
    let (label, der) =
        der::pem::decode_vec(pem.as_bytes()).map_err(|e| CsrError::Malformed(e.to_string()))?;
    CertReq::validate_pem_label(label).map_err(|e| CsrError::Malformed(e.to_string()))?;
    let req = CertReq::from_der(&der).map_err(|e| CsrError::Malformed(e.to_string()))?;
    let info_der = req
        .info
        .to_der()
        .map_err(|e| CsrError::Malformed(e.to_string()))?;
    let signature = req.signature.as_bytes().ok_or(CsrError::BadSignature)?;
    let key_type = verify(
        &req.info.public_key,
        req.algorithm.oid,
        &info_der,
        signature,
    )?;
    check_names(&req, agent_id, dns_name)?;
    Ok(ValidCsr {
        spki: req.info.public_key,
        key_type,
    })
}

/// Verifies the self-signature with ring (constant-time, assembly-backed: several times faster
/// than a pure-Rust P-256 verify, and CSR checks sit on the issuance hot path) and returns the
/// key type.
fn verify(
    spki: &SubjectPublicKeyInfoOwned,
    alg: ObjectIdentifier,
    message: &[u8],
    signature: &[u8],
) -> Result<String, CsrError> {
    use ring::signature as rs;
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| CsrError::Malformed("public key is not a whole number of bytes".into()))?;
    let (ring_alg, key_type): (&dyn rs::VerificationAlgorithm, String) = match spki.algorithm.oid {
        RSA_ENCRYPTION => {
            let bits = rsa_modulus_bits(key)?;
            if bits < 2048 {
                return Err(CsrError::WeakKey(format!(
                    "RSA key of {bits} bits is too weak; at least 2048 bits are required"
                )));
            }
            if bits > 8192 {
                return Err(CsrError::WeakKey(format!(
                    "RSA key of {bits} bits is larger than the 8192 accepted"
                )));
            }
            let alg: &dyn rs::VerificationAlgorithm = match alg {
                SHA_256_WITH_RSA_ENCRYPTION => &rs::RSA_PKCS1_2048_8192_SHA256,
                SHA_384_WITH_RSA_ENCRYPTION => &rs::RSA_PKCS1_2048_8192_SHA384,
                SHA_512_WITH_RSA_ENCRYPTION => &rs::RSA_PKCS1_2048_8192_SHA512,
                other => {
                    return Err(CsrError::UnsupportedKey(format!(
                        "signature algorithm {other} is not accepted for RSA; use PKCS#1 v1.5 with SHA-256/384/512"
                    )));
                }
            };
            (alg, format!("rsa-{bits}"))
        }
        ID_EC_PUBLIC_KEY => {
            let curve: ObjectIdentifier = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as().ok())
                .ok_or_else(|| CsrError::UnsupportedKey("EC key without a named curve".into()))?;
            let alg: &dyn rs::VerificationAlgorithm = match (curve, alg) {
                (SECP_256_R_1, ECDSA_WITH_SHA_256) => &rs::ECDSA_P256_SHA256_ASN1,
                (SECP_256_R_1, ECDSA_WITH_SHA_384) => &rs::ECDSA_P256_SHA384_ASN1,
                (SECP_384_R_1, ECDSA_WITH_SHA_256) => &rs::ECDSA_P384_SHA256_ASN1,
                (SECP_384_R_1, ECDSA_WITH_SHA_384) => &rs::ECDSA_P384_SHA384_ASN1,
                (SECP_256_R_1 | SECP_384_R_1, other) => {
                    return Err(CsrError::UnsupportedKey(format!(
                        "signature algorithm {other} is not accepted for ECDSA; use ecdsa-with-SHA256 or ecdsa-with-SHA384"
                    )));
                }
                (other, _) => {
                    return Err(CsrError::UnsupportedKey(format!(
                        "curve {other} is not accepted; use P-256 or P-384"
                    )));
                }
            };
            let name = if curve == SECP_256_R_1 {
                "ec-p256"
            } else {
                "ec-p384"
            };
            (alg, name.to_owned())
        }
        other => {
            return Err(CsrError::UnsupportedKey(format!(
                "key algorithm {other} is not accepted; use RSA (2048 bits or more), P-256 or P-384"
            )));
        }
    };
    rs::UnparsedPublicKey::new(ring_alg, key)
        .verify(message, signature)
        .map_err(|_| CsrError::BadSignature)?;
    Ok(key_type)
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017).
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: der::asn1::UintRef<'a>,
    // Decoded only so a malformed key is refused here with a clear message; ring checks it too.
    #[allow(dead_code)]
    public_exponent: der::asn1::UintRef<'a>,
}

fn rsa_modulus_bits(key: &[u8]) -> Result<usize, CsrError> {
    let pk = RsaPublicKey::from_der(key)
        .map_err(|e| CsrError::UnsupportedKey(format!("invalid RSA public key: {e}")))?;
    let n = pk.modulus.as_bytes();
    let first = n.first().copied().unwrap_or(0);
    Ok((n.len() * 8).saturating_sub(first.leading_zeros() as usize))
}

/// The subject may be empty or hold only a CN equal to the agent id or its DNS name; requested
/// SANs may only be that DNS name. The certificate's names come from the registry either way:
/// this refuses requests that ask for something else rather than silently ignoring them.
fn check_names(req: &CertReq, agent_id: &str, dns_name: &str) -> Result<(), CsrError> {
    for rdn in req.info.subject.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid != COMMON_NAME {
                return Err(CsrError::WrongName(format!(
                    "subject attribute {} is not accepted; the subject may only hold CN={agent_id}",
                    atv.oid
                )));
            }
            let cn = directory_string(&atv.value)
                .ok_or_else(|| CsrError::WrongName("subject CN is not a readable string".into()))?;
            if cn != agent_id && !cn.eq_ignore_ascii_case(dns_name) {
                return Err(CsrError::WrongName(format!(
                    "subject CN {cn:?} is not this agent (expected {agent_id:?} or {dns_name:?})"
                )));
            }
        }
    }
    for attr in req.info.attributes.iter() {
        if attr.oid != <ExtensionReq as const_oid::AssociatedOid>::OID {
            continue;
        }
        for value in attr.values.iter() {
            let der = value
                .to_der()
                .map_err(|e| CsrError::Malformed(e.to_string()))?;
            let exts = ExtensionReq::from_der(&der)
                .map_err(|e| CsrError::Malformed(format!("extensionRequest: {e}")))?;
            for ext in exts.0.iter() {
                if ext.extn_id != <SubjectAltName as const_oid::AssociatedOid>::OID {
                    continue;
                }
                let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| CsrError::Malformed(format!("subjectAltName: {e}")))?;
                for name in san.0.iter() {
                    match name {
                        GeneralName::DnsName(d) if d.as_str().eq_ignore_ascii_case(dns_name) => {}
                        GeneralName::DnsName(d) => {
                            return Err(CsrError::WrongName(format!(
                                "requested DNS name {:?} is not this agent's ({dns_name:?})",
                                d.as_str()
                            )));
                        }
                        _ => {
                            return Err(CsrError::WrongName(format!(
                                "only the DNS name {dns_name:?} may be requested"
                            )));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn directory_string(value: &der::asn1::Any) -> Option<String> {
    if let Ok(s) = value.decode_as::<Utf8StringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    if let Ok(s) = value.decode_as::<PrintableStringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    value
        .decode_as::<Ia5StringRef<'_>>()
        .ok()
        .map(|s| s.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A real P-256 CSR for CN=bot-1 (made with openssl), to mutate.
    const CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIHJMHICAQAwEDEOMAwGA1UEAwwFYm90LTEwWTATBgcqhkjOPQIBBggqhkjOPQMB
BwNCAATfCsjvI8QVhyIWbO3yGPtoXYfcm5Mve73ZfrX8/od23WWtAFPAjWhLlqAW
LAxlBUySY80ABCM/i+467NbByYw/oAAwCgYIKoZIzj0EAwIDRwAwRAIgNzbKbZhd
BrzIT75Q30k95nk1yTJtAI34ZIdQ+ZZcjL0CIASOUcRmN+4+6BooT4Qvsim7NfTT
FO0eiI4q069mHFpg
-----END CERTIFICATE REQUEST-----
";

    #[test]
    fn the_sample_is_valid() {
        let v = validate(CSR, "bot-1", "bot-1.acme.agents.example").unwrap();
        assert_eq!(v.key_type, "ec-p256");
    }

    /// Found by `fuzz/csr` (seed `fuzz/seeds/csr/timeout-truncated-der`): a PEM block whose DER
    /// ends early, down to one byte, hung `validate` for ever inside der's streaming PEM reader.
    /// It must be refused at once, as malformed.
    #[test]
    fn truncated_der_in_pem_is_refused_without_hanging() {
        use base64::Engine;
        let b64: String = CSR.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let mut cases = vec![vec![0xad], vec![0x30], vec![0x30, 0x82, 0x01, 0x0a]];
        cases.extend([1, 2, 3, der.len() / 2, der.len() - 1].map(|n| der[..n].to_vec()));
        for case in cases {
            let pem =
                der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &case)
                    .unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(validate(&pem, "bot-1", "bot-1.acme.agents.example"));
            });
            let outcome = rx.recv_timeout(std::time::Duration::from_secs(10));
            assert!(
                matches!(outcome, Ok(Err(CsrError::Malformed(_)))),
                "{case:02x?}: {outcome:?}"
            );
        }
    }

    #[test]
    fn der_after_the_request_is_refused() {
        use base64::Engine;
        let b64: String = CSR.lines().filter(|l| !l.starts_with("-----")).collect();
        let mut der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        der.extend_from_slice(&[0x05, 0x00]);
        let pem =
            der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &der).unwrap();
        assert!(matches!(
            validate(&pem, "bot-1", "bot-1.acme.agents.example"),
            Err(CsrError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn random_text_is_refused_without_panicking(s in ".{0,2000}") {
            prop_assert!(validate(&s, "bot-1", "bot-1.acme.agents.example").is_err());
        }

        #[test]
        fn mutated_csrs_never_panic(pos in 0usize..400, byte in any::<u8>()) {
            use base64::Engine;
            let b64: String = CSR.lines().filter(|l| !l.starts_with("-----")).collect();
            let mut der = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
            let i = pos % der.len();
            der[i] = byte;
            let pem = der::pem::encode_string(
                "CERTIFICATE REQUEST", der::pem::LineEnding::LF, &der,
            ).unwrap();
            // Either refused with a typed error, or (a mutation that kept it valid) accepted.
            let _ = validate(&pem, "bot-1", "bot-1.acme.agents.example");
        }
    }
}
