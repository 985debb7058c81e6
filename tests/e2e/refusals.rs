//! Every refusal is a documented problem+json answer and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{Ca, csr, full_mandate};

#[tokio::test]
async fn bad_certification_requests_are_refused_and_store_nothing() {
    let ca = Ca::start().await;
    let work = tempfile::tempdir().unwrap();
    let good = csr(work.path(), "ec-p256", "/CN=bot-r", None);

    // Not yet approved.
    assert_eq!(
        ca.register("bot-r", full_mandate()).await.status,
        StatusCode::CREATED
    );
    ca.certify(&ca.operator, "bot-r", &good)
        .await
        .assert_problem(409, "mandate-not-approved");
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/bot-r/approve",
            &json!({"version": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    // A CSR whose signature does not verify: flip a bit inside the signature value.
    let der = pem_body(&good);
    let mut bad = der.clone();
    let n = bad.len();
    bad[n - 5] ^= 0x01;
    let tampered = pem("CERTIFICATE REQUEST", &bad);
    let cases = [
        (tampered, "bad-csr-signature"),
        (csr(work.path(), "rsa-1024", "/CN=bot-r", None), "weak-key"),
        (
            csr(work.path(), "secp256k1", "/CN=bot-r", None),
            "unsupported-key",
        ),
        (
            csr(work.path(), "ec-p256", "/CN=someone-else", None),
            "name-not-allowed",
        ),
        (
            csr(work.path(), "ec-p256", "/CN=bot-r/O=Evil Corp", None),
            "name-not-allowed",
        ),
        (
            csr(
                work.path(),
                "ec-p256",
                "/CN=bot-r",
                Some("DNS:bank.example"),
            ),
            "name-not-allowed",
        ),
        (
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                .to_owned(),
            "bad-csr",
        ),
        ("hello".to_owned(), "bad-csr"),
    ];
    for (req, kind) in &cases {
        ca.certify(&ca.operator, "bot-r", req)
            .await
            .assert_problem(400, kind);
    }
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-r/certify",
            &json!({"csr": good, "validity_days": 366}),
        )
        .await;
    r.assert_problem(400, "invalid-request");
    ca.certify(&ca.operator, "no-such-bot", &good)
        .await
        .assert_problem(404, "not-found");

    let list =
        ca.d.get(&ca.operator, "/v1/agents/bot-r/certificates")
            .await;
    assert_eq!(list.body["items"], json!([]), "refusals stored something");

    // The good one still works, with the asked-for validity.
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/agents/bot-r/certify",
            &json!({"csr": good, "validity_days": 30}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
}

#[tokio::test]
async fn bad_registrations_are_refused() {
    let ca = Ca::start().await;
    let mut wrong_id = full_mandate();
    wrong_id["agentId"] = json!("other-bot");
    let mut bad_currency = full_mandate();
    bad_currency["maxTransactionSize"]["currency"] = json!("euro");
    let mut unknown = full_mandate();
    unknown["maxLeverage"] = json!(10);
    for m in [wrong_id, bad_currency, unknown] {
        ca.register("bot-x", m)
            .await
            .assert_problem(422, "invalid-mandate");
    }
    ca.register("Bad_Id", full_mandate())
        .await
        .assert_problem(400, "invalid-request");
    assert_eq!(
        ca.register("bot-x", full_mandate()).await.status,
        StatusCode::CREATED
    );
    ca.register("bot-x", full_mandate())
        .await
        .assert_problem(409, "conflict");
    let r = ca.d.get(&ca.operator, "/v1/agents").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{r:?}");

    // Transport-level refusals are problems too.
    let huge = "x".repeat(100 * 1024);
    ca.d.post(&ca.operator, "/v1/agents", &json!({"agent_id": huge}))
        .await
        .assert_problem(413, "body-too-large");
    ca.d.post_raw(
        &ca.operator,
        "/v1/agents",
        Some("application/json"),
        "{not json",
    )
    .await
    .assert_problem(400, "invalid-json");
    ca.d.post_raw(&ca.operator, "/v1/agents", None, "agent_id=x")
        .await
        .assert_problem(415, "unsupported-media-type");
    ca.d.get(&ca.operator, "/v1/nothing-here")
        .await
        .assert_problem(404, "not-found");
    ca.d.request(Method::DELETE, Some(&ca.operator), "/v1/agents", None)
        .await
        .assert_problem(405, "method-not-allowed");
}

#[tokio::test]
async fn every_endpoint_checks_authentication_and_role() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-1", full_mandate()).await;
    assert_eq!(
        ca.register("bot-2", full_mandate()).await.status,
        StatusCode::CREATED
    );
    let auditor = ca.d.key("auditor", None).await;
    let agent1 = ca.d.key("agent", Some("bot-1")).await;
    let admin = ca.d.admin_key();
    let work = tempfile::tempdir().unwrap();
    let csr2 = csr(work.path(), "ec-p256", "/CN=bot-2", None);
    let csr1 = csr(work.path(), "ec-p256", "/CN=bot-1", None);
    let register = json!({"agent_id": "bot-3", "name": "n", "organization": "acme-trading",
                          "mandate": {"operator": "Acme"}});
    let new_key = json!({"role": "operator", "label": "x"});

    // (key, method, path, body) that must be refused with 403.
    let forbidden = [
        (&ca.operator, "/v1/agents/bot-2/approve", json!({})),
        (&admin, "/v1/agents/bot-2/approve", json!({})),
        (&agent1, "/v1/agents/bot-2/approve", json!({})),
        (&ca.compliance, "/v1/agents", register.clone()),
        (&auditor, "/v1/agents", register.clone()),
        (&admin, "/v1/agents", register.clone()),
        (
            &ca.compliance,
            "/v1/agents/bot-1/certify",
            json!({"csr": csr1}),
        ),
        (&auditor, "/v1/agents/bot-1/certify", json!({"csr": csr1})),
        (&agent1, "/v1/agents/bot-2/certify", json!({"csr": csr2})),
        (&ca.operator, "/v1/api-keys", new_key.clone()),
        (&ca.compliance, "/v1/api-keys", new_key.clone()),
        (&agent1, "/v1/api-keys", new_key.clone()),
    ];
    for (key, path, body) in &forbidden {
        ca.d.post(key, path, body)
            .await
            .assert_problem(403, "forbidden");
    }
    for path in ["/v1/agents", "/v1/agents/bot-2"] {
        ca.d.get(&agent1, path)
            .await
            .assert_problem(403, "forbidden");
    }
    assert_eq!(
        ca.d.get(&agent1, "/v1/agents/bot-1").await.status,
        StatusCode::OK
    );
    assert_eq!(
        ca.d.get(&auditor, "/v1/agents").await.status,
        StatusCode::OK
    );

    // No key, a malformed key, an unknown key: 401 with WWW-Authenticate.
    let bogus = "mk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for key in [None, Some("not-a-key"), Some(bogus)] {
        let r =
            ca.d.request(Method::POST, key, "/v1/agents", Some(&register))
                .await;
        r.assert_problem(401, "unauthorized");
        let r =
            ca.d.request(Method::GET, key, "/v1/agents/bot-1", None)
                .await;
        r.assert_problem(401, "unauthorized");
    }
    // Nothing was changed by any of it.
    assert_eq!(
        ca.d.get(&auditor, "/v1/agents/bot-2").await.body["status"],
        "pending_approval"
    );
    ca.d.get(&auditor, "/v1/agents/bot-3")
        .await
        .assert_problem(404, "not-found");
}

fn pem_body(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[tokio::test]
async fn query_and_optional_body_rejections_are_problems_too() {
    let ca = Ca::start().await;
    assert_eq!(
        ca.register("bot-q", full_mandate()).await.status,
        StatusCode::CREATED
    );
    ca.d.get(&ca.operator, "/v1/agents?limit=abc")
        .await
        .assert_problem(400, "invalid-request");
    ca.d.get(&ca.operator, "/v1/agents?limit=500")
        .await
        .assert_problem(400, "invalid-request");
    let huge = json!({"comment": "x".repeat(100 * 1024)});
    ca.d.post(&ca.compliance, "/v1/agents/bot-q/approve", &huge)
        .await
        .assert_problem(413, "body-too-large");
    ca.d.post(
        &ca.compliance,
        "/v1/agents/bot-q/approve",
        &json!({"version": "one"}),
    )
    .await
    .assert_problem(422, "invalid-json");
    ca.d.post_raw(
        &ca.compliance,
        "/v1/agents/bot-q/approve",
        None,
        "version=1",
    )
    .await
    .assert_problem(415, "unsupported-media-type");
    ca.d.post(
        &ca.compliance,
        "/v1/agents/bot-q/approve",
        &json!({"version": 7}),
    )
    .await
    .assert_problem(409, "wrong-state");
    ca.d.post(&ca.operator, "/v1/agents/bot-q/certify", &json!({"csr": 5}))
        .await
        .assert_problem(422, "invalid-json");
    // Still pending: none of it changed anything.
    let r = ca.d.get(&ca.operator, "/v1/agents/bot-q").await;
    assert_eq!(r.body["status"], "pending_approval");
    // An empty body approves nothing: the version must be named.
    let r =
        ca.d.raw()
            .post(format!("{}/v1/agents/bot-q/approve", ca.d.base))
            .bearer_auth(&ca.compliance)
            .send()
            .await
            .unwrap();
    let r = crate::harness::reply(r).await;
    r.assert_problem(400, "invalid-request");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains(r#"{"version": 1} is pending"#),
        "{r:?}"
    );
    let r =
        ca.d.post(
            &ca.compliance,
            "/v1/agents/bot-q/approve",
            &json!({"version": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn certificate_listing_pages_and_hides_other_agents_serials() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-p", full_mandate()).await;
    ca.approved_agent("bot-o", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let req = csr(work.path(), "ec-p256", "/CN=bot-p", None);
    let mut serials = Vec::new();
    for _ in 0..5 {
        let r = ca.certify(&ca.operator, "bot-p", &req).await;
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        serials.push(r.body["serial_number"].as_str().unwrap().to_owned());
    }
    let seen: Vec<String> =
        ca.d.list_all(&ca.auditor().await, "/v1/agents/bot-p/certificates?limit=2")
            .await
            .iter()
            .map(|c| c["serial_number"].as_str().unwrap().to_owned())
            .collect();
    let mut a = seen.clone();
    a.sort();
    let mut b = serials.clone();
    b.sort();
    assert_eq!(a, b, "paging must return every certificate once");
    ca.d.get(&ca.operator, "/v1/agents/nobody/certificates")
        .await
        .assert_problem(404, "not-found");

    // Another agent's key cannot tell an existing serial from a missing one.
    let other = ca.d.key("agent", Some("bot-o")).await;
    ca.d.get(&other, &format!("/v1/certificates/{}", serials[0]))
        .await
        .assert_problem(404, "not-found");
    ca.d.get(&other, "/v1/certificates/4fffffffffffffff")
        .await
        .assert_problem(404, "not-found");
    let own = ca.d.key("agent", Some("bot-p")).await;
    assert_eq!(
        ca.d.get(&own, &format!("/v1/certificates/{}", serials[0]))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_path_that_is_not_utf8_gets_each_protocols_own_refusal_and_writes_nothing() {
    let ca = Ca::start().await;
    ca.approved_agent("utf8-bot", full_mandate()).await;
    let before = crate::harness::footprint(&ca.d);
    let http = reqwest::Client::new();
    let send = |method: Method, path: &str, key: Option<&str>| {
        let mut req = http.request(method, format!("{}{path}", ca.d.base));
        if let Some(k) = key {
            req = req
                .bearer_auth(k)
                .json(&json!({"version": 1, "reason": "x"}));
        }
        req.send()
    };
    // REST, the PKI files: a problem document naming the path.
    for (method, path, key) in [
        (Method::GET, "/v1/agents/%FF", Some(ca.operator.as_str())),
        (
            Method::POST,
            "/v1/agents/%FF/approve",
            Some(ca.compliance.as_str()),
        ),
        (
            Method::POST,
            "/v1/agents/%FF/revoke",
            Some(ca.operator.as_str()),
        ),
        (
            Method::GET,
            "/v1/certificates/%FF%FE",
            Some(ca.operator.as_str()),
        ),
        (Method::GET, "/crl/%FF.crl", None),
        (Method::GET, "/ca/issuers/%FF.der", None),
    ] {
        let r = send(method.clone(), path, key).await.unwrap();
        let reply = crate::harness::reply(r).await;
        reply.assert_problem(400, "invalid-request");
        assert!(
            reply.body["detail"].as_str().unwrap().contains("path"),
            "{path}: {reply:?}"
        );
    }
    // OCSP: an OCSP response, malformedRequest (RFC 6960: OCSPResponseStatus 1).
    let r = send(Method::GET, "/ocsp/%FF", None).await.unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/ocsp-response",
        "{r:?}"
    );
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        [0x30, 0x03, 0x0a, 0x01, 0x01]
    );
    // ACME: an RFC 8555 problem.
    let r = send(Method::GET, "/acme/renewal-info/%FF", None)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["type"], "urn:ietf:params:acme:error:malformed",
        "{body}"
    );
    // The stand-alone responder too.
    let responder = crate::harness::Responder::start(&ca.d).await;
    let r = http
        .get(format!("{}/%FF", responder.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        [0x30, 0x03, 0x0a, 0x01, 0x01]
    );
    assert_eq!(crate::harness::footprint(&ca.d), before);
}

#[tokio::test]
async fn cursors_out_of_range_are_refused_and_serials_are_read_in_every_documented_form() {
    let ca = Ca::start().await;
    ca.approved_agent("forms-bot", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let r = ca.certify_new_key("forms-bot", work.path()).await;
    let serial = r.body["serial_number"].as_str().unwrap().to_owned();
    let auditor = ca.auditor().await;
    for (key, path) in [
        (ca.operator.as_str(), "/v1/incidents?cursor=-5"),
        (ca.operator.as_str(), "/v1/incidents?cursor=0"),
        (ca.operator.as_str(), "/v1/incidents?cursor=abc"),
        (auditor.as_str(), "/v1/audit?cursor=-1"),
    ] {
        let r = ca.d.get(key, path).await;
        r.assert_problem(400, "invalid-request");
        assert!(
            r.body["detail"].as_str().unwrap().contains("must be"),
            "{path}: {r:?}"
        );
    }
    assert_eq!(
        ca.d.get(&auditor, "/v1/audit?cursor=0").await.status,
        StatusCode::OK
    );
    // Serials: either case, with leading zeros; anything else is not hexadecimal.
    for form in [
        serial.clone(),
        serial.to_uppercase(),
        format!("0{serial}"),
        format!("0000{serial}"),
    ] {
        let r =
            ca.d.get(&ca.operator, &format!("/v1/certificates/{form}"))
                .await;
        assert_eq!(r.status, StatusCode::OK, "{form}: {r:?}");
        assert_eq!(r.body["serial_number"], serial.as_str());
    }
    ca.d.get(&ca.operator, "/v1/certificates/zzz")
        .await
        .assert_problem(400, "invalid-request");
    let out =
        ca.d.command()
            .args(["revoke", "certificate", "zzz", "--reason", "unspecified"])
            .output()
            .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hexadecimal"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_framework_s_own_rejections_are_problem_documents_and_write_nothing() {
    let ca = Ca::start().await;
    let before = crate::harness::footprint(&ca.d);
    let http = reqwest::Client::new();
    let login = format!("{}/dashboard/login", ca.d.base);
    let form = "application/x-www-form-urlencoded";
    let cases = vec![
        // The dashboard's forms: a wrong media type, a body over the limit.
        (
            Method::POST,
            login.clone(),
            "application/json",
            b"{}".to_vec(),
            415,
            "unsupported-media-type",
        ),
        (
            Method::POST,
            login.clone(),
            form,
            vec![b'a'; 100 * 1024],
            413,
            "body-too-large",
        ),
        // Routing: a wrong method, an unknown path.
        (
            Method::PUT,
            format!("{}/v1/agents", ca.d.base),
            form,
            Vec::new(),
            405,
            "method-not-allowed",
        ),
        (
            Method::GET,
            format!("{}/no/such/path", ca.d.base),
            form,
            Vec::new(),
            404,
            "not-found",
        ),
    ];
    for (method, url, content_type, body, status, kind) in cases {
        let r = http
            .request(method.clone(), &url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        crate::harness::reply(r).await.assert_problem(status, kind);
    }
    assert_eq!(crate::harness::footprint(&ca.d), before);
}

/// A mandate with one member replaced.
fn mandate_with(member: &str, value: serde_json::Value) -> serde_json::Value {
    let mut m = full_mandate();
    m[member] = value;
    m
}

#[tokio::test]
async fn hostile_inputs_are_refused_by_one_rule_per_kind_naming_the_field_and_write_nothing() {
    let ca = Ca::start().await;
    ca.approved_agent("strict-bot", full_mandate()).await;
    let before = crate::harness::footprint(&ca.d);
    let admin = ca.d.admin_key();
    let register = |name: &str, mandate: serde_json::Value| json!({"agent_id": "strict-new", "name": name, "mandate": mandate});
    let event = |fields: serde_json::Value| {
        let mut e = json!({"agent_id": "strict-bot", "action": "trade_execution"});
        for (k, v) in fields.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    // (key, path, raw JSON body, status, problem type, what the detail must name)
    let cases: Vec<(&str, String, String, u16, &str, &str)> = vec![
        // Amounts: numbers are plain decimals; negative zero is no amount.
        (
            &ca.operator,
            "/v1/agents".into(),
            register("x", full_mandate())
                .to_string()
                .replace("\"50000\"", "-0"),
            422,
            "invalid-json",
            "maxTransactionSize.amount: -0",
        ),
        (
            &ca.operator,
            "/v1/agents".into(),
            register("x", full_mandate())
                .to_string()
                .replace("\"50000\"", "1e-400"),
            422,
            "invalid-json",
            "maxTransactionSize.amount: 1e-400",
        ),
        (
            &ca.operator,
            "/v1/agents".into(),
            register("x", full_mandate())
                .to_string()
                .replace("\"50000\"", "-1e-400"),
            422,
            "invalid-json",
            "exponent",
        ),
        (
            &ca.operator,
            "/v1/events".into(),
            event(json!({"market": "BTC_EUR", "currency": "EUR"}))
                .to_string()
                .replace("\"market\"", "\"size\":1E3,\"market\""),
            422,
            "invalid-json",
            "size: 1E3",
        ),
        // Events are flat, named as orders are: the nested form of before says what to send.
        (
            &ca.operator,
            "/v1/events".into(),
            json!({"agent_id": "strict-bot", "action_type": "trade_execution",
                   "metadata": {"market": "BTC_EUR"}})
            .to_string(),
            422,
            "invalid-json",
            "action_type and metadata are gone: send `action`",
        ),
        // Thresholds: one rule, four decimal places, for text and numbers alike.
        (
            &ca.operator,
            "/v1/agents".into(),
            register("x", full_mandate())
                .to_string()
                .replace("0.7", "0.30000000000000004"),
            422,
            "invalid-json",
            "circuitBreakerThreshold",
        ),
        (
            &ca.operator,
            "/v1/agents".into(),
            register("x", mandate_with("circuitBreakerThreshold", json!(0.12345))).to_string(),
            422,
            "invalid-mandate",
            "circuitBreakerThreshold",
        ),
        // Text people read: blank, invisible, reordered, control characters.
        (
            &admin,
            "/v1/organizations".into(),
            json!({"id": "blank-org", "legal_name": " "}).to_string(),
            400,
            "invalid-request",
            "legal_name",
        ),
        (
            &admin,
            "/v1/organizations".into(),
            json!({"id": "zw-org", "legal_name": "\u{200b}"}).to_string(),
            400,
            "invalid-request",
            "legal_name",
        ),
        (
            &admin,
            "/v1/organizations".into(),
            json!({"id": "bidi-org", "legal_name": "\u{202e}HbmG"}).to_string(),
            400,
            "invalid-request",
            "legal_name",
        ),
        (
            &ca.operator,
            "/v1/agents".into(),
            register("Bot \u{202e}1", full_mandate()).to_string(),
            400,
            "invalid-request",
            "name",
        ),
        (
            &ca.operator,
            "/v1/agents".into(),
            register("x", mandate_with("operator", json!("\u{202e}HbmG"))).to_string(),
            422,
            "invalid-mandate",
            "operator",
        ),
        (
            &admin,
            "/v1/api-keys".into(),
            json!({"role": "admin", "label": "desk\u{2066}1"}).to_string(),
            400,
            "invalid-request",
            "label",
        ),
        (
            &ca.compliance,
            "/v1/incidents/1/resolve".into(),
            json!({"resolution": "ok\u{0}\u{1b}[31m"}).to_string(),
            400,
            "invalid-request",
            "resolution",
        ),
        (
            &ca.operator,
            "/v1/agents/strict-bot/revoke".into(),
            json!({"reason": "\u{feff}"}).to_string(),
            400,
            "invalid-request",
            "reason",
        ),
        // Lists that compare case-insensitively refuse case-insensitive duplicates.
        (
            &ca.operator,
            "/v1/agents".into(),
            register(
                "x",
                mandate_with("allowedMarkets", json!(["BTC_EUR", "btc_eur"])),
            )
            .to_string(),
            422,
            "invalid-mandate",
            "allowedMarkets",
        ),
        // Timestamps: one range and one answer, whichever form.
        (
            &ca.operator,
            "/v1/events".into(),
            event(json!({"timestamp": "9999-12-31T23:59:59Z"})).to_string(),
            422,
            "invalid-json",
            "timestamp out of range",
        ),
        (
            &ca.operator,
            "/v1/events".into(),
            event(json!({"timestamp": 253_402_300_799_i64})).to_string(),
            422,
            "invalid-json",
            "timestamp out of range",
        ),
    ];
    for (key, path, body, status, kind, names) in cases {
        let r =
            ca.d.raw()
                .post(format!("{}{path}", ca.d.base))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
        let reply = crate::harness::reply(r).await;
        reply.assert_problem(status, kind);
        let detail = reply.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(names), "{path} {body}: {detail}");
    }
    assert_eq!(crate::harness::footprint(&ca.d), before);
}
