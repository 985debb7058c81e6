"""Webhooks from the real daemon to a WebhookListener: verified deliveries arrive, and a
listener with the wrong secret answers 401 (which the daemon records and retries)."""

from __future__ import annotations

import threading
from typing import Any

from conftest import Daemon, wait_for
from helpers import approved_agent, desk_mandate
from mandate_client import Order, WebhookListener, parse_time


def test_a_revocation_arrives_as_a_verified_webhook(daemon: Daemon, agent_id: str) -> None:
    got: list[dict[str, Any]] = []
    lock = threading.Lock()

    def on_event(event: dict[str, Any]) -> None:
        with lock:
            got.append(event)

    def of(kind: str) -> list[dict[str, Any]]:
        with lock:
            return [e for e in got if e["type"] == kind and e["data"].get("agent_id") == agent_id]

    halted = threading.Event()

    def halt_on_revocation(event: dict[str, Any]) -> None:
        # What a bot does: stop trading when its certificate is revoked.
        on_event(event)
        if event["type"] == "certificate.revoked" and event["data"]["agent_id"] == agent_id:
            halted.set()

    with WebhookListener("127.0.0.1", 0, "", halt_on_revocation, path="/mandate") as listener, \
            WebhookListener("127.0.0.1", 0, "whsec_" + "0" * 64, lambda e: None) as wrong:
        hook = daemon.operator.create_webhook(listener.url, events=["certificate.issued", "certificate.revoked"])
        assert hook.secret is not None and hook.secret.startswith("whsec_")
        assert (hook.url, hook.events, hook.disabled_at) == (listener.url, ["certificate.issued", "certificate.revoked"], None)
        listener.secret = hook.secret
        bad_hook = daemon.operator.create_webhook(wrong.url, events=["certificate.revoked"])
        try:
            listed = {w.id: w for w in daemon.compliance.list_webhooks(limit=100).items}
            assert hook.id in listed and listed[hook.id].secret is None
            assert daemon.operator.get_webhook(hook.id).url == listener.url

            approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate())
            cert = daemon.operator.enroll(agent_id).certificate
            issued = wait_for("certificate.issued webhook", lambda: of("certificate.issued"))
            assert issued[0]["data"]["serial_number"] == cert.serial_number

            daemon.operator.revoke_certificate(cert.serial_number, "keyCompromise", comment="test")
            assert halted.wait(15), "no verified certificate.revoked webhook within 15 s"
            revoked = of("certificate.revoked")[0]
            assert revoked["id"].startswith("evt_") and revoked["attempt"] >= 1
            data = revoked["data"]
            assert (data["serial_number"], data["revocation_reason"], data["revocation_reason_code"],
                    data["revoked_by"]) == (cert.serial_number, "keyCompromise", 1, daemon.operator_key_id)
            assert "reason_code" not in data
            record = daemon.operator.get_certificate(cert.serial_number)
            assert (record.revocation_reason, record.revocation_reason_code) == ("keyCompromise", 1)
            assert parse_time(data["revoked_at"]) == record.revoked_at
            assert parse_time(revoked["sent_at"]).tzinfo is not None
            assert daemon.operator.preflight(agent_id, Order(market="BTC_EUR")).codes[0] == "certificate_revoked"

            delivered = wait_for(
                "delivery log says delivered",
                lambda: [d for d in daemon.operator.webhook_deliveries(hook.id).items
                         if d.event_id == revoked["id"] and d.status == "delivered"],
            )
            assert delivered[0].event_type == "certificate.revoked" and delivered[0].last_status_code == 204
            # Delivered again on request: due at once, then delivered a second time.
            again = daemon.operator.redeliver(hook.id, delivered[0].id)
            assert (again.id, again.status) == (delivered[0].id, "pending")
            wait_for(
                "redelivered",
                lambda: [d for d in daemon.operator.webhook_deliveries(hook.id).items
                         if d.id == again.id and d.status == "delivered" and d.attempts == 2],
            )
            # Paged by the same cursor as every list: one delivery a page, newest first.
            first = daemon.operator.webhook_deliveries(hook.id, limit=1)
            assert len(first.items) == 1 and isinstance(first.next_cursor, str)
            second = daemon.operator.webhook_deliveries(hook.id, limit=1, cursor=first.next_cursor)
            assert second.items[0].id < first.items[0].id
            walked = [d.id for d in daemon.operator.iter_webhook_deliveries(hook.id, page_size=1)]
            assert walked == sorted(walked, reverse=True) and walked[:2] == [first.items[0].id, second.items[0].id]
            # The listener with the wrong secret refused: 401, and the daemon will retry.
            refused = wait_for(
                "a 401 in the delivery log",
                lambda: [d for d in daemon.operator.webhook_deliveries(bad_hook.id).items if d.last_status_code == 401],
            )
            assert refused[0].status == "pending" and wrong.rejected >= 1 and wrong.received == 0
        finally:
            for h in (hook, bad_hook):
                assert daemon.operator.disable_webhook(h.id).disabled_at is not None
