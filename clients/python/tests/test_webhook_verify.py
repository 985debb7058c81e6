"""Unit tests of webhook verification (no daemon)."""

from __future__ import annotations

import datetime as dt
import email.message
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from mandate_client import WebhookListener, WebhookReceiver, WebhookVerificationError, verify_webhook

SECRET = "whsec_" + "ab" * 32
NOW = 1_795_428_904  # 2026-11-23T10:15:04Z


def rfc3339(unix: int) -> str:
    """A time as the daemon signs it: RFC 3339 UTC, whole seconds."""
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def delivery(sent_at: int | str = NOW, secret: str = SECRET, **extra: Any) -> tuple[bytes, dict[str, str]]:
    """A signed delivery as the daemon sends it; ``sent_at`` in unix seconds or as the text."""
    sent = rfc3339(sent_at) if isinstance(sent_at, int) else sent_at
    event = {
        "attempt": 1,
        "data": {
            "agent_id": "bot-a",
            "serial_number": "41cf",
            "revocation_reason": "privilegeWithdrawn",
            "revocation_reason_code": 9,
            "revoked_at": "2026-11-23T10:15:02Z",
        },
        "id": "evt_42",
        "sent_at": sent,
        "timestamp": "2026-11-23T10:15:02Z",
        "type": "certificate.revoked",
        **extra,
    }
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = {
        "X-Mandate-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-Mandate-Timestamp": sent,
        "X-Mandate-Event": "certificate.revoked",
        "X-Mandate-Delivery": "118",
    }
    return body, headers


def reason_of(body: bytes, headers: Any, **kw: Any) -> str:
    with pytest.raises(WebhookVerificationError) as e:
        WebhookReceiver.verify(body, headers, SECRET, now=kw.pop("now", NOW), **kw)
    return e.value.reason


def test_a_good_delivery_verifies_and_returns_the_event() -> None:
    body, headers = delivery()
    event = WebhookReceiver.verify(body, headers, SECRET, now=NOW)
    assert event["type"] == "certificate.revoked"
    assert event["data"]["agent_id"] == "bot-a"
    assert event["sent_at"] == headers["X-Mandate-Timestamp"] == "2026-11-23T10:15:04Z"
    assert verify_webhook(body, headers, SECRET, now=NOW + 299) == event


def test_headers_are_matched_case_insensitively_in_any_container() -> None:
    body, headers = delivery()
    lower = {k.lower(): v for k, v in headers.items()}
    assert WebhookReceiver.verify(body, lower, SECRET, now=NOW)["id"] == "evt_42"
    msg = email.message.Message()
    for k, v in headers.items():
        msg[k.upper()] = v
    assert WebhookReceiver.verify(body, msg, SECRET, now=NOW)["id"] == "evt_42"


def test_a_bad_signature_is_refused() -> None:
    body, headers = delivery()
    assert reason_of(body, {**headers, "X-Mandate-Signature": "00" * 32}) == "bad_signature"
    # Signed with another endpoint's secret.
    other_body, other = delivery(secret="whsec_" + "cd" * 32)
    assert reason_of(other_body, other) == "bad_signature"
    # The body changed after signing (one byte).
    assert reason_of(body.replace(b"bot-a", b"bot-b"), headers) == "bad_signature"
    # Re-serialised JSON (spaces) is not the signed bytes.
    assert reason_of(json.dumps(json.loads(body)).encode(), headers) == "bad_signature"
    # Garbage, non-ASCII and missing signatures.
    assert reason_of(body, {**headers, "X-Mandate-Signature": "zz"}) == "bad_signature"
    assert reason_of(body, {**headers, "X-Mandate-Signature": "é" * 64}) == "bad_signature"
    no_sig = {k: v for k, v in headers.items() if k != "X-Mandate-Signature"}
    assert reason_of(body, no_sig) == "missing_signature"


def test_uppercase_hex_is_accepted() -> None:
    body, headers = delivery()
    headers["X-Mandate-Signature"] = headers["X-Mandate-Signature"].upper()
    assert WebhookReceiver.verify(body, headers, SECRET, now=NOW)["id"] == "evt_42"


def test_a_stale_or_future_delivery_is_refused() -> None:
    body, headers = delivery()
    assert reason_of(body, headers, now=NOW + 301) == "stale"
    assert reason_of(body, headers, now=NOW - 301) == "stale"
    assert reason_of(body, headers, now=NOW + 61, tolerance=60) == "stale"
    with pytest.raises(WebhookVerificationError, match=r"2026-11-23T10:15:04Z is 400 s behind this clock"):
        WebhookReceiver.verify(body, headers, SECRET, now=NOW + 400)
    with pytest.raises(WebhookVerificationError, match=r"is 400 s ahead of this clock; the window is ±300 s"):
        WebhookReceiver.verify(body, headers, SECRET, now=NOW - 400)
    assert WebhookReceiver.verify(body, headers, SECRET, tolerance=60, now=NOW + 60)["id"] == "evt_42"
    # Without `now`, the clock decides: a delivery signed an hour ago is stale.
    old_body, old = delivery(sent_at=int(time.time()) - 3600)
    with pytest.raises(WebhookVerificationError, match="stale"):
        WebhookReceiver.verify(old_body, old, SECRET)
    fresh_body, fresh = delivery(sent_at=int(time.time()))
    assert WebhookReceiver.verify(fresh_body, fresh, SECRET)["id"] == "evt_42"


def test_a_timestamp_header_that_does_not_match_the_signed_body_is_refused() -> None:
    body, headers = delivery()
    assert reason_of(body, {**headers, "X-Mandate-Timestamp": rfc3339(NOW + 1)}) == "timestamp_mismatch"
    assert reason_of(body, {**headers, "X-Mandate-Timestamp": "soon"}) == "timestamp_mismatch"
    # The same instant written otherwise is not the signed text: the header must equal it.
    assert reason_of(body, {**headers, "X-Mandate-Timestamp": str(NOW)}) == "timestamp_mismatch"
    assert reason_of(body, {**headers, "X-Mandate-Timestamp": "2026-11-23T10:15:04+00:00"}) == "timestamp_mismatch"
    assert reason_of(body, {**headers, "X-Mandate-Timestamp": "2026-11-23t10:15:04z"}) == "timestamp_mismatch"
    # Whitespace around a header value is not part of it (HTTP).
    assert WebhookReceiver.verify(body, {**headers, "X-Mandate-Timestamp": " 2026-11-23T10:15:04Z "}, SECRET, now=NOW)
    no_ts = {k: v for k, v in headers.items() if k != "X-Mandate-Timestamp"}
    assert reason_of(body, no_ts) == "missing_timestamp"


def test_sent_at_is_any_rfc_3339_time_the_header_repeats() -> None:
    # Fractional seconds and offsets are RFC 3339 too: what counts is the header repeating it.
    for text, at in (
        ("2026-11-23T10:15:04.123Z", NOW + 0.123),
        ("2026-11-23T11:15:04+01:00", NOW),
        ("2026-11-23T05:15:04.5-05:00", NOW + 0.5),
    ):
        body, headers = delivery(sent_at=text)
        assert WebhookReceiver.verify(body, headers, SECRET, tolerance=0.001, now=at)["sent_at"] == text
        assert reason_of(body, headers, now=at + 301) == "stale"


def test_a_signed_body_that_is_not_an_event_is_refused() -> None:
    for raw in (
        b"not json",
        b"[1,2]",
        b'{"id":"evt_1"}',
        b'{"sent_at":1795428904}',  # unix seconds: the older daemons' form
        b'{"sent_at":"1795428904"}',
        b'{"sent_at":true}',
        b'{"sent_at":"2026-11-23"}',
        b'{"sent_at":"2026-11-23T10:15:04"}',  # no offset
        b'{"sent_at":"2026-11-23T25:15:04Z"}',
        b'{"sent_at":"2026-02-30T10:15:04Z"}',
    ):
        sig = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        stamp = str(json.loads(raw)["sent_at"]) if raw.startswith(b'{"sent_at"') else rfc3339(NOW)
        headers = {"X-Mandate-Signature": sig, "X-Mandate-Timestamp": stamp}
        with pytest.raises(WebhookVerificationError) as e:
            WebhookReceiver.verify(raw, headers, SECRET, now=NOW)
        assert e.value.reason == "malformed_body", raw
        if b"sent_at" in raw:
            assert "sent_at" in str(e.value) and "RFC 3339" in str(e.value), e.value


def test_verify_wants_the_raw_bytes() -> None:
    body, headers = delivery()
    with pytest.raises(TypeError):
        WebhookReceiver.verify(json.loads(body), headers, SECRET, now=NOW)


def test_a_receiver_drops_repeats_of_an_event() -> None:
    r = WebhookReceiver(SECRET)
    body, headers = delivery()
    assert r.receive(body, headers, now=NOW) is not None
    # The same event again (a new attempt carries a new sent_at and signature): a repeat.
    again_body, again = delivery(sent_at=NOW + 5, attempt=2)
    assert r.receive(again_body, again, now=NOW + 5) is None
    other_body, other = delivery(id="evt_43")
    assert r.receive(other_body, other, now=NOW) is not None


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        e.close()
        return int(e.code)


def test_the_listener_answers_204_to_verified_deliveries_and_401_to_bad_ones() -> None:
    got: list[dict[str, Any]] = []
    failing = {"evt_9"}

    def on_event(event: dict[str, Any]) -> None:
        if event["id"] in failing:
            failing.discard(event["id"])
            raise RuntimeError("handler down")
        got.append(event)

    with WebhookListener("127.0.0.1", 0, SECRET, on_event, path="/hook") as listener:
        assert listener.url == f"http://127.0.0.1:{listener.port}/hook"
        now = int(time.time())
        body, headers = delivery(sent_at=now)
        assert _post(listener.url, body, headers) == 204
        assert _post(listener.url, body, headers) == 204  # a repeat: acknowledged, not handled again
        assert [e["id"] for e in got] == ["evt_42"]
        assert _post(listener.url, body, {**headers, "X-Mandate-Signature": "00" * 32}) == 401
        stale_body, stale = delivery(sent_at=now - 3600, id="evt_7")
        assert _post(listener.url, stale_body, stale) == 401
        # A handler failure is a 500 so the daemon retries, and the retry is handled.
        fail_body, fail = delivery(sent_at=now, id="evt_9")
        assert _post(listener.url, fail_body, fail) == 500
        assert _post(listener.url, fail_body, fail) == 204
        assert [e["id"] for e in got] == ["evt_42", "evt_9"]
        assert _post(listener.url.replace("/hook", "/other"), body, headers) == 404
        assert listener.rejected == 2
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(listener.url, timeout=5)
        e.value.close()
        assert e.value.code == 405


def test_halts_names_the_deliveries_that_stop_a_bot() -> None:
    from mandate_client import halts
    suspended = {"type": "agent.suspended", "data": {"agent_id": "bot-a", "cancel_open_orders": True}}
    revoked = {"type": "certificate.revoked", "data": {
        "agent_id": "bot-a", "revocation_reason": "keyCompromise", "revocation_reason_code": 1, "cancel_open_orders": True}}
    superseded = {"type": "certificate.revoked", "data": {
        "agent_id": "bot-a", "revocation_reason": "superseded", "revocation_reason_code": 4, "cancel_open_orders": False}}
    assert halts(suspended, "bot-a") and halts(revoked, "bot-a") and halts(revoked)
    assert not halts(superseded, "bot-a")
    assert not halts(suspended, "bot-b")
    assert not halts({"type": "certificate.issued", "data": {"agent_id": "bot-a"}}, "bot-a")
