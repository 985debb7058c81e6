//! ACME (RFC 8555) against the real daemon, with a small JWS client made here (ring): the
//! directory, nonces, and accounts that require external account binding — and each way a
//! request can be refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use crate::harness::{Ca, full_mandate};

/// An ACME client key (P-256) and, once registered, its account URL.
struct Client {
    http: reqwest::Client,
    dir: Value,
    key: EcdsaKeyPair,
    jwk: Value,
    kid: Option<String>,
}

/// An answer: status, headers we check, JSON body.
struct Answer {
    status: StatusCode,
    nonce: Option<String>,
    location: Option<String>,
    body: Value,
}

impl Answer {
    #[track_caller]
    fn problem(&self, status: u16, kind: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.body["type"],
            format!("urn:ietf:params:acme:error:{kind}"),
            "{}",
            self.body
        );
        assert!(
            self.nonce.is_some(),
            "errors carry a fresh Replay-Nonce too"
        );
    }
}

impl Client {
    async fn new(base: &str) -> Client {
        let http = reqwest::Client::new();
        let dir: Value = http
            .get(format!("{base}/acme/directory"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let p = key.public_key().as_ref().to_vec();
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..])});
        Client {
            http,
            dir,
            key,
            jwk,
            kid: None,
        }
    }

    fn url(&self, name: &str) -> String {
        self.dir[name].as_str().unwrap().to_owned()
    }

    async fn nonce(&self) -> String {
        let r = self.http.head(self.url("newNonce")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        crate::contract::assert_documented("HEAD", "/acme/new-nonce", 200, "", &Value::Null);
        r.headers()["replay-nonce"].to_str().unwrap().to_owned()
    }

    /// A flattened JWS over `payload` (None: POST-as-GET) with this header.
    fn sign(&self, header: &Value, payload: Option<&Value>) -> Value {
        let protected = B64.encode(header.to_string());
        let payload = payload.map_or(String::new(), |p| B64.encode(p.to_string()));
        let sig = self
            .key
            .sign(
                &SystemRandom::new(),
                format!("{protected}.{payload}").as_bytes(),
            )
            .unwrap();
        json!({"protected": protected, "payload": payload, "signature": B64.encode(sig.as_ref())})
    }

    /// The usual header: ES256, a fresh nonce, the URL, and kid once registered (else jwk).
    async fn header(&self, url: &str) -> Value {
        let mut h = json!({"alg": "ES256", "nonce": self.nonce().await, "url": url});
        match &self.kid {
            Some(kid) => h["kid"] = json!(kid),
            None => h["jwk"] = self.jwk.clone(),
        }
        h
    }

    async fn send(&self, url: &str, jws: &Value) -> Answer {
        let r = self
            .http
            .post(url)
            .header("content-type", "application/jose+json")
            .body(jws.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
        let (nonce, location) = (header("replay-nonce"), header("location"));
        let content_type = header("content-type").unwrap_or_default();
        let bytes = r.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        // ACME answers are held to the OpenAPI document like every other.
        let path = reqwest::Url::parse(url).unwrap().path().to_owned();
        crate::contract::assert_documented("POST", &path, status.as_u16(), &content_type, &body);
        Answer {
            status,
            nonce,
            location,
            body,
        }
    }

    async fn post(&self, url: &str, payload: Option<&Value>) -> Answer {
        let jws = self.sign(&self.header(url).await, payload);
        self.send(url, &jws).await
    }

    /// The externalAccountBinding member for this client's key.
    fn eab(&self, kid: &str, hmac_b64: &str, url: &str) -> Value {
        let protected = B64.encode(json!({"alg": "HS256", "kid": kid, "url": url}).to_string());
        let payload = B64.encode(self.jwk.to_string());
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &B64.decode(hmac_b64).unwrap());
        let tag = ring::hmac::sign(&key, format!("{protected}.{payload}").as_bytes());
        json!({"protected": protected, "payload": payload, "signature": B64.encode(tag.as_ref())})
    }
}

async fn eab_for(ca: &Ca, agent: &str) -> (String, String) {
    let r =
        ca.d.post(&ca.operator, &format!("/v1/agents/{agent}/eab"), &json!({}))
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    (
        r.body["key_id"].as_str().unwrap().to_owned(),
        r.body["hmac_key"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn directory_and_nonces() {
    let ca = Ca::start().await;
    let c = Client::new(&ca.d.base).await;
    assert_eq!(c.dir["meta"]["externalAccountRequired"], true);
    for name in [
        "newNonce",
        "newAccount",
        "newOrder",
        "revokeCert",
        "keyChange",
    ] {
        assert!(
            c.url(name).starts_with(&format!("{}/acme/", ca.d.base)),
            "{name}: {}",
            c.dir
        );
    }
    let head = c.http.head(c.url("newNonce")).send().await.unwrap();
    assert_eq!(head.headers()["cache-control"], "no-store");
    assert!(
        head.headers()["link"]
            .to_str()
            .unwrap()
            .contains("rel=\"index\"")
    );
    let get = c.http.get(c.url("newNonce")).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::NO_CONTENT);
    crate::contract::assert_documented("GET", "/acme/new-nonce", 204, "", &Value::Null);
    assert_ne!(
        get.headers()["replay-nonce"],
        head.headers()["replay-nonce"]
    );
}

#[tokio::test]
async fn accounts_need_a_valid_single_use_eab_and_every_bad_request_gets_its_problem() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-acme", full_mandate()).await;
    let (kid, hmac) = eab_for(&ca, "bot-acme").await;
    let mut c = Client::new(&ca.d.base).await;
    let new_account = c.url("newAccount");
    let payload = |eab: Option<Value>| {
        let mut p = json!({"termsOfServiceAgreed": true, "contact": ["mailto:ops@example.com"]});
        if let Some(e) = eab {
            p["externalAccountBinding"] = e;
        }
        p
    };

    // No binding.
    c.post(&new_account, Some(&payload(None)))
        .await
        .problem(400, "externalAccountRequired");
    // A binding MACed with the wrong key, and one for a key id that does not exist.
    let wrong = c.eab(&kid, &B64.encode([7u8; 32]), &new_account);
    c.post(&new_account, Some(&payload(Some(wrong))))
        .await
        .problem(403, "unauthorized");
    let unknown = c.eab("eab_nope", &hmac, &new_account);
    c.post(&new_account, Some(&payload(Some(unknown))))
        .await
        .problem(403, "unauthorized");
    // crit in the protected header (RFC 7515 §4.1.11): we understand no extension, so any crit
    // is refused, even on an otherwise good request with a good binding, which it leaves
    // unused (the account below is made with it) and whose nonce it does not spend.
    let good = payload(Some(c.eab(&kid, &hmac, &new_account)));
    for crit in [json!(["b64"]), json!([]), json!("b64")] {
        let mut header = c.header(&new_account).await;
        header["crit"] = crit.clone();
        header["b64"] = json!(true);
        let refused = c.send(&new_account, &c.sign(&header, Some(&good))).await;
        refused.problem(400, "malformed");
        let detail = refused.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("\"crit\""), "{crit}: {detail}");
        assert!(refused.location.is_none(), "{crit}: no account");
        // The nonce of the refused request was not spent: without crit it is taken.
        if crit == json!([]) {
            header.as_object_mut().unwrap().remove("crit");
            header.as_object_mut().unwrap().remove("b64");
            c.send(&new_account, &c.sign(&header, Some(&payload(None))))
                .await
                .problem(400, "externalAccountRequired");
        }
    }

    // Protocol errors: a replayed nonce, the wrong url header, alg none, wrong content type.
    let header = c.header(&new_account).await;
    let jws = c.sign(&header, Some(&good));
    let replay = c.sign(&header, Some(&good));
    let first = c.send(&new_account, &jws).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let account_url = first.location.clone().unwrap();
    assert_eq!(first.body["status"], "valid");
    c.send(&new_account, &replay).await.problem(400, "badNonce");
    let mut elsewhere = c.header(&new_account).await;
    elsewhere["url"] = json!(c.url("newOrder"));
    c.send(&new_account, &c.sign(&elsewhere, Some(&payload(None))))
        .await
        .problem(403, "unauthorized");
    let mut none = c.header(&new_account).await;
    none["alg"] = json!("none");
    c.send(&new_account, &c.sign(&none, Some(&payload(None))))
        .await
        .problem(400, "badSignatureAlgorithm");
    let plain = c
        .http
        .post(&new_account)
        .header("content-type", "application/json")
        .body(jws.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);

    // The same key again: the same account, no binding needed.
    let again = c.post(&new_account, Some(&payload(None))).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.location.as_deref(), Some(account_url.as_str()));
    // The used binding cannot make a second account with another key.
    let other = Client::new(&ca.d.base).await;
    let reuse = payload(Some(other.eab(&kid, &hmac, &new_account)));
    other
        .post(&new_account, Some(&reuse))
        .await
        .problem(403, "unauthorized");
    // onlyReturnExisting for a key without an account.
    other
        .post(&new_account, Some(&json!({"onlyReturnExisting": true})))
        .await
        .problem(400, "accountDoesNotExist");

    // The account reads itself with its kid (POST-as-GET); a jwk-signed request may not.
    let jwk_signed = c.post(&account_url, None).await;
    jwk_signed.problem(400, "malformed");
    c.kid = Some(account_url.clone());
    let me = c.post(&account_url, None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["contact"], json!(["mailto:ops@example.com"]));
}

/// Checks an ACME PEM chain: `openssl verify` from `root` accepts it, and the leaf (written to
/// `dir/leaf.pem`) names `dns` and carries the mandate.
pub fn check_chain(dir: &std::path::Path, root: &std::path::Path, chain: &str, dns: &str) {
    use std::process::Command;

    use crate::harness::{here, run};
    let leaf = chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap();
    std::fs::write(dir.join("leaf.pem"), leaf).unwrap();
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    run(Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(root)
        .arg("-untrusted")
        .arg(dir.join("chain.pem"))
        .arg(dir.join("leaf.pem")));
    let parsed: Value = serde_json::from_str(&run(Command::new("python3")
        .arg(here("check_cert.py"))
        .arg(dir.join("leaf.pem"))))
    .unwrap();
    assert_eq!(parsed["san_dns"], json!([dns]), "{parsed}");
    assert!(
        parsed["mandate_der_hex"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "{parsed}"
    );
}

/// A registered client (account made with fresh EAB credentials for `agent`).
async fn registered(ca: &Ca, agent: &str) -> Client {
    let (kid, hmac) = eab_for(ca, agent).await;
    let mut c = Client::new(&ca.d.base).await;
    let url = c.url("newAccount");
    let eab = c.eab(&kid, &hmac, &url);
    let r = c
        .post(
            &url,
            Some(&json!({"termsOfServiceAgreed": true, "externalAccountBinding": eab})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    c.kid = r.location;
    c
}

/// The DER inside one PEM block (CSR or certificate), base64url as ACME carries it.
fn der_of(pem: &str) -> String {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    B64.encode(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
}

#[tokio::test]
async fn order_finalize_download_and_every_refusal() {
    use std::process::Command;

    use crate::harness::{csr, run};

    let ca = Ca::start().await;
    ca.approved_agent("bot-ord", full_mandate()).await;
    let c = registered(&ca, "bot-ord").await;
    let dns = "bot-ord.acme-trading.agents.example";
    let new_order = c.url("newOrder");

    // Only the agent's own name, alone.
    for ids in [
        json!([{"type": "dns", "value": "other.acme-trading.agents.example"}]),
        json!([{"type": "dns", "value": dns}, {"type": "dns", "value": "x.example"}]),
        json!([{"type": "ip", "value": "127.0.0.1"}]),
    ] {
        c.post(&new_order, Some(&json!({"identifiers": ids})))
            .await
            .problem(400, "rejectedIdentifier");
    }
    let made = c
        .post(
            &new_order,
            Some(&json!({"identifiers": [{"type": "dns", "value": dns}]})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(
        made.body["status"], "ready",
        "valid at once: the binding is the proof"
    );
    let order_url = made.location.unwrap();
    let authz = c
        .post(made.body["authorizations"][0].as_str().unwrap(), None)
        .await;
    assert_eq!(authz.body["status"], "valid", "{}", authz.body);
    let finalize = made.body["finalize"].as_str().unwrap().to_owned();

    // Bad CSRs: another agent's name, a weak key. The order stays ready.
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    for bad in [
        csr(
            d,
            "ec-p256",
            "/CN=someone-else",
            Some("DNS:someone-else.acme-trading.agents.example"),
        ),
        csr(d, "rsa-1024", "/CN=bot-ord", Some(&format!("DNS:{dns}"))),
    ] {
        c.post(&finalize, Some(&json!({"csr": der_of(&bad)})))
            .await
            .problem(400, "badCSR");
    }
    assert_eq!(c.post(&order_url, None).await.body["status"], "ready");

    // A good CSR: the order becomes valid with a certificate that carries the mandate.
    let good = csr(d, "ec-p256", "/CN=bot-ord", Some(&format!("DNS:{dns}")));
    let done = c
        .post(&finalize, Some(&json!({"csr": der_of(&good)})))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["status"], "valid");
    c.post(&finalize, Some(&json!({"csr": der_of(&good)})))
        .await
        .problem(403, "orderNotReady");
    let cert_url = done.body["certificate"].as_str().unwrap();
    let jws = c.sign(&c.header(cert_url).await, None);
    let got = c
        .http
        .post(cert_url)
        .header("content-type", "application/jose+json")
        .body(jws.to_string())
        .send()
        .await
        .unwrap();
    crate::contract::assert_documented_raw("POST", &got);
    assert_eq!(
        got.headers()["content-type"],
        "application/pem-certificate-chain"
    );
    let chain = got.text().await.unwrap();
    assert_eq!(
        chain.matches("BEGIN CERTIFICATE").count(),
        3,
        "leaf, intermediate, root"
    );
    let leaf = chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap();
    std::fs::write(d.join("root.pem"), ca.d.get_text("/ca/root.pem").await).unwrap();
    check_chain(d, &d.join("root.pem"), &chain, dns);

    // The certificate is this account's alone.
    let stranger = registered(&ca, "bot-ord").await;
    stranger
        .post(cert_url, None)
        .await
        .problem(400, "malformed");
    stranger
        .post(&order_url, None)
        .await
        .problem(400, "malformed");
    let listed = c
        .post(&format!("{}/orders", c.kid.clone().unwrap()), None)
        .await;
    assert_eq!(listed.body["orders"], json!([order_url]));

    // revokeCert by the account: a reason for operators only is refused, then OCSP says
    // revoked, and a second revocation is alreadyRevoked.
    let revoke = c.url("revokeCert");
    let leaf_b64 = der_of(&leaf.replace("CERTIFICATE-----", "CERTIFICATE REQUEST-----"));
    c.post(
        &revoke,
        Some(&json!({"certificate": leaf_b64, "reason": 9})),
    )
    .await
    .problem(400, "badRevocationReason");
    let other_agent = {
        ca.approved_agent("bot-other", full_mandate()).await;
        registered(&ca, "bot-other").await
    };
    other_agent
        .post(&revoke, Some(&json!({"certificate": leaf_b64})))
        .await
        .problem(403, "unauthorized");
    let r = c
        .post(
            &revoke,
            Some(&json!({"certificate": leaf_b64, "reason": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    std::fs::write(
        d.join("int.pem"),
        ca.d.get_text("/ca/intermediate.pem").await,
    )
    .unwrap();
    let ocsp = run(Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(d.join("int.pem"))
        .arg("-cert")
        .arg(d.join("leaf.pem"))
        .args(["-url", &format!("{}/ocsp", ca.d.base), "-CAfile"])
        .arg(d.join("root.pem"))
        .arg("-verify_other")
        .arg(d.join("int.pem")));
    assert!(
        ocsp.contains(": revoked") && ocsp.contains("keyCompromise"),
        "{ocsp}"
    );
    c.post(&revoke, Some(&json!({"certificate": leaf_b64})))
        .await
        .problem(400, "alreadyRevoked");

    // Kill switch: no new orders for the agent.
    let k =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-ord/revoke",
            &json!({"reason": "test"}),
        )
        .await;
    assert_eq!(k.status, StatusCode::OK, "{k:?}");
    c.post(
        &new_order,
        Some(&json!({"identifiers": [{"type": "dns", "value": dns}]})),
    )
    .await
    .problem(403, "unauthorized");
}

#[tokio::test]
async fn an_unapproved_agent_gets_an_account_but_no_order() {
    let ca = Ca::start().await;
    let r = ca.register("bot-pending", full_mandate()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let c = registered(&ca, "bot-pending").await;
    c.post(
        &c.url("newOrder"),
        Some(&json!({"identifiers": [{"type": "dns",
                     "value": "bot-pending.acme-trading.agents.example"}]})),
    )
    .await
    .problem(403, "unauthorized");
}

/// Orders and downloads a certificate for `dns` with client `c`; returns the leaf PEM.
async fn issue(c: &Client, dns: &str, dir: &std::path::Path) -> String {
    let made = c
        .post(
            &c.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": dns}]})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let agent = dns.split('.').next().unwrap();
    let csr = crate::harness::csr(
        dir,
        "ec-p256",
        &format!("/CN={agent}"),
        Some(&format!("DNS:{dns}")),
    );
    let done = c
        .post(
            made.body["finalize"].as_str().unwrap(),
            Some(&json!({"csr": der_of(&csr)})),
        )
        .await;
    assert_eq!(done.body["status"], "valid", "{}", done.body);
    let cert_url = done.body["certificate"].as_str().unwrap();
    let jws = c.sign(&c.header(cert_url).await, None);
    let chain = c
        .http
        .post(cert_url)
        .header("content-type", "application/jose+json")
        .body(jws.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap()
        .to_owned()
}

/// The RFC 9773 certID of a PEM certificate.
pub fn cert_id(pem: &str) -> String {
    use der::{Decode, DecodePem};
    let cert = x509_cert::Certificate::from_pem(pem.as_bytes()).unwrap();
    let aki = cert
        .tbs_certificate
        .extensions
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER)
        .unwrap();
    let aki =
        x509_cert::ext::pkix::AuthorityKeyIdentifier::from_der(aki.extn_value.as_bytes()).unwrap();
    format!(
        "{}.{}",
        B64.encode(aki.key_identifier.unwrap().as_bytes()),
        B64.encode(cert.tbs_certificate.serial_number.as_bytes())
    )
}

#[tokio::test]
async fn renewal_info_replaces_key_change_and_deactivation() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-ari", full_mandate()).await;
    let c = registered(&ca, "bot-ari").await;
    let dns = "bot-ari.acme-trading.agents.example";
    let work = tempfile::tempdir().unwrap();
    let leaf = issue(&c, dns, work.path()).await;

    // ARI: a window inside the validity, with Retry-After; unknown certIDs are refused.
    let id = cert_id(&leaf);
    let ari = c.url("renewalInfo");
    let r = c.http.get(format!("{ari}/{id}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("retry-after"));
    let window: Value = r.json().await.unwrap();
    let start = window["suggestedWindow"]["start"]
        .as_str()
        .unwrap()
        .to_owned();
    let end = window["suggestedWindow"]["end"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(start < end, "{window}");
    let bogus = c.http.get(format!("{ari}/AAAA.AAAA")).send().await.unwrap();
    assert_eq!(bogus.status(), StatusCode::BAD_REQUEST);

    // Renewal: a new order that replaces the old certificate, issued with the current mandate.
    let renewed = c
        .post(
            &c.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": dns}], "replaces": id})),
        )
        .await;
    assert_eq!(renewed.status, StatusCode::CREATED, "{}", renewed.body);

    // keyChange: the account moves to a new key; the old one no longer signs for it.
    let key_change = c.url("keyChange");
    let mut fresh = Client::new(&ca.d.base).await;
    let inner = fresh.sign(
        &json!({"alg": "ES256", "jwk": fresh.jwk, "url": key_change}),
        Some(&json!({"account": c.kid.clone().unwrap(), "oldKey": c.jwk})),
    );
    let changed = c.post(&key_change, Some(&inner)).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let account_url = c.kid.clone().unwrap();
    c.post(&account_url, None).await.problem(400, "malformed");
    fresh.kid = Some(account_url.clone());
    assert_eq!(fresh.post(&account_url, None).await.status, StatusCode::OK);

    // Contact update, then deactivation: after it the account can do nothing.
    let upd = fresh
        .post(
            &account_url,
            Some(&json!({"contact": ["mailto:desk@example.com"]})),
        )
        .await;
    assert_eq!(
        upd.body["contact"],
        json!(["mailto:desk@example.com"]),
        "{}",
        upd.body
    );
    let off = fresh
        .post(&account_url, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(off.body["status"], "deactivated", "{}", off.body);
    fresh
        .post(&account_url, None)
        .await
        .problem(403, "unauthorized");
    fresh
        .post(
            &fresh.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": dns}]})),
        )
        .await
        .problem(403, "unauthorized");
}

#[tokio::test]
async fn eab_credentials_from_the_cli_work_against_the_running_daemon() {
    use crate::harness::run;
    let ca = Ca::start().await;
    ca.approved_agent("bot-cli", full_mandate()).await;
    // The CLI makes the HSM master key (another process than the daemon): the daemon must find it.
    let out = run(ca.d.command().args(["agents", "eab", "bot-cli"]));
    let made: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(made["agent_id"], "bot-cli", "{made}");
    let c = Client::new(&ca.d.base).await;
    let url = c.url("newAccount");
    let eab = c.eab(
        made["key_id"].as_str().unwrap(),
        made["hmac_key"].as_str().unwrap(),
        &url,
    );
    let r = c
        .post(&url, Some(&json!({"externalAccountBinding": eab})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // And the other way round: credentials from the daemon, then from the CLI again.
    let (kid, _) = eab_for(&ca, "bot-cli").await;
    assert!(kid.starts_with("eab_"));
    let again: Value =
        serde_json::from_str(&run(ca.d.command().args(["agents", "eab", "bot-cli"]))).unwrap();
    assert_ne!(again["key_id"], made["key_id"]);
    // Unknown agents are refused with a message and a non-zero exit.
    let bad =
        ca.d.command()
            .args(["agents", "eab", "nobody"])
            .output()
            .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("nobody"),
        "{bad:?}"
    );
}
