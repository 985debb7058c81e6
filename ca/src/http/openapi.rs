//! `GET /v1/openapi.json`: the OpenAPI 3.1 description of every route (REST, ACME, OCSP, CRL,
//! PKI and health). A test keeps it in step with the routers.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as committed.
const DOCUMENT: &str = include_str!("openapi.json");

/// `GET /v1/openapi.json` (no key).
pub async fn get() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::DOCUMENT;

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
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap_or_default();
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
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap_or_default();
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
}
