"""Mandates, events and a week of history, as the Rust end-to-end tests make them
(tests/e2e/behaviour.rs: ``open_mandate``, ``event``, ``history``, ``midnight``)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from mandate_client import Agent, MandateClient

DAY = 86_400
ORG = "acme-trading"
#: ``ORG``'s legal name: the ``operator`` of the mandates below.
LEGAL_NAME = "Acme Trading GmbH"
#: A further legal entity of ``ORG`` its mandates may name as ``operator``.
LEGAL_ENTITY = "Acme Trading Ireland Ltd"


def free_port_closed() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def now() -> int:
    return int(time.time())


def midnight() -> int:
    """Today's UTC midnight."""
    t = now()
    return t - t % DAY


def open_mandate() -> dict[str, Any]:
    """A mandate that lets the scorer, not the mandate, judge markets and regions."""
    return {
        "operator": LEGAL_NAME,
        "maxTransactionSize": {"amount": "1000000", "currency": "EUR"},
        "allowedMarkets": ["BTC_EUR", "ETH_EUR", "DOGE_EUR"],
        "allowedRegions": ["eu-west-1", "ap-south-1"],
        "permittedActions": ["trade_execution"],
    }


def desk_mandate(**changes: Any) -> dict[str, Any]:
    """A desk mandate with no trading hours (so tests pass at any time of day)."""
    m: dict[str, Any] = {
        "operator": LEGAL_NAME,
        "operatorRegulatorId": "ESMA-001234",
        "maxTransactionSize": {"amount": "50000", "currency": "EUR"},
        "allowedMarkets": ["EUR_USD", "BTC_EUR"],
        "allowedCounterparties": ["exchange_a"],
        "allowedRegions": ["eu-west-1"],
        "permittedActions": ["trade_execution", "data_access"],
    }
    m.update(changes)
    return m


def event(agent: str, at: int, size: str, market: str, region: str, success: bool = True) -> dict[str, Any]:
    return {
        "agent_id": agent,
        "action": "trade_execution",
        "market": market,
        "size": size,
        "currency": "EUR",
        "side": "buy",
        "counterparty": "exchange_a",
        "region": region,
        "timestamp": at,
        "success": success,
    }


def history(agent: str) -> list[dict[str, Any]]:
    """Six past days of trading 09:00-17:00 UTC, four events an hour, sizes 80..120, two
    markets: 192 events (learnt with an 8-day observation window)."""
    out = []
    base = midnight()
    for day in range(2, 8):
        for hour in range(9, 17):
            for i in range(4):
                at = base - day * DAY + hour * 3600 + i * 900
                size = 80 + (day * 7 + hour * 3 + i * 11) % 41
                market = "ETH_EUR" if i == 0 else "BTC_EUR"
                out.append(event(agent, at, str(size), market, "eu-west-1"))
    return out


class StubServer:
    """A local HTTP server answering every request with ``handler(method, path, body)`` ->
    (status, headers, body); for answers the real daemon never gives (5xx, garbage, slowness)."""

    def __init__(self, handler: Callable[[str, str, bytes], tuple[int, dict[str, str], bytes]]) -> None:
        outer = self
        self.requests: list[tuple[str, str, bytes]] = []

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.requests.append((self.command, self.path, body))
                status, headers, data = handler(self.command, self.path, body)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def problem(status: int, slug: str, detail: str, **ext: Any) -> tuple[int, dict[str, str], bytes]:
    body = {"type": f"urn:mandate:problem:{slug}", "title": "T", "status": status, "detail": detail, **ext}
    return status, {"Content-Type": "application/problem+json"}, json.dumps(body).encode()


def approved_agent(
    operator: MandateClient, compliance: MandateClient, agent_id: str, mandate: dict[str, Any]
) -> Agent:
    """Registers an agent of ``ORG`` (operator) and approves its mandate (compliance)."""
    agent = operator.register_agent(agent_id, f"Agent {agent_id}", mandate, organization=ORG)
    assert agent.status == "pending_approval"
    agent = compliance.approve(agent_id, version=1)
    assert agent.status == "active", agent
    return agent
