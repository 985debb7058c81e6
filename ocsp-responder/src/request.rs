use std::collections::HashSet;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
use der::Decode;
use der::asn1::OctetString;
use x509_cert::ext::Extension;
use x509_ocsp::{CertId, OcspRequest};

use crate::Refusal;

/// Largest request read; one CertID with a nonce is about 100 bytes.
pub const MAX_REQUEST_BYTES: usize = 4096;

/// Longest nonce echoed: RFC 8954 allows 1 to 32 octets.
const MAX_NONCE: usize = 32;

/// The request extensions we act on (RFC 6960 §4.4.1, RFC 8954): only the nonce. Any other one
/// marked critical asks for something we do not do, so the request is refused.
const UNDERSTOOD_REQUEST_EXTENSIONS: &[ObjectIdentifier] = &[ID_PKIX_OCSP_NONCE];

/// The per-certificate (singleRequestExtensions) extensions we act on: none. RFC 6960 defines
/// the nonce for requestExtensions only, so a nonce here is just another unknown extension.
const UNDERSTOOD_SINGLE_EXTENSIONS: &[ObjectIdentifier] = &[];

/// What a request asks.
#[derive(Debug, Clone)]
pub struct Query {
    /// The one certificate asked about, exactly as the client named it.
    pub cert_id: CertId,
    /// The nonce to echo, if the client sent one.
    pub nonce: Option<Vec<u8>>,
}

/// Parses a DER OCSP request. One certificate per request (RFC 5019 §2.1.1): several are
/// refused as `malformedRequest`, like garbage, trailing bytes and oversized input.
///
/// Extensions are read strictly, in requestExtensions and in the Request's
/// singleRequestExtensions alike, and each of these is `malformedRequest` too (RFC 6960 has
/// no closer status):
/// - an empty extensions list (`Extensions ::= SEQUENCE SIZE (1..MAX)`, RFC 5280 §4.1);
/// - the same extension OID twice (RFC 5280 §4.2), so two nonces are refused;
/// - an extension marked critical that we do not act on (RFC 5280 §4.2; for requests the
///   nonce is the only one we act on);
/// - a nonce whose extnValue is not exactly one DER OCTET STRING, or whose octets are outside
///   RFC 8954's 1 to 32.
pub fn parse_request(der: &[u8]) -> Result<Query, Refusal> {
    if der.is_empty() || der.len() > MAX_REQUEST_BYTES {
        return Err(Refusal::MalformedRequest);
    }
    let req = OcspRequest::from_der(der).map_err(|_| Refusal::MalformedRequest)?;
    let [single] = req.tbs_request.request_list.as_slice() else {
        return Err(Refusal::MalformedRequest);
    };
    if let Some(exts) = &single.single_request_extensions {
        check_extensions(exts, UNDERSTOOD_SINGLE_EXTENSIONS)?;
    }
    let nonce = match &req.tbs_request.request_extensions {
        Some(exts) => {
            check_extensions(exts, UNDERSTOOD_REQUEST_EXTENSIONS)?;
            exts.iter()
                .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE)
                .map(nonce)
                .transpose()?
        }
        None => None,
    };
    Ok(Query {
        cert_id: single.req_cert.clone(),
        nonce,
    })
}

/// Checks one Extensions field: not empty, no OID twice, nothing critical outside
/// `understood`. What the understood ones hold is checked by their readers.
fn check_extensions(exts: &[Extension], understood: &[ObjectIdentifier]) -> Result<(), Refusal> {
    if exts.is_empty() {
        return Err(Refusal::MalformedRequest);
    }
    let mut seen = HashSet::with_capacity(exts.len());
    for ext in exts {
        if !seen.insert(ext.extn_id) {
            return Err(Refusal::MalformedRequest);
        }
        if ext.critical && !understood.contains(&ext.extn_id) {
            return Err(Refusal::MalformedRequest);
        }
    }
    Ok(())
}

/// The octets of a nonce extension (RFC 8954 §2.1: `Nonce ::= OCTET STRING(SIZE(1..32))`):
/// its extnValue must hold exactly one DER OCTET STRING and nothing after it. A bare value (not
/// wrapped in an OCTET STRING, as some old clients send) is refused rather than guessed at: we
/// would have to echo something the client may not recognise.
fn nonce(ext: &Extension) -> Result<Vec<u8>, Refusal> {
    let inner =
        OctetString::from_der(ext.extn_value.as_bytes()).map_err(|_| Refusal::MalformedRequest)?;
    let bytes = inner.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_NONCE {
        return Err(Refusal::MalformedRequest);
    }
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;
    use der::asn1::Any;
    use spki::AlgorithmIdentifierOwned;
    use x509_cert::serial_number::SerialNumber;
    use x509_ocsp::{Request, TbsRequest};

    /// What `openssl ocsp -issuer ca.pem -serial 0x1234 -reqout` wrote: a SHA-1 CertID and a
    /// 16-octet nonce, non-critical, wrapped in an OCTET STRING as RFC 6960 wants.
    const OPENSSL_REQUEST: &str = "30683066303f303d303b300906052b0e03021a05000414e65bcbdad296ed62\
         b214bef1f69ef436b41ea7c20414a975bb4b814f77149cd2292277c4df0b225900e602021234a2233021301f\
         06092b060105050730010204120410316896e7655865ef9c810b31a5b493c9";

    /// An OID of no extension we know (a private arc).
    const UNKNOWN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.42");

    fn cert_id() -> CertId {
        CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ID_SHA_1,
                parameters: Some(Any::null()),
            },
            issuer_name_hash: OctetString::new([1u8; 20]).unwrap(),
            issuer_key_hash: OctetString::new([2u8; 20]).unwrap(),
            serial_number: SerialNumber::new(&[0x12, 0x34]).unwrap(),
        }
    }

    /// An extension whose extnValue is `value`, byte for byte.
    fn ext(oid: ObjectIdentifier, critical: bool, value: &[u8]) -> Extension {
        Extension {
            extn_id: oid,
            critical,
            extn_value: OctetString::new(value).unwrap(),
        }
    }

    /// A well-formed nonce extension: `octets` wrapped in a DER OCTET STRING.
    fn nonce_ext(octets: &[u8]) -> Extension {
        let wrapped = OctetString::new(octets).unwrap().to_der().unwrap();
        ext(ID_PKIX_OCSP_NONCE, false, &wrapped)
    }

    /// The DER of a one-certificate request with these requestExtensions and
    /// singleRequestExtensions.
    fn request(
        request_exts: Option<Vec<Extension>>,
        single_exts: Option<Vec<Extension>>,
    ) -> Vec<u8> {
        OcspRequest {
            tbs_request: TbsRequest {
                version: Default::default(),
                requestor_name: None,
                request_list: vec![Request {
                    req_cert: cert_id(),
                    single_request_extensions: single_exts,
                }],
                request_extensions: request_exts,
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    }

    fn refused(der: &[u8]) -> bool {
        parse_request(der).err() == Some(Refusal::MalformedRequest)
    }

    #[test]
    fn openssl_request_with_its_nonce_is_read() {
        let q = parse_request(&hex::decode(OPENSSL_REQUEST).unwrap()).unwrap();
        assert_eq!(q.cert_id.serial_number.as_bytes(), [0x12, 0x34]);
        assert_eq!(
            q.nonce.as_deref(),
            Some(&hex::decode("316896e7655865ef9c810b31a5b493c9").unwrap()[..])
        );
    }

    #[test]
    fn nonces_of_1_to_32_octets_are_echoed_others_refused() {
        assert!(parse_request(&request(None, None)).unwrap().nonce.is_none());
        for len in [1, 16, 32] {
            let q = parse_request(&request(Some(vec![nonce_ext(&vec![7; len])]), None)).unwrap();
            assert_eq!(q.nonce, Some(vec![7; len]), "{len} octets");
        }
        for len in [0, 33, 64] {
            assert!(
                refused(&request(Some(vec![nonce_ext(&vec![7; len])]), None)),
                "{len} octets"
            );
        }
        // A critical nonce is still a nonce: we understand it.
        let mut critical = nonce_ext(&[9; 16]);
        critical.critical = true;
        let q = parse_request(&request(Some(vec![critical]), None)).unwrap();
        assert_eq!(q.nonce, Some(vec![9; 16]));
    }

    #[test]
    fn a_nonce_not_exactly_one_der_octet_string_is_refused() {
        let bare = [0x31u8; 16];
        let trailing = [
            &OctetString::new([7u8; 16]).unwrap().to_der().unwrap()[..],
            &[0],
        ]
        .concat();
        let integer = [0x02, 0x01, 0x05];
        // BER's constructed OCTET STRING (one primitive segment inside): not DER.
        let constructed = [0x24, 0x04, 0x04, 0x02, 0x07, 0x07];
        // A length in long form where the short form fits: not DER.
        let long_length = [&[0x04, 0x81, 0x10][..], &[7u8; 16]].concat();
        let cases: [(&str, &[u8]); 6] = [
            ("bare octets", &bare),
            ("trailing byte", &trailing),
            ("INTEGER", &integer),
            ("constructed", &constructed),
            ("long-form length", &long_length),
            ("empty extnValue", &[]),
        ];
        for (what, value) in cases {
            let der = request(Some(vec![ext(ID_PKIX_OCSP_NONCE, false, value)]), None);
            assert!(refused(&der), "{what}");
        }
    }

    #[test]
    fn the_same_extension_twice_is_refused() {
        let two_nonces = request(Some(vec![nonce_ext(&[1; 16]), nonce_ext(&[1; 16])]), None);
        assert!(refused(&two_nonces));
        let other_nonce = request(Some(vec![nonce_ext(&[1; 16]), nonce_ext(&[2; 16])]), None);
        assert!(refused(&other_nonce));
        let two_unknown = request(
            Some(vec![
                ext(UNKNOWN, false, &[5, 0]),
                ext(UNKNOWN, false, &[5, 0]),
            ]),
            None,
        );
        assert!(refused(&two_unknown));
        let in_single = request(
            None,
            Some(vec![
                ext(UNKNOWN, false, &[5, 0]),
                ext(UNKNOWN, false, &[5, 0]),
            ]),
        );
        assert!(refused(&in_single));
    }

    #[test]
    fn unknown_critical_extensions_are_refused_unknown_others_ignored() {
        let critical = || ext(UNKNOWN, true, &[5, 0]);
        let plain = || ext(UNKNOWN, false, &[5, 0]);
        assert!(refused(&request(Some(vec![critical()]), None)));
        assert!(refused(&request(
            Some(vec![nonce_ext(&[1; 16]), critical()]),
            None
        )));
        assert!(refused(&request(None, Some(vec![critical()]))));

        let q = parse_request(&request(Some(vec![plain(), nonce_ext(&[1; 16])]), None)).unwrap();
        assert_eq!(q.nonce, Some(vec![1; 16]));
        let q = parse_request(&request(None, Some(vec![plain()]))).unwrap();
        assert!(q.nonce.is_none());

        // RFC 6960 defines the nonce for requestExtensions: in singleRequestExtensions it is
        // one more extension we do not act on (not echoed; refused if critical).
        let q = parse_request(&request(None, Some(vec![nonce_ext(&[1; 16])]))).unwrap();
        assert!(q.nonce.is_none());
        let mut critical_nonce = nonce_ext(&[1; 16]);
        critical_nonce.critical = true;
        assert!(refused(&request(None, Some(vec![critical_nonce]))));
    }

    #[test]
    fn empty_extension_lists_are_refused() {
        // Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension.
        assert!(refused(&request(Some(Vec::new()), None)));
        assert!(refused(&request(None, Some(Vec::new()))));
    }

    #[test]
    fn garbage_trailing_bytes_and_oversize_are_refused() {
        let good = request(None, None);
        assert!(parse_request(&good).is_ok());
        assert!(refused(&[good.clone(), vec![0]].concat()));
        assert!(refused(b"hello"));
        assert!(refused(&[]));
        assert!(refused(&vec![0x30; MAX_REQUEST_BYTES + 1]));
    }
}
