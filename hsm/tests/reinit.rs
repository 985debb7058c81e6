//! C_Initialize / C_Finalize are process-wide, so this lives in its own test binary (its own
//! process) where nothing else holds the module: `ensure_token` must finalise on return, and
//! `Hsm::connect` must then be able to initialise the library again, more than once. Run on
//! SoftHSM2 and on Kryoptic: each module is its own library, so the two tests do not meet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mandate_hsm::testing::{TokenHarness, TokenKind};
use mandate_hsm::{Hsm, KeyKind, Pin, softhsm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_then_initialize_again_in_one_process_softhsm2() {
    if !TokenKind::SoftHsm.skip_if_missing() {
        finalize_then_initialize_again(TokenKind::SoftHsm).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_then_initialize_again_in_one_process_kryoptic() {
    if !TokenKind::Kryoptic.skip_if_missing() {
        finalize_then_initialize_again(TokenKind::Kryoptic).await;
    }
}

async fn finalize_then_initialize_again(token: TokenKind) {
    // ensure_token ran (and finalised) inside the harness.
    let harness = TokenHarness::new(token, "reinit").unwrap();

    let hsm = Hsm::connect(harness.hsm_config()).await.unwrap();
    let key = hsm.generate_key(KeyKind::EcP256, "survivor").await.unwrap();
    hsm.shutdown().await; // last user: C_Finalize

    // A second token created while nothing holds the module, then a fresh connection to the
    // first one: two more initialise/finalise rounds.
    let created = softhsm::ensure_token(
        harness.module_path(),
        "reinit-second",
        &Pin::new("so-pin-1234".into()),
        &Pin::new("user-pin-1234".into()),
    )
    .unwrap();
    assert!(created);
    let again = softhsm::ensure_token(
        harness.module_path(),
        "reinit-second",
        &Pin::new("so-pin-1234".into()),
        &Pin::new("user-pin-1234".into()),
    )
    .unwrap();
    assert!(!again, "an existing token must be left alone");

    let hsm = Hsm::connect(harness.hsm_config()).await.unwrap();
    let found = hsm.find_key(&key.id).await.unwrap();
    assert_eq!(found, key);
    let sig = hsm
        .sign(&key.id, key.kind.default_signature_algorithm(), b"m")
        .await
        .unwrap();
    assert!(!sig.is_empty());
    drop(hsm); // dropping the last clone finalises too

    let hsm = Hsm::connect(harness.hsm_config()).await.unwrap();
    hsm.ping().await.unwrap();
}
