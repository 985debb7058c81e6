//! Functional tests against a real SoftHSM2 token (no mocks). Signatures are checked with
//! RustCrypto's verifiers, which parse the SubjectPublicKeyInfo independently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mandate_hsm::testing::SoftHsmHarness;
use mandate_hsm::{Hsm, HsmConfig, HsmError, KeyId, KeyInfo, KeyKind, Pin, SignatureAlgorithm};

const ALL_ALGS: [SignatureAlgorithm; 4] = [
    SignatureAlgorithm::RsaPkcs1Sha256,
    SignatureAlgorithm::RsaPkcs1Sha384,
    SignatureAlgorithm::EcdsaSha256,
    SignatureAlgorithm::EcdsaSha384,
];

async fn connect(label: &str) -> (SoftHsmHarness, Hsm) {
    let harness = SoftHsmHarness::new(label).unwrap();
    let hsm = Hsm::connect(harness.hsm_config()).await.unwrap();
    (harness, hsm)
}

/// Verifies `sig` over `msg` with an independent implementation; panics if it is wrong.
fn verify(key: &KeyInfo, alg: SignatureAlgorithm, msg: &[u8], sig: &[u8]) {
    use p256::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    match alg {
        SignatureAlgorithm::EcdsaSha256 => {
            let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&key.spki_der).unwrap();
            let sig = p256::ecdsa::Signature::from_der(sig).unwrap();
            vk.verify(msg, &sig).unwrap();
        }
        SignatureAlgorithm::EcdsaSha384 => {
            let vk = p384::ecdsa::VerifyingKey::from_public_key_der(&key.spki_der).unwrap();
            let sig = p384::ecdsa::Signature::from_der(sig).unwrap();
            vk.verify(msg, &sig).unwrap();
        }
        SignatureAlgorithm::RsaPkcs1Sha256 | SignatureAlgorithm::RsaPkcs1Sha384 => {
            let pk = rsa::RsaPublicKey::from_public_key_der(&key.spki_der).unwrap();
            let sig = rsa::pkcs1v15::Signature::try_from(sig).unwrap();
            if alg == SignatureAlgorithm::RsaPkcs1Sha256 {
                rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(pk)
                    .verify(msg, &sig)
                    .unwrap();
            } else {
                rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(pk)
                    .verify(msg, &sig)
                    .unwrap();
            }
        }
    }
}

/// Generates a key of `kind`, reads it back, signs with every algorithm that fits and checks
/// that the others are refused.
async fn exercise_kind(kind: KeyKind) {
    let (_harness, hsm) = connect(&format!("kind-{kind}")).await;
    let label = format!("test {kind}");
    let key = hsm.generate_key(kind, &label).await.unwrap();
    assert_eq!(key.kind, kind);
    assert_eq!(key.label, label);
    assert_eq!(key.id.as_bytes().len(), 16);
    assert!(key.sensitive, "private key must be sensitive");
    assert!(!key.extractable, "private key must not be extractable");
    assert!(
        key.never_extractable,
        "private key must never have been extractable"
    );

    let found = hsm.find_key(&key.id).await.unwrap();
    assert_eq!(found, key);
    let parsed: KeyId = key.id.to_string().parse().unwrap();
    assert_eq!(parsed, key.id);

    let msg = format!("tbsCertificate stand-in for {kind}").into_bytes();
    let mut signed = 0;
    for alg in ALL_ALGS {
        let result = hsm.sign(&key.id, alg, &msg).await;
        if kind.supports(alg) {
            let sig = result.unwrap();
            verify(&key, alg, &msg, &sig);
            // A flipped message must not verify: the verifier is really checking.
            let other = std::panic::catch_unwind(|| verify(&key, alg, b"other", &sig));
            assert!(other.is_err(), "{alg:?} verified the wrong message");
            signed += 1;
        } else {
            let err = result.unwrap_err();
            assert!(
                matches!(err, HsmError::AlgorithmMismatch { kind: k, algorithm: a } if k == kind && a == alg),
                "{kind} with {alg:?}: {err}"
            );
            assert!(!err.is_temporary());
        }
    }
    assert!(signed >= 1);
    assert!(kind.supports(kind.default_signature_algorithm()));
    hsm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec_p256_generate_sign_verify() {
    exercise_kind(KeyKind::EcP256).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec_p384_generate_sign_verify() {
    exercise_kind(KeyKind::EcP384).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_2048_generate_sign_verify() {
    exercise_kind(KeyKind::Rsa2048).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_3072_generate_sign_verify() {
    exercise_kind(KeyKind::Rsa3072).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_4096_generate_sign_verify() {
    exercise_kind(KeyKind::Rsa4096).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_keys_returns_every_generated_key() {
    let (_harness, hsm) = connect("list").await;
    assert!(hsm.list_keys().await.unwrap().is_empty());
    let b = hsm.generate_key(KeyKind::EcP384, "b-key").await.unwrap();
    let a = hsm.generate_key(KeyKind::EcP256, "a-key").await.unwrap();
    let c = hsm.generate_key(KeyKind::Rsa2048, "c-key").await.unwrap();
    let listed = hsm.list_keys().await.unwrap();
    assert_eq!(listed, vec![a, b, c]);
    for key in &listed {
        assert!(key.sensitive && !key.extractable && key.never_extractable);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_pin_is_a_permanent_error() {
    let harness = SoftHsmHarness::new("wrong-pin").unwrap();
    let cfg = HsmConfig {
        pin: Pin::new("definitely-not-the-pin".into()),
        ..harness.hsm_config()
    };
    let err = Hsm::connect(cfg).await.unwrap_err();
    assert!(matches!(err, HsmError::PinIncorrect), "{err}");
    assert!(!err.is_temporary());
    assert!(!err.to_string().contains("definitely-not-the-pin"));
    // The right PIN still works afterwards.
    Hsm::connect(harness.hsm_config()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_token_label_is_reported_clearly() {
    let harness = SoftHsmHarness::new("present").unwrap();
    let cfg = HsmConfig {
        token_label: "no-such-token".into(),
        ..harness.hsm_config()
    };
    let err = Hsm::connect(cfg).await.unwrap_err();
    match &err {
        HsmError::TokenNotFound { label, present } => {
            assert_eq!(label, "no-such-token");
            assert!(present.iter().any(|l| l == harness.token_label()));
        }
        other => panic!("expected TokenNotFound, got {other}"),
    }
    assert!(err.is_temporary());
    assert!(err.to_string().contains("no-such-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_module_and_bad_config_are_reported() {
    let harness = SoftHsmHarness::new("bad-config").unwrap();
    let err = Hsm::connect(HsmConfig {
        module_path: "/nonexistent/libpkcs11.so".into(),
        ..harness.hsm_config()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, HsmError::ModuleUnavailable { .. }), "{err}");
    assert!(err.is_temporary());
    let err = Hsm::connect(HsmConfig {
        pool_size: 0,
        ..harness.hsm_config()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, HsmError::InvalidInput { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_id_is_not_found() {
    let (_harness, hsm) = connect("unknown-key").await;
    let id: KeyId = "00112233445566778899aabbccddeeff".parse().unwrap();
    let err = hsm.find_key(&id).await.unwrap_err();
    assert!(
        matches!(&err, HsmError::KeyNotFound { id: i } if *i == id),
        "{err}"
    );
    assert!(!err.is_temporary());
    let err = hsm
        .sign(&id, SignatureAlgorithm::EcdsaSha256, b"x")
        .await
        .unwrap_err();
    assert!(matches!(err, HsmError::KeyNotFound { .. }), "{err}");
    // "Not found" must not have been mistaken for a lost session.
    assert_eq!(hsm.recovery_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_after_drop_all_sessions() {
    let (_harness, hsm) = connect("drop-sessions").await;
    let key = hsm.generate_key(KeyKind::EcP256, "recover").await.unwrap();
    let alg = SignatureAlgorithm::EcdsaSha256;
    verify(
        &key,
        alg,
        b"before",
        &hsm.sign(&key.id, alg, b"before").await.unwrap(),
    );

    hsm.drop_all_sessions().await.unwrap();
    verify(
        &key,
        alg,
        b"after",
        &hsm.sign(&key.id, alg, b"after").await.unwrap(),
    );

    hsm.drop_all_sessions().await.unwrap();
    hsm.ping().await.unwrap();
    hsm.drop_all_sessions().await.unwrap();
    assert_eq!(hsm.list_keys().await.unwrap(), vec![key.clone()]);
    hsm.drop_all_sessions().await.unwrap();
    assert_eq!(hsm.find_key(&key.id).await.unwrap(), key);
    hsm.drop_all_sessions().await.unwrap();
    let second = hsm
        .generate_key(KeyKind::EcP384, "after-drop")
        .await
        .unwrap();
    let sig = hsm
        .sign(&second.id, SignatureAlgorithm::EcdsaSha384, b"m")
        .await
        .unwrap();
    verify(&second, SignatureAlgorithm::EcdsaSha384, b"m", &sig);
}

/// Logs the token out behind the pool's back, through a separate PKCS#11 context: every pooled
/// session then answers with "not logged in" or "object handle invalid", and the handle must
/// re-open, re-login and retry on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_after_external_logout() {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    let (harness, hsm) = connect("external-logout").await;
    let key = hsm.generate_key(KeyKind::EcP256, "k").await.unwrap();
    let alg = SignatureAlgorithm::EcdsaSha256;
    hsm.sign(&key.id, alg, b"warm the cache").await.unwrap();

    let module = harness.module_path().to_path_buf();
    let label = harness.token_label().to_owned();
    let logout_everything = move || {
        let p = Pkcs11::new(&module).unwrap();
        // The Hsm already initialised the library in this process; that is expected.
        let _ = p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
        let slot = p
            .get_slots_with_initialized_token()
            .unwrap()
            .into_iter()
            .find(|s| p.get_token_info(*s).unwrap().label() == label)
            .unwrap();
        let session = p.open_ro_session(slot).unwrap();
        session.logout().unwrap();
        // Dropped without C_Finalize: the library belongs to the Hsm.
    };

    let before = hsm.recovery_count();
    tokio::task::spawn_blocking(logout_everything.clone())
        .await
        .unwrap();
    let sig = hsm.sign(&key.id, alg, b"after logout").await.unwrap();
    verify(&key, alg, b"after logout", &sig);
    assert!(hsm.recovery_count() > before, "sign should have recovered");

    let before = hsm.recovery_count();
    tokio::task::spawn_blocking(logout_everything.clone())
        .await
        .unwrap();
    hsm.ping().await.unwrap();
    assert!(hsm.recovery_count() > before, "ping should have recovered");

    tokio::task::spawn_blocking(logout_everything.clone())
        .await
        .unwrap();
    assert_eq!(hsm.list_keys().await.unwrap(), vec![key.clone()]);
    tokio::task::spawn_blocking(logout_everything.clone())
        .await
        .unwrap();
    assert_eq!(hsm.find_key(&key.id).await.unwrap(), key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_signing_survives_dropped_sessions() {
    let harness = SoftHsmHarness::new("concurrent").unwrap();
    let hsm = Hsm::connect(HsmConfig {
        pool_size: 3,
        ..harness.hsm_config()
    })
    .await
    .unwrap();
    let ec = hsm.generate_key(KeyKind::EcP256, "ec").await.unwrap();
    let rsa = hsm.generate_key(KeyKind::Rsa2048, "rsa").await.unwrap();

    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let hsm = hsm.clone();
        let key = if t % 2 == 0 { ec.clone() } else { rsa.clone() };
        tasks.push(tokio::spawn(async move {
            let alg = key.kind.default_signature_algorithm();
            for i in 0..40u32 {
                let msg = format!("task {t} message {i}").into_bytes();
                let sig = hsm.sign(&key.id, alg, &msg).await.unwrap();
                verify(&key, alg, &msg, &sig);
            }
        }));
    }
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        hsm.drop_all_sessions().await.unwrap();
    }
    for task in tasks {
        task.await.unwrap();
    }
    hsm.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_later_calls() {
    let (harness, hsm) = connect("shutdown").await;
    let key = hsm.generate_key(KeyKind::EcP256, "k").await.unwrap();
    let clone = hsm.clone();
    hsm.shutdown().await;
    let err = clone
        .sign(&key.id, SignatureAlgorithm::EcdsaSha256, b"x")
        .await
        .unwrap_err();
    assert!(matches!(err, HsmError::ShutDown), "{err}");
    assert!(matches!(clone.ping().await, Err(HsmError::ShutDown)));
    hsm.shutdown().await; // twice is harmless
    // A new connection to the same token works and still finds the key.
    let again = Hsm::connect(harness.hsm_config()).await.unwrap();
    assert_eq!(again.find_key(&key.id).await.unwrap().id, key.id);
    assert_eq!(again.token_label(), harness.token_label());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_never_shows_in_debug_output() {
    let harness = SoftHsmHarness::new("debug-pin").unwrap();
    let pin = harness.user_pin();
    let cfg = harness.hsm_config();
    assert_eq!(format!("{:?}", cfg.pin), "Pin(***)");
    let debug = format!("{cfg:?} {:#?} {harness:?}", cfg);
    assert!(!debug.contains(&pin), "PIN leaked in {debug}");
    let hsm = Hsm::connect(cfg).await.unwrap();
    assert!(!format!("{hsm:?}").contains(&pin));
}

#[test]
fn harness_shares_one_config_per_process() {
    let a = SoftHsmHarness::new("same").unwrap();
    let b = SoftHsmHarness::new("same").unwrap();
    assert_eq!(a.conf_path(), b.conf_path());
    assert_ne!(a.token_label(), b.token_label());
    assert_ne!(a.user_pin(), b.user_pin());
    assert_eq!(
        std::env::var_os("SOFTHSM2_CONF").unwrap(),
        a.conf_path().as_os_str()
    );
    assert!(a.conf_path().is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_keys_stay_in_the_token_and_mac_deterministically() {
    let (_h, hsm) = connect("hmac").await;
    let a = hsm.generate_hmac_key("eab-master").await.unwrap();
    let b = hsm.generate_hmac_key("eab-master").await.unwrap();
    assert_ne!(a, b, "each key gets its own random CKA_ID");
    let m1 = hsm.hmac_sha256(&a, b"kid-1").await.unwrap();
    assert_eq!(m1.len(), 32);
    assert_eq!(m1, hsm.hmac_sha256(&a, b"kid-1").await.unwrap());
    assert_ne!(m1, hsm.hmac_sha256(&a, b"kid-2").await.unwrap());
    assert_ne!(m1, hsm.hmac_sha256(&b, b"kid-1").await.unwrap());
    // Secret keys are not key pairs: they never show up as signing keys.
    assert!(hsm.list_keys().await.unwrap().is_empty());
    let missing = hsm
        .hmac_sha256(&KeyId::new(vec![7; 16]), b"x")
        .await
        .unwrap_err();
    assert!(
        matches!(missing, HsmError::KeyNotFound { .. }),
        "{missing:?}"
    );
    // After every session is dropped (an HSM restart), the key is still there.
    hsm.drop_all_sessions().await.unwrap();
    assert_eq!(m1, hsm.hmac_sha256(&a, b"kid-1").await.unwrap());
}
