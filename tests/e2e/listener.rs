//! The daemon's and the stand-alone responder's listeners under hostile clients (the bounds
//! themselves are tried in depth in `listener/tests/limits.rs`): half a header, a stalled
//! body and an idle keep-alive are cut off within the configured timeouts, a flood past the
//! connection cap is refused cleanly and the daemon serves again after it, and what the HTTP
//! layer refuses on its own is a document of the path's kind — OCSP on /ocsp, ACME problems on
//! /acme, problem+json elsewhere — counted in /metrics.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Daemon, Responder};

const CONFIG: &str = "[http]\nheader_read_timeout_secs = 1\nbody_read_timeout_secs = 1\nidle_timeout_secs = 1\nmax_connections = 6\n";
/// A timeout of the config above plus what a loaded machine may add.
const WITHIN: Duration = Duration::from_secs(6);
/// OCSPResponse { responseStatus malformedRequest }.
const OCSP_MALFORMED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x01];

fn addr_of(base: &str) -> String {
    base.trim_start_matches("http://")
        .trim_end_matches("/ocsp")
        .to_owned()
}

/// Sends `bytes`, then reads until the server closes: (status, content type, body, when).
async fn exchange(addr: &str, bytes: &[u8]) -> (u16, String, Vec<u8>, Duration) {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let sent = Instant::now();
    let _ = c.write_all(bytes).await;
    let mut got = Vec::new();
    let closed = tokio::time::timeout(WITHIN, async {
        let mut buf = [0u8; 8192];
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still open after {WITHIN:?}: {bytes:.80?}");
    let at = sent.elapsed();
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(got.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&got[..split]).to_lowercase();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    (status, content_type, got[split..].to_vec(), at)
}

#[track_caller]
fn assert_problem(answer: &(u16, String, Vec<u8>, Duration), status: u16, type_uri: &str) {
    assert_eq!(answer.0, status, "{answer:?}");
    assert_eq!(answer.1, "application/problem+json", "{answer:?}");
    let body: serde_json::Value = serde_json::from_slice(&answer.2).unwrap();
    assert_eq!(body["type"], type_uri, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

#[track_caller]
fn assert_ocsp_malformed(answer: &(u16, String, Vec<u8>, Duration)) {
    assert_eq!(answer.0, 200, "{answer:?}");
    assert_eq!(answer.1, "application/ocsp-response", "{answer:?}");
    assert_eq!(answer.2, OCSP_MALFORMED, "{answer:?}");
}

fn counter(metrics: &str, reason: &str) -> u64 {
    listener_counter(metrics, "http", reason)
}

/// A sample of `mandate_http_connections_cut_total` (0 when absent).
fn listener_counter(metrics: &str, listener: &str, reason: &str) -> u64 {
    let sample = format!(
        "mandate_http_connections_cut_total{{listener=\"{listener}\",reason=\"{reason}\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&sample))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn slow_clients_are_cut_off_floods_refused_and_refusals_are_documents() {
    let d = Daemon::start_with_config(CONFIG).await;
    let addr = addr_of(&d.base);

    // Half a header: 408 within the header timeout, of the path's kind.
    let half = exchange(&addr, b"GET /v1/agents HTTP/1.1\r\nHost: x\r\n").await;
    assert_problem(&half, 408, "urn:mandate:problem:request-timeout");
    assert!(half.3 < WITHIN);
    let half_ocsp = exchange(&addr, b"GET /ocsp/MEMwQTA HTTP/1.1\r\nHost: x\r\n").await;
    assert_ocsp_malformed(&half_ocsp);

    // A body that stalls: 408 within the body timeout, the connection closed.
    let key = d.admin_key();
    let stalled = exchange(
        &addr,
        format!(
            "POST /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{{\"id\":"
        )
        .as_bytes(),
    )
    .await;
    assert_problem(&stalled, 408, "urn:mandate:problem:request-timeout");

    // An idle keep-alive is closed within the idle timeout.
    let idle = exchange(&addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(idle.0, 200, "{idle:?}");
    assert!(idle.3 < WITHIN);

    // What hyper refuses on its own, as documents.
    let long_ocsp = format!(
        "GET /ocsp/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "A".repeat(70_000)
    );
    assert_ocsp_malformed(&exchange(&addr, long_ocsp.as_bytes()).await);
    let big_header = format!(
        "GET /v1/agents HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    assert_problem(
        &exchange(&addr, big_header.as_bytes()).await,
        431,
        "urn:mandate:problem:header-too-large",
    );
    let acme_header = format!(
        "POST /acme/new-order HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    assert_problem(
        &exchange(&addr, acme_header.as_bytes()).await,
        431,
        "urn:ietf:params:acme:error:malformed",
    );
    assert_problem(
        &exchange(&addr, b"NOT HTTP\r\n\r\n").await,
        400,
        "urn:mandate:problem:invalid-request",
    );

    // A flood: the connections past the cap are refused at once, and once it ends the daemon
    // answers again.
    let mut flood = Vec::new();
    let mut refused = None;
    for _ in 0..20 {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(WITHIN, c.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("HTTP/1.1 503") {
            refused = Some(text);
            break;
        }
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        flood.push(c);
    }
    let refused = refused.expect("the connection cap was never reached");
    assert!(
        refused.contains("urn:mandate:problem:overloaded"),
        "{refused}"
    );
    assert!(refused.contains("retry-after: 1"), "{refused}");
    assert!(flood.len() <= 6, "{} connections held", flood.len());
    drop(flood);
    let deadline = Instant::now() + WITHIN;
    let metrics = loop {
        let r = d
            .raw()
            .get(format!("{}/metrics", d.base))
            .bearer_auth(&key)
            .send()
            .await;
        if let Ok(r) = r
            && r.status() == 200
        {
            break r.text().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "not serving again after the flood"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(counter(&metrics, "timed_out_header") >= 2, "{metrics}");
    assert!(counter(&metrics, "timed_out_body") >= 1, "{metrics}");
    assert!(counter(&metrics, "timed_out_idle") >= 1, "{metrics}");
    assert!(
        counter(&metrics, "refused_connection_cap") >= 1,
        "{metrics}"
    );
    assert!(counter(&metrics, "malformed") >= 4, "{metrics}");
}

#[tokio::test]
async fn the_stand_alone_responder_has_the_same_bounds() {
    let d = Daemon::start_with_config(CONFIG).await;
    let r = Responder::start(&d).await;
    let addr = addr_of(&r.url);
    assert_ocsp_malformed(&exchange(&addr, b"GET /ocsp/MEMw HTTP/1.1\r\nHost: x\r\n").await);
    assert_ocsp_malformed(
        &exchange(
            &addr,
            b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: 300\r\n\r\n0",
        )
        .await,
    );
    let long = format!(
        "GET /ocsp/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "A".repeat(70_000)
    );
    assert_ocsp_malformed(&exchange(&addr, long.as_bytes()).await);
    let idle = exchange(&addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(idle.0, 200, "{idle:?}");
}

#[tokio::test]
async fn tls_handshakes_are_capped_and_timed() {
    let tls_port = crate::harness::free_port();
    let d = Daemon::start_with_config(&format!(
        "[http]\ntls_listen = \"127.0.0.1:{tls_port}\"\nmax_tls_handshakes = 1\ntls_handshake_timeout_secs = 1\n"
    ))
    .await;
    let addr = format!("127.0.0.1:{tls_port}");
    // A client that connects and never says hello holds the only handshake slot...
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let held = Instant::now();
    // ... so the next one is closed at once, without a byte.
    let mut next = TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WITHIN, next.read(&mut buf))
        .await
        .expect("a connection past the handshake cap is closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // The silent one is closed when its handshake time is up.
    let n = tokio::time::timeout(WITHIN, silent.read(&mut buf))
        .await
        .expect("a handshake that never comes is cut off")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(held.elapsed() < WITHIN);
    // Then HTTPS works again, and /metrics says what was cut.
    let root = reqwest::Certificate::from_pem(d.get_text("/ca/root.pem").await.as_bytes()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let key = d.admin_key();
    let deadline = Instant::now() + WITHIN;
    let metrics = loop {
        if let Ok(r) = https
            .get(format!("https://127.0.0.1:{tls_port}/metrics"))
            .bearer_auth(&key)
            .send()
            .await
            && r.status() == 200
        {
            break r.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "HTTPS never answered again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        listener_counter(&metrics, "https", "refused_handshake_cap") >= 1,
        "{metrics}"
    );
    assert!(
        listener_counter(&metrics, "https", "timed_out_handshake") >= 1,
        "{metrics}"
    );
}
