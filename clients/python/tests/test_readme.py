"""The README's bot example, run as written against the real daemon (with a fake strategy and
exchange, and the waits shortened): it registers itself, waits for approval, enrolls, trades
through preflight and the EventReporter, and halts on the revocation webhook."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Daemon, wait_for
from helpers import open_mandate
from mandate_client import MandateError, Order


def readme_example() -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## A bot") :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```", start)]


def test_the_readme_bot_runs_and_halts_on_revocation(
    daemon: Daemon, agent_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = readme_example()
    for old, new in {
        '"trading-bot-v2"': repr(agent_id),
        '"https://mandate.acme.example"': repr(daemon.base_url),
        "8787": "0",
        "time.sleep(30)": "time.sleep(0.05)",
        "time.sleep(5)": "time.sleep(0.05)",
        '"bot.key"': repr(str(tmp_path / "bot.key")),
        '"webhook.secret"': repr(str(tmp_path / "webhook.secret")),
    }.items():
        assert old in code, old
        code = code.replace(old, new)
    monkeypatch.setenv("MANDATE_API_KEY", daemon.operator_key)
    placed: list[Order] = []

    class Strategy:
        def next_trade(self) -> tuple[str, float]:
            time.sleep(0.02)
            return "BTC_EUR", 100.0

    class Exchange:
        def place(self, order: Order) -> bool:
            placed.append(order)
            return True

    ns: dict[str, Any] = {"__name__": "readme", "MANDATE": open_mandate(), "strategy": Strategy(), "exchange": Exchange()}
    errors: list[BaseException] = []

    def run() -> None:
        try:
            exec(compile(code, "README.md", "exec"), ns)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def registered() -> bool:
        try:
            return daemon.compliance.get_agent(agent_id).status == "pending_approval"
        except MandateError:
            return False

    bot = threading.Thread(target=run, daemon=True)
    bot.start()
    try:
        wait_for("the bot registers itself", lambda: registered() or errors)
        assert not errors, errors
        daemon.compliance.approve(agent_id, version=1)
        wait_for("three trades", lambda: len(placed) >= 3 or errors)
        assert not errors, errors
        daemon.compliance.revoke_agent(agent_id, "README test: stop the bot")
        bot.join(20)
        assert not bot.is_alive(), "the bot did not stop after its revocation"
        assert not errors, errors
        assert ns["halt"].wait(15), "no verified certificate.revoked webhook"
        stats = ns["reporter"].stats()
        assert (stats.sent, stats.dropped) == (len(placed), 0), stats
        assert stat.S_IMODE(os.stat(tmp_path / "bot.key").st_mode) == 0o600
        assert all(o.size == 100.0 for o in placed)
        # A restart reuses the endpoint and its kept secret; with the secret lost, it replaces
        # the registration: one active endpoint for the bot's URL either way.
        url = ns["listener"].url

        def active() -> list[Any]:
            return [w for w in daemon.operator.iter_webhooks() if w.url == url and w.disabled_at is None]

        assert len(active()) == 1
        assert stat.S_IMODE(os.stat(tmp_path / "webhook.secret").st_mode) == 0o600
        assert ns["webhook_secret"](url, ["certificate.revoked"]) == ns["listener"].secret
        assert len(active()) == 1
        (tmp_path / "webhook.secret").unlink()
        fresh = ns["webhook_secret"](url, ["certificate.revoked"])
        assert fresh != ns["listener"].secret and [w.id for w in active()] != []
        assert len(active()) == 1
    finally:
        listener = ns.get("listener")
        if listener is not None:
            listener.stop()
            for hook in daemon.operator.list_webhooks(limit=100).items:
                if hook.url == listener.url and hook.disabled_at is None:
                    daemon.operator.disable_webhook(hook.id)
