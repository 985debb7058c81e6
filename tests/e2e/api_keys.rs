//! API keys: an admin lists them (never their secrets) and revokes them; a revoked key stops
//! working at once, and the last admin key cannot be revoked.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::Ca;

#[tokio::test]
async fn admins_list_and_revoke_keys_and_revoked_keys_stop_working() {
    let ca = Ca::start().await;
    let admin = ca.d.admin_key();
    let listed = ca.d.get(&admin, "/v1/api-keys?limit=100").await;
    assert_eq!(listed.status, StatusCode::OK, "{listed:?}");
    let keys = listed.body["items"].as_array().unwrap().clone();
    assert!(keys.len() >= 3, "admin, operator, compliance: {keys:?}");
    let text = listed.body.to_string();
    assert!(
        !text.contains("secret") && !text.contains(&ca.operator),
        "no secrets in lists"
    );
    // Paging: one at a time visits every key once.
    let seen = ca.d.list_all(&admin, "/v1/api-keys?limit=1").await;
    assert_eq!(seen.len(), keys.len());

    // Only admins.
    ca.d.get(&ca.operator, "/v1/api-keys")
        .await
        .assert_problem(403, "forbidden");

    // Revoke the operator key: it stops working; a second call changes nothing.
    // Keys read `mk_<id>_<secret>`.
    let op_id = ca
        .operator
        .strip_prefix("mk_")
        .unwrap()
        .split('_')
        .next()
        .unwrap()
        .to_owned();
    assert!(keys.iter().any(|k| k["id"] == op_id.as_str()));
    let r =
        ca.d.post(&admin, &format!("/v1/api-keys/{op_id}/revoke"), &json!({}))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["newly_revoked"], true);
    assert!(r.body["api_key"]["revoked_at"].is_string());
    ca.d.get(&ca.operator, "/v1/agents")
        .await
        .assert_problem(401, "unauthorized");
    let again =
        ca.d.post(&admin, &format!("/v1/api-keys/{op_id}/revoke"), &json!({}))
            .await;
    assert_eq!(again.body["newly_revoked"], false, "{again:?}");
    ca.d.post(&admin, "/v1/api-keys/nope/revoke", &json!({}))
        .await
        .assert_problem(404, "not-found");

    // The last admin key stays.
    let admin_id = keys.iter().find(|k| k["role"] == "admin").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ca.d.post(
        &admin,
        &format!("/v1/api-keys/{admin_id}/revoke"),
        &json!({}),
    )
    .await
    .assert_problem(409, "wrong-state");
}

#[tokio::test]
async fn each_key_has_its_own_request_budget() {
    let ca =
        Ca::start_with_config("[http]\nrate_limit_per_minute = 60\nrate_limit_burst = 12\n").await;
    // Ca::start_with_config made keys with a few requests already; use fresh ones.
    let a = ca.d.key("auditor", None).await;
    let b = ca.d.key("auditor", None).await;
    for _ in 0..12 {
        assert_eq!(ca.d.get(&a, "/v1/agents").await.status, StatusCode::OK);
    }
    let limited =
        ca.d.raw()
            .get(format!("{}/v1/agents", ca.d.base))
            .bearer_auth(&a)
            .send()
            .await
            .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    crate::harness::reply(limited)
        .await
        .assert_problem(429, "rate-limited");
    assert_eq!(
        ca.d.get(&b, "/v1/agents").await.status,
        StatusCode::OK,
        "another key"
    );
    // Public endpoints need no key and have no key budget; the OpenAPI document is one.
    for _ in 0..10 {
        assert!(!ca.d.get_text("/ca/root.pem").await.is_empty());
        let doc: serde_json::Value =
            serde_json::from_str(&ca.d.get_text("/v1/openapi.json").await).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/v1/agents/{id}/eab"]["post"].is_object());
    }
}
