//! `mandate --url URL …`: the command line as a client of a running daemon's API, with the
//! API key in `MANDATE_API_KEY`. Every decision is the daemon's: the command sends what was
//! asked and prints what came back, so a compliance officer needs neither curl nor the
//! database, and the role, organization and four-eyes rules are the same as everywhere else.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// The environment variable that holds the API key (never a flag: flags show in `ps`).
pub const KEY_ENV: &str = "MANDATE_API_KEY";

/// A daemon's API, as one person's key.
pub struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    /// The API at `url` (`http://` or `https://`; an `https://` CA of its own is trusted with
    /// `cacert`), with the key from `MANDATE_API_KEY`.
    pub fn new(url: &str, cacert: Option<&Path>) -> anyhow::Result<Api> {
        let base = url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
            bail!("--url: {url:?} is not an http:// or https:// URL of a mandate daemon");
        }
        let key = std::env::var(KEY_ENV)
            .ok()
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .with_context(|| {
                format!("--url needs an API key: set {KEY_ENV} (an admin gives you one)")
            })?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            // A redirect could carry the key elsewhere; the API never redirects.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = cacert {
            let pem = std::fs::read(path)
                .with_context(|| format!("--cacert: reading {}", path.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem).with_context(|| {
                format!("--cacert: {} is not a PEM certificate", path.display())
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().context("setting up the HTTP client")?;
        Ok(Api { base, key, http })
    }

    /// `GET path?query` (parameters that are `None` are left out).
    pub async fn get(&self, path: &str, query: &[(&str, Option<String>)]) -> anyhow::Result<Value> {
        let url = format!("{}{path}{}", self.base, query_string(query));
        self.send(self.http.get(&url), &url).await
    }

    /// `POST path` with a JSON body (or none).
    pub async fn post(&self, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut rb = self.http.post(&url);
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        self.send(rb, &url).await
    }

    async fn send(&self, rb: reqwest::RequestBuilder, url: &str) -> anyhow::Result<Value> {
        let res = rb
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = res.status();
        let request_id = res
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = res
            .bytes()
            .await
            .with_context(|| format!("reading the answer of {url}"))?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into())
            })
        };
        if status.is_success() {
            return Ok(body);
        }
        bail!("{}", problem_text(status, &body, request_id.as_deref()))
    }
}

/// A refusal as one line: `403 forbidden: <detail> (request id …)`.
fn problem_text(status: reqwest::StatusCode, body: &Value, request_id: Option<&str>) -> String {
    let kind = body["type"]
        .as_str()
        .and_then(|t| t.rsplit([':', '/']).next())
        .map(str::to_owned)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let detail = body["detail"]
        .as_str()
        .or_else(|| body["title"].as_str())
        .or_else(|| body.as_str())
        .unwrap_or("");
    let mut text = format!("{} {kind}", status.as_u16());
    if !detail.is_empty() {
        text.push_str(": ");
        text.push_str(detail);
    }
    if let Some(id) = request_id {
        text.push_str(&format!(" (request id {id})"));
    }
    text
}

/// One path segment, percent-encoded (an id cannot reach another route).
pub fn seg(value: &str) -> String {
    mandate_ca::url_component(value)
}

fn query_string(query: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = query
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", seg(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// A JSON file given on the command line (`-` reads standard input).
pub fn read_json(arg: &str, path: &Path) -> anyhow::Result<Value> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("{arg}: reading {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{arg}: {} is not JSON", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_queries_are_escaped() {
        assert_eq!(seg("bot-1"), "bot-1");
        assert_eq!(seg("../x y"), "..%2Fx%20y");
        assert_eq!(
            query_string(&[("a", Some("1&b=2".into())), ("c", None)]),
            "?a=1%26b%3D2"
        );
        assert_eq!(query_string(&[("c", None)]), "");
    }

    #[test]
    fn a_problem_reads_as_one_line() {
        let body = serde_json::json!({
            "type": "urn:mandate:problem:forbidden",
            "title": "Forbidden", "detail": "needs role compliance"
        });
        assert_eq!(
            problem_text(reqwest::StatusCode::FORBIDDEN, &body, Some("r1")),
            "403 forbidden: needs role compliance (request id r1)"
        );
        assert_eq!(
            problem_text(reqwest::StatusCode::BAD_GATEWAY, &Value::Null, None),
            "502 Bad Gateway"
        );
    }
}
