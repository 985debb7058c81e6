//! The daemon's and the stand-alone responder's HTTP/1.1 listeners, with bounds a hostile
//! client cannot get around.
//!
//! `axum::serve` sets no timer, so a client that trickles its header, stalls its body or just
//! holds a kept-alive connection open keeps a file descriptor forever, and nothing caps
//! connections or TLS handshakes. Here every connection runs through [`guard`]: a header must
//! arrive within `http.header_read_timeout_secs` of its first byte, a body may not stall for
//! longer than `http.body_read_timeout_secs`, an idle kept-alive connection (or a client that
//! stops reading its response) is closed after `http.idle_timeout_secs`; connections beyond
//! `http.max_connections` and handshakes beyond `http.max_tls_handshakes` are refused at once,
//! never queued. What the HTTP layer answers on its own (a header too large, a request it cannot
//! parse, a timeout, the connection cap) is a document the caller chooses by path through its
//! [`Refuser`] — problem+json, an ACME problem, an OCSP response — never an empty body.

mod answer;
mod body;
mod conn;
mod error;
mod guard;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

pub use answer::Answer;
pub use error::ListenerError;

/// The bounds of one listener (from the `[http]` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time for a whole request header, from its first byte.
    pub header_read_timeout: Duration,
    /// Longest a request body may go without a byte arriving.
    pub body_read_timeout: Duration,
    /// Longest a kept-alive connection may wait for its next request, and a response for a
    /// client that does not read it.
    pub idle_timeout: Duration,
    /// Largest request header, start line included.
    pub max_header_bytes: usize,
    /// Connections open at once.
    pub max_connections: usize,
    /// TLS handshakes in progress at once.
    pub max_tls_handshakes: usize,
    /// Time for a TLS handshake.
    pub tls_handshake_timeout: Duration,
}

impl Limits {
    /// The limits the configuration sets.
    pub fn from_config(http: &mandate_config::HttpConfig) -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(http.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(http.body_read_timeout_secs),
            idle_timeout: Duration::from_secs(http.idle_timeout_secs),
            max_header_bytes: http.max_header_bytes,
            max_connections: http.max_connections,
            max_tls_handshakes: http.max_tls_handshakes,
            tls_handshake_timeout: Duration::from_secs(http.tls_handshake_timeout_secs),
        }
    }
}

/// What a listener accepted, refused and cut off, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections refused because `max_connections` were open.
    pub refused_connection_cap: AtomicU64,
    /// Connections closed because `max_tls_handshakes` handshakes were in progress.
    pub refused_handshake_cap: AtomicU64,
    /// Connections closed because a request header was not complete in time.
    pub timed_out_header: AtomicU64,
    /// Requests failed because their body stalled.
    pub timed_out_body: AtomicU64,
    /// Kept-alive connections closed after waiting too long for a request.
    pub timed_out_idle: AtomicU64,
    /// Connections closed because the client stopped reading its response.
    pub timed_out_send: AtomicU64,
    /// Connections closed because their TLS handshake was not complete in time.
    pub timed_out_handshake: AtomicU64,
    /// Requests the HTTP layer could not parse (bad syntax, header or target too large).
    pub malformed: AtomicU64,
}

impl Stats {
    /// The counters as `(name, value)` pairs, in a fixed order (the gauge `open` excluded).
    pub fn counters(&self) -> [(&'static str, u64); 8] {
        let v = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("refused_connection_cap", v(&self.refused_connection_cap)),
            ("refused_handshake_cap", v(&self.refused_handshake_cap)),
            ("timed_out_header", v(&self.timed_out_header)),
            ("timed_out_body", v(&self.timed_out_body)),
            ("timed_out_idle", v(&self.timed_out_idle)),
            ("timed_out_send", v(&self.timed_out_send)),
            ("timed_out_handshake", v(&self.timed_out_handshake)),
            ("malformed", v(&self.malformed)),
        ]
    }
}

/// A refusal made below the routes: the status, the request's path as far as it is known
/// (empty when nothing was read), and what went wrong.
#[derive(Debug)]
pub struct Refusal<'a> {
    /// 400, 408, 414, 431 or 503.
    pub status: StatusCode,
    /// The path of the request, possibly cut short; empty when unknown.
    pub path: &'a str,
    /// A sentence for the client.
    pub detail: &'a str,
}

/// Renders a [`Refusal`] as the document its caller expects (chosen by path).
pub type Refuser = Arc<dyn Fn(&Refusal<'_>) -> Answer + Send + Sync>;

/// Where connections come from.
pub enum Acceptor {
    /// Plain HTTP.
    Plain(TcpListener),
    /// HTTPS: TCP, then a TLS handshake.
    Tls {
        /// The TCP listener.
        tcp: TcpListener,
        /// The server's TLS configuration.
        tls: TlsAcceptor,
    },
}

impl Acceptor {
    /// Binds plain HTTP on `addr`.
    pub async fn plain(addr: SocketAddr) -> Result<Acceptor, ListenerError> {
        Ok(Acceptor::Plain(bind(addr).await?))
    }

    /// Binds HTTPS on `addr`.
    pub async fn tls(
        addr: SocketAddr,
        config: Arc<tokio_rustls::rustls::ServerConfig>,
    ) -> Result<Acceptor, ListenerError> {
        Ok(Acceptor::Tls {
            tcp: bind(addr).await?,
            tls: TlsAcceptor::from(config),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, ListenerError> {
        self.tcp().local_addr().map_err(|source| ListenerError::Io {
            context: "listener address".into(),
            source,
        })
    }

    fn tcp(&self) -> &TcpListener {
        match self {
            Acceptor::Plain(tcp) | Acceptor::Tls { tcp, .. } => tcp,
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ListenerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ListenerError::Io {
            context: format!("listen on {addr}"),
            source,
        })
}

/// Serves `router` on `acceptor` within `limits` until `shutdown` completes, then lets the
/// open connections finish their requests (idle ones close at once) and returns.
pub async fn serve(
    acceptor: Acceptor,
    router: Router,
    limits: Limits,
    stats: Arc<Stats>,
    refuser: Refuser,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ListenerError> {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let handshakes = Arc::new(Semaphore::new(limits.max_tls_handshakes));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = acceptor.tcp().accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, typically: pause instead of spinning on it.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            stats.refused_connection_cap.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "connection refused: http.max_connections are open");
            if matches!(acceptor, Acceptor::Plain(_)) {
                conn::refuse_at_once(&stream, &refuser, limits.max_connections);
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = conn::Conn {
            router: router.clone(),
            limits,
            stats: stats.clone(),
            refuser: refuser.clone(),
            stopped: stopped.clone(),
        };
        match &acceptor {
            Acceptor::Plain(_) => {
                tasks.spawn(async move {
                    conn.serve(stream).await;
                    drop(permit);
                });
            }
            Acceptor::Tls { tls, .. } => {
                let Ok(handshake) = handshakes.clone().try_acquire_owned() else {
                    stats.refused_handshake_cap.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "connection closed: http.max_tls_handshakes in progress");
                    continue;
                };
                let tls = tls.clone();
                tasks.spawn(async move {
                    let accepted =
                        tokio::time::timeout(limits.tls_handshake_timeout, tls.accept(stream))
                            .await;
                    drop(handshake);
                    match accepted {
                        Ok(Ok(stream)) => conn.serve(stream).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => {
                            conn.stats
                                .timed_out_handshake
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, "TLS handshake timed out");
                        }
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(acceptor);
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}
