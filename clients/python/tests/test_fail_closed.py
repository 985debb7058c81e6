"""Fail-closed behaviour without the daemon: a closed port, and a stub server giving the
answers a real daemon or proxy gives when things go wrong (5xx, garbage, slowness)."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest

from helpers import StubServer, event, free_port_closed, problem
from mandate_client import (
    EventReporter,
    MandateClient,
    MandateError,
    MandateProtocolError,
    MandateUnavailable,
    Order,
    OutOfMandate,
    RiskBand,
)

ORDER = Order(market="BTC_EUR", size="100", currency="EUR", side="buy")


def closed_client(**kw: Any) -> MandateClient:
    return MandateClient(f"http://127.0.0.1:{free_port_closed()}", "mk_0000000000000000_x", **kw)


def accepted(body: bytes) -> tuple[int, dict[str, str], bytes]:
    events = json.loads(body)
    events = events if isinstance(events, list) else [events]
    answer = {"accepted": len(events), "events": [{"id": i, "score": None} for i in range(len(events))], "incidents": []}
    return 201, {"Content-Type": "application/json"}, json.dumps(answer).encode()


# --- preflight ------------------------------------------------------------------------------


def test_preflight_denies_when_the_daemon_is_unreachable() -> None:
    client = closed_client()
    started = time.monotonic()
    d = client.preflight("bot", ORDER)
    assert time.monotonic() - started < 5
    assert d.allowed is False
    assert d.fail_closed is True
    assert d.codes == ["mandate_unreachable"]
    assert isinstance(d.error, MandateUnavailable)
    assert d.error.status is None
    assert "Connection" in (d.reasons[0].detail or "") or "refused" in (d.reasons[0].detail or "")
    with pytest.raises(MandateUnavailable):
        client.preflight("bot", ORDER, strict=True)


@pytest.mark.parametrize(
    "answer, strict_error",
    [
        (problem(503, "hsm-unavailable", "the HSM did not answer"), MandateUnavailable),
        (problem(503, "database-unavailable", "db"), MandateUnavailable),
        (problem(500, "internal", "internal error; see the server log"), MandateError),
        (problem(429, "rate-limited", "slow down"), MandateUnavailable),
        ((502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>"), MandateUnavailable),
        ((200, {"Content-Type": "application/json"}, b"not json"), MandateProtocolError),
        ((200, {"Content-Type": "application/json"}, b'{"allowed": "yes"}'), MandateProtocolError),
        ((200, {"Content-Type": "application/json"}, b'{"allowed": false}'), MandateProtocolError),
        ((200, {"Content-Type": "application/json"}, b"[]"), MandateProtocolError),
        ((200, {"Content-Type": "application/json"}, b'{"allowed": false, "reasons": [{"limit": "x"}]}'), MandateProtocolError),
    ],
)
def test_preflight_denies_on_5xx_and_malformed_answers(
    answer: tuple[int, dict[str, str], bytes], strict_error: type[MandateError]
) -> None:
    stub = StubServer(lambda m, p, b: answer)
    try:
        client = MandateClient(stub.url, "mk_0000000000000000_x")
        d = client.preflight("bot", ORDER)
        assert (d.allowed, d.fail_closed, d.codes) == (False, True, ["mandate_unreachable"])
        with pytest.raises(strict_error) as e:
            client.preflight("bot", ORDER, strict=True)
        assert type(e.value) is strict_error
    finally:
        stub.close()


def test_preflight_denies_after_its_timeout() -> None:
    release = threading.Event()

    def slow(m: str, p: str, b: bytes) -> tuple[int, dict[str, str], bytes]:
        release.wait(5)
        return 200, {"Content-Type": "application/json"}, b'{"allowed": true}'

    stub = StubServer(slow)
    try:
        client = MandateClient(stub.url, "mk_0000000000000000_x", timeout=10)
        started = time.monotonic()
        d = client.preflight("bot", ORDER, timeout=0.3)
        assert time.monotonic() - started < 3
        assert d.codes == ["mandate_unreachable"] and not d.allowed
        assert isinstance(d.error, MandateUnavailable)
    finally:
        release.set()
        stub.close()


def test_preflight_sends_the_order_and_reads_the_decision() -> None:
    answer = {"allowed": False, "reasons": [{"code": "exceeds_scope_size", "limit": "50000 EUR", "requested": "60000 EUR"}]}
    stub = StubServer(lambda m, p, b: (200, {"Content-Type": "application/json"}, json.dumps(answer).encode()))
    try:
        d = MandateClient(stub.url + "/", "mk_1_x").preflight("bot a", Order(size="60000", currency="EUR", timestamp=1795428900))
        assert not d.fail_closed and d.codes == ["exceeds_scope_size"]
        r = d.reason("exceeds_scope_size")
        assert r is not None and (r.limit, r.requested) == ("50000 EUR", "60000 EUR")
        method, path, body = stub.requests[0]
        assert (method, path) == ("POST", "/v1/agents/bot%20a/preflight")
        assert json.loads(body) == {"action": "trade_execution", "size": "60000", "currency": "EUR", "timestamp": 1795428900}
    finally:
        stub.close()


def test_preflight_denies_on_4xx_and_local_errors() -> None:
    answers = {
        "/v1/agents/a/preflight": problem(401, "unauthorized", "invalid API key"),
        "/v1/agents/b/preflight": problem(409, "mandate-not-approved", "nothing is allowed"),
        "/v1/agents/c/preflight": problem(422, "invalid-order", "size needs currency"),
    }
    stub = StubServer(lambda m, p, b: answers[p])
    try:
        client = MandateClient(stub.url, "mk_1_x")
        assert client.preflight("a", ORDER).codes == ["preflight_rejected"]
        assert client.preflight("b", ORDER).codes == ["mandate_not_approved"]
        d = client.preflight("c", ORDER)
        assert d.codes == ["preflight_rejected"]
        assert isinstance(d.error, MandateError) and d.error.code == "invalid-order"
        with pytest.raises(MandateError) as e:
            client.preflight("a", ORDER, strict=True)
        assert (e.value.status, e.value.code, e.value.detail) == (401, "unauthorized", "invalid API key")
        # An order that cannot be sent at all is denied too, or raised with strict.
        bad = {"action": "trade_execution", "size": object()}
        assert client.preflight("a", bad).codes == ["client_error"]
        with pytest.raises(TypeError):
            client.preflight("a", bad, strict=True)
    finally:
        stub.close()


def test_risk_band_fails_closed_to_high() -> None:
    client = closed_client()
    assert client.risk_band("bot") is RiskBand.HIGH
    with pytest.raises(MandateUnavailable):
        client.risk_band("bot", strict=True)


def test_other_calls_raise_typed_problems_with_every_field() -> None:
    out = problem(
        403,
        "out-of-mandate",
        "the order is outside the mandate: exceeds_scope_size",
        allowed=False,
        reasons=[{"code": "exceeds_scope_size", "limit": "50000 EUR", "requested": "60000 EUR"}],
    )
    stub = StubServer(lambda m, p, b: (out[0], {**out[1], "X-Request-Id": "req-1", "Retry-After": "7"}, out[2]))
    try:
        with pytest.raises(OutOfMandate) as e:
            MandateClient(stub.url, "mk_1_x").sign("bot", ORDER)
        err = e.value
        assert (err.status, err.code, err.title, err.request_id) == (403, "out-of-mandate", "T", "req-1")
        assert err.type == "urn:mandate:problem:out-of-mandate"
        assert err.extensions["allowed"] is False
        assert err.decision.codes == ["exceeds_scope_size"]
        assert err.retry_after == 7.0 and not err.retryable
    finally:
        stub.close()
    with pytest.raises(MandateUnavailable) as u:
        closed_client().get_agent("bot")
    assert u.value.retryable and u.value.status is None


# --- EventReporter --------------------------------------------------------------------------


def test_the_event_reporter_never_raises_when_the_daemon_is_down(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mandate_client.events")
    reporter = EventReporter(closed_client(), batch_size=10, flush_interval=0.05, max_retries=2, backoff=0.01)
    started = time.monotonic()
    for i in range(50):
        assert reporter.report(event("bot", 0, str(i), "BTC_EUR", "eu-west-1")) is True
    assert reporter.report({"not": "an event"}) is True  # shape is the daemon's business
    assert reporter.report(None) is False  # type: ignore[arg-type]
    assert time.monotonic() - started < 2, "report() must not wait for the network"
    assert reporter.flush(timeout=20) is True
    s = reporter.stats()
    assert (s.enqueued, s.sent, s.dropped, s.pending) == (52, 0, 52, 0)
    assert s.retries >= 2
    assert any("dropped" in r.getMessage() for r in caplog.records)
    assert reporter.close(timeout=5) is True
    assert reporter.report(event("bot", 0, "1", "BTC_EUR", "eu-west-1")) is False  # closed
    assert reporter.stats().dropped == 53


def test_the_event_reporter_drops_when_its_queue_is_full_and_close_gives_up() -> None:
    release = threading.Event()

    def stuck(m: str, p: str, b: bytes) -> tuple[int, dict[str, str], bytes]:
        release.wait(10)
        return problem(503, "database-unavailable", "db")

    stub = StubServer(stuck)
    try:
        reporter = EventReporter(
            MandateClient(stub.url, "mk_1_x", timeout=10), batch_size=2, flush_interval=0.01, max_queue=5, close_at_exit=False
        )
        results = [reporter.report(event("bot", 0, "1", "BTC_EUR", "eu-west-1")) for _ in range(20)]
        # One batch may be in flight already; the queue holds five more at most.
        assert results.count(True) <= 7 and results.count(False) >= 13
        started = time.monotonic()
        assert reporter.close(timeout=0.3) is False
        assert time.monotonic() - started < 3
        release.set()
        wait_stats = reporter.stats()
        assert wait_stats.enqueued == 20 and wait_stats.sent == 0
        assert wait_stats.dropped + wait_stats.pending == 20
        assert wait_stats.pending <= 2  # at most the batch that was in flight
    finally:
        release.set()
        stub.close()


def test_the_event_reporter_batches_stamps_and_retries() -> None:
    calls = {"n": 0}

    def flaky(m: str, p: str, b: bytes) -> tuple[int, dict[str, str], bytes]:
        calls["n"] += 1
        if calls["n"] <= 2:
            return problem(503, "hsm-unavailable", "try later")
        return accepted(b)

    stub = StubServer(flaky)
    try:
        reporter = EventReporter(
            MandateClient(stub.url, "mk_1_x"), agent_id="bot", batch_size=4, flush_interval=0.05, backoff=0.01, close_at_exit=False
        )
        before = int(time.time())
        for i in range(10):
            reporter.report({"action": "trade_execution", "size": str(i), "currency": "EUR"})
        assert reporter.flush(timeout=10)
        s = reporter.stats()
        assert (s.sent, s.dropped, s.retries) == (10, 0, 2)
        batches = [json.loads(b) for m, p, b in stub.requests if p == "/v1/events"]
        stored = [e for batch in batches[2:] for e in batch]
        assert all(len(batch) <= 4 for batch in batches)
        assert [e["size"] for e in stored] == [str(i) for i in range(10)]
        assert all(e["agent_id"] == "bot" for e in stored)
        assert all(before <= e["timestamp"] <= int(time.time()) for e in stored)
        reporter.close()
    finally:
        stub.close()


def test_the_event_reporter_drops_only_the_events_the_daemon_refuses() -> None:
    def picky(m: str, p: str, b: bytes) -> tuple[int, dict[str, str], bytes]:
        events = json.loads(b)
        if len(events) > 3:
            return problem(413, "body-too-large", "too large")
        if any(e["agent_id"] == "ghost" for e in events):
            return problem(404, "not-found", "agent ghost not found")
        return accepted(b)

    stub = StubServer(picky)
    try:
        with EventReporter(MandateClient(stub.url, "mk_1_x"), batch_size=8, flush_interval=0.05, close_at_exit=False) as reporter:
            for i in range(8):
                reporter.report(event("ghost" if i == 5 else "bot", 0, str(i), "BTC_EUR", "eu-west-1"))
            assert reporter.flush(timeout=10)
            s = reporter.stats()
            assert (s.sent, s.dropped) == (7, 1)
    finally:
        stub.close()
