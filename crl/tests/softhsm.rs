//! CRLs signed by a key in a real SoftHSM token, decoded back and checked independently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use der::{Decode, Encode};
use mandate_crl::{CrlIssuer, RevokedEntry, sign};
use mandate_hsm::testing::SoftHsmHarness;
use mandate_hsm::{Hsm, KeyKind};
use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::crl::CrlNumber;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};
use x509_cert::name::Name;

#[tokio::test]
async fn a_signed_crl_decodes_to_what_was_asked_and_verifies() {
    let harness = SoftHsmHarness::new("crl").unwrap();
    let hsm = Hsm::connect(harness.hsm_config()).await.unwrap();
    let key = hsm
        .generate_key(KeyKind::EcP256, "crl-issuer")
        .await
        .unwrap();
    let issuer = CrlIssuer {
        name: "CN=Test Issuing CA,O=Test".parse::<Name>().unwrap(),
        key_identifier: vec![0xab; 20],
        key_id: key.id.clone(),
        algorithm: KeyKind::EcP256.default_signature_algorithm(),
    };
    let entries = [
        RevokedEntry {
            serial: vec![0x41, 0x02],
            revoked_at: 1_800_000_000,
            reason: 1,
        },
        RevokedEntry {
            serial: vec![0x7f, 0xff, 0x01],
            revoked_at: 1_800_000_100,
            reason: 0,
        },
    ];
    let der = sign(&hsm, &issuer, 300, 1_800_000_200, 1_800_003_800, &entries)
        .await
        .unwrap();

    let crl = CertificateList::from_der(&der).unwrap();
    let tbs = &crl.tbs_cert_list;
    assert_eq!(tbs.version, x509_cert::Version::V2);
    assert_eq!(tbs.issuer, issuer.name);
    let revoked = tbs.revoked_certificates.as_ref().unwrap();
    assert_eq!(revoked.len(), 2);
    assert_eq!(revoked[0].serial_number.as_bytes(), [0x41, 0x02]);
    let reason_ext = &revoked[0].crl_entry_extensions.as_ref().unwrap()[0];
    assert_eq!(
        CrlReason::from_der(reason_ext.extn_value.as_bytes()).unwrap(),
        CrlReason::KeyCompromise
    );
    assert!(
        revoked[1].crl_entry_extensions.is_none(),
        "unspecified has no reasonCode"
    );
    let exts = tbs.crl_extensions.as_ref().unwrap();
    let aki = AuthorityKeyIdentifier::from_der(exts[0].extn_value.as_bytes()).unwrap();
    assert_eq!(aki.key_identifier.unwrap().as_bytes(), [0xab; 20]);
    let number = CrlNumber::from_der(exts[1].extn_value.as_bytes()).unwrap();
    assert_eq!(
        number.0.as_bytes(),
        300u64
            .to_be_bytes()
            .as_slice()
            .strip_prefix(&[0; 6])
            .unwrap()
    );

    // The signature verifies with the key's public half, over the exact TBS bytes.
    let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&key.spki_der).unwrap();
    let sig = p256::ecdsa::Signature::from_der(crl.signature.as_bytes().unwrap()).unwrap();
    vk.verify(&tbs.to_der().unwrap(), &sig).unwrap();

    // No entries: the revokedCertificates field is absent, not an empty SEQUENCE.
    let empty = sign(&hsm, &issuer, 301, 1_800_000_200, 1_800_003_800, &[])
        .await
        .unwrap();
    let crl = CertificateList::from_der(&empty).unwrap();
    assert!(crl.tbs_cert_list.revoked_certificates.is_none());

    let bad = sign(
        &hsm,
        &issuer,
        302,
        0,
        1,
        &[RevokedEntry {
            serial: vec![1],
            revoked_at: 0,
            reason: 7,
        }],
    )
    .await;
    assert!(bad.is_err(), "reason 7 is not a CRLReason");
}
