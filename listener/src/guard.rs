//! One connection's clock: which phase it is in (waiting for a request, reading a header,
//! serving), and an I/O wrapper that closes it when a phase lasts too long.
//!
//! hyper's own header timer would start when a kept-alive connection goes idle, so idle and
//! header time could not be told apart; and a handler that runs long must not be cut off
//! because hyper watches the socket for a close meanwhile. So the phases are kept here: the
//! wrapper sees bytes arrive, the service (see `conn`) says when a request starts and ends.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::{Limits, Refusal, Refuser, Stats};

/// How many bytes of a request are kept to know its path if it must be refused.
const PREFIX_BYTES: usize = 128;

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request since then.
    Idle(Instant),
    /// Reading a request header that began then.
    Head(Instant),
    /// This many requests are with the service.
    Busy(usize),
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Last time a byte was read or written.
    last_activity: Instant,
    /// Responses the service produced that hyper has not begun to write.
    owed_heads: usize,
    /// The start of the request being read.
    prefix: Vec<u8>,
    /// A request body stalled past the body timeout.
    body_timed_out: bool,
    /// The task of a read that waits without a deadline.
    parked_reader: Option<std::task::Waker>,
}

/// The phase of one connection, shared by its I/O wrapper and its service.
#[derive(Debug)]
pub(crate) struct ConnState(Mutex<Inner>);

/// Why a connection was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Header,
    Idle,
    Send,
}

impl ConnState {
    pub(crate) fn new() -> ConnState {
        let now = Instant::now();
        ConnState(Mutex::new(Inner {
            phase: Phase::Idle(now),
            last_activity: now,
            owed_heads: 0,
            prefix: Vec::new(),
            body_timed_out: false,
            parked_reader: None,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding it; a poisoned lock still holds consistent state.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request reached the service.
    pub(crate) fn begin_request(&self) {
        let mut s = self.lock();
        s.phase = match s.phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            Phase::Idle(_) | Phase::Head(_) => Phase::Busy(1),
        };
        s.prefix.clear();
    }

    /// The service is done with a request; `answered` if it produced a response hyper will
    /// write.
    pub(crate) fn end_request(&self, answered: bool) {
        let mut s = self.lock();
        let now = Instant::now();
        s.phase = match s.phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(now),
        };
        if answered {
            s.owed_heads += 1;
        }
        if matches!(s.phase, Phase::Idle(_))
            && let Some(reader) = s.parked_reader.take()
        {
            reader.wake();
        }
    }

    /// A request body stalled: the response becomes a 408 and the connection closes.
    pub(crate) fn set_body_timed_out(&self) {
        self.lock().body_timed_out = true;
    }

    /// True once a body stalled.
    pub(crate) fn body_timed_out(&self) -> bool {
        self.lock().body_timed_out
    }

    fn on_read(&self, bytes: &[u8]) {
        let mut s = self.lock();
        let now = Instant::now();
        s.last_activity = now;
        match s.phase {
            Phase::Idle(_) => {
                s.phase = Phase::Head(now);
                s.prefix.clear();
            }
            Phase::Head(_) | Phase::Busy(_) => {}
        }
        if matches!(s.phase, Phase::Head(_)) && s.prefix.len() < PREFIX_BYTES {
            let room = PREFIX_BYTES - s.prefix.len();
            let take = bytes.len().min(room);
            s.prefix
                .extend_from_slice(bytes.get(..take).unwrap_or_default());
        }
    }

    fn on_write(&self) {
        self.lock().last_activity = Instant::now();
    }

    /// When a read that waits must give up, if at all. A read with no deadline (while the
    /// service has the request) is woken when the request ends, to take the idle deadline.
    fn read_deadline(&self, limits: &Limits, cx: &Context<'_>) -> Option<(Instant, Cut)> {
        let mut s = self.lock();
        match s.phase {
            // The handler's business (bodies have their own timer).
            Phase::Busy(_) => {
                s.parked_reader = Some(cx.waker().clone());
                None
            }
            Phase::Head(since) => Some((since + limits.header_read_timeout, Cut::Header)),
            Phase::Idle(since) => {
                Some((since.max(s.last_activity) + limits.idle_timeout, Cut::Idle))
            }
        }
    }

    fn write_deadline(&self, limits: &Limits) -> (Instant, Cut) {
        (self.lock().last_activity + limits.idle_timeout, Cut::Send)
    }

    /// The path of the request being read, as far as it arrived.
    fn path(&self) -> String {
        let s = self.lock();
        let line = s.prefix.split(|b| *b == b'\r').next().unwrap_or_default();
        let target = line
            .split(|b| *b == b' ')
            .nth(1)
            .unwrap_or_default()
            .split(|b| *b == b'?')
            .next()
            .unwrap_or_default();
        String::from_utf8_lossy(target).into_owned()
    }

    /// If `first` (a write of `total` bytes) is the head of a response hyper makes on its own
    /// — a request it could not parse — the status of that response.
    fn own_error_response(&self, first: &[u8], total: usize) -> Option<StatusCode> {
        let code = first
            .strip_prefix(b"HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u16>().ok())?;
        if code < 200 {
            return None;
        }
        let mut s = self.lock();
        if s.owed_heads > 0 {
            s.owed_heads -= 1;
            return None;
        }
        // hyper's own answers are a bare head: an error status and no body.
        let bare = code >= 400
            && total == first.len()
            && first.len() < 1024
            && first.ends_with(b"\r\n\r\n")
            && first
                .windows(19)
                .any(|w| w.eq_ignore_ascii_case(b"content-length: 0\r\n"));
        let reading = matches!(s.phase, Phase::Idle(_) | Phase::Head(_));
        if bare && reading {
            StatusCode::from_u16(code).ok()
        } else {
            None
        }
    }
}

/// A connection's I/O, closed when a phase outlasts its limit.
pub(crate) struct Guarded<IO> {
    io: IO,
    state: Arc<ConnState>,
    limits: Limits,
    stats: Arc<Stats>,
    refuser: Refuser,
    read_timer: Option<(Pin<Box<Sleep>>, Instant)>,
    write_timer: Option<(Pin<Box<Sleep>>, Instant)>,
    /// A refusal replacing hyper's own error answer, and how much of it is written.
    out: Vec<u8>,
    written: usize,
    cut: bool,
}

impl<IO> Guarded<IO> {
    pub(crate) fn new(
        io: IO,
        state: Arc<ConnState>,
        limits: Limits,
        stats: Arc<Stats>,
        refuser: Refuser,
    ) -> Guarded<IO> {
        Guarded {
            io,
            state,
            limits,
            stats,
            refuser,
            read_timer: None,
            write_timer: None,
            out: Vec::new(),
            written: 0,
            cut: false,
        }
    }
}

/// True once `deadline` has passed; otherwise the task wakes when it does.
fn expired(
    timer: &mut Option<(Pin<Box<Sleep>>, Instant)>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> bool {
    match timer {
        Some((sleep, at)) => {
            if *at != deadline {
                sleep.as_mut().reset(deadline);
                *at = deadline;
            }
            sleep.as_mut().poll(cx).is_ready()
        }
        None => {
            let mut sleep = Box::pin(tokio::time::sleep_until(deadline));
            let done = sleep.as_mut().poll(cx).is_ready();
            *timer = Some((sleep, deadline));
            done
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Guarded<IO> {
    /// Counts the cut, answers a half-sent request with 408, and returns the error that ends
    /// the connection.
    fn cut_off(&mut self, cut: Cut, cx: &mut Context<'_>) -> io::Error {
        self.cut = true;
        match cut {
            Cut::Header => {
                self.stats.timed_out_header.fetch_add(1, Ordering::Relaxed);
                let detail = format!(
                    "the request header was not complete within http.header_read_timeout_secs ({} s)",
                    secs(self.limits.header_read_timeout)
                );
                let path = self.state.path();
                let answer = (self.refuser)(&Refusal {
                    status: StatusCode::REQUEST_TIMEOUT,
                    path: &path,
                    detail: &detail,
                });
                // One try: a client too slow to send is not waited on to receive.
                let _ = Pin::new(&mut self.io).poll_write(cx, &answer.to_http1());
                let _ = Pin::new(&mut self.io).poll_flush(cx);
                tracing::debug!("connection closed: request header too slow");
                timed_out("request header too slow")
            }
            Cut::Idle => {
                self.stats.timed_out_idle.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("connection closed: idle");
                timed_out("idle connection")
            }
            Cut::Send => {
                self.stats.timed_out_send.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("connection closed: the client does not read its response");
                timed_out("response not read")
            }
        }
    }

    /// Writes what is left of a replacement answer; ready when all of it is written.
    fn drain_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let rest = self.out.get(self.written..).unwrap_or_default();
            match Pin::new(&mut self.io).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// If this write is hyper's own bare error answer, puts the refuser's document in its place
    /// and reports the whole write done.
    fn replace_own_answer(&mut self, first: &[u8], total: usize) -> bool {
        let Some(status) = self.state.own_error_response(first, total) else {
            return false;
        };
        self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        let detail = match status {
            StatusCode::URI_TOO_LONG => {
                "the request target is longer than this server accepts".to_owned()
            }
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => format!(
                "the request header is larger than http.max_header_bytes ({} bytes)",
                self.limits.max_header_bytes
            ),
            _ => "the request is not valid HTTP/1.1".to_owned(),
        };
        let path = self.state.path();
        let answer = (self.refuser)(&Refusal {
            status,
            path: &path,
            detail: &detail,
        });
        self.out = answer.to_http1();
        self.written = 0;
        true
    }

    fn after_write(
        &mut self,
        r: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.state.on_write();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let (deadline, cut) = self.state.write_deadline(&self.limits);
                if expired(&mut self.write_timer, deadline, cx) {
                    Poll::Ready(Err(self.cut_off(cut, cx)))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut {
            return Poll::Ready(Err(timed_out("connection cut off")));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().get(before..).unwrap_or_default();
                if !got.is_empty() {
                    this.state.on_read(got);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.state.read_deadline(&this.limits, cx) {
                Some((deadline, cut)) if expired(&mut this.read_timer, deadline, cx) => {
                    Poll::Ready(Err(this.cut_off(cut, cx)))
                }
                _ => Poll::Pending,
            },
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut {
            return Poll::Ready(Err(timed_out("connection cut off")));
        }
        if this.written < this.out.len() {
            if let Poll::Ready(Err(e)) = this.drain_out(cx) {
                return Poll::Ready(Err(e));
            }
            // hyper writes nothing after its own error answer; whatever comes is dropped.
            return Poll::Ready(Ok(buf.len()));
        }
        if this.replace_own_answer(buf, buf.len()) {
            if let Poll::Ready(Err(e)) = this.drain_out(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.after_write(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut {
            return Poll::Ready(Err(timed_out("connection cut off")));
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if this.written < this.out.len() {
            if let Poll::Ready(Err(e)) = this.drain_out(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(total));
        }
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map(|b| &**b)
            .unwrap_or_default();
        if this.replace_own_answer(first, total) {
            if let Poll::Ready(Err(e)) = this.drain_out(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(total));
        }
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.after_write(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.drain_out(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => {
                let (deadline, cut) = this.state.write_deadline(&this.limits);
                if expired(&mut this.write_timer, deadline, cx) {
                    Poll::Ready(Err(this.cut_off(cut, cx)))
                } else {
                    Poll::Pending
                }
            }
            done => done,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.drain_out(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_s_own_bare_error_heads_are_replaced() {
        let s = ConnState::new();
        s.on_read(b"GET /ocsp/AAAA HTTP/1.1\r\nHost: x\r\n");
        assert_eq!(s.path(), "/ocsp/AAAA");
        let own =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(
            s.own_error_response(own, own.len()),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        // A response the service produced is never replaced, empty or not.
        s.begin_request();
        s.end_request(true);
        assert_eq!(s.own_error_response(own, own.len()), None);
        // Interim responses and heads followed by a body are left alone.
        let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(s.own_error_response(cont, cont.len()), None);
        assert_eq!(s.own_error_response(own, own.len() + 10), None);
    }

    #[test]
    fn the_path_is_read_from_the_start_of_the_request() {
        let s = ConnState::new();
        s.on_read(b"POST /acme/new-order?x=1 HTTP/1.1\r\n");
        assert_eq!(s.path(), "/acme/new-order");
        let t = ConnState::new();
        t.on_read(b"\xff\xfe");
        assert_eq!(t.path(), "");
    }
}
