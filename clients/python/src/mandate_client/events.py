"""``EventReporter``: batched, non-blocking event reporting for the trading loop."""

from __future__ import annotations

import atexit
import collections
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping

from .client import MAX_EVENTS_PER_REQUEST, MandateClient, encode_json
from .errors import MandateError

__all__ = ["EventReporter", "ReporterStats"]

log = logging.getLogger("mandate_client.events")

# 4xx answers that may concern only some events of a batch (the daemon stores all or none):
# the batch is then retried one event at a time, so one bad event does not sink the others.
_PER_EVENT_STATUSES = frozenset({400, 403, 404, 422})


@dataclass(frozen=True)
class ReporterStats:
    """Counters of an :class:`EventReporter` since it started.

    ``enqueued``: accepted by :meth:`~EventReporter.report`; ``sent``: stored by the daemon;
    ``dropped``: given up (queue full, retries exhausted, refused by the daemon, unserialisable,
    reported after close, or still queued when close timed out); ``pending``: queued or in
    flight; ``retries``: requests repeated after a 5xx, 429 or network error.
    """

    enqueued: int
    sent: int
    dropped: int
    pending: int
    retries: int
    failed_requests: int


class EventReporter:
    """Reports events to ``POST /v1/events`` from a background thread.

    :meth:`report` copies the event into a bounded in-memory queue and returns at once; it never
    blocks on the network and never raises. A daemon thread sends batches of up to
    ``batch_size`` events as soon as that many are queued, or ``flush_interval`` seconds after
    the oldest queued one arrived. A batch that gets a 5xx, 429 or network error is retried up to
    ``max_retries`` times with exponential backoff (``backoff`` × 2ⁿ seconds, at most
    ``max_backoff``, with jitter, and never sooner than a ``Retry-After``), then dropped.
    A batch the daemon refuses with 400/403/404/422 is retried one event at a time, and only the
    refused events are dropped; a 413 splits the batch in halves. Events are dropped, counted
    (:meth:`stats`) and logged (logger ``mandate_client.events``) when the queue holds
    ``max_queue`` events already.

    ``agent_id`` fills in events that have none. With ``stamp_time`` (default), an event whose
    has no ``timestamp`` gets the time of :meth:`report` (unix seconds), so batching
    and retries do not shift it (the daemon would take the time of receipt, which moves the
    daily volume, the time-of-day and frequency features). With ``close_at_exit``, interpreter
    exit waits up to ``exit_timeout`` seconds to send what is queued.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        client: MandateClient,
        *,
        agent_id: str | None = None,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        stamp_time: bool = True,
        close_at_exit: bool = True,
        exit_timeout: float = 5.0,
    ) -> None:
        if not 1 <= batch_size <= MAX_EVENTS_PER_REQUEST:
            raise ValueError(f"batch_size must be 1 to {MAX_EVENTS_PER_REQUEST}")
        if max_queue < 1 or flush_interval <= 0 or max_retries < 0:
            raise ValueError("max_queue >= 1, flush_interval > 0 and max_retries >= 0 are needed")
        self._client = client
        self._agent_id = agent_id
        self._batch_size = batch_size
        self._interval = flush_interval
        self._max_queue = max_queue
        self._max_retries = max_retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._stamp = stamp_time
        self._exit_timeout = exit_timeout

        self._cond = threading.Condition()
        self._buf: collections.deque[tuple[float, dict[str, Any]]] = collections.deque()
        self._enqueued = 0
        self._sent = 0
        self._dropped = 0
        self._retries = 0
        self._failed_requests = 0
        self._flush_target = 0
        self._closing = False
        self._abort = threading.Event()
        self._last_drop_log = 0.0
        self._unlogged_drops = 0

        self._thread = threading.Thread(target=self._run, name="mandate-event-reporter", daemon=True)
        self._thread.start()
        self._at_exit = close_at_exit
        if close_at_exit:
            atexit.register(self._close_at_exit)

    # --- the caller's side --------------------------------------------------------------------

    def report(self, event: Mapping[str, Any]) -> bool:
        """Queues one event (``{"agent_id", "action", "market", "size", ...}``, flat, named as
        an order is) and returns at once: ``True`` if queued, ``False`` if dropped. Never
        raises."""
        try:
            ev = dict(event)
            if self._agent_id is not None:
                ev.setdefault("agent_id", self._agent_id)
            if self._stamp and ev.get("timestamp") is None:
                ev["timestamp"] = int(time.time())
        except Exception as e:  # noqa: BLE001 - never raise into the trading loop
            with self._cond:
                self._enqueued += 1
                self._drop_locked(1, f"not an event: {e!r}")
            return False
        with self._cond:
            self._enqueued += 1
            if self._closing:
                self._drop_locked(1, "reporter closed")
                return False
            if len(self._buf) >= self._max_queue:
                self._drop_locked(1, f"queue full ({self._max_queue} events)")
                return False
            self._buf.append((time.monotonic(), ev))
            if len(self._buf) >= self._batch_size:
                self._cond.notify_all()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Sends what was reported before this call now, and waits until each of those events
        was stored or dropped; ``False`` if ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._enqueued
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
            while self._sent + self._dropped < target:
                if not self._thread.is_alive():
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout: float | None = 5.0) -> bool:
        """Stops taking events, sends what is queued for up to ``timeout`` seconds, then drops
        (and counts) whatever is left and stops the thread. ``True`` if nothing was left."""
        if self._at_exit:
            self._at_exit = False
            atexit.unregister(self._close_at_exit)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        clean = not self._thread.is_alive()
        if not clean:
            self._abort.set()
            with self._cond:
                self._cond.notify_all()
            self._thread.join(1.0)
        with self._cond:
            left = len(self._buf)
            if left:
                self._buf.clear()
                self._drop_locked(left, "still queued at close")
            return clean and left == 0

    def _close_at_exit(self) -> None:
        self._at_exit = False
        self.close(self._exit_timeout)

    def stats(self) -> ReporterStats:
        with self._cond:
            return ReporterStats(
                enqueued=self._enqueued,
                sent=self._sent,
                dropped=self._dropped,
                pending=self._enqueued - self._sent - self._dropped,
                retries=self._retries,
                failed_requests=self._failed_requests,
            )

    def __enter__(self) -> EventReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the worker's side --------------------------------------------------------------------

    def _drop_locked(self, n: int, why: str) -> None:
        """Counts ``n`` dropped events and logs, at most once every 10 s per kind of burst."""
        self._dropped += n
        self._unlogged_drops += n
        now = time.monotonic()
        if now - self._last_drop_log >= 10.0 or not why.startswith("queue full"):
            log.warning(
                "mandate events dropped: %d (%s); %d dropped since start",
                self._unlogged_drops,
                why,
                self._dropped,
            )
            self._last_drop_log = now
            self._unlogged_drops = 0
        self._cond.notify_all()

    def _next_batch(self) -> list[dict[str, Any]] | None:
        """Waits for a batch to send; ``None`` when closing and nothing is left."""
        with self._cond:
            while True:
                if self._abort.is_set():
                    return None
                if self._buf:
                    age = time.monotonic() - self._buf[0][0]
                    flushing = self._sent + self._dropped < self._flush_target
                    if (
                        len(self._buf) >= self._batch_size
                        or flushing
                        or self._closing
                        or age >= self._interval
                    ):
                        n = min(self._batch_size, len(self._buf))
                        return [self._buf.popleft()[1] for _ in range(n)]
                    self._cond.wait(self._interval - age)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()

    def _run(self) -> None:
        while True:
            try:
                batch = self._next_batch()
                if batch is None:
                    return
                good: list[dict[str, Any]] = []
                for ev in batch:
                    try:
                        encode_json(ev)
                        good.append(ev)
                    except (TypeError, ValueError) as e:
                        with self._cond:
                            self._drop_locked(1, f"not serialisable: {e}")
                if good:
                    self._deliver(good)
            except Exception:  # noqa: BLE001 - the thread must survive anything
                log.exception("mandate event reporter: unexpected error")

    def _count(self, sent: int = 0, dropped: int = 0, why: str = "") -> None:
        with self._cond:
            self._sent += sent
            if dropped:
                self._drop_locked(dropped, why)
            self._cond.notify_all()

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            if self._abort.is_set():
                self._count(dropped=len(batch), why="reporter closed before they could be sent")
                return
            try:
                self._client.report_events(batch)
                self._count(sent=len(batch))
                return
            except MandateError as e:
                with self._cond:
                    self._failed_requests += 1
                if e.status == 413 and len(batch) > 1:
                    half = len(batch) // 2
                    self._deliver(batch[:half])
                    self._deliver(batch[half:])
                    return
                if not e.retryable:
                    if len(batch) > 1 and e.status in _PER_EVENT_STATUSES:
                        for ev in batch:
                            self._deliver([ev])
                        return
                    self._count(dropped=len(batch), why=f"refused: {e}")
                    return
                attempt += 1
                if attempt > self._max_retries:
                    self._count(dropped=len(batch), why=f"gave up after {attempt} attempts: {e}")
                    return
                delay = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)
                if e.retry_after is not None:
                    delay = min(self._max_backoff, max(delay, e.retry_after))
                with self._cond:
                    self._retries += 1
                log.debug("mandate events: retry %d in %.2f s after %s", attempt, delay, e)
                if self._abort.wait(delay):
                    continue
            except Exception as e:  # noqa: BLE001
                self._count(dropped=len(batch), why=f"unexpected error: {e!r}")
                return
