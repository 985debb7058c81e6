//! The document a refusal made below the routes is answered with.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};

/// A complete answer: status, media type and body; the connection is closed after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// `Retry-After` in seconds, for 503.
    pub retry_after: Option<u32>,
}

impl Answer {
    /// An RFC 9457 problem document with the given type URI.
    pub fn problem(status: StatusCode, type_uri: &str, detail: &str) -> Answer {
        let body = serde_json::json!({
            "type": type_uri,
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
        });
        Answer {
            status,
            content_type: "application/problem+json",
            body: body.to_string().into_bytes(),
            retry_after: (status == StatusCode::SERVICE_UNAVAILABLE).then_some(1),
        }
    }

    /// The answer as HTTP/1.1 bytes, for writing to a connection hyper does not serve (or no
    /// longer serves).
    pub(crate) fn to_http1(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 200);
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\ndate: {}\r\n",
                self.status.as_str(),
                self.status.canonical_reason().unwrap_or("Error"),
                self.content_type,
                self.body.len(),
                http_date(),
            )
            .as_bytes(),
        );
        if let Some(secs) = self.retry_after {
            out.extend_from_slice(format!("retry-after: {secs}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// The answer as a response for hyper to write, closing the connection after it.
    pub(crate) fn into_response(self) -> Response<Body> {
        let mut resp = Response::new(Body::from(self.body));
        *resp.status_mut() = self.status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Now as an HTTP-date (RFC 9110 §5.6.7).
fn http_date() -> String {
    const FORMAT: &[time::format_description::FormatItem<'_>] = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::now_utc()
        .format(FORMAT)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_written_as_a_whole_http_response() {
        let a = Answer::problem(StatusCode::SERVICE_UNAVAILABLE, "urn:x:busy", "a \"quote\"");
        let text = String::from_utf8(a.to_http1()).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(head.contains("content-type: application/problem+json\r\n"));
        assert!(head.contains(&format!("content-length: {}\r\n", body.len())));
        assert!(head.contains("retry-after: 1") && head.contains("connection: close"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(v["detail"], "a \"quote\"");
        assert_eq!(v["status"], 503);
    }
}
