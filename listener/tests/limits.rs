//! The listener's bounds, tried over real loopback TCP against hyper, as a hostile client
//! would: half a header, a stalled body, an idle keep-alive, a flood past the connection cap,
//! headers and targets too large, bytes that are not HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use mandate_listener::{Acceptor, Answer, Limits, Refuser, Stats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(1);
/// How long past a limit a cut may come (a loaded CI machine).
const MARGIN: Duration = Duration::from_secs(5);

fn limits() -> Limits {
    Limits {
        header_read_timeout: LIMIT,
        body_read_timeout: LIMIT,
        idle_timeout: LIMIT,
        max_header_bytes: 8 * 1024,
        max_connections: 3,
        max_tls_handshakes: 1,
        tls_handshake_timeout: LIMIT,
    }
}

struct Server {
    addr: SocketAddr,
    stats: Arc<Stats>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(limits: Limits) -> Server {
    let router = Router::new()
        .route("/hello", get(|| async { "hi" }))
        .route(
            "/slow",
            get(|| async {
                // Work that outlasts every connection limit: it is not the client's fault.
                tokio::time::sleep(LIMIT * 2).await;
                "hi"
            }),
        )
        .route(
            "/echo",
            post(|body: Bytes| async move { format!("{}", body.len()) }),
        );
    let refuser: Refuser =
        Arc::new(|r| Answer::problem(r.status, &format!("urn:test:{}", r.path), r.detail));
    let acceptor = Acceptor::plain("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = acceptor.local_addr().unwrap();
    let stats = Arc::new(Stats::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(mandate_listener::serve(
        acceptor,
        router,
        limits,
        stats.clone(),
        refuser,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        stats,
        _stop: stop,
    }
}

/// Everything the server sends until it closes, and when it closed (from `since`).
async fn until_closed(stream: &mut TcpStream, since: Instant) -> (String, Duration) {
    let mut got = Vec::new();
    let read = tokio::time::timeout(LIMIT + MARGIN, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "still open after {:?}", LIMIT + MARGIN);
    (String::from_utf8_lossy(&got).into_owned(), since.elapsed())
}

/// Reads one response to a request for `/hello` (it ends with its 2-byte body).
async fn read_hello(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(MARGIN, async {
        while !got.ends_with(b"\r\n\r\nhi") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("no answer to /hello");
    String::from_utf8_lossy(&got).into_owned()
}

fn assert_problem(answer: &str, status: u16) {
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status} ")),
        "expected {status}: {answer}"
    );
    assert!(
        answer.contains("content-type: application/problem+json"),
        "{answer}"
    );
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(v["status"], status, "{body}");
    assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn half_a_header_is_answered_408_and_closed_at_the_header_timeout() {
    let server = start(limits()).await;
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    let sent = Instant::now();
    c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (answer, after) = until_closed(&mut c, sent).await;
    assert_problem(&answer, 408);
    assert!(
        answer.contains("urn:test:/hello"),
        "the path is known: {answer}"
    );
    assert!(after < LIMIT + MARGIN);
    assert_eq!(server.stats.timed_out_header.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_header_trickled_byte_by_byte_does_not_extend_its_time() {
    let server = start(limits()).await;
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    let start = Instant::now();
    // One byte every 200 ms: each arrives well within any per-read timer, the whole never.
    let header = b"GET /hello HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for b in header {
        if c.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if start.elapsed() > LIMIT + MARGIN {
            break;
        }
    }
    let (answer, after) = until_closed(&mut c, start).await;
    assert!(after < LIMIT + MARGIN + LIMIT, "cut off after {after:?}");
    assert_problem(&answer, 408);
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_closed_at_the_body_timeout() {
    let server = start(limits()).await;
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    let sent = Instant::now();
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .unwrap();
    let (answer, after) = until_closed(&mut c, sent).await;
    assert_problem(&answer, 408);
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(after < LIMIT + MARGIN);
    assert_eq!(server.stats.timed_out_body.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_at_the_idle_timeout() {
    let server = start(limits()).await;
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let first = read_hello(&mut c).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let idle = Instant::now();
    let (rest, after) = until_closed(&mut c, idle).await;
    assert_eq!(rest, "", "an idle connection is closed without an answer");
    assert!(after < LIMIT + MARGIN);
    assert_eq!(server.stats.timed_out_idle.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_handler_that_takes_longer_than_every_limit_is_not_cut_off() {
    let server = start(limits()).await;
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    c.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_hello(&mut c).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn requests_in_a_row_on_one_connection_are_served() {
    let server = start(limits()).await;
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..3 {
        c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(read_hello(&mut c).await.starts_with("HTTP/1.1 200"));
    }
}

#[tokio::test]
async fn past_the_connection_cap_a_client_gets_503_and_the_server_recovers() {
    let server = start(limits()).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(server.addr).await.unwrap();
        c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        read_hello(&mut c).await;
        held.push(c);
    }
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let (answer, _) = until_closed(&mut extra, Instant::now()).await;
    assert_problem(&answer, 503);
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert_eq!(
        server.stats.refused_connection_cap.load(Ordering::Relaxed),
        1
    );
    drop(held);
    // Once the flood ends, a client is served again (the server notices the closes).
    let deadline = Instant::now() + MARGIN;
    loop {
        let mut c = TcpStream::connect(server.addr).await.unwrap();
        c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 512];
        let n = tokio::time::timeout(MARGIN, c.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        if String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "never served again");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn too_large_headers_and_targets_and_non_http_get_problem_documents() {
    let server = start(limits()).await;
    let cases: [(Vec<u8>, &[u16]); 3] = [
        (
            format!(
                "GET /hello HTTP/1.1\r\nX-Big: {}\r\n\r\n",
                "a".repeat(10_000)
            )
            .into_bytes(),
            &[431],
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            &[414, 431],
        ),
        (b"\x16\x03\x01 not http at all\r\n\r\n".to_vec(), &[400]),
    ];
    for (request, statuses) in cases {
        let mut c = TcpStream::connect(server.addr).await.unwrap();
        let _ = c.write_all(&request).await;
        let (answer, _) = until_closed(&mut c, Instant::now()).await;
        let status: u16 = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(statuses.contains(&status), "{answer}");
        assert_problem(&answer, status);
    }
    assert_eq!(server.stats.malformed.load(Ordering::Relaxed), 3);
}
