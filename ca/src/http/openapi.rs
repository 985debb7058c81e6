//! `GET /v1/openapi.json`: the OpenAPI 3.1 description of every route (REST, ACME, OCSP, CRL,
//! PKI and health).
//!
//! Generated from the code: each handler carries its operation (`#[utoipa::path]`: id, roles,
//! parameters, answers, an example) and the types it reads and writes derive their schemas
//! (`ToSchema`), so a field renamed in Rust is renamed in the document. The end-to-end suite
//! validates every answer it receives against the result.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use utoipa::OpenApi;

/// What every part shares: the document's head, the problem schema, the key scheme, and the
/// webhook delivery a subscribed endpoint receives.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mandate",
        version = env!("CARGO_PKG_VERSION"),
        description = "Certificate authority for autonomous agents: REST API, ACME, OCSP and \
            CRLs. Prose reference: docs/API.md."
    ),
    servers((url = "/")),
    paths(webhook_delivery),
    components(
        schemas(super::problem::Body),
        responses(super::problem::NotFoundOrOtherOrganization)
    ),
    modifiers(&ApiKeyScheme)
)]
struct Common;

/// The `apiKey` security scheme every keyed operation names.
struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("mk_<id>_<secret> API key"))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("apiKey", SecurityScheme::Http(scheme));
    }
}

/// Where [`webhook_delivery`] is declared among the paths before it moves to `webhooks`.
const WEBHOOK_PATH: &str = "/webhook-receiver";

/// A delivery to a subscribed endpoint (declared as an operation, documented under the
/// document's top-level `webhooks` as `event`; the daemon sends it, nobody calls it).
#[utoipa::path(post, path = "/webhook-receiver", operation_id = "webhookEvent", tag = "webhooks",
    summary = "A delivery to a subscribed endpoint (at least once; deduplicate on id)",
    description = "POSTed to the endpoint URL. Any 2xx answer counts as delivered; anything else \
        (redirects are not followed), or no answer within webhooks.timeout_ms, is retried after \
        webhooks.retry_base_ms doubled per attempt, capped at webhooks.retry_max_ms, times a \
        random 0.5 to 1.0, until webhooks.max_attempts attempts. See docs/API.md#webhooks.",
    security(()),
    params(
        ("X-Mandate-Signature" = String, Header, pattern = "^[0-9a-f]{64}$",
            description = "hex HMAC-SHA256 over the raw body, keyed with the secret's text (whsec_...)"),
        ("X-Mandate-Timestamp" = String, Header,
            description = "sent_at of the body (RFC 3339 UTC), the same text"),
        ("X-Mandate-Event" = String, Header, description = "the event type"),
        ("X-Mandate-Delivery" = String, Header,
            description = "the delivery id (as in GET /v1/webhooks/{id}/deliveries)"),
    ),
    request_body(content = crate::webhooks::Delivery, example = json!({
        "id": "evt_42", "type": "certificate.revoked", "timestamp": "2026-12-07T10:00:00Z",
        "attempt": 1, "sent_at": "2026-12-07T10:00:01Z", "organization": "acme",
        "people": {"key_7f3a9c": {"person": "carol", "name": "Carol Compliance",
            "organization": "acme"}},
        "data": {"agent_id": "bot-1", "serial_number": "5f0e3c", "reason": "keyCompromise",
            "reason_code": 1, "revoked_by": "key_7f3a9c"}
    })),
    responses((status = "2XX", description = "delivered")))]
#[expect(
    dead_code,
    reason = "the daemon sends this request; it declares the document's webhook"
)]
fn webhook_delivery() {}

/// The parts of the API, each listing its handlers' operations.
fn parts() -> Vec<utoipa::openapi::OpenApi> {
    use super::*;
    vec![
        Common::openapi(),
        RootDoc::openapi(),
        schemas::Doc::openapi(),
        agents::Doc::openapi(),
        api_keys::Doc::openapi(),
        audit::Doc::openapi(),
        audit_tree::Doc::openapi(),
        behaviour::Doc::openapi(),
        certificates::Doc::openapi(),
        crl::Doc::openapi(),
        eab::Doc::openapi(),
        health::Doc::openapi(),
        incidents::Doc::openapi(),
        metrics::Doc::openapi(),
        ocsp::Doc::openapi(),
        organizations::Doc::openapi(),
        reports::Doc::openapi(),
        revocation::Doc::openapi(),
        trading::Doc::openapi(),
        webhooks::Doc::openapi(),
        crate::acme::server::Doc::openapi(),
    ]
}

/// The whole document, built once.
static DOCUMENT: LazyLock<(Value, String)> = LazyLock::new(|| {
    let doc = build();
    // Compact on the wire (a third of the pretty form); `mandate openapi` prints it pretty.
    let text = serde_json::to_string(&doc).unwrap_or_default();
    (doc, text)
});

/// The API document (also for the tests that hold answers to it).
pub fn document() -> &'static Value {
    &DOCUMENT.0
}

/// The API document as served.
pub fn document_text() -> &'static str {
    &DOCUMENT.1
}

/// `GET /v1/openapi.json` (no key).
#[utoipa::path(get, path = "/v1/openapi.json", operation_id = "getOpenApi", tag = "ops",
    summary = "This document",
    description = "No key. OpenAPI 3.1: every route of the daemon (REST, ACME, OCSP, CRL, PKI \
        and health), generated from the code.",
    security(),
    responses((status = 200, description = "OpenAPI 3.1", body = Object,
        example = json!({"openapi": "3.1.0", "info": {"title": "mandate", "version": "0.1.0"},
            "paths": {"/healthz": {"get": {"operationId": "healthz", "summary": "Liveness",
                "responses": {"200": {"description": "ok"}}}}}}))))]
pub async fn get() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_text(),
    )
}

fn build() -> Value {
    let mut parts = parts().into_iter();
    let mut generated = parts.next().unwrap_or_default();
    for part in parts {
        generated.merge(part);
    }
    let mut doc = serde_json::to_value(&generated).unwrap_or_default();
    if let Some(paths) = doc["paths"].as_object_mut()
        && let Some(delivery) = paths.remove(WEBHOOK_PATH)
    {
        doc["webhooks"] = json!({ "event": delivery });
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            for op in item
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
            {
                finish(path, op);
            }
        }
    }
    doc
}

/// What every operation of its kind answers besides its own results: a REST operation's
/// errors are RFC 9457 problems.
fn finish(path: &str, op: &mut Value) {
    if !path.starts_with("/v1/") {
        return;
    }
    let problem = json!({
        "description": "RFC 9457 problem",
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    });
    for range in ["4XX", "5XX"] {
        if op["responses"].get(range).is_none() {
            op["responses"][range] = problem.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::document;

    /// (method, path) of every `.route("path", method(..).method(..))` in router source code.
    fn routes_in(source: &str) -> BTreeSet<(String, String)> {
        const METHODS: [&str; 6] = ["get", "post", "head", "put", "delete", "patch"];
        let mut out = BTreeSet::new();
        let mut rest = source;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let Some(open) = rest.find('"') else { break };
            let Some(close) = rest[open + 1..].find('"') else {
                break;
            };
            let path = rest[open + 1..open + 1 + close].replace("{*", "{");
            // The arguments run to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &rest[open + close + 2..end];
            for m in METHODS {
                let mut search = args;
                while let Some(i) = search.find(&format!("{m}(")) {
                    let before = search[..i].chars().last();
                    if before.is_none_or(|c| !c.is_alphanumeric() && c != '_') {
                        out.insert((m.to_owned(), path.clone()));
                    }
                    search = &search[i + m.len()..];
                }
            }
        }
        out
    }

    #[test]
    fn the_document_lists_exactly_the_routes_the_daemon_serves() {
        let mut served = routes_in(include_str!("mod.rs"));
        served.extend(routes_in(include_str!("../acme/server.rs")));
        assert!(
            served.len() > 30,
            "the route scan found too little: {served:?}"
        );
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                assert!(
                    op["responses"].is_object(),
                    "{method} {path} has no responses"
                );
                documented.insert((method.clone(), path.clone()));
            }
        }
        let missing: Vec<_> = served.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&served).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "served but not documented: {missing:?}; documented but not served: {stale:?}"
        );
    }

    #[test]
    fn every_operation_has_its_own_operation_id() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()),
                    "{method} {path}: operationId {id:?}"
                );
                assert!(ids.insert(id.to_owned()), "{id} is used twice");
            }
        }
        assert!(ids.len() > 80, "{ids:?}");
    }

    fn escape(token: &str) -> String {
        token.replace('~', "~0").replace('/', "~1")
    }

    /// The (path, method) of every generated operation.
    fn generated() -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for part in super::parts() {
            let part = serde_json::to_value(&part).unwrap_or_default();
            for (path, item) in part["paths"].as_object().into_iter().flatten() {
                for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                    out.insert((path.clone(), method.clone()));
                }
            }
        }
        out
    }

    /// The media objects (pointer, object) of an operation: its request body's and answers'.
    fn media(path: &str, method: &str, op: &Value) -> Vec<(String, Value)> {
        let base = format!("/paths/{}/{method}", escape(path));
        let mut out = Vec::new();
        for (mt, m) in op["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            out.push((
                format!("{base}/requestBody/content/{}", escape(mt)),
                m.clone(),
            ));
        }
        for (status, r) in op["responses"].as_object().into_iter().flatten() {
            for (mt, m) in r["content"].as_object().into_iter().flatten() {
                let pointer = format!("{base}/responses/{status}/content/{}", escape(mt));
                out.push((pointer, m.clone()));
            }
        }
        out
    }

    #[test]
    fn every_generated_operation_shows_an_example_its_schema_accepts() {
        let mut doc = document().clone();
        // Held as answers are: a field the schema does not name fails.
        mandate_testkit::close_objects(&mut doc);
        let generated = generated();
        assert!(!generated.is_empty());
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let mut examples = 0;
                for (pointer, m) in media(path, method, op) {
                    let Some(example) = m.get("example") else {
                        continue;
                    };
                    examples += 1;
                    let mut root = doc.clone();
                    // A URI fragment: characters it may not hold, percent-encoded.
                    let fragment = pointer
                        .replace('%', "%25")
                        .replace('{', "%7B")
                        .replace('}', "%7D")
                        .replace(' ', "%20");
                    root["$ref"] = Value::String(format!("#{fragment}/schema"));
                    let validator = jsonschema::options()
                        .with_draft(jsonschema::Draft::Draft202012)
                        .build(&root);
                    let validator = match validator {
                        Ok(v) => v,
                        Err(e) => panic!("{pointer}: the schema does not compile: {e}"),
                    };
                    let errors: Vec<String> = validator
                        .iter_errors(example)
                        .map(|e| e.to_string())
                        .collect();
                    assert!(
                        errors.is_empty(),
                        "{pointer}: the example fails: {errors:?}"
                    );
                    checked += 1;
                }
                if generated.contains(&(path.clone(), method.clone())) {
                    assert!(examples > 0, "{method} {path} shows no example");
                }
            }
        }
        assert!(checked >= generated.len(), "{checked} examples checked");
    }

    fn dangling(v: &Value, doc: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                    let found = r
                        .strip_prefix('#')
                        .and_then(|pointer| doc.pointer(pointer))
                        .is_some();
                    if !found {
                        out.push(r.to_owned());
                    }
                }
                map.values().for_each(|c| dangling(c, doc, out));
            }
            Value::Array(items) => items.iter().for_each(|c| dangling(c, doc, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_names_a_component_of_the_document() {
        let doc = document();
        let mut out = Vec::new();
        dangling(doc, doc, &mut out);
        assert!(out.is_empty(), "references to nothing: {out:?}");
        assert!(doc["components"]["schemas"]["Mandate"].is_object());
        assert!(doc["components"]["securitySchemes"]["apiKey"].is_object());
        let delivery = &doc["webhooks"]["event"]["post"];
        assert_eq!(delivery["operationId"], "webhookEvent");
        assert!(doc["paths"].get(super::WEBHOOK_PATH).is_none());
    }
}
