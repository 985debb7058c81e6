//! A webhook receiver on loopback that checks every delivery's signature, as a customer's would.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use ring::hmac;
use serde_json::Value;

/// What the receiver accepted: bodies whose `X-Mandate-Signature` verified.
#[derive(Clone, Default)]
pub struct Received {
    pub good: Arc<Mutex<Vec<Value>>>,
    pub bad_signatures: Arc<Mutex<usize>>,
}

impl Received {
    pub fn of_type(&self, kind: &str) -> Vec<Value> {
        self.good
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["type"] == kind)
            .cloned()
            .collect()
    }
}

/// Verifies `X-Mandate-Signature` (hex HMAC-SHA256 of the raw body, the secret text as key)
/// and that `X-Mandate-Timestamp` is the signed `sent_at`, within five minutes of now.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Option<Value> {
    let sig = hex::decode(headers.get("x-mandate-signature")?.to_str().ok()?).ok()?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::verify(&key, body, &sig).ok()?;
    let v: Value = serde_json::from_slice(body).ok()?;
    let stamp = headers.get("x-mandate-timestamp")?.to_str().ok()?;
    let ts = time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
        .ok()?
        .unix_timestamp();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    (v["sent_at"] == stamp && (now - ts).abs() < 300).then_some(v)
}

/// Serves on `port` until dropped; the secret is set once the endpoint is created.
pub struct Receiver {
    pub received: Received,
    pub secret: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(port: u16) -> Receiver {
        let received = Received::default();
        let secret = Arc::new(Mutex::new(String::new()));
        let (r, s) = (received.clone(), secret.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (r, s) = (r.clone(), s.clone());
                async move {
                    let secret = s.lock().unwrap().clone();
                    match verify(&secret, &headers, &body) {
                        Some(v) => {
                            r.good.lock().unwrap().push(v);
                            StatusCode::NO_CONTENT
                        }
                        None => {
                            *r.bad_signatures.lock().unwrap() += 1;
                            StatusCode::UNAUTHORIZED
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            received,
            secret,
            task,
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Hex HMAC-SHA256, for building test headers.
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(hmac::sign(&key, body).as_ref())
}
