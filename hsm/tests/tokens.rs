//! Functional tests against real tokens (no mocks), each test once on SoftHSM2 and once on
//! Kryoptic (`<test>::softhsm2`, `<test>::kryoptic`): two independent PKCS#11 implementations,
//! so that nothing here passes only because of one token's habits. Signatures are checked with
//! RustCrypto's verifiers, which parse the SubjectPublicKeyInfo independently.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mandate_hsm::testing::{TokenHarness, TokenKind};
use mandate_hsm::{Hsm, HsmConfig, HsmError, KeyId, KeyInfo, KeyKind, Pin, SignatureAlgorithm};

/// Makes `$name::softhsm2` and `$name::kryoptic`, two tests that run the async function
/// `$name(TokenKind)` on a runtime of `$threads` worker threads (2 unless given). A token whose
/// module is missing fails its test, unless `MANDATE_TEST_ALLOW_MISSING_TOKEN=1`.
macro_rules! on_each_token {
    ($name:ident) => {
        on_each_token!($name, 2);
    };
    ($name:ident, $threads:literal) => {
        mod $name {
            use mandate_hsm::testing::TokenKind;

            #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
            async fn softhsm2() {
                if !TokenKind::SoftHsm.skip_if_missing() {
                    super::$name(TokenKind::SoftHsm).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
            async fn kryoptic() {
                if !TokenKind::Kryoptic.skip_if_missing() {
                    super::$name(TokenKind::Kryoptic).await;
                }
            }
        }
    };
}

const ALL_ALGS: [SignatureAlgorithm; 4] = [
    SignatureAlgorithm::RsaPkcs1Sha256,
    SignatureAlgorithm::RsaPkcs1Sha384,
    SignatureAlgorithm::EcdsaSha256,
    SignatureAlgorithm::EcdsaSha384,
];

async fn connect(token: TokenKind, label: &str) -> (TokenHarness, Hsm) {
    let harness = TokenHarness::new(token, label).unwrap();
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
async fn exercise_kind(token: TokenKind, kind: KeyKind) {
    let (_harness, hsm) = connect(token, &format!("kind-{kind}")).await;
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

async fn ec_p256_generate_sign_verify(token: TokenKind) {
    exercise_kind(token, KeyKind::EcP256).await;
}
on_each_token!(ec_p256_generate_sign_verify);

async fn ec_p384_generate_sign_verify(token: TokenKind) {
    exercise_kind(token, KeyKind::EcP384).await;
}
on_each_token!(ec_p384_generate_sign_verify);

async fn rsa_2048_generate_sign_verify(token: TokenKind) {
    exercise_kind(token, KeyKind::Rsa2048).await;
}
on_each_token!(rsa_2048_generate_sign_verify);

async fn rsa_3072_generate_sign_verify(token: TokenKind) {
    exercise_kind(token, KeyKind::Rsa3072).await;
}
on_each_token!(rsa_3072_generate_sign_verify);

async fn rsa_4096_generate_sign_verify(token: TokenKind) {
    exercise_kind(token, KeyKind::Rsa4096).await;
}
on_each_token!(rsa_4096_generate_sign_verify);

async fn list_keys_returns_every_generated_key(token: TokenKind) {
    let (_harness, hsm) = connect(token, "list").await;
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
on_each_token!(list_keys_returns_every_generated_key);

async fn wrong_pin_is_a_permanent_error(token: TokenKind) {
    let harness = TokenHarness::new(token, "wrong-pin").unwrap();
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
on_each_token!(wrong_pin_is_a_permanent_error);

async fn unknown_token_label_is_reported_clearly(token: TokenKind) {
    let harness = TokenHarness::new(token, "present").unwrap();
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
on_each_token!(unknown_token_label_is_reported_clearly);

async fn bad_module_and_bad_config_are_reported(token: TokenKind) {
    let harness = TokenHarness::new(token, "bad-config").unwrap();
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
on_each_token!(bad_module_and_bad_config_are_reported);

async fn unknown_key_id_is_not_found(token: TokenKind) {
    let (_harness, hsm) = connect(token, "unknown-key").await;
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
on_each_token!(unknown_key_id_is_not_found);

async fn recovers_after_drop_all_sessions(token: TokenKind) {
    let (_harness, hsm) = connect(token, "drop-sessions").await;
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
on_each_token!(recovers_after_drop_all_sessions);

/// Logs the token out behind the pool's back, through a separate PKCS#11 context: every pooled
/// session then answers with "not logged in" or "object handle invalid", and the handle must
/// re-open, re-login and retry on its own.
async fn recovers_after_external_logout(token: TokenKind) {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    let (harness, hsm) = connect(token, "external-logout").await;
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
on_each_token!(recovers_after_external_logout);

async fn concurrent_signing_survives_dropped_sessions(token: TokenKind) {
    let harness = TokenHarness::new(token, "concurrent").unwrap();
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
on_each_token!(concurrent_signing_survives_dropped_sessions, 4);

async fn shutdown_refuses_later_calls(token: TokenKind) {
    let (harness, hsm) = connect(token, "shutdown").await;
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
on_each_token!(shutdown_refuses_later_calls);

async fn pin_never_shows_in_debug_output(token: TokenKind) {
    let harness = TokenHarness::new(token, "debug-pin").unwrap();
    let pin = harness.user_pin();
    let cfg = harness.hsm_config();
    assert_eq!(format!("{:?}", cfg.pin), "Pin(***)");
    let debug = format!("{cfg:?} {:#?} {harness:?}", cfg);
    assert!(!debug.contains(&pin), "PIN leaked in {debug}");
    let hsm = Hsm::connect(cfg).await.unwrap();
    assert!(!format!("{hsm:?}").contains(&pin));
}
on_each_token!(pin_never_shows_in_debug_output);

/// Two tokens in one process share the process's store (one configuration, named by the
/// kind's variable) and are told apart by label alone; both work side by side.
async fn harness_shares_one_config_per_process(token: TokenKind) {
    let a = TokenHarness::new(token, "same").unwrap();
    let b = TokenHarness::new(token, "same").unwrap();
    assert_eq!(a.kind(), token);
    assert_eq!(a.conf_path(), b.conf_path());
    assert_ne!(a.token_label(), b.token_label());
    assert_ne!(a.user_pin(), b.user_pin());
    assert_eq!(
        std::env::var_os(token.conf_env()).unwrap(),
        a.conf_path().as_os_str()
    );
    assert!(a.conf_path().is_file());
    let (ha, hb) = (
        Hsm::connect(a.hsm_config()).await.unwrap(),
        Hsm::connect(b.hsm_config()).await.unwrap(),
    );
    let ka = ha.generate_key(KeyKind::EcP256, "a").await.unwrap();
    assert_eq!(hb.list_keys().await.unwrap(), vec![], "tokens are separate");
    let err = hb.find_key(&ka.id).await.unwrap_err();
    assert!(matches!(err, HsmError::KeyNotFound { .. }), "{err}");
}
on_each_token!(harness_shares_one_config_per_process);

async fn hmac_keys_stay_in_the_token_and_mac_deterministically(token: TokenKind) {
    let (_h, hsm) = connect(token, "hmac").await;
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
on_each_token!(hmac_keys_stay_in_the_token_and_mac_deterministically);

/// Data objects (the audit anchor's CKO_DATA): private token objects of one application,
/// read back by label, invisible to other applications, destroyed by label, and still there
/// after every session is dropped.
async fn data_objects_keep_values_per_application(token: TokenKind) {
    let (_h, hsm) = connect(token, "data").await;
    assert!(hsm.data_objects("app-a").await.unwrap().is_empty());
    hsm.put_data("app-a", "first", b"one").await.unwrap();
    hsm.put_data("app-a", "second", &[0u8; 1024]).await.unwrap();
    hsm.put_data("app-b", "first", b"other").await.unwrap();
    let mut a = hsm.data_objects("app-a").await.unwrap();
    a.sort();
    assert_eq!(
        a,
        vec![
            ("first".to_owned(), b"one".to_vec()),
            ("second".to_owned(), vec![0u8; 1024])
        ]
    );
    // The largest value mandate keeps fits; a larger one is refused before the token sees it.
    let big = vec![7u8; mandate_hsm::MAX_DATA_LEN];
    hsm.put_data("app-c", "big", &big).await.unwrap();
    assert_eq!(
        hsm.data_objects("app-c").await.unwrap(),
        vec![("big".to_owned(), big)]
    );
    assert!(
        hsm.put_data(
            "app-c",
            "too-big",
            &vec![0u8; mandate_hsm::MAX_DATA_LEN + 1]
        )
        .await
        .is_err()
    );
    // Data objects are not keys.
    assert!(hsm.list_keys().await.unwrap().is_empty());

    hsm.drop_all_sessions().await.unwrap();
    assert_eq!(hsm.data_objects("app-a").await.unwrap().len(), 2);
    let destroyed = hsm
        .destroy_data("app-a", &["first".to_owned(), "missing".to_owned()])
        .await
        .unwrap();
    assert_eq!(destroyed, 1);
    assert_eq!(
        hsm.data_objects("app-a").await.unwrap(),
        vec![("second".to_owned(), vec![0u8; 1024])]
    );
    assert_eq!(
        hsm.data_objects("app-b").await.unwrap(),
        vec![("first".to_owned(), b"other".to_vec())]
    );
}
on_each_token!(data_objects_keep_values_per_application);

/// Changes the user PIN of `token` from `from` to `to` through a separate PKCS#11 context
/// (logging in with `from` unless the process is logged in already), then logs the token out,
/// as an officer changing the PIN while the daemon runs would leave it. Errors are the token's.
fn change_pin(token: &TokenHarness, from: &str, to: &str) -> Result<(), cryptoki::error::Error> {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    let p = Pkcs11::new(token.module_path()).unwrap();
    // The Hsm already initialised the library in this process; that is expected.
    let _ = p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = p
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| p.get_token_info(*s).unwrap().label() == token.token_label())
        .unwrap();
    let session = p.open_rw_session(slot)?;
    let (from, to) = (AuthPin::from(from), AuthPin::from(to));
    match session.login(UserType::User, Some(&from)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => return Err(e),
    }
    session.set_pin(&from, &to)?;
    session.logout()
    // Dropped without C_Finalize: the library belongs to the Hsm.
}

/// A handle whose PIN the token refused never presents it again. Tokens other than SoftHSM
/// lock the user PIN after a few wrong tries (Kryoptic after 10): if every new session of the
/// pool tried the old PIN once more, a PIN changed under a running daemon would lock the token
/// within a few requests, and the PIN could not even be changed back.
async fn a_refused_pin_is_never_presented_again(token: TokenKind) {
    let (harness, hsm) = connect(token, "pin-changed").await;
    let key = hsm.generate_key(KeyKind::EcP256, "k").await.unwrap();
    let alg = key.kind.default_signature_algorithm();
    hsm.sign(&key.id, alg, b"before").await.unwrap();
    let old = harness.user_pin();
    let new = format!("{old}-new");

    let h = std::sync::Arc::new(harness);
    let (h2, o, n) = (h.clone(), old.clone(), new.clone());
    tokio::task::spawn_blocking(move || change_pin(&h2, &o, &n))
        .await
        .unwrap()
        .unwrap();
    // More requests than Kryoptic allows wrong tries, each needing a fresh login.
    for _ in 0..15 {
        let err = hsm.sign(&key.id, alg, b"after").await.unwrap_err();
        assert!(matches!(err, HsmError::PinIncorrect), "{err}");
        assert!(!err.is_temporary());
        let err = hsm.ping().await.unwrap_err();
        assert!(matches!(err, HsmError::PinIncorrect), "{err}");
    }
    // The token was asked once: the new PIN still opens it, and the old one can be set back.
    let (h2, o, n) = (h.clone(), old.clone(), new.clone());
    tokio::task::spawn_blocking(move || change_pin(&h2, &n, &o))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the PIN was locked by repeated tries: {e}"));
    // The refusing handle stays refused (a restart with the right PIN is the cure); a new
    // one works.
    let err = hsm.sign(&key.id, alg, b"still").await.unwrap_err();
    assert!(matches!(err, HsmError::PinIncorrect), "{err}");
    let again = Hsm::connect(h.hsm_config()).await.unwrap();
    let sig = again.sign(&key.id, alg, b"again").await.unwrap();
    verify(&key, alg, b"again", &sig);
}
on_each_token!(a_refused_pin_is_never_presented_again);
