# mypy: allow-subclassing-any, allow-untyped-calls
"""Renewal by itself against the real daemon: the keeper's certID and ARI, a Freqtrade bot
renewing when a newer mandate version supersedes its certificate, and (with a daemon that has
certificate profiles) a bot running on 20-second certificates through several renewals without
one refused trade, and the README's keeper block."""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from pathlib import Path
from typing import Any, Iterator

import pytest
from freqtrade.strategy import IStrategy  # type: ignore[import-untyped]

from conftest import Daemon, DaemonExited, daemon_fixture, free_port, start_daemon, wait_for
from helpers import ORG, approved_agent, desk_mandate, open_mandate
from mandate_client import CertificateKeeper, Order, RiskBand
from test_freqtrade import agent_key, bots, entry, load, stake, strategy_config, utcnow  # noqa: F401

#: The short profile of the daemon below: 20 s certificates, renewed from about 13 s (2/3).
PROFILE = "test"
PROFILE_CONFIG = f"\n[ca.profiles.{PROFILE}]\nvalidity_secs = 20\n"
ORDER = Order(market="BTC_EUR", size="400", currency="EUR", side="buy", counterparty="binance",
              region="eu-west-1")


def webhook_for(daemon: Daemon, port: int) -> Any:
    """What the desk registers for the bot: the halts, and certificate.superseded."""
    return daemon.operator.create_webhook(
        f"http://127.0.0.1:{port}/mandate",
        ["certificate.revoked", "agent.suspended", "certificate.superseded"], operator=ORG)


# --- with the suite's daemon ------------------------------------------------------------------


def test_the_keeper_uses_the_daemons_renewal_information(daemon: Daemon, agent_id: str, tmp_path: Path) -> None:
    approved_agent(daemon.operator, daemon.compliance, agent_id, open_mandate())
    bot = daemon.agent_client(agent_id)
    key, crt = tmp_path / "bot.key", tmp_path / "bot.crt"
    keeper = CertificateKeeper(bot, agent_id, key, crt)
    first = keeper.ensure()
    assert [c.serial_number for c in daemon.operator.list_certificates(agent_id).items] == [first.serial_number]
    assert keeper.ensure() == first  # ARI asked: not due
    w = keeper.window
    assert w is not None and w.source == "ari", w  # the daemon knew our certID
    life = first.not_after + dt.timedelta(seconds=1) - first.not_before
    assert abs((w.start - (first.not_before + life * 2 / 3)).total_seconds()) <= 2, (w, first)
    assert abs((w.end - (first.not_before + life * 5 / 6)).total_seconds()) <= 2, (w, first)
    assert (w.refresh_at - dt.datetime.now(dt.timezone.utc)).total_seconds() > 3600  # Retry-After 6 h
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert crt.read_text().count("BEGIN CERTIFICATE") == 3
    assert bot.preflight(agent_id, ORDER).allowed

    # Revoked behind its back: a restarted keeper learns from ARI to renew at once.
    daemon.operator.revoke_certificate(first.serial_number, "superseded", comment="keeper test")
    restarted = CertificateKeeper(bot, agent_id, key, crt)
    second = restarted.ensure()
    assert second.serial_number != first.serial_number
    certs = {c.serial_number: c for c in daemon.operator.list_certificates(agent_id).items}
    assert (certs[second.serial_number].revoked, certs[first.serial_number].revoked) == (False, True)
    assert not (tmp_path / "bot.key.next").exists()
    assert bot.preflight(agent_id, ORDER).allowed


def test_a_bot_renews_when_a_new_mandate_version_supersedes_its_certificate(
    daemon: Daemon, agent_id: str, tmp_path: Path, bots: list[IStrategy], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate(allowedCounterparties=["binance"]))
    port = free_port()
    hook = webhook_for(daemon, port)
    st = load(bots, strategy_config(tmp_path, {
        "url": daemon.base_url, "api_key_file": str(agent_key(daemon, agent_id, tmp_path)),
        "agent_id": agent_id, "cert_dir": str(tmp_path / "certs"), "region": "eu-west-1",
        "check_interval": 3600,
        "webhook": {"host": "127.0.0.1", "port": port, "path": "/mandate", "secret": hook.secret},
    }))
    try:
        st.ft_bot_start()
        first = st.mandate_serial
        assert st.mandate_ready and st.mandate_keeper.running and entry(st, 0.01)

        # A wider version: the certificate retires after the grace period, and the
        # certificate.superseded webhook has the keeper renew now, with the new version.
        daemon.operator.submit_mandate(agent_id, desk_mandate(
            allowedCounterparties=["binance"], maxTransactionSize={"amount": "60000", "currency": "EUR"}))
        daemon.compliance.approve(agent_id, version=2)
        second = wait_for("a renewal after certificate.superseded", lambda: st.mandate_serial != first and st.mandate_serial)
        assert daemon.operator.get_certificate(second).mandate_version == 2
        wait_for("the replaced certificate revoked", lambda: daemon.operator.get_certificate(first).revoked)
        assert daemon.operator.get_certificate(first).revocation_reason == "superseded"
        assert not st.mandate_halted and entry(st, 0.01)

        # A narrower version revokes the certificate (superseded) at once. Without the webhook,
        # the pre-trade check answers no_valid_certificate: the bot renews and trades.
        daemon.operator.disable_webhook(hook.id)
        daemon.operator.submit_mandate(agent_id, desk_mandate(
            allowedCounterparties=["binance"], maxTransactionSize={"amount": "40000", "currency": "EUR"}))
        daemon.compliance.approve(agent_id, version=3)
        assert daemon.operator.get_certificate(second).revoked
        caplog.clear()
        assert entry(st, 0.01) is True
        assert "answered no_valid_certificate" in caplog.text
        third = st.mandate_serial
        assert third not in (first, second) and daemon.operator.get_certificate(third).mandate_version == 3
        assert not st.mandate_halted

        # The status check finding its certificate revoked as superseded renews too.
        daemon.operator.submit_mandate(agent_id, desk_mandate(
            allowedCounterparties=["binance"], maxTransactionSize={"amount": "30000", "currency": "EUR"}))
        daemon.compliance.approve(agent_id, version=4)
        st.mandate_settings = st.mandate_settings._replace(check_interval=0)
        st.bot_loop_start(current_time=utcnow())
        wait_for("a renewal after the status check", lambda: st.mandate_serial not in (first, second, third))
        assert not st.mandate_halted and entry(st, 0.01)
    finally:
        if daemon.operator.get_webhook(hook.id).disabled_at is None:
            daemon.operator.disable_webhook(hook.id)


# --- with a daemon that has certificate profiles ---------------------------------------------


@pytest.fixture(scope="module")
def profile_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon of its own with the 20-second profile ``test``."""
    try:
        d = start_daemon(tmp_path_factory.mktemp("mandate-profiles"), PROFILE_CONFIG)
    except DaemonExited as e:
        if "unknown field `profiles`" in e.log:
            pytest.skip("this mandate binary has no certificate profiles ([ca.profiles]); rebuild it")
        pytest.fail(str(e))
    with daemon_fixture("profile_daemon", d):
        yield d


def test_a_bot_on_20_second_certificates_renews_three_times_without_a_refused_trade(
    profile_daemon: Daemon, agent_id: str, tmp_path: Path, bots: list[IStrategy], caplog: pytest.LogCaptureFixture
) -> None:
    daemon = profile_daemon
    caplog.set_level(logging.INFO)
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate(allowedCounterparties=["binance"]))
    port = free_port()
    hook = webhook_for(daemon, port)
    cert_dir = tmp_path / "certs"
    st = load(bots, strategy_config(tmp_path, {
        "url": daemon.base_url, "api_key_file": str(agent_key(daemon, agent_id, tmp_path)),
        "agent_id": agent_id, "cert_dir": str(cert_dir), "region": "eu-west-1", "profile": PROFILE,
        "check_interval": 1,  # the status check runs while certificates are replaced and revoked
        "webhook": {"host": "127.0.0.1", "port": port, "path": "/mandate", "secret": hook.secret},
    }))
    try:
        st.ft_bot_start()
        keeper = st.mandate_keeper
        assert st.mandate_ready and keeper.running and keeper.held.profile == PROFILE
        assert dt.timedelta(seconds=18) <= keeper.held.lifetime <= dt.timedelta(seconds=20)
        serials = [st.mandate_serial]
        refused: list[str] = []
        trades = [0]

        def trade_once() -> bool:
            """One round of the bot's loop: Freqtrade's loop start, a stake, an entry."""
            st.bot_loop_start(current_time=utcnow())
            if stake(st) != 100.0:
                refused.append(f"stake 0 with certificate {st.mandate_serial}")
            if not entry(st, 0.01):
                refused.append(f"entry refused with certificate {st.mandate_serial}")
            trades[0] += 1
            if st.mandate_serial != serials[-1]:
                serials.append(st.mandate_serial)
            return len(serials) >= 4 or st.mandate_halted

        # The bot's own pace (4 rounds a second); the end is a condition with a deadline.
        wait_for("three renewals", trade_once, deadline=120, interval=0.25)
        assert refused == [], refused
        assert not st.mandate_halted, st.mandate_halt_reason
        assert len(serials) >= 4 and trades[0] >= 40, (serials, trades)
        window = wait_for("the newest certificate's renewal window", lambda: keeper.window)
        assert window.source == "ari", window  # the daemon answered for every certID
        # Every replaced certificate was revoked as superseded, and that never halted the bot.
        certs = {c.serial_number: c for c in daemon.operator.list_certificates(agent_id).items}
        assert [s for s in serials[:-1] if certs[s].revocation_reason != "superseded"] == []
        wait_for("their webhooks arrived, and were ignored", lambda: "an older certificate of" in caplog.text)
        keeper.stop()  # no renewal in progress while the directory is looked at
        assert stat.S_IMODE(os.stat(cert_dir / f"{agent_id}.key").st_mode) == 0o600
        assert sorted(p.name for p in cert_dir.iterdir()) == [f"{agent_id}.crt", f"{agent_id}.key"]
        assert st.mandate_client.risk_band(agent_id) in (RiskBand.LOW, RiskBand.NOT_MONITORED)
    finally:
        daemon.operator.disable_webhook(hook.id)


def test_certify_with_a_profile(profile_daemon: Daemon, agent_id: str) -> None:
    from mandate_client import MandateError, generate_key_and_csr

    daemon = profile_daemon
    approved_agent(daemon.operator, daemon.compliance, agent_id, open_mandate())
    issued = daemon.operator.certify(agent_id, generate_key_and_csr(agent_id).csr_pem, profile="shortlived")
    assert issued.profile == "shortlived"
    cert = daemon.operator.get_certificate(issued.serial_number)
    assert cert.not_after is not None and cert.not_before is not None
    assert cert.not_after - cert.not_before == dt.timedelta(hours=24, seconds=-1)
    with pytest.raises(MandateError) as e:
        daemon.operator.certify(agent_id, generate_key_and_csr(agent_id).csr_pem, profile="no-such-profile")
    assert e.value.status == 400


def readme_keeper_block() -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Certificates that renew themselves"):]
    start = section.index("```python\n") + len("```python\n")
    return section[start:section.index("```", start)]


def test_the_readmes_keeper_block(
    profile_daemon: Daemon, agent_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = profile_daemon
    approved_agent(daemon.operator, daemon.compliance, agent_id, open_mandate())
    code = readme_keeper_block()
    for old, new in {
        '"trading-bot-v2"': repr(agent_id),
        '"https://mandate.acme.example"': repr(daemon.base_url),
        "8787": "0",
    }.items():
        assert old in code, old
        code = code.replace(old, new)
    monkeypatch.setenv("MANDATE_API_KEY", daemon.operator_key)  # registers the webhook too
    monkeypatch.chdir(tmp_path)
    ns: dict[str, Any] = {"__name__": "readme"}
    exec(compile(code, "README.md", "exec"), ns)
    keeper = ns["keeper"]
    try:
        assert keeper.running and keeper.held.profile == "shortlived"
        first = keeper.held.serial_number
        # The webhook the README registers: a wider mandate version retires the certificate.
        daemon.operator.submit_mandate(agent_id, {**open_mandate(), "allowedMarkets": ["BTC_EUR", "ETH_EUR", "SOL_EUR"]})
        daemon.compliance.approve(agent_id, version=2)
        wait_for("the README keeper renewed", lambda: keeper.held.serial_number != first, deadline=20)
        assert (tmp_path / "bot.crt").is_file() and stat.S_IMODE(os.stat(tmp_path / "bot.key").st_mode) == 0o600
        assert daemon.operator.get_certificate(keeper.held.serial_number).mandate_version == 2
        wait_for("the replaced certificate revoked", lambda: daemon.operator.get_certificate(first).revoked)
        assert not ns["halt"].is_set()  # its certificate.revoked webhook is an older certificate's
        # The kill switch: the current certificate revoked (privilegeWithdrawn) halts.
        daemon.operator.revoke_agent(agent_id, "README keeper test")
        wait_for("the README bot halted", ns["halt"].is_set)
    finally:
        keeper.stop()
        ns["listener"].stop()
        for h in daemon.operator.list_webhooks(limit=100).items:
            if h.url == ns["listener"].url and h.disabled_at is None:
                daemon.operator.disable_webhook(h.id)
