//! A real ACME client, the `instant-acme` crate, against the daemon over HTTPS on loopback
//! (its own self-issued server certificate, trusted through our root): account with external
//! account binding → order → finalize → download → the chain verifies with openssl and carries
//! the mandate → renewal information and a renewal → revokeCert, then OCSP says revoked.

use std::process::Command;

use base64::Engine;
use instant_acme::{
    Account, AuthorizationStatus, CertificateIdentifier, ExternalAccountKey, Identifier,
    NewAccount, NewOrder, OrderStatus, RetryPolicy, RevocationReason, RevocationRequest,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Ca, csr, free_port, full_mandate, run};

/// The CSR in a PEM file, as DER.
fn csr_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// Orders, finalizes and downloads a certificate for `dns`; returns the PEM chain.
async fn order_and_download(
    account: &Account,
    dns: &str,
    dir: &std::path::Path,
    replaces: Option<CertificateIdentifier<'_>>,
) -> String {
    let ids = [Identifier::Dns(dns.to_owned())];
    let mut new = NewOrder::new(&ids);
    if let Some(r) = replaces {
        new = new.replaces(r);
    }
    let mut order = account.new_order(&new).await.unwrap();
    assert_eq!(
        order.state().status,
        OrderStatus::Ready,
        "no challenge: EAB is the proof"
    );
    let mut authzs = order.authorizations();
    while let Some(a) = authzs.next().await {
        assert_eq!(a.unwrap().status, AuthorizationStatus::Valid);
    }
    let agent = dns.split('.').next().unwrap();
    let pem = csr(
        dir,
        "ec-p256",
        &format!("/CN={agent}"),
        Some(&format!("DNS:{dns}")),
    );
    order.finalize_csr(&csr_der(&pem)).await.unwrap();
    order
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn instant_acme_over_https_eab_order_renew_revoke() {
    let tls_port = free_port();
    let ca =
        Ca::start_with_config(&format!("[http]\ntls_listen = \"127.0.0.1:{tls_port}\"\n")).await;
    ca.approved_agent("bot-ia", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let root = d.join("root.pem");
    std::fs::write(&root, ca.d.get_text("/ca/root.pem").await).unwrap();
    std::fs::write(
        d.join("int.pem"),
        ca.d.get_text("/ca/intermediate.pem").await,
    )
    .unwrap();

    // EAB credentials from the operator, then the account over HTTPS.
    let eab =
        ca.d.post(&ca.operator, "/v1/agents/bot-ia/eab", &json!({}))
            .await;
    assert_eq!(eab.status, StatusCode::CREATED, "{eab:?}");
    let hmac = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(eab.body["hmac_key"].as_str().unwrap())
        .unwrap();
    let key = ExternalAccountKey::new(eab.body["key_id"].as_str().unwrap().to_owned(), &hmac);
    let directory = format!("https://127.0.0.1:{tls_port}/acme/directory");
    let (account, _credentials) = Account::builder_with_root(&root)
        .unwrap()
        .create(
            &NewAccount {
                contact: &["mailto:desk@example.com"],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.clone(),
            Some(&key),
        )
        .await
        .unwrap();

    // Order, finalize, download: the chain verifies and the leaf carries the mandate.
    let dns = "bot-ia.acme-trading.agents.example";
    let chain = order_and_download(&account, dns, d, None).await;
    let leaf = chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap()
        .to_owned();
    crate::acme::check_chain(d, &root, &chain, dns);

    // Renewal information, then a renewal that names the certificate it replaces.
    let id = crate::acme::cert_id(&leaf);
    let (aki, serial) = id.split_once('.').unwrap();
    let cert_id = CertificateIdentifier {
        authority_key_identifier: aki.to_owned().into(),
        serial: serial.to_owned().into(),
    };
    let (info, _retry) = account.renewal_info(&cert_id).await.unwrap();
    assert!(info.suggested_window.start < info.suggested_window.end);
    let renewed = order_and_download(&account, dns, d, Some(cert_id)).await;
    assert_ne!(renewed, chain, "a new certificate");

    // revokeCert: OCSP (plain HTTP, as RFC 5019 wants) says revoked.
    let der = {
        use der::DecodePem;
        use der::Encode;
        x509_cert::Certificate::from_pem(leaf.as_bytes())
            .unwrap()
            .to_der()
            .unwrap()
    };
    let cert = rustls::pki_types::CertificateDer::from(der);
    account
        .revoke(&RevocationRequest {
            certificate: &cert,
            reason: Some(RevocationReason::KeyCompromise),
        })
        .await
        .unwrap();
    let out = run(Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(d.join("int.pem"))
        .arg("-cert")
        .arg(d.join("leaf.pem"))
        .args(["-url", &format!("{}/ocsp", ca.d.base), "-CAfile"])
        .arg(&root)
        .arg("-verify_other")
        .arg(d.join("int.pem")));
    assert!(out.contains(": revoked"), "{out}");
}
