# mypy: allow-subclassing-any, allow-untyped-calls
"""The Freqtrade mixin of examples/freqtrade/ with the real ``freqtrade`` package (PyPI): the
strategy is loaded by Freqtrade's own ``StrategyResolver`` and its callbacks are called as
Freqtrade calls them (keywords, Freqtrade ``Trade``/``Order`` objects), without an exchange,
against the real daemon.

``freqtrade`` is imported unconditionally: CI installs it (``pip install freqtrade``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
# freqtrade ships no type information.
from freqtrade.configuration.config_validation import validate_config_schema  # type: ignore[import-untyped]
from freqtrade.enums import RunMode  # type: ignore[import-untyped]
from freqtrade.exceptions import StrategyError  # type: ignore[import-untyped]
from freqtrade.persistence import Order as FtOrder  # type: ignore[import-untyped]
from freqtrade.persistence import Trade, init_db
from freqtrade.resolvers import StrategyResolver  # type: ignore[import-untyped]
from freqtrade.resolvers.strategy_resolver import check_override  # type: ignore[import-untyped]
from freqtrade.strategy import IStrategy  # type: ignore[import-untyped]

from conftest import Daemon, free_port, wait_for
from helpers import DAY, ORG, approved_agent, desk_mandate, free_port_closed, history, midnight, open_mandate
from mandate_client import DECISION_ID, Decision, MandateClient, OrderState, Reason, RiskBand

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "freqtrade"
sys.path.insert(0, str(EXAMPLE))

# The example, imported as a user's strategy file imports it.
import mandate_strategy  # type: ignore[import-not-found]  # noqa: E402

PAIR = "BTC/EUR"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def strategy_config(tmp_path: Path, mandate: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A minimal Freqtrade configuration: what the resolver and ``IStrategy`` need, no exchange."""
    user_data = tmp_path / "user_data"
    (user_data / "strategies").mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "strategy": "MandateSampleStrategy",
        "strategy_path": str(EXAMPLE),
        "user_data_dir": user_data,
        "stake_currency": "EUR",
        "dry_run": False,  # a live bot (no exchange is touched: the callbacks are called directly)
        "runmode": RunMode.LIVE,
        "exchange": {"name": "binance"},
        "mandate": mandate,
    }
    config.update(extra)
    return config


@pytest.fixture
def bots() -> Iterator[list[IStrategy]]:
    """Strategies made by a test; their listener and reporter are stopped afterwards."""
    made: list[IStrategy] = []
    yield made
    for st in made:
        st.ft_bot_cleanup()


def load(bots: list[IStrategy], config: dict[str, Any]) -> Any:
    st = StrategyResolver.load_strategy(config)
    assert type(st).__name__ == "MandateSampleStrategy" and isinstance(st, IStrategy)
    bots.append(st)
    return st


def agent_key(daemon: Daemon, agent: str, tmp_path: Path) -> Path:
    """An ``agent`` key bound to this agent, in a 0600 file (what the desk hands the bot)."""
    key = daemon.admin.create_api_key("agent", f"freqtrade {agent}", agent).api_key
    assert key
    path = tmp_path / "mandate-api-key"
    path.write_text(key + "\n")
    path.chmod(0o600)
    return path


def entry(st: Any, amount: float, rate: float = 40000.0, pair: str = PAIR, side: str = "long") -> bool:
    return bool(st.confirm_trade_entry(
        pair=pair, order_type="limit", amount=amount, rate=rate, time_in_force="GTC",
        current_time=utcnow(), entry_tag="sma_cross", side=side,
    ))


def stake(st: Any, proposed: float = 100.0, min_stake: float | None = 10.0, max_stake: float = 1000.0) -> float:
    return float(st.custom_stake_amount(
        pair=PAIR, current_time=utcnow(), current_rate=40000.0, proposed_stake=proposed,
        min_stake=min_stake, max_stake=max_stake, leverage=1.0, entry_tag=None, side="long",
    ))


def trade(amount: float = 0.01, rate: float = 40000.0) -> Trade:
    return Trade(
        pair=PAIR, is_short=False, amount=amount, open_rate=rate, exchange="binance",
        stake_amount=amount * rate, fee_open=0.0, fee_close=0.0,
        open_date=utcnow().replace(tzinfo=None), leverage=1.0,
    )


def exit_(st: Any, t: Trade, rate: float = 41000.0, reason: str = "exit_signal") -> bool:
    return bool(st.confirm_trade_exit(
        pair=t.pair, trade=t, order_type="limit", amount=t.amount, rate=rate, time_in_force="GTC",
        exit_reason=reason, sell_reason=reason, current_time=utcnow(),
    ))


def fill(st: Any, t: Trade, side: str, amount: float, price: float, at: dt.datetime | None = None) -> None:
    """Freqtrade's ``order_filled`` for a closed order, then waits until the event is stored."""
    at = at or utcnow()
    order = FtOrder(
        ft_order_side=side, ft_pair=t.pair, ft_is_open=False, order_id=f"o-{at.timestamp()}-{side}",
        status="closed", side=side, order_type="limit", amount=amount, filled=amount, average=price,
        price=price, order_filled_date=at.astimezone(dt.timezone.utc).replace(tzinfo=None),
    )
    sent = st.mandate_reporter.stats().sent
    st.order_filled(pair=t.pair, trade=t, order=order, current_time=utcnow())
    assert st.mandate_reporter.flush(timeout=15)
    stats = st.mandate_reporter.stats()
    assert (stats.sent, stats.dropped) == (sent + 1, 0), stats


def test_the_strategy_trades_within_its_mandate_and_halts_on_the_kill_switch_webhook(
    daemon: Daemon, agent_id: str, tmp_path: Path, bots: list[IStrategy], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate(
        allowedCounterparties=["binance"], maxDailyVolume={"amount": "50000", "currency": "EUR"}))
    # The desk registers the bot's webhook (an agent key may not) and hands over the secret.
    port = free_port()
    hook = daemon.operator.create_webhook(
        f"http://127.0.0.1:{port}/mandate", ["certificate.revoked", "agent.suspended"], operator=ORG)
    assert hook.secret
    cert_dir = tmp_path / "certs"
    st = load(bots, strategy_config(tmp_path, {
        "url": daemon.base_url, "api_key_file": str(agent_key(daemon, agent_id, tmp_path)),
        "agent_id": agent_id, "cert_dir": str(cert_dir), "region": "eu-west-1",
        "check_interval": 3600,  # the halt below must come from the webhook, not the status check
        "webhook": {"host": "127.0.0.1", "port": port, "path": "/mandate", "secret": hook.secret},
    }))
    try:
        st.ft_bot_start()  # what Freqtrade calls: bot_start() through its safe wrapper
        assert st.mandate_ready and not st.mandate_halted
        certs = daemon.operator.list_certificates(agent_id).items
        assert [c.serial_number for c in certs] == [st.mandate_serial]
        key_file = cert_dir / f"{agent_id}.key"
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        assert (cert_dir / f"{agent_id}.crt").read_text().count("BEGIN CERTIFICATE") == 3  # leaf + chain
        assert st.mandate_listener is not None and st.mandate_listener.url == hook.url

        st.bot_loop_start(current_time=utcnow())
        assert not st.mandate_halted

        # In the mandate: 0.01 BTC at 40000 = 400 EUR on binance, eu-west-1.
        assert entry(st, 0.01) is True
        # Over maxTransactionSize, and a market the mandate does not list: refused, with reasons.
        caplog.clear()
        assert entry(st, 2.0) is False
        assert "mandate denied entry BTC/EUR" in caplog.text
        assert "exceeds_scope_size (limit 50000 EUR, requested 80000 EUR)" in caplog.text
        assert entry(st, 0.01, pair="ETH/EUR") is False
        assert "market_not_allowed (limit EUR_USD,BTC_EUR, requested ETH_EUR)" in caplog.text

        assert stake(st) == 100.0  # no scored event yet: low band, full stake

        # The fill is reported and counts in the daily volume the CA checks.
        t = trade(0.01)
        assert entry(st, 1.245) is True  # 49800 EUR: under the cap of 50000 before the fill
        fill(st, t, "buy", 0.01, 40000.0)
        caplog.clear()
        assert entry(st, 1.245) is False  # 400 + 49800 > 50000
        assert "daily_volume_cap_exceeded (limit 50000 EUR, requested 50200 EUR)" in caplog.text

        assert exit_(st, t) is True
        fill(st, t, "sell", 0.01, 41000.0)

        # The kill switch: the signed webhook reaches the bot and halts it.
        caplog.clear()
        ks = daemon.operator.revoke_agent(agent_id, "freqtrade test: kill switch")
        assert ks.certificates_revoked == [st.mandate_serial]
        wait_for("the bot halted by the webhook", lambda: st.mandate_halted)
        assert st.mandate_halt_reason.startswith("webhook"), st.mandate_halt_reason
        assert "MANDATE HALT for agent" in caplog.text
        st.bot_loop_start(current_time=utcnow())
        assert "MANDATE HALTED" in caplog.text
        caplog.clear()
        assert entry(st, 0.01) is False
        assert "halted" in caplog.text
        assert stake(st) == 0.0
        assert exit_(st, trade(0.01)) is False  # exit_policy check: an authoritative no
        # The kill function cancels what is resting: a fresh open limit order (far from its
        # timeout) is cancelled on Freqtrade's next loop, through its own timeout path.
        resting = FtOrder(
            ft_order_side="buy", ft_pair=PAIR, ft_is_open=True, order_id="resting", status="open",
            side="buy", order_type="limit", amount=0.01, filled=0.0, price=39000.0,
            order_date=utcnow().replace(tzinfo=None),
        )
        assert st.ft_check_timed_out(trade(0.01), resting, utcnow()) is True
        assert "cancelling open buy order" in caplog.text
        delivered = wait_for("delivery log says delivered", lambda: [
            d for d in daemon.operator.webhook_deliveries(hook.id).items
            if d.status == "delivered" and d.last_status_code == 204])
        assert {d.event_type for d in delivered} <= {"certificate.revoked", "agent.suspended"}
    finally:
        daemon.operator.disable_webhook(hook.id)


def test_the_stake_follows_the_risk_band(
    daemon: Daemon, agent_id: str, tmp_path: Path, bots: list[IStrategy]
) -> None:
    approved_agent(daemon.operator, daemon.compliance, agent_id, open_mandate())
    # A week of history, a baseline learnt (operator) and approved (compliance).
    assert daemon.operator.report_events(history(agent_id)).accepted == 192
    daemon.operator.learn_baseline(agent_id)
    daemon.compliance.approve_baseline(agent_id, version=1)
    st = load(bots, strategy_config(tmp_path, {
        "url": daemon.base_url, "api_key_file": str(agent_key(daemon, agent_id, tmp_path)),
        "agent_id": agent_id, "cert_dir": str(tmp_path / "certs"), "region": "eu-west-1",
    }))
    st.ft_bot_start()
    agent: MandateClient = st.mandate_client
    yesterday = midnight() - DAY
    at = lambda hour: dt.datetime.fromtimestamp(yesterday + hour * 3600, dt.timezone.utc)  # noqa: E731

    assert agent.risk_band(agent_id) is RiskBand.LOW
    assert stake(st) == 100.0

    # A fill four times the usual size, at a usual hour: score ~0.55, medium band.
    fill(st, trade(0.01), "buy", 0.01, 40000.0, at=at(10))
    assert agent.risk_band(agent_id) is RiskBand.MEDIUM
    assert stake(st) == 50.0
    assert stake(st, min_stake=60.0) == 60.0  # the exchange minimum, still under the proposal
    assert stake(st, min_stake=120.0) == 0.0  # the minimum is above the proposal: no trade
    assert stake(st, max_stake=30.0) == 30.0

    # A usual size at 03:00 UTC, an hour it never trades: ~0.8, high band, circuit breaker.
    fill(st, trade(0.0025), "buy", 0.0025, 40000.0, at=at(3))
    risk = agent.risk_score(agent_id)
    assert risk.band is RiskBand.HIGH and risk.score is not None and risk.score < risk.auto_revoke_threshold, risk
    assert stake(st) == 0.0
    assert entry(st, 0.0025) is False  # circuit_breaker_active
    assert daemon.operator.get_agent(agent_id).status == "active"


def test_a_restarted_bot_reuses_its_cached_certificate(
    daemon: Daemon, agent_id: str, tmp_path: Path, bots: list[IStrategy], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate(allowedCounterparties=["binance"]))
    cert_dir = tmp_path / "certs"
    # This bot holds an operator key, so it registers (and at shutdown disables) its own webhook.
    mandate = {
        "url": daemon.base_url, "api_key": daemon.operator_key, "agent_id": agent_id,
        "cert_dir": str(cert_dir), "region": "eu-west-1",
        "webhook": {"host": "127.0.0.1", "port": 0, "register": True},
    }
    first = load(bots, strategy_config(tmp_path, mandate))
    first.ft_bot_start()
    serial = first.mandate_serial
    hook_id = first._mandate_webhook_id
    assert serial and hook_id
    hook = daemon.operator.get_webhook(hook_id)
    assert (hook.url, hook.operator, hook.disabled_at) == (first.mandate_listener.url, ORG, None)
    first.ft_bot_cleanup()  # Freqtrade's shutdown
    assert daemon.operator.get_webhook(hook_id).disabled_at is not None

    # The restart: same cert_dir, the certificate is loaded, not issued again.
    caplog.clear()
    second = load(bots, strategy_config(tmp_path, {**mandate, "webhook": None, "check_interval": 0}))
    second.ft_bot_start()
    assert second.mandate_serial == serial and second.mandate_ready
    assert "using cached certificate" in caplog.text
    assert [c.serial_number for c in daemon.operator.list_certificates(agent_id).items] == [serial]
    assert entry(second, 0.01) is True

    # Without a webhook, the periodic status check notices a revocation.
    daemon.compliance.revoke_certificate(serial, "keyCompromise", comment="freqtrade test")
    second.bot_loop_start(current_time=utcnow())
    assert second.mandate_halted and "status check" in (second.mandate_halt_reason or "")
    assert entry(second, 0.01) is False

    # The next start finds the cached certificate revoked and certifies a new key.
    old_key = (cert_dir / f"{agent_id}.key").read_bytes()
    third = load(bots, strategy_config(tmp_path, {**mandate, "webhook": None}))
    third.ft_bot_start()
    assert third.mandate_ready and third.mandate_serial != serial
    assert (cert_dir / f"{agent_id}.key").read_bytes() != old_key
    certs = daemon.operator.list_certificates(agent_id).items
    assert {c.serial_number: c.revoked for c in certs} == {third.mandate_serial: False, serial: True}
    assert entry(third, 0.01) is True


def test_orders_that_time_out_unfilled_are_reported_as_failures(
    daemon: Daemon, agent_id: str, tmp_path: Path, bots: list[IStrategy], caplog: pytest.LogCaptureFixture
) -> None:
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate(allowedCounterparties=["binance"]))
    st = load(bots, strategy_config(tmp_path, {
        "url": daemon.base_url, "api_key_file": str(agent_key(daemon, agent_id, tmp_path)),
        "agent_id": agent_id, "cert_dir": str(tmp_path / "certs"), "region": "eu-west-1",
    }, unfilledtimeout={"entry": 10, "exit": 10, "unit": "minutes"}))
    st.ft_bot_start()
    t = trade(0.01)
    for i in range(3):  # maxConsecutiveFailures defaults to 3
        order = FtOrder(
            ft_order_side="buy", ft_pair=PAIR, ft_is_open=True, order_id=f"stale-{i}", status="open",
            side="buy", order_type="limit", amount=0.01, filled=0.0, price=40000.0,
            order_date=(utcnow() - dt.timedelta(minutes=20)).replace(tzinfo=None),
        )
        assert st.ft_check_timed_out(t, order, utcnow()) is True
    assert st.mandate_reporter.flush(timeout=15) and st.mandate_reporter.stats().sent == 3
    caplog.clear()
    assert entry(st, 0.01) is False
    assert "too_many_consecutive_failures (limit 3, requested 3)" in caplog.text
    fill(st, t, "buy", 0.01, 40000.0)  # a success resets the count
    assert entry(st, 0.01) is True


def ft_order(t: Trade, order_id: str, side: str, amount: float, price: float, *, status: str = "open",
             filled: float = 0.0, ft_side: str | None = None, order_type: str = "limit") -> FtOrder:
    """A Freqtrade order as ``execute_entry``/``execute_trade_exit`` record it (``ft_amount``: the
    amount they confirmed), committed to Freqtrade's database with its trade."""
    order = FtOrder(
        ft_order_side=ft_side or side, ft_pair=t.pair, ft_is_open=status == "open", ft_amount=amount,
        ft_price=price, order_id=order_id, status=status, side=side, order_type=order_type, amount=amount,
        filled=filled, remaining=amount - filled, price=price, average=price if filled else None,
        order_date=utcnow().replace(tzinfo=None),
        order_filled_date=utcnow().replace(tzinfo=None) if status == "closed" else None,
    )
    t.orders.append(order)
    Trade.session.add(t)
    Trade.commit()
    return order


def test_the_order_lifecycle_is_reported_with_client_ids_and_decisions(
    daemon: Daemon, agent_id: str, tmp_path: Path, bots: list[IStrategy], caplog: pytest.LogCaptureFixture
) -> None:
    """Freqtrade's real database (in memory) and ``Order`` rows, changed as Freqtrade changes them
    when it places, fills, cancels and deletes orders; the mixin reports each change once."""
    init_db("sqlite://")
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate(
        allowedCounterparties=["binance"], maxOpenOrders=5, shortSellingAllowed=False,
        allowedOrderTypes=["limit", "stop_limit"]))
    st = load(bots, strategy_config(tmp_path, {
        "url": daemon.base_url, "api_key_file": str(agent_key(daemon, agent_id, tmp_path)),
        "agent_id": agent_id, "cert_dir": str(tmp_path / "certs"), "region": "eu-west-1", "check_interval": 3600,
    }, unfilledtimeout={"entry": 10, "exit": 10, "unit": "minutes"}))
    st.ft_bot_start()
    reporter, ca = st.mandate_reporter, daemon.operator

    def loop() -> None:
        """Freqtrade's next loop begins; what the mixin reported is sent."""
        st.bot_loop_start(current_time=utcnow())
        assert reporter.flush(timeout=15) and reporter.stats().dropped == 0, reporter.stats()

    def decision_of(order_id: str) -> str:
        d = st.mandate_decision_id(order_id)
        assert d is not None and DECISION_ID.fullmatch(d), (order_id, d)
        return str(d)

    # An entry the daemon allowed is placed and rests: reported new, with its decision.
    assert entry(st, 0.01) is True
    t = trade(0.01)
    o1 = ft_order(t, "ord-1", "buy", 0.01, 40000.0)
    loop()
    d1 = decision_of("ord-1")
    record = ca.get_decision(d1)
    assert (record.via, record.allowed, record.states) == ("preflight", True, [OrderState.NEW])
    assert record.order["quantity"] == "0.01" and record.order["order_type"] == "limit"
    new = record.events[0]
    assert (new.client_order_id, new.market, new.side, new.quantity, new.price, new.decision_id) == (
        "ord-1", "BTC_EUR", "buy", Decimal("0.01"), Decimal("40000"), d1)
    assert ca.usage(agent_id).open_orders == 1
    loop()  # nothing new: nothing reported twice
    assert len(ca.get_decision(d1).events) == 1

    # Freqtrade updates the order from the exchange: a part filled; then it closed (order_filled).
    o1.filled, o1.remaining, o1.average = 0.004, 0.006, 40000.0
    Trade.commit()
    loop()
    assert ca.usage(agent_id).position("BTC_EUR") == Decimal("0.004")
    o1.filled, o1.remaining, o1.status, o1.ft_is_open = 0.01, 0.0, "closed", False
    o1.order_filled_date = utcnow().replace(tzinfo=None)
    Trade.commit()
    st.order_filled(pair=PAIR, trade=t, order=o1, current_time=utcnow())
    assert reporter.flush(timeout=15)
    sent = reporter.stats().sent
    st.order_filled(pair=PAIR, trade=t, order=o1, current_time=utcnow())  # Freqtrade's recovery paths do
    loop()
    assert reporter.stats().sent == sent
    record = ca.get_decision(d1)
    assert record.states == [OrderState.NEW, OrderState.PARTIALLY_FILLED, OrderState.FILLED]
    assert [e.fill_quantity for e in record.fills] == [Decimal("0.004"), Decimal("0.006")]
    assert {e.client_order_id for e in record.events} == {"ord-1"}
    usage = ca.usage(agent_id)
    assert (usage.open_orders, usage.position("BTC_EUR"), usage.daily_volume) == (0, Decimal("0.01"), Decimal("400"))

    # An exit rests, times out unfilled, and Freqtrade cancels it: cancelled, a failed execution.
    t.amount = 0.01
    assert exit_(st, t) is True
    o2 = ft_order(t, "ord-2", "sell", t.amount, 41000.0)
    loop()
    d2 = decision_of("ord-2")
    assert ca.usage(agent_id).open_orders == 1
    o2.order_date = (utcnow() - dt.timedelta(minutes=20)).replace(tzinfo=None)
    assert st.ft_check_timed_out(t, o2, utcnow()) is True
    o2.status, o2.ft_is_open = "canceled", False  # what handle_cancel_exit records
    Trade.commit()
    loop()
    assert ca.get_decision(d2).states == [OrderState.NEW, OrderState.CANCELLED]
    usage = ca.usage(agent_id)
    assert (usage.open_orders, usage.consecutive_failures, usage.position("BTC_EUR")) == (0, 1, Decimal("0.01"))

    # The venue rejects the next exit: Freqtrade records it closed at once, nothing ever rested.
    assert exit_(st, t) is True
    ft_order(t, "ord-3", "sell", t.amount, 41000.0, status="rejected")

    def rejection_reported() -> bool:  # a decision waits a second for its order before it looks further
        loop()
        return st.mandate_decision_id("ord-3") is not None

    wait_for("the rejection reported", rejection_reported)
    assert ca.get_decision(decision_of("ord-3")).states == [OrderState.REJECTED]
    assert ca.usage(agent_id).consecutive_failures == 2  # a rejection is a failure

    # The stop loss on the exchange fills: only the fill is reported (it was never checked).
    sl = ft_order(t, "sl-1", "sell", 0.01, 38000.0, status="closed", filled=0.01, ft_side="stoploss",
                  order_type="stop_loss_limit")
    st.order_filled(pair=PAIR, trade=t, order=sl, current_time=utcnow())
    loop()
    assert st.mandate_decision_id("sl-1") is None
    usage = ca.usage(agent_id)
    assert (usage.open_orders, usage.net_positions, usage.consecutive_failures) == (0, {}, 0)
    assert usage.daily_volume == Decimal("400") + Decimal("380")

    # An entry cancelled unfilled: Freqtrade deletes the trade with its orders.
    assert entry(st, 0.01) is True
    t2 = trade(0.01)
    ft_order(t2, "ord-5", "buy", 0.01, 40000.0)
    loop()
    d5 = decision_of("ord-5")
    assert ca.usage(agent_id).open_orders == 1
    t2.delete()
    loop()
    assert ca.get_decision(d5).states == [OrderState.NEW, OrderState.CANCELLED]
    assert ca.usage(agent_id).open_orders == 0

    # The stop loss closed the position, and the daemon saw it: another sell would be short.
    caplog.clear()
    assert exit_(st, t) is False
    assert "short_selling_not_allowed (limit no short position, requested -0.01 BTC_EUR)" in caplog.text


class Chaser(mandate_strategy.MandateSampleStrategy):
    """A strategy that moves its resting limit orders to the proposed price (Freqtrade's
    ``adjust_order_price`` calls these, then replaces the order at a new price)."""

    def adjust_entry_price(self, trade: Trade, order: FtOrder | None, pair: str, current_time: dt.datetime,
                           proposed_rate: float, *args: Any, **kwargs: Any) -> float | None:
        return proposed_rate

    def adjust_exit_price(self, trade: Trade, order: FtOrder | None, pair: str, current_time: dt.datetime,
                          proposed_rate: float, *args: Any, **kwargs: Any) -> float | None:
        return proposed_rate


def reprice(st: Any, t: Trade, o: FtOrder, new: float, is_entry: bool = True) -> float | None:
    """Freqtrade's ``replace_order``: asks ``adjust_order_price`` for a new price of ``o``."""
    price = st.adjust_order_price(
        trade=t, order=o, pair=t.pair, current_time=utcnow(), proposed_rate=new,
        current_order_rate=o.safe_placement_price, entry_tag=t.enter_tag, side=t.trade_direction, is_entry=is_entry,
    )
    return None if price is None else float(price)


def test_replacing_a_resting_order_at_a_new_price_is_checked(
    daemon: Daemon, agent_id: str, tmp_path: Path, bots: list[IStrategy], caplog: pytest.LogCaptureFixture
) -> None:
    """Freqtrade replaces a resting limit order without ``confirm_trade_entry``/``exit``: the
    mixin checks the new price; a refusal or a halt keeps the order at its price."""
    caplog.set_level(logging.INFO)
    init_db("sqlite://")
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate(
        allowedCounterparties=["binance"], priceCollar={"buyBps": 100, "sellBps": 100}))
    assert daemon.operator.post_reference_prices({"BTC_EUR": Decimal("40000")}) == 1
    st = Chaser(strategy_config(tmp_path, {
        "url": daemon.base_url, "api_key_file": str(agent_key(daemon, agent_id, tmp_path)),
        "agent_id": agent_id, "cert_dir": str(tmp_path / "certs"), "region": "eu-west-1", "check_interval": 3600,
    }))
    try:
        st.ft_bot_start()
        reporter, ca = st.mandate_reporter, daemon.operator
        checks: list[Any] = []
        preflight = st.mandate_client.preflight

        def counted(agent: str, order: Any, **kw: Any) -> Decision:
            checks.append(order)
            decision: Decision = preflight(agent, order, **kw)
            return decision

        st.mandate_client.preflight = counted

        def loop() -> None:
            st.bot_loop_start(current_time=utcnow())
            assert reporter.flush(timeout=15) and reporter.stats().dropped == 0, reporter.stats()

        # Freqtrade refuses a strategy overriding adjust_order_price and one of the other two:
        # the mixin overrides none of them, it wraps the strategy's own (from any base class).
        assert [check_override(s, IStrategy, n) for s in (st, load(bots, strategy_config(tmp_path, {})))
                for n in ("adjust_order_price", "adjust_entry_price", "adjust_exit_price")] == [
            False, True, True, False, False, False]

        class Plain(IStrategy):
            def adjust_exit_price(self, *args: Any, **kwargs: Any) -> float | None:
                return 1.0

        class Mixed(mandate_strategy.MandateStrategyMixin, Plain):
            pass

        assert getattr(Mixed.__dict__["adjust_exit_price"], "_mandate_wrapped", False)
        assert not hasattr(Plain.adjust_exit_price, "_mandate_wrapped")

        assert entry(st, 0.01, rate=39800.0) is True
        t = trade(0.01, 39800.0)
        o1 = ft_order(t, "rp-1", "buy", 0.01, 39800.0)
        loop()
        checks.clear()

        # Unchanged (keep) and None (cancel, no replacement): Freqtrade places nothing new, no check.
        assert reprice(st, t, o1, 39800.0) == 39800.0
        assert st._mandate_reprice(None, {"pair": PAIR, "trade": t, "order": o1}, True) is None
        assert checks == []

        # Inside the collar (40000 + 1 %): allowed, once, as a new limit order at the new price.
        assert reprice(st, t, o1, 40200.0) == 40200.0
        assert len(checks) == 1
        (checked,) = checks
        assert (checked.side, checked.order_type, checked.price, checked.intent) == ("buy", "limit", Decimal("40200"),
                                                                                     None)
        assert checked.quantity == Decimal("0.0099005")  # the remaining stake (0.01 × 39800) at 40200
        # Freqtrade cancels rp-1 and places the replacement: reported with the check's decision.
        o1.status, o1.ft_is_open = "canceled", False
        Trade.commit()
        o2 = ft_order(t, "rp-2", "buy", 0.0099005, 40200.0)
        loop()
        d2 = st.mandate_decision_id("rp-2")
        assert d2 is not None and DECISION_ID.fullmatch(d2), d2
        record = ca.get_decision(d2)
        assert (record.allowed, record.order["price"], record.states) == (True, "40200", [OrderState.NEW])
        assert record.events[0].client_order_id == "rp-2"
        assert ca.usage(agent_id).open_orders == 1

        # Outside the collar: refused, the order stays at its price (Freqtrade neither cancels nor replaces).
        checks.clear()
        caplog.clear()
        assert reprice(st, t, o2, 41000.0) == 40200.0
        assert len(checks) == 1
        assert "mandate denied entry replacement of order rp-2 at 41000.0 BTC/EUR" in caplog.text
        assert "price_outside_collar" in caplog.text and "stays at 40200.0" in caplog.text
        # Freqtrade's older path (adjust_entry_price called directly) is checked as well.
        assert st.adjust_entry_price(trade=t, order=o2, pair=PAIR, current_time=utcnow(), proposed_rate=41000.0,
                                     current_order_rate=40200.0, entry_tag=None, side="long") == 40200.0
        assert len(checks) == 2
        # An exit replacement below the collar's sell side is refused as well.
        t.amount = 0.01
        ex = ft_order(t, "rp-x", "sell", 0.01, 40500.0)
        assert reprice(st, t, ex, 39000.0, is_entry=False) == 40500.0
        assert checks[-1].side == "sell" and checks[-1].quantity == Decimal("0.01")

        # Halted: no replacement at all, not even inside the collar; no check is asked.
        st.mandate_halt("test: kill switch")
        checks.clear()
        caplog.clear()
        assert reprice(st, t, o2, 40100.0) == 40200.0
        assert reprice(st, t, ex, 40000.0, is_entry=False) == 40500.0
        assert checks == []
        assert "mandate denied entry replacement of order rp-2 at 40100.0 BTC/EUR: halted" in caplog.text

        # An unexpected error keeps the order (fail closed).
        st._mandate_halt.clear()
        st.mandate_client.preflight = lambda *a, **k: 1 / 0
        caplog.clear()
        assert reprice(st, t, o2, 40100.0) == 40200.0
        assert "unexpected error (fail closed)" in caplog.text
    finally:
        st.ft_bot_cleanup()


def test_exit_fills_report_the_realised_pnl_of_freqtrades_accounting_once(
    tmp_path: Path, bots: list[IStrategy], caplog: pytest.LogCaptureFixture
) -> None:
    """Freqtrade's real ``Trade`` accounting (``update_trade``, as Freqtrade calls it before
    ``order_filled``) on its (in-memory) database; the events the mixin queues are caught."""
    init_db("sqlite://")
    down = f"http://127.0.0.1:{free_port_closed()}"
    mandate = {"url": down, "api_key": "mk_0000000000000000_x", "agent_id": "bot-down",
               "cert_dir": str(tmp_path / "certs"), "timeout": 2}
    st = load(bots, strategy_config(tmp_path, mandate))
    st.ft_bot_start()  # the CA is down: no certificate, but fills are still reported
    events: list[dict[str, Any]] = []

    def catch(bot: Any) -> None:
        """What ``bot`` reports is kept in ``events`` (and sent nowhere)."""
        def report(event: dict[str, Any]) -> bool:
            events.append(event)
            return True
        bot.mandate_reporter.report = report

    catch(st)
    t = trade(0.03)  # a long position, no fees: the P&L is (exit - entry) x amount

    def metadata(order_id: str) -> list[dict[str, Any]]:
        return [e for e in events if e.get("client_order_id") == order_id]

    def closed(order: FtOrder, status: str = "closed", filled: float | None = None) -> None:
        """The exchange closed ``order``: Freqtrade's accounting, then its ``order_filled``."""
        order.status, order.ft_is_open = status, False
        order.filled = order.amount if filled is None else filled
        order.remaining, order.average = order.amount - order.filled, order.price
        order.order_filled_date = utcnow().replace(tzinfo=None)
        t.update_trade(order)
        st.order_filled(pair=PAIR, trade=t, order=order, current_time=utcnow())

    # The entry: a fill, no P&L.
    closed(ft_order(t, "in-1", "buy", 0.03, 40000.0))
    (entry_fill,) = metadata("in-1")
    assert entry_fill["order_state"] == "filled" and "realised_pnl" not in entry_fill

    # A partial exit at a loss: its part, negative, in the stake currency; the trade stays open.
    closed(ft_order(t, "out-1", "sell", 0.01, 39000.0))
    (exit_fill,) = metadata("out-1")
    assert t.is_open and t.realized_profit == pytest.approx(-10.0)
    assert (exit_fill["order_state"], exit_fill["fill_quantity"], exit_fill["realised_pnl"], exit_fill["currency"]) == (
        "filled", "0.01", "-10", "EUR")
    # Freqtrade calls order_filled again (its recovery paths do): no second fill, no second P&L.
    count = len(events)
    st.order_filled(pair=PAIR, trade=t, order=t.select_order_by_order_id("out-1"), current_time=utcnow())
    assert len(events) == count
    # The bot restarts: what the open trade realised before was reported by the run before.
    st = load(bots, strategy_config(tmp_path, mandate))
    st.ft_bot_start()
    catch(st)

    # An exit rests and fills in part (seen in Freqtrade's database: nothing realised yet), then
    # Freqtrade cancels it: the cancellation carries what its filled part realised.
    rest = ft_order(t, "out-2", "sell", 0.01, 42000.0)
    rest.filled, rest.remaining, rest.average = 0.004, 0.006, 42000.0
    Trade.commit()
    st.bot_loop_start(current_time=utcnow())
    assert [(m["order_state"], "realised_pnl" in m) for m in metadata("out-2")] == [
        ("new", False), ("partially_filled", False)]
    closed(rest, status="canceled", filled=0.004)
    assert t.realized_profit == pytest.approx(-2.0)
    cancelled = metadata("out-2")[-1]
    assert (cancelled["order_state"], cancelled["realised_pnl"], cancelled["currency"]) == ("cancelled", "8", "EUR")

    # The stop loss on the exchange fills the rest and closes the trade: its P&L is the rest of
    # the trade's (close_profit_abs), and the P&Ls reported add up to it.
    closed(ft_order(t, "sl-1", "sell", 0.016, 38000.0, ft_side="stoploss", order_type="stop_loss_limit"))
    (stop_fill,) = metadata("sl-1")
    assert not t.is_open and t.close_profit_abs == pytest.approx(-34.0)
    assert (stop_fill["order_state"], stop_fill["realised_pnl"], stop_fill["currency"]) == ("filled", "-32", "EUR")
    count = len(events)
    st.order_filled(pair=PAIR, trade=t, order=t.select_order_by_order_id("sl-1"), current_time=utcnow())
    st.bot_loop_start(current_time=utcnow())
    assert len(events) == count
    reported = [Decimal(e["realised_pnl"]) for e in events if "realised_pnl" in e]
    assert sum(reported) == Decimal("-34") and len(reported) == 3

    # A currency that is not the stake currency the P&L is in: fills, but no P&L.
    caplog.clear()
    usd = load(bots, strategy_config(tmp_path, {**mandate, "currency": "USD"}))
    usd.ft_bot_start()
    events.clear()
    catch(usd)
    st, t = usd, trade(0.01)
    closed(ft_order(t, "in-2", "buy", 0.01, 40000.0))
    closed(ft_order(t, "out-3", "sell", 0.01, 39000.0))
    assert not t.is_open and [m.get("realised_pnl") for m in (*metadata("in-2"), *metadata("out-3"))] == [None, None]
    assert "the stake currency is EUR but mandate.currency USD: realised P&L" in caplog.text


def test_fail_closed_without_the_ca_and_exit_policies(
    tmp_path: Path, bots: list[IStrategy], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    down = f"http://127.0.0.1:{free_port_closed()}"
    mandate = {"url": down, "api_key": "mk_0000000000000000_x", "agent_id": "bot-down",
               "cert_dir": str(tmp_path / "certs"), "timeout": 2}
    st = load(bots, strategy_config(tmp_path, mandate))
    st.ft_bot_start()  # does not raise: starts without a certificate and retries later
    assert not st.mandate_ready and not st.mandate_halted
    assert "no certificate for bot-down yet" in caplog.text
    st.bot_loop_start(current_time=utcnow())
    assert entry(st, 0.01) is False
    assert stake(st) == 0.0
    caplog.clear()
    assert exit_(st, trade()) is True  # default exit_policy check: an outage does not trap a position
    assert "CA unreachable; letting the exit of BTC/EUR through" in caplog.text
    strict = load(bots, strategy_config(tmp_path, {**mandate, "exit_policy": "strict"}))
    strict.ft_bot_start()
    assert exit_(strict, trade()) is False
    allow = load(bots, strategy_config(tmp_path, {**mandate, "exit_policy": "allow"}))
    allow.ft_bot_start()
    assert exit_(allow, trade()) is True

    # A configuration error is loud: Freqtrade refuses to start the strategy.
    broken = load(bots, strategy_config(tmp_path, {"url": down, "agent_id": "bot-down"}))
    with pytest.raises(StrategyError, match="missing api_key"):
        broken.ft_bot_start()
    usdt = load(bots, strategy_config(tmp_path, mandate, stake_currency="USDT"))
    with pytest.raises(StrategyError, match="three-letter"):
        usdt.ft_bot_start()


def test_overrides_in_the_users_strategy_cannot_skip_the_mandate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Careless(mandate_strategy.MandateSampleStrategy):
        """Overrides that never call super()."""

        def confirm_trade_entry(self, pair: str, *args: Any, **kwargs: Any) -> bool:
            return True

        def custom_stake_amount(self, pair: str, current_time: dt.datetime, current_rate: float,
                                proposed_stake: float, *args: Any, **kwargs: Any) -> float:
            return proposed_stake * 2

        def adjust_trade_position(self, trade: Trade, current_time: dt.datetime, *args: Any,
                                  **kwargs: Any) -> float | None:
            return 50.0 if trade.amount < 1 else -50.0

    class Polite(mandate_strategy.MandateSampleStrategy):
        """An override that calls super(): the mandate check runs once."""

        def confirm_trade_entry(self, *args: Any, **kwargs: Any) -> bool:
            return super().confirm_trade_entry(*args, **kwargs) and True

    caplog.set_level(logging.INFO)
    down = f"http://127.0.0.1:{free_port_closed()}"
    config = strategy_config(tmp_path, {"url": down, "api_key": "mk_0000000000000000_x",
                                        "agent_id": "bot-down", "cert_dir": str(tmp_path / "c"), "timeout": 2})
    for cls in (Careless, Polite):
        st = cls(config)
        try:
            st.ft_bot_start()
            caplog.clear()
            assert entry(st, 0.01) is False  # no certificate (the CA is down)
            assert caplog.text.count("mandate denied entry BTC/EUR") == 1
            assert stake(st) == 0.0
            # With a certificate and a CA that answers (stubbed here), the check runs exactly once.
            checks: list[Any] = []
            answer = [Decision(allowed=True)]

            def preflight(agent: str, order: Any, **kw: Any) -> Decision:
                checks.append(order)
                return answer[0]

            st.mandate_serial, st.mandate_not_after = "4a", utcnow() + dt.timedelta(days=1)
            st.mandate_client.preflight = preflight
            assert entry(st, 0.01) is True and len(checks) == 1
            assert (checks[0].market, checks[0].side, checks[0].size) == ("BTC_EUR", "buy", Decimal("400"))
            answer[0] = Decision(allowed=False, reasons=(Reason("market_not_allowed", "EUR_USD", "BTC_EUR"),))
            assert entry(st, 0.01) is False and len(checks) == 2
            assert entry(st, 0.01, side="short") is False and checks[2].side == "sell"
            st.mandate_serial = None
            del st.mandate_client.preflight  # the real one again: the CA is down
            adjust: dict[str, Any] = dict(current_time=utcnow(), current_rate=40000.0, current_profit=0.0, min_stake=None,
                          max_stake=1000.0, current_entry_rate=40000.0, current_exit_rate=40000.0,
                          current_entry_profit=0.0, current_exit_profit=0.0)
            if cls is Careless:
                assert st.adjust_trade_position(trade=trade(0.01), **adjust) is None  # increase: denied
                assert st.adjust_trade_position(trade=trade(2.0), **adjust) == -50.0  # decrease: exit policy
        finally:
            st.ft_bot_cleanup()


def test_market_names() -> None:
    assert mandate_strategy.market_of("BTC/EUR") == "BTC_EUR"
    assert mandate_strategy.market_of("BTC/USDT:USDT") == "BTC_USDT_USDT"
    assert mandate_strategy.market_of("BTC/USDT:USDT", {"BTC/USDT:USDT": "BTC_PERP"}) == "BTC_PERP"


def test_backtesting_is_left_alone_and_dry_run_reports_nothing(tmp_path: Path, bots: list[IStrategy]) -> None:
    down = f"http://127.0.0.1:{free_port_closed()}"
    mandate = {"url": down, "api_key": "mk_0000000000000000_x", "agent_id": "bot-down",
               "cert_dir": str(tmp_path / "certs"), "timeout": 2}
    # Backtesting replays history through the same callbacks: no CA calls, no events.
    bt = load(bots, strategy_config(tmp_path, mandate, runmode=RunMode.BACKTEST))
    bt.ft_bot_start()
    assert not bt.mandate_active and bt.mandate_client is None
    assert entry(bt, 0.01) is True and stake(bt) == 100.0
    # Dry run: checked like a live bot, but simulated fills are not reported as executions.
    dry = load(bots, strategy_config(tmp_path, mandate, runmode=RunMode.DRY_RUN, dry_run=True))
    dry.ft_bot_start()
    assert dry.mandate_active and dry.mandate_reporter is None
    assert entry(dry, 0.01) is False  # the CA is down: fail closed


README = EXAMPLE / "README.md"


def readme_block(heading: str, lang: str) -> str:
    text = README.read_text()
    section = text[text.index(heading):]
    start = section.index(f"```{lang}\n") + len(f"```{lang}\n")
    return section[start:section.index("```", start)]


def test_the_readmes_desk_setup_and_configuration(
    daemon: Daemon, agent_id: str, tmp_path: Path, bots: list[IStrategy], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    setup = readme_block("## Before the first start", "python")
    for old, new in {
        '"https://mandate.acme.example"': repr(daemon.base_url),
        '"freqtrade-btc"': repr(agent_id),
        '"https://bot.acme.example/mandate"': repr(f"http://127.0.0.1:{port}/mandate"),
    }.items():
        assert old in setup, old
        setup = setup.replace(old, new)
    # The suite's operator registers; another person of the organization approves.
    compliance_key = daemon.admin.create_api_key(
        "compliance", "freqtrade readme", person=daemon.compliance_person).api_key
    assert compliance_key
    monkeypatch.setenv("MANDATE_OPERATOR_KEY", daemon.operator_key)
    monkeypatch.setenv("MANDATE_COMPLIANCE_KEY", compliance_key)
    monkeypatch.setenv("MANDATE_ADMIN_KEY", (daemon.data_dir / "admin.key").read_text().strip())
    monkeypatch.chdir(tmp_path)
    exec(compile(setup, str(README), "exec"), {})
    assert stat.S_IMODE(os.stat("user_data/mandate/api.key").st_mode) == 0o600
    assert daemon.operator.get_agent(agent_id).status == "active"

    config = json.loads(readme_block("## Configuration", "json"))
    validate_config_schema(config)  # Freqtrade's own schema takes the "mandate" section
    assert config["mandate"]["agent_id"] == "freqtrade-btc"
    config["mandate"].update(url=daemon.base_url, agent_id=agent_id)
    config["mandate"]["webhook"]["port"] = port
    hooks = [h for h in daemon.operator.list_webhooks(limit=100).items if h.url == f"http://127.0.0.1:{port}/mandate"]
    try:
        st = load(bots, {**config, "strategy_path": str(EXAMPLE), "user_data_dir": tmp_path / "user_data",
                         "runmode": RunMode.DRY_RUN})
        st.ft_bot_start()
        assert st.mandate_ready and st.mandate_reporter is None  # dry run: nothing reported
        assert (tmp_path / "user_data" / "mandate" / f"{agent_id}.crt").is_file()
        assert entry(st, 0.01) is True  # 400 EUR
        assert entry(st, 0.2) is False  # 8000 EUR > 5000 EUR
        daemon.operator.revoke_agent(agent_id, "freqtrade readme test")
        wait_for("the README bot halted by its webhook", lambda: st.mandate_halted)
    finally:
        for h in hooks:
            daemon.operator.disable_webhook(h.id)
