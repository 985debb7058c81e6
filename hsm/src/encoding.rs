//! DER glue between PKCS#11 attribute values and what X.509 expects.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::{AnyRef, BitStringRef, Null, OctetStringRef, UintRef};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use crate::error::HsmError;
use crate::types::KeyKind;

#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

#[derive(Sequence)]
struct EcdsaSignature<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

fn malformed(what: &str, e: der::Error) -> HsmError {
    HsmError::Internal {
        reason: format!("{what}: {e}"),
    }
}

/// SubjectPublicKeyInfo for an RSA key from CKA_MODULUS and CKA_PUBLIC_EXPONENT (big-endian,
/// unsigned, as PKCS#11 stores them).
pub(crate) fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>, HsmError> {
    let key = RsaPublicKey {
        modulus: UintRef::new(modulus).map_err(|e| malformed("RSA modulus", e))?,
        public_exponent: UintRef::new(exponent).map_err(|e| malformed("RSA exponent", e))?,
    }
    .to_der()
    .map_err(|e| malformed("RSAPublicKey", e))?;
    let spki = SubjectPublicKeyInfo {
        algorithm: AlgorithmIdentifier {
            oid: rfc5912::RSA_ENCRYPTION,
            parameters: Some(AnyRef::from(Null)),
        },
        subject_public_key: BitStringRef::from_bytes(&key)
            .map_err(|e| malformed("RSA public key bits", e))?,
    };
    spki.to_der().map_err(|e| malformed("RSA SPKI", e))
}

/// The named curve in CKA_EC_PARAMS (a DER OBJECT IDENTIFIER; explicit curve parameters are
/// not supported by anything mandate issues for).
pub(crate) fn curve_from_ec_params(params: &[u8]) -> Result<ObjectIdentifier, HsmError> {
    ObjectIdentifier::from_der(params).map_err(|_| HsmError::Unsupported {
        what: "EC key whose CKA_EC_PARAMS is not a named curve".into(),
    })
}

/// DER of a named-curve OID, as CKA_EC_PARAMS wants it at generation.
pub(crate) fn ec_params_for(curve: ObjectIdentifier) -> Result<Vec<u8>, HsmError> {
    curve.to_der().map_err(|e| malformed("curve OID", e))
}

/// SubjectPublicKeyInfo for an EC key from its curve and CKA_EC_POINT.
///
/// PKCS#11 says CKA_EC_POINT is the DER of an OCTET STRING wrapping the point (SoftHSM does
/// this), but some tokens return the bare uncompressed point; both are accepted.
pub(crate) fn ec_spki(kind: KeyKind, ec_point: &[u8]) -> Result<Vec<u8>, HsmError> {
    let (curve, scalar) = match (kind.curve(), kind.ec_scalar_len()) {
        (Some(c), Some(n)) => (c, n),
        _ => {
            return Err(HsmError::Internal {
                reason: format!("{kind} is not an EC key kind"),
            });
        }
    };
    let raw_len = 1 + 2 * scalar;
    let point: &[u8] = if ec_point.len() == raw_len && ec_point.first() == Some(&0x04) {
        ec_point
    } else {
        OctetStringRef::from_der(ec_point)
            .map_err(|e| malformed("CKA_EC_POINT", e))?
            .as_bytes()
    };
    if point.len() != raw_len || point.first() != Some(&0x04) {
        return Err(HsmError::Internal {
            reason: format!(
                "CKA_EC_POINT of a {kind} key is not an uncompressed point ({} bytes)",
                point.len()
            ),
        });
    }
    let spki = SubjectPublicKeyInfo {
        algorithm: AlgorithmIdentifier {
            oid: rfc5912::ID_EC_PUBLIC_KEY,
            parameters: Some(curve),
        },
        subject_public_key: BitStringRef::from_bytes(point)
            .map_err(|e| malformed("EC public key bits", e))?,
    };
    spki.to_der().map_err(|e| malformed("EC SPKI", e))
}

/// Turns the PKCS#11 ECDSA output (r || s, each padded to the curve size) into the
/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` that X.509 carries.
pub(crate) fn ecdsa_raw_to_der(kind: KeyKind, raw: &[u8]) -> Result<Vec<u8>, HsmError> {
    let n = kind.ec_scalar_len().unwrap_or(0);
    if n == 0 || raw.len() != 2 * n {
        return Err(HsmError::Internal {
            reason: format!(
                "token returned a {}-byte ECDSA signature for a {kind} key",
                raw.len()
            ),
        });
    }
    let (r, s) = raw.split_at(n);
    EcdsaSignature {
        r: UintRef::new(r).map_err(|e| malformed("ECDSA r", e))?,
        s: UintRef::new(s).map_err(|e| malformed("ECDSA s", e))?,
    }
    .to_der()
    .map_err(|e| malformed("ECDSA signature", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_der_strips_and_pads() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // high bit set: needs a leading zero to stay positive
        raw[32] = 0x00;
        raw[33] = 0x01; // leading zero byte must be stripped
        let der = ecdsa_raw_to_der(KeyKind::EcP256, &raw).unwrap();
        assert_eq!(der[0], 0x30);
        assert_eq!(&der[2..5], &[0x02, 33, 0x00]);
        assert_eq!(der[5], 0x80);
        let s_at = 2 + 2 + 33;
        assert_eq!(&der[s_at..s_at + 3], &[0x02, 31, 0x01]);
        assert!(ecdsa_raw_to_der(KeyKind::EcP256, &raw[..63]).is_err());
        assert!(ecdsa_raw_to_der(KeyKind::Rsa2048, &raw).is_err());
    }

    #[test]
    fn ec_point_both_forms() {
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        let wrapped = OctetStringRef::new(&point).unwrap().to_der().unwrap();
        let a = ec_spki(KeyKind::EcP256, &point).unwrap();
        let b = ec_spki(KeyKind::EcP256, &wrapped).unwrap();
        assert_eq!(a, b);
        assert!(ec_spki(KeyKind::EcP384, &point).is_err());
    }

    #[test]
    fn curve_params_round_trip() {
        let p = ec_params_for(rfc5912::SECP_384_R_1).unwrap();
        assert_eq!(curve_from_ec_params(&p).unwrap(), rfc5912::SECP_384_R_1);
        assert!(curve_from_ec_params(&[0x30, 0x00]).is_err());
    }
}
