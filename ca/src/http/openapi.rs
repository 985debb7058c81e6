//! `GET /v1/openapi.json`: the OpenAPI 3.1 description of every route (REST, ACME, OCSP, CRL,
//! PKI and health).
//!
//! Generated from the code: each handler carries its operation (`#[utoipa::path]`: id, roles,
//! parameters, answers, an example) and the types it reads and writes derive their schemas
//! (`ToSchema`), so a field renamed in Rust is renamed in the document. The operations not yet
//! annotated come from the hand-written `openapi.json`, which shrinks as they move; the
//! end-to-end suite validates every answer it receives against the result either way.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use utoipa::OpenApi;

/// The operations and schemas not generated yet.
const WRITTEN: &str = include_str!("openapi.json");

/// What every part shares.
#[derive(OpenApi)]
#[openapi(components(schemas(super::problem::Body)))]
struct Common;

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

/// References to the schemas still written by hand in `openapi.json`, for fields whose Rust
/// type is looser than their documented shape (a mandate held as a JSON value). Each moves to
/// a derived schema of the same name without its users changing.
#[allow(dead_code, reason = "each is used once its users are annotated")]
pub(crate) mod refs {
    use utoipa::openapi::Ref;

    /// `#/components/schemas/Mandate`.
    pub fn mandate() -> Ref {
        Ref::from_schema_name("Mandate")
    }
    /// `#/components/schemas/Amount`.
    pub fn amount() -> Ref {
        Ref::from_schema_name("Amount")
    }
    /// `#/components/schemas/Time`.
    pub fn time() -> Ref {
        Ref::from_schema_name("Time")
    }
    /// `#/components/schemas/Order`.
    pub fn order() -> Ref {
        Ref::from_schema_name("Order")
    }
    /// `#/components/schemas/Event`.
    pub fn event() -> Ref {
        Ref::from_schema_name("Event")
    }
    /// `#/components/schemas/Contribution`.
    pub fn contribution() -> Ref {
        Ref::from_schema_name("Contribution")
    }
    /// `#/components/schemas/PreflightReason`.
    pub fn preflight_reason() -> Ref {
        Ref::from_schema_name("PreflightReason")
    }
    /// `#/components/schemas/Baseline`.
    pub fn baseline() -> Ref {
        Ref::from_schema_name("Baseline")
    }
    /// `#/components/schemas/BaselineVersion`.
    pub fn baseline_version() -> Ref {
        Ref::from_schema_name("BaselineVersion")
    }
    /// `#/components/schemas/RiskScore`.
    pub fn risk_score() -> Ref {
        Ref::from_schema_name("RiskScore")
    }
    /// `#/components/schemas/Incident`.
    pub fn incident() -> Ref {
        Ref::from_schema_name("Incident")
    }
    /// `#/components/schemas/Verdict`.
    pub fn verdict() -> Ref {
        Ref::from_schema_name("Verdict")
    }
    /// `#/components/schemas/Webhook`.
    pub fn webhook() -> Ref {
        Ref::from_schema_name("Webhook")
    }
    /// `#/components/schemas/WebhookDelivery`.
    pub fn webhook_delivery() -> Ref {
        Ref::from_schema_name("WebhookDelivery")
    }
    /// `#/components/schemas/WebhookEvent`.
    pub fn webhook_event() -> Ref {
        Ref::from_schema_name("WebhookEvent")
    }
    /// `#/components/schemas/Organization`.
    pub fn organization() -> Ref {
        Ref::from_schema_name("Organization")
    }
    /// `#/components/schemas/NewOrganization`.
    pub fn new_organization() -> Ref {
        Ref::from_schema_name("NewOrganization")
    }
    /// `#/components/schemas/Person`.
    pub fn person() -> Ref {
        Ref::from_schema_name("Person")
    }
    /// `#/components/schemas/NewPerson`.
    pub fn new_person() -> Ref {
        Ref::from_schema_name("NewPerson")
    }
    /// `#/components/schemas/ApiKey`.
    pub fn api_key() -> Ref {
        Ref::from_schema_name("ApiKey")
    }
    /// `#/components/schemas/CreatedApiKey`.
    pub fn created_api_key() -> Ref {
        Ref::from_schema_name("CreatedApiKey")
    }
    /// `#/components/schemas/Approvals`.
    pub fn approvals() -> Ref {
        Ref::from_schema_name("Approvals")
    }
    /// `#/components/schemas/Agent`.
    pub fn agent() -> Ref {
        Ref::from_schema_name("Agent")
    }
    /// `#/components/schemas/MandateChange`.
    pub fn mandate_change() -> Ref {
        Ref::from_schema_name("MandateChange")
    }
    /// `#/components/schemas/MandateVersion`.
    pub fn mandate_version() -> Ref {
        Ref::from_schema_name("MandateVersion")
    }
    /// `#/components/schemas/IssuedCertificate`.
    pub fn issued_certificate() -> Ref {
        Ref::from_schema_name("IssuedCertificate")
    }
    /// `#/components/schemas/LimitOverride`.
    pub fn limit_override() -> Ref {
        Ref::from_schema_name("LimitOverride")
    }
    /// `#/components/schemas/AuditCheckpoint`.
    pub fn audit_checkpoint() -> Ref {
        Ref::from_schema_name("AuditCheckpoint")
    }
}

/// The whole document, built once.
static DOCUMENT: LazyLock<(Value, String)> = LazyLock::new(|| {
    let doc = build();
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
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
pub async fn get() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_text(),
    )
}

fn build() -> Value {
    let mut doc: Value = serde_json::from_str(WRITTEN).unwrap_or_else(|_| json!({}));
    let mut generated = utoipa::openapi::OpenApi::default();
    for part in parts() {
        generated.merge(part);
    }
    let generated = serde_json::to_value(&generated).unwrap_or_default();
    for (path, item) in generated["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let mut op = op.clone();
            finish(path, &mut op);
            doc["paths"][path][method] = op;
        }
    }
    for section in ["schemas", "responses"] {
        for (name, value) in generated["components"][section]
            .as_object()
            .into_iter()
            .flatten()
        {
            doc["components"][section][name] = value.clone();
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
                    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
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
}
