//! One connection: hyper's HTTP/1.1 over the guarded I/O, the router as its service.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::body::TimedBody;
use crate::guard::{ConnState, Guarded};
use crate::{Limits, Refusal, Refuser, Stats};

/// hyper's default read buffer; raised when `max_header_bytes` needs more.
const DEFAULT_MAX_BUF: usize = 400 * 1024;

/// What a connection needs from its listener.
pub(crate) struct Conn {
    pub(crate) router: Router,
    pub(crate) limits: Limits,
    pub(crate) stats: Arc<Stats>,
    pub(crate) refuser: Refuser,
    pub(crate) stopped: watch::Receiver<bool>,
}

/// Keeps the open-connections gauge right however the connection ends.
struct Open(Arc<Stats>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Conn {
    /// Serves HTTP/1.1 on `io` until the client leaves, a limit cuts it off, or the listener
    /// stops (then the request in progress finishes first).
    pub(crate) async fn serve<IO>(self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        let _open = Open(self.stats.clone());
        let state = Arc::new(ConnState::new());
        let io = Guarded::new(
            io,
            state.clone(),
            self.limits,
            self.stats.clone(),
            self.refuser.clone(),
        );
        let service = Service {
            router: self.router,
            state,
            limits: self.limits,
            stats: self.stats.clone(),
            refuser: self.refuser,
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .header_read_timeout(None)
            .max_header_size(self.limits.max_header_bytes)
            .max_buf_size(DEFAULT_MAX_BUF.max(self.limits.max_header_bytes + 8192));
        let conn = builder.serve_connection(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        let mut stopped = self.stopped;
        let ended = tokio::select! {
            r = conn.as_mut() => r,
            () = async { let _ = stopped.wait_for(|s| *s).await; } => {
                conn.as_mut().graceful_shutdown();
                conn.as_mut().await
            }
        };
        if let Err(e) = ended {
            tracing::debug!(error = %e, "connection ended");
        }
    }
}

/// Answers a connection over the cap without reading it: one non-blocking write of a 503,
/// then close. A client that cannot take it at once gets the close alone.
pub(crate) fn refuse_at_once(stream: &TcpStream, refuser: &Refuser, cap: usize) {
    let detail = format!(
        "this server has its maximum of {cap} connections open (http.max_connections); retry shortly"
    );
    let answer = refuser(&Refusal {
        status: StatusCode::SERVICE_UNAVAILABLE,
        path: "",
        detail: &detail,
    });
    let _ = stream.try_write(&answer.to_http1());
}

/// The router, told when each request starts and ends, its body timed, its answer replaced
/// by a `408` when the body stalled.
#[derive(Clone)]
struct Service {
    router: Router,
    state: Arc<ConnState>,
    limits: Limits,
    stats: Arc<Stats>,
    refuser: Refuser,
}

/// Ends the request in the connection's phase even when hyper drops its future (the client
/// went away).
struct InFlight {
    state: Arc<ConnState>,
    answered: bool,
}

impl InFlight {
    /// The service produced a response for hyper to write.
    fn answer(&mut self) {
        self.answered = true;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state.end_request(self.answered);
    }
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.state.begin_request();
        let mut in_flight = InFlight {
            state: self.state.clone(),
            answered: false,
        };
        let uri = req.uri().clone();
        let (timeout, state, stats) = (
            self.limits.body_read_timeout,
            self.state.clone(),
            self.stats.clone(),
        );
        let req = req.map(|b| Body::new(TimedBody::new(b, timeout, state, stats)));
        let router = self.router.clone();
        let refuser = self.refuser.clone();
        Box::pin(async move {
            let resp = match router.oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            let resp = if in_flight.state.body_timed_out() {
                let detail = format!(
                    "the request body stalled for http.body_read_timeout_secs ({} s)",
                    timeout.as_secs()
                );
                refuser(&Refusal {
                    status: StatusCode::REQUEST_TIMEOUT,
                    path: uri.path(),
                    detail: &detail,
                })
                .into_response()
            } else {
                resp
            };
            in_flight.answer();
            Ok(resp)
        })
    }
}
