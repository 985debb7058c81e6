//! Every answer the suite gets through the harness is checked against the OpenAPI document the
//! daemon serves (`GET /v1/openapi.json`): its path and method are documented, its status is
//! one the operation lists, its media type is the documented one, and a JSON body validates
//! against the documented schema (JSON Schema 2020-12, `$ref`s resolved in the document). So
//! the whole end-to-end suite is the response-validation test: success and error answers of
//! every route it drives.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;

struct Contract {
    doc: Value,
    /// (template segments, template) of every documented path.
    paths: Vec<(Vec<String>, String)>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    let mut doc = mandate_ca::openapi_document().clone();
    mandate_testkit::close_objects(&mut doc);
    let paths = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(|t| (segments(t), t.clone()))
        .collect();
    Contract {
        doc,
        paths,
        validators: Mutex::new(HashMap::new()),
    }
});

fn segments(path: &str) -> Vec<String> {
    path.trim_start_matches('/')
        .split('/')
        .map(str::to_owned)
        .collect()
}

/// The documented path template `path` (no query) falls under: the one with the most literal
/// segments among those that match.
fn template(path: &str) -> Option<String> {
    let actual = segments(path);
    CONTRACT
        .paths
        .iter()
        .filter(|(t, _)| {
            t.len() == actual.len()
                && t.iter().zip(&actual).all(|(t, a)| {
                    (t.starts_with('{') && t.ends_with('}')) || t == a
                        // `{ski}.der`-style segments: a parameter with a literal suffix.
                        || (t.starts_with('{') && t.contains("}.")
                            && a.ends_with(&t[t.find('}').map_or(0, |i| i + 1)..]))
                })
        })
        .max_by_key(|(t, _)| t.iter().filter(|s| !s.starts_with('{')).count())
        .map(|(_, t)| t.clone())
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn validator(pointer: &str) -> Result<Arc<jsonschema::Validator>, String> {
    let mut cache = CONTRACT
        .validators
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(v) = cache.get(pointer) {
        return Ok(v.clone());
    }
    let mut root = CONTRACT.doc.clone();
    // A URI fragment: the pointer's `{` `}` percent-encoded.
    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
    root["$ref"] = Value::String(format!("#{fragment}"));
    let v = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .map_err(|e| format!("schema at {pointer} does not compile: {e}"))?;
    let v = Arc::new(v);
    cache.insert(pointer.to_owned(), v.clone());
    Ok(v)
}

/// Checks one answer; `Err` says what the document and the answer disagree on.
pub fn check(
    method: &str,
    url_path: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) -> Result<(), String> {
    let path = url_path.split('?').next().unwrap_or(url_path);
    let method = method.to_ascii_lowercase();
    let Some(tpl) = template(path) else {
        // Routes the API does not describe (the dashboard, the docs page) and unknown paths.
        return if path.starts_with("/dashboard") || path.starts_with("/docs") || status == 404 {
            Ok(())
        } else {
            Err(format!("{method} {path}: no documented path"))
        };
    };
    if let Ok(file) = std::env::var("MANDATE_CONTRACT_HITS") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
        {
            // One write per line: the suite's test processes append to one file at once, and
            // `writeln!` on a file writes piece by piece, so lines could interleave.
            let _ = f.write_all(format!("{method} {tpl} {status}\n").as_bytes());
        }
    }
    let op = &CONTRACT.doc["paths"][&tpl][&method];
    if op.is_null() {
        return if status == 405 {
            Ok(())
        } else {
            Err(format!(
                "{method} {tpl}: method not documented (answered {status})"
            ))
        };
    }
    let responses = &op["responses"];
    let class = format!("{}XX", status / 100);
    let code = [status.to_string(), class, "default".to_owned()]
        .into_iter()
        .find(|c| !responses[c].is_null())
        .ok_or_else(|| format!("{method} {tpl}: status {status} not documented"))?;
    let mut response = &responses[&code];
    let mut code_pointer = format!("/paths/{}/{method}/responses/{code}", escape(&tpl));
    // A response defined once under `components/responses` and referred to.
    if let Some(r) = response["$ref"].as_str() {
        let pointer = r.trim_start_matches('#').to_owned();
        response = CONTRACT
            .doc
            .pointer(&pointer)
            .ok_or_else(|| format!("{method} {tpl}: dangling {r}"))?;
        code_pointer = pointer;
    }
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some(content) = response["content"].as_object() else {
        return Ok(());
    };
    if media.is_empty() {
        return Ok(());
    }
    let Some((doc_media, media_obj)) = content.iter().find(|(m, _)| {
        let base = m.split(';').next().unwrap_or_default().trim();
        base == media
            || base == "*/*"
            || (base.ends_with("/*") && media.starts_with(base.trim_end_matches('*')))
    }) else {
        return Err(format!(
            "{method} {tpl} {status}: answered {media}, documented {:?}",
            content.keys().collect::<Vec<_>>()
        ));
    };
    if !(media == "application/json" || media.ends_with("+json")) || media_obj["schema"].is_null() {
        return Ok(());
    }
    let pointer = format!("{code_pointer}/content/{}/schema", escape(doc_media));
    let v = validator(&pointer)?;
    let errors: Vec<String> = v
        .iter_errors(body)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        let shown = body.to_string();
        Err(format!(
            "{method} {tpl} {status}: the body does not match the document: {}\nbody: {}",
            errors.join("; "),
            &shown[..shown.len().min(800)]
        ))
    }
}

/// Panics (naming the disagreement) unless the answer is as documented. With
/// `MANDATE_CONTRACT_LOG=FILE`, disagreements are appended to FILE instead (to survey them);
/// with `MANDATE_CONTRACT_HITS=FILE`, every checked answer's `method template status` is (to
/// see which operations the suite drives).
#[track_caller]
pub fn assert_documented(
    method: &str,
    url_path: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) {
    if let Err(e) = check(method, url_path, status, content_type, body) {
        match std::env::var("MANDATE_CONTRACT_LOG") {
            Ok(file) => {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(file)
                {
                    let _ = f.write_all(format!("{}\n", e.replace('\n', " | ")).as_bytes());
                }
            }
            Err(_) => panic!("the answer disagrees with openapi.json: {e}"),
        }
    }
}

#[test]
fn paths_match_their_templates_literal_segments_first() {
    assert_eq!(
        template("/v1/agents/bot-1").as_deref(),
        Some("/v1/agents/{id}")
    );
    assert_eq!(
        template("/v1/audit/export").as_deref(),
        Some("/v1/audit/export")
    );
    assert_eq!(template("/nothing/here"), None);
}

#[test]
fn a_body_that_breaks_the_schema_is_caught() {
    let problem = serde_json::json!({"type": "urn:mandate:problem:not-found", "title": "Not Found", "status": 404, "detail": "x"});
    assert_eq!(
        check(
            "GET",
            "/v1/agents/x",
            404,
            "application/problem+json",
            &problem
        ),
        Ok(())
    );
    let wrong = serde_json::json!({"items": "not a list", "next_cursor": null});
    assert!(check("GET", "/v1/agents", 200, "application/json", &wrong).is_err());
}

/// The operations no other test drives through the harness, each with an answer that succeeds
/// and one that is refused, checked against the document like every other answer.
#[tokio::test]
async fn the_pki_health_and_oversight_routes_answer_as_documented() {
    use crate::harness::{Ca, full_mandate};
    let ca = Ca::start_with_config("[audit]\ncheckpoint_secs = 1\n").await;
    ca.approved_agent("doc-bot", full_mandate()).await;
    let d = &ca.d;
    let auditor = d.key("auditor", None).await;
    let org_auditor = d.person_key(Some("acme-trading"), "auditor").await;
    let get = |key: Option<String>, path: &'static str| async move {
        d.request(reqwest::Method::GET, key.as_deref(), path, None)
            .await
    };
    for path in [
        "/healthz",
        "/ca/root.pem",
        "/ca/root.der",
        "/ca/intermediate.pem",
        "/ca/intermediate.der",
        "/ca/chain.pem",
        "/v1/openapi.json",
    ] {
        let r = get(None, path).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
    }
    // The first checkpoint is signed on the checkpointer's schedule (here within a second of
    // the first records): before it, a documented 404.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = get(None, "/v1/audit/checkpoint").await;
        if r.status == 200 {
            break;
        }
        r.assert_problem(404, "not-found");
        assert!(std::time::Instant::now() < deadline, "no checkpoint signed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(get(Some(auditor.clone()), "/metrics").await.status, 200);
    get(Some(org_auditor.clone()), "/metrics")
        .await
        .assert_problem(403, "forbidden");
    get(None, "/ca/issuers/00ff.der")
        .await
        .assert_problem(404, "not-found");
    get(None, "/crl/nothing.crl")
        .await
        .assert_problem(404, "not-found");
    // OCSP refusals are OCSP responses, as documented.
    let r = get(None, "/ocsp/bm90LW9jc3A").await;
    assert_eq!(r.content_type, "application/ocsp-response", "{r:?}");
    let r = get(
        Some(org_auditor.clone()),
        "/v1/reports/organizations/acme-trading?from=2026-01-01&to=2026-01-02",
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    get(
        Some(org_auditor.clone()),
        "/v1/reports/organizations/other-firm?from=2026-01-01&to=2026-01-02",
    )
    .await
    .assert_problem(404, "not-found");
    d.post(
        &ca.compliance,
        "/v1/agents/doc-bot/baseline/reject",
        &serde_json::json!({}),
    )
    .await
    .assert_problem(409, "wrong-state");
    d.post(
        &ca.operator,
        "/v1/incidents/999999/acknowledge",
        &serde_json::json!({}),
    )
    .await
    .assert_problem(404, "not-found");
}

/// Checks an answer whose body is not JSON (PEM, DER, JSON Lines) against the document: its
/// path and method, status and media type.
#[track_caller]
pub fn assert_documented_raw(method: &str, r: &reqwest::Response) {
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let status = r.status().as_u16();
    assert_documented(method, r.url().path(), status, &content_type, &Value::Null);
}

/// A path template with its parameters filled by values no object has.
fn unknown_object(template: &str) -> String {
    template
        .split('/')
        .map(|s| match s {
            "{file}" if template.starts_with("/crl/") => "nope.crl",
            "{file}" => "nope.der",
            // Not base64 DER: the answer is the refusal of a malformed request.
            "{request}" | "{cert_id}" => "%FF",
            s if s.starts_with('{') => "zz-unknown",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every documented operation is called the way an attacker or a broken client would (no key,
/// an unknown object, a body that is not what it takes): each answer is as documented, and
/// every operation that documents a refusal refuses. With the rest of the suite's answers
/// (successes, and the refusals of real state), `scripts/contract_coverage.py` then checks that
/// every route was seen answering both ways.
#[tokio::test]
async fn every_documented_operation_refuses_a_stranger_as_documented() {
    let d = crate::harness::Daemon::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let doc = mandate_ca::openapi_document();
    let mut refused = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let path = unknown_object(template);
            let url = format!("{}{path}", d.base);
            let request = match method.as_str() {
                "get" => http.get(&url),
                "head" => http.head(&url),
                "post" if template.starts_with("/acme/") => http
                    .post(&url)
                    .header("content-type", "application/jose+json")
                    .body("{}"),
                "post" if template == "/ocsp" => http
                    .post(&url)
                    .header("content-type", "application/ocsp-request")
                    .body("not DER"),
                "post" => http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(r#"{"unexpected": true}"#),
                other => panic!("{other} {template}: a method this walk does not know"),
            };
            let documents_refusal = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with('4'));
            // What a stranger can be refused for: a key it lacks, an object that is not there,
            // a body the operation does not take. An operation that takes none of these (a
            // public file, a probe) is refused only by the listener: a header over its bound.
            let provokable = op["security"].as_array().is_some_and(|s| !s.is_empty())
                || template.contains('{')
                || method == "post";
            let request = if documents_refusal && !provokable {
                request.header("x-filler", "x".repeat(40 * 1024))
            } else {
                request
            };
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let content_type = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let bytes = r.bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            assert_documented(
                &method.to_ascii_uppercase(),
                &path,
                status,
                &content_type,
                &body,
            );
            // OCSP refuses inside a 200 OCSP response (RFC 6960 §2.3).
            if documents_refusal && !template.starts_with("/ocsp") {
                assert!(
                    (400..500).contains(&status),
                    "{method} {path}: answered {status}, not a refusal: {body}"
                );
                refused += 1;
            }
        }
    }
    assert!(refused >= 60, "only {refused} operations refused");
}
