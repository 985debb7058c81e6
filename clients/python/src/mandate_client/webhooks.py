"""Receiving mandate webhooks: signature verification and a small threaded listener."""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import logging
import threading
import time
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Union

from .errors import WebhookVerificationError
from .models import parse_time

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "EVENT_HEADER",
    "DELIVERY_HEADER",
    "WebhookReceiver",
    "WebhookListener",
    "verify_webhook",
    "Headers",
]

log = logging.getLogger("mandate_client.webhooks")

SIGNATURE_HEADER = "X-Mandate-Signature"
TIMESTAMP_HEADER = "X-Mandate-Timestamp"
EVENT_HEADER = "X-Mandate-Event"
DELIVERY_HEADER = "X-Mandate-Delivery"

#: What :meth:`WebhookReceiver.verify` takes as headers: a mapping (matched case-insensitively)
#: or an ``email.message.Message`` (what ``http.server`` gives).
Headers = Union[Mapping[str, str], Message]

#: Largest delivery body the listener reads.
MAX_BODY_BYTES = 1024 * 1024


def _header(headers: Headers, name: str) -> str | None:
    """A header by case-insensitive name, from a dict, ``email.message.Message``, or a
    framework's header object."""
    v = headers.get(name)
    if v is None:
        lower = name.lower()
        v = headers.get(lower)
        if v is None:
            for k in headers.keys():
                if isinstance(k, str) and k.lower() == lower:
                    v = headers[k]
                    break
    return None if v is None else str(v)


class WebhookReceiver:
    """Verifies deliveries for one endpoint and drops repeats (delivery is at least once).

    Use :meth:`verify` (a static method, no state) to check one delivery, or an instance's
    :meth:`receive` to check it and skip event ids already seen (the ``dedupe_size`` most recent
    ones are remembered).
    """

    def __init__(self, secret: str, *, tolerance: float = 300, dedupe_size: int = 10_000) -> None:
        self.secret = secret
        self.tolerance = tolerance
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._dedupe_size = dedupe_size
        self._lock = threading.Lock()

    @staticmethod
    def verify(
        body: bytes,
        headers: Headers,
        secret: str,
        tolerance: float = 300,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Checks one delivery and returns the parsed event.

        * ``X-Mandate-Signature`` must be the hex HMAC-SHA256 of the raw ``body`` keyed with
          the ``whsec_…`` secret text (compared in constant time);
        * the body must be a JSON object whose ``sent_at`` is RFC 3339 text
          (``2026-12-07T18:00:00Z``);
        * ``X-Mandate-Timestamp`` must be exactly that text;
        * the time it names must be within ``tolerance`` seconds of ``now`` (unix seconds;
          default: the clock).

        Raises :class:`WebhookVerificationError` otherwise.
        """
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise TypeError("verify the raw body bytes, not re-serialised JSON")
        raw = bytes(body)
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookVerificationError("missing_signature", f"no {SIGNATURE_HEADER} header")
        expected = hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("utf-8", "replace")):
            raise WebhookVerificationError("bad_signature", "the signature does not match the body")
        try:
            event = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise WebhookVerificationError("malformed_body", "the body is not JSON") from None
        if not isinstance(event, dict):
            raise WebhookVerificationError("malformed_body", "the body is not a JSON object")
        sent_at = event.get("sent_at")
        if not isinstance(sent_at, str):
            raise WebhookVerificationError("malformed_body", "sent_at is missing or not RFC 3339 text")
        try:
            sent = parse_time(sent_at).timestamp()
        except ValueError:
            raise WebhookVerificationError(
                "malformed_body", f"sent_at {sent_at!r} is not an RFC 3339 time"
            ) from None
        stamp = _header(headers, TIMESTAMP_HEADER)
        if stamp is None:
            raise WebhookVerificationError("missing_timestamp", f"no {TIMESTAMP_HEADER} header")
        if stamp.strip() != sent_at:
            raise WebhookVerificationError(
                "timestamp_mismatch",
                f"{TIMESTAMP_HEADER} {stamp!r} is not the signed sent_at {sent_at!r}",
            )
        current = time.time() if now is None else now
        if abs(current - sent) > tolerance:
            ahead = sent > current
            raise WebhookVerificationError(
                "stale",
                f"sent_at {sent_at} is {abs(current - sent):.0f} s "
                f"{'ahead of' if ahead else 'behind'} this clock; the window is ±{tolerance:g} s",
            )
        return event

    def receive(
        self, body: bytes, headers: Headers, now: float | None = None
    ) -> dict[str, Any] | None:
        """:meth:`verify` with this receiver's secret and tolerance; ``None`` for an event id
        seen before (a repeat delivery: acknowledge it and do nothing)."""
        event = self.verify(body, headers, self.secret, self.tolerance, now)
        if self.seen(event):
            return None
        return event

    def seen(self, event: Mapping[str, Any]) -> bool:
        """True if this event's id was marked before; marks it otherwise."""
        event_id = event.get("id")
        if not isinstance(event_id, str):
            return False
        with self._lock:
            if event_id in self._seen:
                self._seen.move_to_end(event_id)
                return True
            self._seen[event_id] = None
            while len(self._seen) > self._dedupe_size:
                self._seen.popitem(last=False)
            return False

    def forget(self, event: Mapping[str, Any]) -> None:
        """Unmarks an event (its handling failed: let the next delivery through)."""
        event_id = event.get("id")
        if isinstance(event_id, str):
            with self._lock:
                self._seen.pop(event_id, None)


#: Module-level alias of :meth:`WebhookReceiver.verify`.
verify_webhook = WebhookReceiver.verify


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    listener: WebhookListener


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "mandate-client-webhooks"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("webhook listener: " + format, *args)

    def _answer(self, status: int, text: str = "") -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        if data:
            self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        if data:
            self.wfile.write(data)

    def do_POST(self) -> None:
        self.server.listener._handle(self)

    def _not_allowed(self) -> None:
        self.send_response(405)
        self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = _not_allowed
    do_PUT = _not_allowed
    do_DELETE = _not_allowed


def halts(event: Mapping[str, Any], agent_id: str | None = None) -> bool:
    """Whether a webhook ``event`` tells the bot of ``agent_id`` (any agent when ``None``) to
    stop and cancel its resting orders (RTS 6 Art. 12): ``agent.suspended`` (the kill switch),
    or ``certificate.revoked`` with ``cancel_open_orders`` (every revocation but a
    supersession, which a renewal answers). ``WebhookListener(on_halt=...)`` calls its hook for
    exactly these."""
    data = event.get("data")
    if not isinstance(data, Mapping):
        return False
    if agent_id is not None and data.get("agent_id") != agent_id:
        return False
    kind = event.get("type")
    if kind == "agent.suspended":
        return True
    return kind == "certificate.revoked" and data.get("cancel_open_orders") is True


class WebhookListener:
    """A small threaded HTTP server receiving mandate webhook deliveries.

    Each verified delivery is passed to ``on_event(event)`` (in the request's thread; several
    may run at once) and answered ``204``. A delivery that fails verification gets ``401`` (the
    daemon retries with a fresh signature and ``sent_at``), one whose ``on_event`` raised gets
    ``500`` (so the daemon retries it), and repeats of an event id already handled get ``204``
    without calling ``on_event`` again. ``path`` restricts the accepted path (others get 404).

    ``port=0`` picks a free port; :attr:`url` is the address to register with
    :meth:`MandateClient.create_webhook`. Plain HTTP: run it on loopback or behind TLS.
    """

    def __init__(
        self,
        host: str,
        port: int,
        secret: str,
        on_event: Callable[[dict[str, Any]], object],
        *,
        path: str = "/",
        tolerance: float = 300,
        agent_id: str | None = None,
        on_halt: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        self.receiver = WebhookReceiver(secret, tolerance=tolerance)
        self.on_event = on_event
        self.agent_id = agent_id
        self.on_halt = on_halt
        self.path = path if path.startswith("/") else "/" + path
        self._host = host
        self._server = _Server((host, port), _Handler, bind_and_activate=True)
        self._server.listener = self
        self._thread: threading.Thread | None = None
        self.received = 0
        self.rejected = 0

    @property
    def secret(self) -> str:
        return self.receiver.secret

    @secret.setter
    def secret(self, value: str) -> None:
        """The secret is known only once the webhook is created, after the listener has its
        URL: set it then."""
        self.receiver.secret = value

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._host or "127.0.0.1"
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}{self.path}"

    def start(self) -> WebhookListener:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="mandate-webhook-listener",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> WebhookListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, h: _Handler) -> None:
        if h.path.split("?", 1)[0] != self.path:
            h._answer(404, "not found")
            return
        length_text = h.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            h._answer(411, "Content-Length required")
            return
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            h.close_connection = True
            h._answer(413, "body too large")
            return
        body = h.rfile.read(length)
        try:
            event = self.receiver.verify(body, h.headers, self.receiver.secret, self.receiver.tolerance)
        except WebhookVerificationError as e:
            self.rejected += 1
            log.warning("webhook delivery refused: %s", e)
            h._answer(401, str(e))
            return
        if self.receiver.seen(event):
            h._answer(204)
            return
        try:
            self.on_event(event)
            if self.on_halt is not None and halts(event, self.agent_id):
                self.on_halt(event)
        except Exception:  # noqa: BLE001 - the daemon retries on 500
            self.receiver.forget(event)
            log.exception("webhook on_event failed for %s", event.get("id"))
            h._answer(500, "handler failed")
            return
        self.received += 1
        h._answer(204)
