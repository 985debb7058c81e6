//! A request body that fails when it stalls: no frame for `http.body_read_timeout_secs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use tokio::time::Sleep;

use crate::Stats;
use crate::guard::ConnState;

/// The error a stalled body ends with; handlers see it as a failed read, and the connection's
/// service turns their answer into a `408`.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled for {0} s (http.body_read_timeout_secs)")]
pub(crate) struct BodyStalled(u64);

/// [`Incoming`] with a timer between frames.
pub(crate) struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    state: Arc<ConnState>,
    stats: Arc<Stats>,
}

impl TimedBody {
    pub(crate) fn new(
        inner: Incoming,
        timeout: Duration,
        state: Arc<ConnState>,
        stats: Arc<Stats>,
    ) -> TimedBody {
        TimedBody {
            inner,
            timeout,
            timer: None,
            state,
            stats,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.timer = None;
                    this.state.set_body_timed_out();
                    this.stats.timed_out_body.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("request body stalled");
                    return Poll::Ready(Some(Err(Box::new(BodyStalled(timeout.as_secs())))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
