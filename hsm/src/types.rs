use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;

use crate::error::HsmError;
use crate::pin::Pin;

/// How to reach the token that holds the CA keys.
#[derive(Clone, Debug)]
pub struct HsmConfig {
    /// Path of the PKCS#11 shared library.
    pub module_path: PathBuf,
    /// Label of the token; the slot is found from it each time (slot ids are not stable).
    pub token_label: String,
    /// User PIN of the token.
    pub pin: Pin,
    /// Number of sessions kept open, i.e. how many PKCS#11 operations may run at once (≥ 1).
    pub pool_size: usize,
}

/// The CKA_ID of a key pair: the same bytes on the private and the public key.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct KeyId(Vec<u8>);

impl KeyId {
    /// Wraps raw CKA_ID bytes.
    pub fn new(bytes: Vec<u8>) -> KeyId {
        KeyId(bytes)
    }

    /// The raw CKA_ID bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl FromStr for KeyId {
    type Err = HsmError;

    fn from_str(s: &str) -> Result<KeyId, HsmError> {
        let bytes = hex::decode(s).map_err(|e| HsmError::InvalidInput {
            reason: format!("key id {s:?} is not hex: {e}"),
        })?;
        if bytes.is_empty() {
            return Err(HsmError::InvalidInput {
                reason: "key id is empty".into(),
            });
        }
        Ok(KeyId(bytes))
    }
}

/// The kinds of key pair mandate generates and signs with.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum KeyKind {
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// ECDSA on NIST P-256 (secp256r1).
    EcP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcP384,
}

impl KeyKind {
    /// Every kind, in a stable order.
    pub const ALL: [KeyKind; 5] = [
        KeyKind::Rsa2048,
        KeyKind::Rsa3072,
        KeyKind::Rsa4096,
        KeyKind::EcP256,
        KeyKind::EcP384,
    ];

    /// The algorithm to use when the caller has no reason to pick another one.
    pub fn default_signature_algorithm(&self) -> SignatureAlgorithm {
        match self {
            KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => {
                SignatureAlgorithm::RsaPkcs1Sha256
            }
            KeyKind::EcP256 => SignatureAlgorithm::EcdsaSha256,
            KeyKind::EcP384 => SignatureAlgorithm::EcdsaSha384,
        }
    }

    /// True if `alg` may be used with this kind of key.
    ///
    /// ECDSA is pinned to the hash of the curve's strength, as the CA/Browser Forum baseline
    /// requirements demand (P-256 with SHA-256, P-384 with SHA-384).
    pub fn supports(&self, alg: SignatureAlgorithm) -> bool {
        match self {
            KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => matches!(
                alg,
                SignatureAlgorithm::RsaPkcs1Sha256 | SignatureAlgorithm::RsaPkcs1Sha384
            ),
            KeyKind::EcP256 => alg == SignatureAlgorithm::EcdsaSha256,
            KeyKind::EcP384 => alg == SignatureAlgorithm::EcdsaSha384,
        }
    }

    pub(crate) fn rsa_bits(&self) -> Option<u64> {
        match self {
            KeyKind::Rsa2048 => Some(2048),
            KeyKind::Rsa3072 => Some(3072),
            KeyKind::Rsa4096 => Some(4096),
            KeyKind::EcP256 | KeyKind::EcP384 => None,
        }
    }

    pub(crate) fn curve(&self) -> Option<ObjectIdentifier> {
        match self {
            KeyKind::EcP256 => Some(rfc5912::SECP_256_R_1),
            KeyKind::EcP384 => Some(rfc5912::SECP_384_R_1),
            _ => None,
        }
    }

    pub(crate) fn from_rsa_bits(bits: usize) -> Option<KeyKind> {
        match bits {
            2048 => Some(KeyKind::Rsa2048),
            3072 => Some(KeyKind::Rsa3072),
            4096 => Some(KeyKind::Rsa4096),
            _ => None,
        }
    }

    pub(crate) fn from_curve(oid: ObjectIdentifier) -> Option<KeyKind> {
        if oid == rfc5912::SECP_256_R_1 {
            Some(KeyKind::EcP256)
        } else if oid == rfc5912::SECP_384_R_1 {
            Some(KeyKind::EcP384)
        } else {
            None
        }
    }

    /// Length of one ECDSA scalar (r or s) in bytes.
    pub(crate) fn ec_scalar_len(&self) -> Option<usize> {
        match self {
            KeyKind::EcP256 => Some(32),
            KeyKind::EcP384 => Some(48),
            _ => None,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "rsa-2048",
            KeyKind::Rsa3072 => "rsa-3072",
            KeyKind::Rsa4096 => "rsa-4096",
            KeyKind::EcP256 => "ec-p256",
            KeyKind::EcP384 => "ec-p384",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyKind {
    type Err = HsmError;

    fn from_str(s: &str) -> Result<KeyKind, HsmError> {
        KeyKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| HsmError::InvalidInput {
                reason: format!(
                    "unknown key kind {s:?} (expected one of rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384)"
                ),
            })
    }
}

/// Signature algorithms, named as X.509 names them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SignatureAlgorithm {
    /// sha256WithRSAEncryption (RSASSA-PKCS1-v1_5 with SHA-256).
    RsaPkcs1Sha256,
    /// sha384WithRSAEncryption (RSASSA-PKCS1-v1_5 with SHA-384).
    RsaPkcs1Sha384,
    /// ecdsa-with-SHA256.
    EcdsaSha256,
    /// ecdsa-with-SHA384.
    EcdsaSha384,
}

impl SignatureAlgorithm {
    /// The algorithm's OID, as it goes into an AlgorithmIdentifier.
    pub fn oid(&self) -> ObjectIdentifier {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            SignatureAlgorithm::RsaPkcs1Sha384 => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            SignatureAlgorithm::EcdsaSha256 => rfc5912::ECDSA_WITH_SHA_256,
            SignatureAlgorithm::EcdsaSha384 => rfc5912::ECDSA_WITH_SHA_384,
        }
    }

    /// The DER of the X.509 AlgorithmIdentifier: RSA carries an explicit NULL parameter
    /// (RFC 4055), ECDSA none at all (RFC 5758).
    pub fn algorithm_identifier_der(&self) -> Vec<u8> {
        // Constant bytes rather than an encoder: nothing here can fail, so nothing to unwrap.
        // The unit test below checks them against the der crate's encoding.
        const RSA_SHA256: &[u8] = &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
            0x00,
        ];
        const RSA_SHA384: &[u8] = &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05,
            0x00,
        ];
        const ECDSA_SHA256: &[u8] = &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
        ];
        const ECDSA_SHA384: &[u8] = &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
        ];
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => RSA_SHA256,
            SignatureAlgorithm::RsaPkcs1Sha384 => RSA_SHA384,
            SignatureAlgorithm::EcdsaSha256 => ECDSA_SHA256,
            SignatureAlgorithm::EcdsaSha384 => ECDSA_SHA384,
        }
        .to_vec()
    }
}

/// What mandate knows about a key pair on the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// CKA_ID shared by the private and public key.
    pub id: KeyId,
    /// CKA_LABEL of the private key.
    pub label: String,
    /// Algorithm and size.
    pub kind: KeyKind,
    /// DER SubjectPublicKeyInfo of the public key, ready for a certificate or CSR.
    pub spki_der: Vec<u8>,
    /// CKA_SENSITIVE of the private key.
    pub sensitive: bool,
    /// CKA_EXTRACTABLE of the private key.
    pub extractable: bool,
    /// CKA_NEVER_EXTRACTABLE of the private key: true only if it never left the token.
    pub never_extractable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;
    use der::asn1::Null;
    use spki::AlgorithmIdentifierOwned;

    #[test]
    fn kind_names_round_trip() {
        for kind in KeyKind::ALL {
            assert_eq!(kind.to_string().parse::<KeyKind>().unwrap(), kind);
            assert!(kind.supports(kind.default_signature_algorithm()));
        }
        assert_eq!("EC-P256".parse::<KeyKind>().unwrap(), KeyKind::EcP256);
        assert!("rsa-1024".parse::<KeyKind>().is_err());
    }

    #[test]
    fn key_id_hex() {
        let id: KeyId = "00ab10".parse().unwrap();
        assert_eq!(id.as_bytes(), &[0x00, 0xab, 0x10]);
        assert_eq!(id.to_string(), "00ab10");
        assert_eq!("00AB10".parse::<KeyId>().unwrap(), id);
        assert!("xyz".parse::<KeyId>().is_err());
        assert!("".parse::<KeyId>().is_err());
    }

    #[test]
    fn algorithm_identifiers_match_der_encoder() {
        for alg in [
            SignatureAlgorithm::RsaPkcs1Sha256,
            SignatureAlgorithm::RsaPkcs1Sha384,
            SignatureAlgorithm::EcdsaSha256,
            SignatureAlgorithm::EcdsaSha384,
        ] {
            let parameters = match alg {
                SignatureAlgorithm::RsaPkcs1Sha256 | SignatureAlgorithm::RsaPkcs1Sha384 => {
                    Some(Null.into())
                }
                _ => None,
            };
            let expected = AlgorithmIdentifierOwned {
                oid: alg.oid(),
                parameters,
            }
            .to_der()
            .unwrap();
            assert_eq!(alg.algorithm_identifier_der(), expected, "{alg:?}");
        }
    }

    #[test]
    fn ecdsa_is_pinned_to_curve_hash() {
        assert!(!KeyKind::EcP256.supports(SignatureAlgorithm::EcdsaSha384));
        assert!(!KeyKind::EcP384.supports(SignatureAlgorithm::EcdsaSha256));
        assert!(!KeyKind::Rsa2048.supports(SignatureAlgorithm::EcdsaSha256));
        assert!(!KeyKind::EcP256.supports(SignatureAlgorithm::RsaPkcs1Sha256));
        assert!(KeyKind::Rsa4096.supports(SignatureAlgorithm::RsaPkcs1Sha384));
    }
}
