//! Every answer the suite gets through the harness is checked against the OpenAPI document the
//! daemon serves (`ca/src/http/openapi.json`): its path and method are documented, its status is
//! one the operation lists, its media type is the documented one, and a JSON body validates
//! against the documented schema (JSON Schema 2020-12, `$ref`s resolved in the document). So
//! the whole end-to-end suite is the response-validation test: success and error answers of
//! every route it drives.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;

static DOCUMENT: &str = include_str!("../../ca/src/http/openapi.json");

struct Contract {
    doc: Value,
    /// (template segments, template) of every documented path.
    paths: Vec<(Vec<String>, String)>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    let mut doc: Value = serde_json::from_str(DOCUMENT).expect("openapi.json parses");
    close_objects(&mut doc);
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

/// Makes every object schema that lists its properties closed (`unevaluatedProperties: false`,
/// unless it says otherwise): a field the daemon sends that the document does not name is a
/// disagreement too, so a renamed field cannot slip through.
fn close_objects(v: &mut Value) {
    close(v, true);
}

fn close(v: &mut Value, close_here: bool) {
    match v {
        Value::Object(map) => {
            let closable = (map.get("properties").is_some_and(Value::is_object)
                || map.contains_key("allOf"))
                && !map.contains_key("additionalProperties")
                && !map.contains_key("unevaluatedProperties");
            for (k, child) in map.iter_mut() {
                match (k.as_str(), child) {
                    // `properties` holds schemas by field name, never a schema itself.
                    ("properties", Value::Object(fields)) => {
                        fields.values_mut().for_each(|f| close(f, true));
                    }
                    // An `allOf`'s parts each see only their own fields: the whole is closed
                    // where they meet, not part by part.
                    ("allOf", Value::Array(parts)) => {
                        parts.iter_mut().for_each(|p| close(p, false));
                    }
                    // A problem document may carry extension members (RFC 9457 §3.2).
                    ("Problem", child) => close(child, false),
                    (_, child) => close(child, true),
                }
            }
            if closable && close_here {
                map.insert("unevaluatedProperties".into(), Value::Bool(false));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| close(i, true)),
        _ => {}
    }
}

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
            let _ = writeln!(f, "{method} {tpl} {status}");
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
    let response = &responses[&code];
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
        m.as_str() == media
            || m.as_str() == "*/*"
            || (m.ends_with("/*") && media.starts_with(m.trim_end_matches('*')))
    }) else {
        return Err(format!(
            "{method} {tpl} {status}: answered {media}, documented {:?}",
            content.keys().collect::<Vec<_>>()
        ));
    };
    if !(media == "application/json" || media.ends_with("+json")) || media_obj["schema"].is_null() {
        return Ok(());
    }
    let pointer = format!(
        "/paths/{}/{method}/responses/{code}/content/{}/schema",
        escape(&tpl),
        escape(doc_media)
    );
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
                    let _ = writeln!(f, "{}", e.replace('\n', " | "));
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
