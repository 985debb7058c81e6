//! Reading an OCSP response (RFC 6960) offline: who signed it, what it says about the leaf.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::ID_KP_OCSP_SIGNING;
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256};
use const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC;
use der::{Decode, Encode, Header, Reader, SliceReader, Tag};
use sha1::Digest;
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus};

use crate::RevocationStatus;
use crate::cert::{Cert, check_validity, first_element};

/// Largest OCSP response accepted, in bytes.
pub const MAX_OCSP_LEN: usize = 64 * 1024;

/// How far in the future a thisUpdate may lie (clock skew), in seconds.
pub const CLOCK_SKEW_SECS: i64 = 300;

/// Reads `der` as an OCSP response about `leaf`, which `issuer` issued, at `now`. Every
/// problem is an error whose text says what was wrong.
pub(crate) fn check(
    der: &[u8],
    leaf: &Cert<'_>,
    issuer: &Cert<'_>,
    now: i64,
) -> Result<RevocationStatus, String> {
    read_basic(der, |basic, tbs, cert_ders, signature| {
        check_signer(issuer, basic, tbs, signature, cert_ders, now)?;

        let data = &basic.tbs_response_data;
        let serial = leaf.cert.tbs_certificate.serial_number.as_bytes();
        let name_der = issuer
            .cert
            .tbs_certificate
            .subject
            .to_der()
            .map_err(|e| format!("the issuer name does not encode ({e})"))?;
        let key_bits = issuer
            .cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        let single = data
            .responses
            .iter()
            .find(|r| {
                let id = &r.cert_id;
                id.serial_number.as_bytes() == serial
                    && hash(id.hash_algorithm.oid, &name_der)
                        .is_some_and(|h| h == id.issuer_name_hash.as_bytes())
                    && hash(id.hash_algorithm.oid, key_bits)
                        .is_some_and(|h| h == id.issuer_key_hash.as_bytes())
            })
            .ok_or_else(|| {
                format!(
                    "the OCSP response has no status for serial {} from issuer \"{}\" \
                 (it covers {} other certificate(s))",
                    leaf.serial_hex(),
                    issuer.subject_text(),
                    data.responses.len()
                )
            })?;

        let this_update = unix(&single.this_update);
        if this_update > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(format!(
                "the OCSP response's thisUpdate {} is in the future",
                crate::time_text(this_update)
            ));
        }
        if let Some(next) = &single.next_update {
            let next_update = unix(next);
            if now > next_update {
                return Err(format!(
                    "the OCSP response is stale: its nextUpdate was {}",
                    crate::time_text(next_update)
                ));
            }
        }
        Ok(match &single.cert_status {
            CertStatus::Good(_) => RevocationStatus::Good,
            CertStatus::Revoked(info) => RevocationStatus::Revoked {
                revoked_at: unix(&info.revocation_time),
                reason: info
                    .revocation_reason
                    .and_then(|r| u8::try_from(r as u32).ok()),
            },
            CertStatus::Unknown(_) => RevocationStatus::Unknown,
        })
    })
}

/// Reads `der` as a successful basic OCSP response and hands `then` the parsed response, its
/// signed part and certificates as received, and its signature.
fn read_basic<T>(
    der: &[u8],
    then: impl FnOnce(&BasicOcspResponse, &[u8], &[&[u8]], &[u8]) -> Result<T, String>,
) -> Result<T, String> {
    if der.len() > MAX_OCSP_LEN {
        return Err(format!(
            "the OCSP response is {} bytes; at most {MAX_OCSP_LEN} are accepted",
            der.len()
        ));
    }
    let response = OcspResponse::from_der(der)
        .map_err(|e| format!("the OCSP response is not a DER OCSPResponse ({e})"))?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(format!(
            "the OCSP responder answered {:?}, not successful",
            response.response_status
        ));
    }
    let bytes = response
        .response_bytes
        .ok_or("the OCSP response has no responseBytes")?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(format!(
            "the OCSP response type is {}, not id-pkix-ocsp-basic",
            crate::cert::oid_name(bytes.response_type)
        ));
    }
    let basic_der = bytes.response.as_bytes();
    let basic = BasicOcspResponse::from_der(basic_der)
        .map_err(|e| format!("the BasicOCSPResponse does not decode ({e})"))?;
    let (tbs, cert_ders) = basic_parts(basic_der)
        .map_err(|e| format!("the BasicOCSPResponse does not decode ({e})"))?;
    let signature = basic
        .signature
        .as_bytes()
        .ok_or("the OCSP signature is not a whole number of bytes")?;

    then(&basic, tbs, &cert_ders, signature)
}

/// Checks the response signature: by the issuer's own key, or by a delegated responder whose
/// certificate is in `certs`, was issued by the issuer, carries id-kp-OCSPSigning and is
/// valid at `now`.
fn check_signer(
    issuer: &Cert<'_>,
    basic: &BasicOcspResponse,
    tbs: &[u8],
    signature: &[u8],
    cert_ders: &[&[u8]],
    now: i64,
) -> Result<(), String> {
    let alg = &basic.signature_algorithm;
    let Err(issuer_key) = issuer.public_key()?.verify(alg, tbs, signature) else {
        return Ok(());
    };
    let mut notes = Vec::new();
    for (i, der) in cert_ders.iter().enumerate() {
        let responder = match Cert::parse(der) {
            Ok(c) => c,
            Err(why) => {
                notes.push(format!("certs[{i}] {why}"));
                continue;
            }
        };
        let name = responder.subject_text();
        if let Err(why) = responder.check_issued_by(issuer) {
            notes.push(format!("responder \"{name}\" {why}"));
            continue;
        }
        match responder.has_eku(ID_KP_OCSP_SIGNING) {
            Ok(true) => {}
            Ok(false) => {
                notes.push(format!("responder \"{name}\" lacks id-kp-OCSPSigning"));
                continue;
            }
            Err(why) => {
                notes.push(format!("responder \"{name}\": {why}"));
                continue;
            }
        }
        let mut expired = Vec::new();
        check_validity(&responder, "the OCSP responder", now, &mut expired);
        if let Some(r) = expired.first() {
            notes.push(r.detail.clone());
            continue;
        }
        match responder
            .public_key()
            .and_then(|k| k.verify(alg, tbs, signature))
        {
            Ok(()) => return Ok(()),
            Err(why) => notes.push(format!("responder \"{name}\": {why}")),
        }
    }
    notes.insert(0, format!("issuer key: {issuer_key}"));
    Err(format!(
        "the OCSP response is not signed by the issuer \"{}\" nor by a responder it authorized ({})",
        issuer.subject_text(),
        notes.join("; ")
    ))
}

/// The signed `tbsResponseData` and the certificates of a BasicOCSPResponse, as received.
fn basic_parts(der: &[u8]) -> der::Result<(&[u8], Vec<&[u8]>)> {
    let tbs = first_element(der)?;
    let mut reader = SliceReader::new(der)?;
    let outer = Header::decode(&mut reader)?;
    outer.tag.assert_eq(Tag::Sequence)?;
    let _tbs = reader.tlv_bytes()?;
    let _algorithm = reader.tlv_bytes()?;
    let _signature = reader.tlv_bytes()?;
    let mut certs = Vec::new();
    if !reader.is_finished() {
        // certs [0] EXPLICIT SEQUENCE OF Certificate
        let tagged = Header::decode(&mut reader)?;
        let inner = reader.read_slice(tagged.length)?;
        let mut seq = SliceReader::new(inner)?;
        let header = Header::decode(&mut seq)?;
        header.tag.assert_eq(Tag::Sequence)?;
        let body = seq.read_slice(header.length)?;
        let mut items = SliceReader::new(body)?;
        while !items.is_finished() {
            certs.push(items.tlv_bytes()?);
        }
    }
    Ok((tbs, certs))
}

/// The CertID hash of `data` under `alg`, for the algorithms CertIDs use.
fn hash(alg: ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    match alg {
        ID_SHA_1 => Some(sha1::Sha1::digest(data).to_vec()),
        ID_SHA_256 => Some(sha2::Sha256::digest(data).to_vec()),
        _ => None,
    }
}

fn unix(t: &x509_ocsp::OcspGeneralizedTime) -> i64 {
    i64::try_from(t.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// The revocations an OCSP response states about certificates of one of `issuers`: signed by
/// that issuer or by a responder it authorized (valid when the response was produced). Good and
/// unknown statuses are left out.
pub(crate) fn revocations(
    der: &[u8],
    issuers: &[Cert<'_>],
) -> Result<Vec<crate::ProvenRevocation>, String> {
    read_basic(der, |basic, tbs, cert_ders, signature| {
        let produced = unix(&basic.tbs_response_data.produced_at);
        let mut out = Vec::new();
        let mut signed_by: Option<usize> = None;
        for single in &basic.tbs_response_data.responses {
            let CertStatus::Revoked(info) = &single.cert_status else {
                continue;
            };
            let id = &single.cert_id;
            let issuer = issuers.iter().position(|issuer| {
                let Ok(name_der) = issuer.cert.tbs_certificate.subject.to_der() else {
                    return false;
                };
                let key_bits = issuer
                    .cert
                    .tbs_certificate
                    .subject_public_key_info
                    .subject_public_key
                    .raw_bytes();
                hash(id.hash_algorithm.oid, &name_der)
                    .is_some_and(|h| h == id.issuer_name_hash.as_bytes())
                    && hash(id.hash_algorithm.oid, key_bits)
                        .is_some_and(|h| h == id.issuer_key_hash.as_bytes())
            });
            let Some(i) = issuer else {
                return Err(format!(
                    "it names serial {} of an issuer this CA does not have",
                    hex::encode(id.serial_number.as_bytes())
                ));
            };
            if signed_by != Some(i) {
                check_signer(&issuers[i], basic, tbs, signature, cert_ders, produced)?;
                signed_by = Some(i);
            }
            out.push(crate::ProvenRevocation {
                serial_hex: hex::encode(id.serial_number.as_bytes()),
                revoked_at: unix(&info.revocation_time),
                reason: info
                    .revocation_reason
                    .and_then(|r| u8::try_from(r as u32).ok()),
                issuer: i,
            });
        }
        Ok(out)
    })
}
