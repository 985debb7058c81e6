//! Building and signing certificates: names, the three profiles (root, intermediate, agent),
//! and assembly of the TBSCertificate with a signature made inside the HSM.

use const_oid::AssociatedOid;
use const_oid::db::rfc4519::{COMMON_NAME, ORGANIZATION_NAME};
use const_oid::db::rfc5280::{ID_AD_CA_ISSUERS, ID_AD_OCSP, ID_KP_CLIENT_AUTH};
use der::asn1::{Any, BitString, Ia5String, OctetString, SetOfVec, Utf8StringRef};
use der::{Decode, Encode};
use mandate_hsm::{Hsm, KeyId, KeyKind, SignatureAlgorithm};
use sha1::Digest as _;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::{Certificate, TbsCertificate, Version};

use crate::CaError;

/// A CA key in the HSM and the algorithm it signs with.
#[derive(Clone, Debug)]
pub struct CaSigner {
    /// The HSM holding the key.
    pub hsm: Hsm,
    /// CKA_ID of the private key.
    pub key_id: KeyId,
    /// Signature algorithm for this key.
    pub alg: SignatureAlgorithm,
}

impl CaSigner {
    /// The key `key_id` of type `kind`, signing with that type's default algorithm.
    pub fn new(hsm: &Hsm, key_id: KeyId, kind: KeyKind) -> CaSigner {
        CaSigner {
            hsm: hsm.clone(),
            key_id,
            alg: kind.default_signature_algorithm(),
        }
    }

    /// The AlgorithmIdentifier put in `signature` and `signatureAlgorithm`.
    pub fn algorithm_identifier(&self) -> Result<AlgorithmIdentifierOwned, CaError> {
        Ok(AlgorithmIdentifierOwned::from_der(
            &self.alg.algorithm_identifier_der(),
        )?)
    }

    /// Signs a DER TBSCertificate in the HSM and returns the DER certificate.
    pub async fn sign_tbs(&self, tbs: TbsCertificate, tbs_der: &[u8]) -> Result<Vec<u8>, CaError> {
        let signature = self.hsm.sign(&self.key_id, self.alg, tbs_der).await?;
        let cert = Certificate {
            signature_algorithm: tbs.signature.clone(),
            tbs_certificate: tbs,
            signature: BitString::from_bytes(&signature)?,
        };
        Ok(cert.to_der()?)
    }
}

/// Everything that differs between the certificates we sign.
pub struct CertFields {
    /// Serial number (positive, at most 20 bytes).
    pub serial: SerialNumber,
    /// Issuer name (the subject of the issuing certificate).
    pub issuer: Name,
    /// Subject name.
    pub subject: Name,
    /// The subject's public key.
    pub spki: SubjectPublicKeyInfoOwned,
    /// Validity start, unix seconds.
    pub not_before: i64,
    /// Validity end (inclusive), unix seconds.
    pub not_after: i64,
    /// Extensions, in order.
    pub extensions: Vec<Extension>,
}

/// Builds the TBSCertificate and its DER.
pub fn tbs(
    fields: CertFields,
    signature: AlgorithmIdentifierOwned,
) -> Result<(TbsCertificate, Vec<u8>), CaError> {
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: fields.serial,
        signature,
        issuer: fields.issuer,
        validity: Validity {
            not_before: mandate_crl::x509_time(fields.not_before)?,
            not_after: mandate_crl::x509_time(fields.not_after)?,
        },
        subject: fields.subject,
        subject_public_key_info: fields.spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(fields.extensions),
    };
    let der = tbs.to_der()?;
    Ok((tbs, der))
}

/// The last second of a validity of `days` days starting at `not_before` (RFC 5280 validity is
/// inclusive at both ends), but never after `cap` (the issuer's own end).
pub fn not_after(not_before: i64, days: u32, cap: i64) -> i64 {
    (not_before + i64::from(days) * 86_400 - 1).min(cap)
}

/// A fresh random serial: 16 bytes, the first in 0x40..=0x7f so the INTEGER is positive and
/// minimal with no leading zero; 126 random bits.
pub fn random_serial() -> Result<(SerialNumber, String), CaError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| CaError::Internal(format!("no randomness: {e}")))?;
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok((SerialNumber::new(&bytes)?, hex::encode(bytes)))
}

/// A serial as people and clients write it (hex, either case, with or without leading zeros)
/// in the form the store keeps: lowercase hex of the DER INTEGER's content bytes, so with a
/// leading `00` only where the first byte would otherwise look negative.
pub fn parse_serial(text: &str) -> Result<String, CaError> {
    let hexits = text.trim().to_ascii_lowercase();
    if hexits.is_empty() || hexits.len() > 64 || !hexits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CaError::InvalidRequest(format!(
            "serial must be 1 to 64 hexadecimal digits (got {:?})",
            text.chars().take(70).collect::<String>()
        )));
    }
    let digits = hexits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok("00".into());
    }
    let mut serial = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits.to_owned()
    };
    // DER keeps a leading zero byte before a first byte of 0x80 or more.
    if serial.as_bytes()[0] >= b'8' {
        serial.insert_str(0, "00");
    }
    Ok(serial)
}

/// `O=<organization>, CN=<common name>` with UTF8String values.
pub fn name(organization: &str, common_name: &str) -> Result<Name, CaError> {
    Ok(RdnSequence(vec![
        rdn(ORGANIZATION_NAME, organization)?,
        rdn(COMMON_NAME, common_name)?,
    ]))
}

fn rdn(
    oid: const_oid::ObjectIdentifier,
    value: &str,
) -> Result<RelativeDistinguishedName, CaError> {
    let atv = AttributeTypeAndValue {
        oid,
        value: Any::encode_from(&Utf8StringRef::new(value)?)?,
    };
    Ok(RelativeDistinguishedName(SetOfVec::try_from(vec![atv])?))
}

/// SubjectKeyIdentifier by RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    sha1::Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

fn extension<T: Encode + AssociatedOid>(critical: bool, value: &T) -> Result<Extension, CaError> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn ca_extensions(ski: &[u8], aki: &[u8], path_len: Option<u8>) -> Result<Vec<Extension>, CaError> {
    Ok(vec![
        extension(
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            },
        )?,
        extension(true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
        extension(false, &SubjectKeyIdentifier(OctetString::new(ski)?))?,
        extension(false, &authority_key_id(aki)?)?,
    ])
}

fn authority_key_id(aki: &[u8]) -> Result<AuthorityKeyIdentifier, CaError> {
    Ok(AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(aki)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    })
}

/// Extensions of the self-signed root: CA without path length limit.
pub fn root_extensions(ski: &[u8]) -> Result<Vec<Extension>, CaError> {
    ca_extensions(ski, ski, None)
}

/// Extensions of a cross-certificate (one root's key certified by another root): a CA without
/// path length limit, like the root it certifies, with the signing root's key identifier.
pub fn cross_extensions(ski: &[u8], issuer_ski: &[u8]) -> Result<Vec<Extension>, CaError> {
    ca_extensions(ski, issuer_ski, None)
}

/// Extensions of the intermediate: CA with path length 0 (it issues only end entities).
pub fn intermediate_extensions(ski: &[u8], root_ski: &[u8]) -> Result<Vec<Extension>, CaError> {
    ca_extensions(ski, root_ski, Some(0))
}

/// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): relying parties need not check the delegated
/// OCSP signer's own revocation status; its short life is the safeguard.
const OCSP_NOCHECK: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");

/// Extensions of a delegated OCSP signing certificate: digitalSignature (critical),
/// id-kp-OCSPSigning only, ocsp-nocheck, SKI, AKI.
pub fn ocsp_signer_extensions(ski: &[u8], issuer_ski: &[u8]) -> Result<Vec<Extension>, CaError> {
    Ok(vec![
        extension(true, &KeyUsage(KeyUsages::DigitalSignature.into()))?,
        extension(
            false,
            &ExtendedKeyUsage(vec![const_oid::db::rfc5280::ID_KP_OCSP_SIGNING]),
        )?,
        Extension {
            extn_id: OCSP_NOCHECK,
            critical: false,
            extn_value: OctetString::new(der::asn1::Null.to_der()?)?,
        },
        extension(false, &SubjectKeyIdentifier(OctetString::new(ski)?))?,
        extension(false, &authority_key_id(issuer_ski)?)?,
    ])
}

/// Extended key usage of the audit checkpoint signer (provisional, under the same placeholder
/// private arc as the mandate extension): its key signs audit checkpoints and nothing else.
pub const AUDIT_SIGNING_EKU: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1.2");

/// Extensions of the audit checkpoint signer: digitalSignature (critical), the audit-signing
/// EKU only, SKI, AKI.
pub fn audit_signer_extensions(ski: &[u8], issuer_ski: &[u8]) -> Result<Vec<Extension>, CaError> {
    Ok(vec![
        extension(true, &KeyUsage(KeyUsages::DigitalSignature.into()))?,
        extension(false, &ExtendedKeyUsage(vec![AUDIT_SIGNING_EKU]))?,
        extension(false, &SubjectKeyIdentifier(OctetString::new(ski)?))?,
        extension(false, &authority_key_id(issuer_ski)?)?,
    ])
}

/// Extensions of the daemon's own HTTPS server certificate: serverAuth for `host` (an IP
/// address or a DNS name).
pub fn server_extensions(
    ski: &[u8],
    issuer_ski: &[u8],
    host: &str,
) -> Result<Vec<Extension>, CaError> {
    let san = match host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
    {
        Ok(std::net::IpAddr::V4(ip)) => GeneralName::IpAddress(OctetString::new(ip.octets())?),
        Ok(std::net::IpAddr::V6(ip)) => GeneralName::IpAddress(OctetString::new(ip.octets())?),
        Err(_) => GeneralName::DnsName(Ia5String::new(host)?),
    };
    Ok(vec![
        extension(true, &KeyUsage(KeyUsages::DigitalSignature.into()))?,
        extension(
            false,
            &ExtendedKeyUsage(vec![const_oid::db::rfc5280::ID_KP_SERVER_AUTH]),
        )?,
        extension(false, &SubjectKeyIdentifier(OctetString::new(ski)?))?,
        extension(false, &authority_key_id(issuer_ski)?)?,
        extension(false, &SubjectAltName(vec![san]))?,
    ])
}

/// Where relying parties find status and the issuer, as put into agent certificates.
pub struct PublicUrls<'a> {
    /// OCSP responder.
    pub ocsp: &'a str,
    /// Issuing CA certificate (DER).
    pub ca_issuers: &'a str,
    /// CRL distribution point.
    pub crl: &'a str,
}

/// Extensions of an agent certificate, per PRODUCT.md's profile.
pub fn agent_extensions(
    ski: &[u8],
    issuer_ski: &[u8],
    dns_name: &str,
    urls: &PublicUrls<'_>,
    mandate_der: Vec<u8>,
) -> Result<Vec<Extension>, CaError> {
    let uri = |s: &str| -> Result<GeneralName, CaError> {
        Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(s)?))
    };
    Ok(vec![
        extension(true, &KeyUsage(KeyUsages::DigitalSignature.into()))?,
        extension(false, &ExtendedKeyUsage(vec![ID_KP_CLIENT_AUTH]))?,
        extension(false, &SubjectKeyIdentifier(OctetString::new(ski)?))?,
        extension(false, &authority_key_id(issuer_ski)?)?,
        extension(
            false,
            &SubjectAltName(vec![GeneralName::DnsName(Ia5String::new(dns_name)?)]),
        )?,
        extension(
            false,
            &AuthorityInfoAccessSyntax(vec![
                AccessDescription {
                    access_method: ID_AD_OCSP,
                    access_location: uri(urls.ocsp)?,
                },
                AccessDescription {
                    access_method: ID_AD_CA_ISSUERS,
                    access_location: uri(urls.ca_issuers)?,
                },
            ]),
        )?,
        extension(
            false,
            &CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(urls.crl)?])),
                reasons: None,
                crl_issuer: None,
            }]),
        )?,
        Extension {
            extn_id: mandate_policy::MANDATE_EXTENSION_OID,
            critical: false,
            extn_value: OctetString::new(mandate_der)?,
        },
    ])
}

/// PEM armour for a DER certificate.
pub fn cert_pem(der: &[u8]) -> Result<String, CaError> {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)
        .map_err(|e| CaError::Internal(format!("PEM encoding: {e}")))
}

/// Lowercase hex SHA-256 of DER bytes: the fingerprint used everywhere.
pub fn sha256_hex(der: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_is_inclusive_and_capped() {
        assert_eq!(not_after(1_000, 1, i64::MAX), 1_000 + 86_399);
        assert_eq!(not_after(1_000, 365, 5_000), 5_000);
    }

    #[test]
    fn serials_are_positive_minimal_and_128_bits() {
        for _ in 0..200 {
            let (serial, hex) = random_serial().unwrap();
            assert_eq!(serial.as_bytes().len(), 16);
            assert!((0x40..=0x7f).contains(&serial.as_bytes()[0]));
            assert_eq!(hex.len(), 32);
        }
    }
}

#[cfg(test)]
mod serial_tests {
    use super::parse_serial;

    #[test]
    fn serials_are_read_in_every_documented_form() {
        let canonical = "4a1f0000000000000000000000000001";
        for form in [
            canonical,
            "4A1F0000000000000000000000000001",
            "04a1f0000000000000000000000000001",
            "00004a1f0000000000000000000000000001",
            " 4a1f0000000000000000000000000001 ",
        ] {
            assert_eq!(parse_serial(form).unwrap(), canonical, "{form}");
        }
        assert_eq!(parse_serial("ff").unwrap(), "00ff");
        assert_eq!(parse_serial("00ff").unwrap(), "00ff");
        assert_eq!(parse_serial("0").unwrap(), "00");
        for bad in ["", "zzz", "12g4", &"1".repeat(65)] {
            assert!(parse_serial(bad).is_err(), "{bad}");
        }
    }
}
