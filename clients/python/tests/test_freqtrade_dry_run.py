# mypy: allow-subclassing-any, allow-untyped-calls
"""The kill switch cancels a real Freqtrade bot's resting orders.

Freqtrade's own bot (``FreqtradeBot``, freqtrade 2026.9) runs in dry-run mode, configured by
the example README's dry-run configuration, with its ``MandateSampleStrategy`` loaded by
Freqtrade's strategy resolver, its real sqlite persistence (a file in ``tmp_path``), its
dry-run order book, its own loop (``process()``) and its own cancellation path, against the
real mandate daemon. Its strategy signals an entry on three pairs; each entry passes the mixin
(risk band, pre-trade check) and rests as a limit order at the best bid, under the ask. Then
the operator pulls the kill switch: the signed webhook reaches the bot's listener, the mixin
halts, and on its next loop Freqtrade cancels every resting order itself
(``manage_open_orders`` → ``handle_cancel_order`` → ``handle_cancel_enter``), because the
mixin's ``ft_check_timed_out`` answers yes while halted; and places no new one, though the
entry signal is still there. The time from the kill switch to the last cancellation must stay
under the ``revocationTimeout`` of the agent's mandate (15 s by default).

What is patched, and only because no exchange is reachable from the test: the four calls the
ccxt Binance client would make over HTTP, on ccxt's classes (``monkeypatch``, undone after the
test), so that Freqtrade's ``Exchange`` and everything above it runs unmodified:

- ``fetch_markets`` (async client): three spot markets, BTC/EUR, ETH/EUR, SOL/EUR, in ccxt's
  unified form; ccxt's own ``load_markets``/``set_markets`` build them, Freqtrade copies them
  to its sync client and checks the pairs, stake currency, precision and limits against them;
- ``fetch_time`` (sync client): the local clock (Freqtrade's start-up clock-skew check);
- ``fetch_order_book`` (sync client): a fixed book around each pair's price; Freqtrade takes
  its entry price from it (``entry_pricing.use_order_book``) and its dry-run matching decides
  from it that a buy at the bid does not fill (the book never moves: the orders rest until
  they are cancelled);
- ``fetch_ohlcv`` (async client): flat 5-minute candles whose last closed candle jumps up 1 %,
  so the strategy's moving averages cross and it signals an entry.

Every other HTTP request ccxt would make fails (ccxt's ``fetch`` raises a ``NetworkError`` and
is recorded) and the test asserts there was none (ccxt's ``binance.fetch_currencies`` answers
nothing without API keys, so it needs no patch). The exchange's websocket is off
(``"enable_ws": false``, a configuration key). Nothing of the daemon or of the mandate client is
replaced: certification, the pre-trade checks, the risk band, the kill switch and the signed
webhook delivery to the mixin's listener are the real ones.
"""

from __future__ import annotations

import json
import logging
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest

# freqtrade and ccxt ship no type information.
from ccxt.async_support.base.exchange import Exchange as AsyncCcxt  # type: ignore[import-untyped]
from ccxt.base.errors import NetworkError  # type: ignore[import-untyped]
from ccxt.base.exchange import Exchange as SyncCcxt  # type: ignore[import-untyped]
from ccxt.binance import binance as SyncBinance  # type: ignore[import-untyped]
from ccxt.pro.binance import binance as AsyncBinance  # type: ignore[import-untyped]
from freqtrade.enums import RunMode, State  # type: ignore[import-untyped]
from freqtrade.freqtradebot import FreqtradeBot  # type: ignore[import-untyped]
from freqtrade.persistence import Order, Trade  # type: ignore[import-untyped]
from freqtrade.strategy import IStrategy  # type: ignore[import-untyped]

from conftest import Daemon, free_port, wait_for
from helpers import ORG, approved_agent, desk_mandate
from mandate_client import OrderState, Usage
from test_freqtrade import EXAMPLE, agent_key, readme_block

#: The pairs the bot trades and their prices in EUR (the middle of the book).
PRICES = {"BTC/EUR": 40000.0, "ETH/EUR": 2000.0, "SOL/EUR": 200.0}
#: Amount step (ccxt TICK_SIZE precision, as Binance's) per base currency.
AMOUNT_STEP = {"BTC": 0.00001, "ETH": 0.0001, "SOL": 0.001}
#: Half the spread of the fixed order book (whole ticks for the prices above).
HALF_SPREAD = 0.0005
TIMEFRAME_MS = 5 * 60 * 1000
#: Seconds between two rounds of Freqtrade's loop (``internals.process_throttle_secs``; its
#: default is 5). The orders are cancelled by the round after the halt (a round in progress when
#: the webhook lands may have checked some of them already), so this is part of the latency.
THROTTLE = 1

# Freqtrade 2026.9's candle converter under pandas 3.1, not this test's code.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame:DeprecationWarning")


def ccxt_market(pair: str) -> dict[str, Any]:
    """A spot market in ccxt's unified form, as ``binance.fetch_markets`` returns it."""
    base, quote = pair.split("/")
    return {
        "id": base + quote, "symbol": pair, "base": base, "quote": quote, "baseId": base, "quoteId": quote,
        "settle": None, "settleId": None, "type": "spot", "spot": True, "margin": False, "swap": False,
        "future": False, "option": False, "index": None, "active": True, "contract": False, "linear": None,
        "inverse": None, "subType": None, "contractSize": None, "expiry": None, "expiryDatetime": None,
        "strike": None, "optionType": None, "taker": 0.001, "maker": 0.001, "percentage": True,
        "tierBased": False, "feeSide": "get", "created": None,
        "precision": {"amount": AMOUNT_STEP[base], "price": 0.01, "base": None, "quote": None},
        "limits": {
            "amount": {"min": AMOUNT_STEP[base], "max": 9000.0},
            "price": {"min": 0.01, "max": 1000000.0},
            "cost": {"min": 5.0, "max": 9000000.0},
            "leverage": {"min": None, "max": None},
            "market": {"min": 0.0, "max": 1000.0},
        },
        "marginModes": {"cross": False, "isolated": False},
        "info": {},
    }


def order_book(pair: str) -> dict[str, Any]:
    """The fixed book: five levels each side around ``PRICES[pair]``."""
    mid = PRICES[pair]
    bids = [[round(mid * (1 - HALF_SPREAD) - i * 0.01 * mid / 100, 2), 1.0] for i in range(5)]
    asks = [[round(mid * (1 + HALF_SPREAD) + i * 0.01 * mid / 100, 2), 1.0] for i in range(5)]
    return {"symbol": pair, "bids": bids, "asks": asks, "timestamp": None, "datetime": None, "nonce": None}


def candles(pair: str, now_ms: int) -> list[list[float]]:
    """Sixty 5-minute candles up to the one forming now (Freqtrade drops that one as
    incomplete): flat at the pair's price, the last closed one 1 % higher, so that the sample
    strategy's fast average (10) crosses its slow one (30) on the newest closed candle."""
    price = PRICES[pair]
    forming = now_ms - now_ms % TIMEFRAME_MS
    out = []
    for i in range(59, -1, -1):
        close = price * 1.01 if i <= 1 else price
        out.append([float(forming - i * TIMEFRAME_MS), price, max(price, close), price, close, 10.0])
    return out


@pytest.fixture
def offline_binance(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The ccxt Binance client answers from the fixed data above (see the module docstring);
    yields the HTTP requests anything else tried to make (there must be none)."""
    attempted: list[str] = []
    markets = [ccxt_market(pair) for pair in PRICES]

    def sync_fetch(self: Any, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        attempted.append(f"{method} {url}")
        raise NetworkError(f"no exchange in this test: {method} {url}")

    async def async_fetch(self: Any, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        return sync_fetch(self, url, method, headers, body)

    async def fetch_markets(self: Any, params: Any = None) -> list[dict[str, Any]]:
        return [dict(m) for m in markets]

    def fetch_time(self: Any, params: Any = None) -> int:
        return int(time.time() * 1000)

    def fetch_order_book(self: Any, symbol: str, limit: int | None = None, params: Any = None) -> dict[str, Any]:
        return order_book(symbol)

    async def fetch_ohlcv(self: Any, symbol: str, timeframe: str = "1m", since: int | None = None,
                          limit: int | None = None, params: Any = None) -> list[list[float]]:
        assert timeframe == "5m", timeframe
        return candles(symbol, int(time.time() * 1000))

    monkeypatch.setattr(SyncCcxt, "fetch", sync_fetch)
    monkeypatch.setattr(AsyncCcxt, "fetch", async_fetch)
    monkeypatch.setattr(AsyncBinance, "fetch_markets", fetch_markets)
    monkeypatch.setattr(SyncBinance, "fetch_time", fetch_time)
    monkeypatch.setattr(SyncBinance, "fetch_order_book", fetch_order_book)
    monkeypatch.setattr(AsyncBinance, "fetch_ohlcv", fetch_ohlcv)
    yield attempted


def dry_run_config(tmp_path: Path, mandate: dict[str, Any]) -> dict[str, Any]:
    """The example README's dry-run configuration (``freqtrade trade -c config.json``), with
    this test's pairs, daemon, files and a sqlite file of its own."""
    config: dict[str, Any] = json.loads(readme_block("## Configuration", "json"))
    assert config["dry_run"] is True and config["entry_pricing"]["use_order_book"] is True
    assert config["max_open_trades"] >= len(PRICES)
    config["exchange"].update(pair_whitelist=list(PRICES), enable_ws=False)
    config["mandate"] = {**config["mandate"], **mandate}
    user_data = tmp_path / "user_data"
    (user_data / "strategies").mkdir(parents=True, exist_ok=True)
    config.update(
        strategy_path=str(EXAMPLE),
        user_data_dir=user_data,
        datadir=user_data / "data" / "binance",
        db_url=f"sqlite:///{tmp_path / 'tradesv3.dryrun.sqlite'}",
        runmode=RunMode.DRY_RUN,
        initial_state="running",
        internals={"process_throttle_secs": THROTTLE},
    )
    return config


def open_orders() -> dict[str, Any]:
    """The Order table's open orders, by order id."""
    return {o.order_id: o for o in Order.get_open_orders()}


def usage_after_reports(st: Any, daemon: Daemon, agent_id: str) -> Usage:
    """The daemon's usage of the agent once everything the mixin reported so far is stored."""
    assert st.mandate_reporter.flush(timeout=15)
    stats = st.mandate_reporter.stats()
    assert (stats.dropped, stats.pending) == (0, 0), stats
    return daemon.operator.usage(agent_id)


def test_the_kill_switch_cancels_every_resting_order_of_a_dry_run_bot(
    daemon: Daemon, agent_id: str, tmp_path: Path, offline_binance: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    markets = [pair.replace("/", "_") for pair in PRICES]  # the mixin's default market names
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate(
        allowedCounterparties=["binance"], allowedMarkets=markets))
    # The revocation timeout the approved mandate (and the bot's certificate) carries: the time
    # the daemon gives a bot to stop after a revocation. It bounds the measurement below.
    revocation_timeout = float(daemon.operator.get_agent(agent_id).mandate["revocationTimeout"])
    # The desk registers the bot's webhook and hands over its secret in a 0600 file.
    port = free_port()
    hook = daemon.operator.create_webhook(
        f"http://127.0.0.1:{port}/mandate", ["certificate.revoked", "agent.suspended"], operator=ORG)
    assert hook.secret
    secret_file = tmp_path / "webhook.secret"
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(hook.secret + "\n")
    config = dry_run_config(tmp_path, {
        "url": daemon.base_url, "api_key_file": str(agent_key(daemon, agent_id, tmp_path)), "agent_id": agent_id,
        "cert_dir": str(tmp_path / "certs"),
        "check_interval": 3600,  # the halt below must come from the webhook, not the status check
        "webhook": {"host": "127.0.0.1", "port": port, "path": "/mandate", "secret_file": str(secret_file)},
        # Simulated orders are reported too (README: "report_events"), so that the daemon's
        # book can be checked against Freqtrade's.
        "report_events": True,
    })
    bot: Any = None
    try:
        bot = FreqtradeBot(config)  # the exchange, the resolver, the database, bot_start
        bot.startup()  # what Freqtrade's worker does next
        st = bot.strategy
        assert type(st).__name__ == "MandateSampleStrategy" and bot.state is State.RUNNING
        assert bot.config["dry_run"] and bot.exchange.name == "Binance"
        assert st.mandate_ready and not st.mandate_halted and st.mandate_reporter is not None
        assert st.mandate_listener is not None and st.mandate_listener.url == hook.url

        # Freqtrade's loop, at its own pace, until the strategy has entered every pair. Each
        # entry was sized by the mixin (risk band) and allowed by the daemon's pre-trade check,
        # and rests at the best bid: below the ask, so the dry-run book does not fill it.
        def entered() -> bool:
            bot.process()
            return len(open_orders()) == len(PRICES)

        wait_for("a resting entry order on every pair", entered, deadline=30, interval=THROTTLE)
        resting = open_orders()
        for order in resting.values():
            assert (order.ft_order_side, order.order_type, order.status) == ("buy", "limit", "open"), order
            assert order.ft_is_open and order.safe_filled == 0
            assert order.price == order_book(order.ft_pair)["bids"][0][0] < order_book(order.ft_pair)["asks"][0][0]
        assert sorted(o.ft_pair for o in resting.values()) == sorted(PRICES)
        assert sorted(t.pair for t in Trade.get_open_trades() if t.amount == 0) == sorted(PRICES)
        assert caplog.text.count("mandate allowed entry") == len(PRICES)
        # Another round changes nothing: the orders keep resting, no new ones.
        bot.process()
        assert open_orders().keys() == resting.keys()
        assert {bot.exchange.fetch_order(i, o.ft_pair)["status"] for i, o in resting.items()} == {"open"}
        # The daemon's book agrees: three open orders, each reported new with its order id and
        # the decision of the pre-trade check that allowed it.
        assert usage_after_reports(st, daemon, agent_id).open_orders == len(PRICES)
        decisions = {order_id: st.mandate_decision_id(order_id) for order_id in resting}
        assert len(set(decisions.values()) - {None}) == len(PRICES), decisions
        for order_id, decision_id in decisions.items():
            record = daemon.operator.get_decision(decision_id)
            assert (record.allowed, record.states) == (True, [OrderState.NEW]), record
            new = record.events[0]
            assert (new.client_order_id, new.market, new.side) == (
                order_id, resting[order_id].ft_pair.replace("/", "_"), "buy")
            # Checked: the amount Freqtrade confirmed; placed: that amount to the market's precision.
            assert new.quantity == Decimal(str(resting[order_id].amount)) <= Decimal(record.order["quantity"])

        # The kill switch.
        caplog.clear()
        killed_at = time.time()
        ks = daemon.operator.revoke_agent(agent_id, "freqtrade dry-run test: kill switch")
        assert ks.certificates_revoked == [st.mandate_serial]
        rounds = [0]

        def cancelled() -> bool:
            bot.process()
            rounds[0] += 1
            return not open_orders()

        wait_for("every resting order cancelled", cancelled, deadline=revocation_timeout, interval=THROTTLE)
        all_cancelled_at = time.time()
        halted_at = min(r.created for r in caplog.records if r.getMessage().startswith("MANDATE HALT for agent"))

        assert st.mandate_halted and (st.mandate_halt_reason or "").startswith("webhook"), st.mandate_halt_reason
        # Cancelled on the exchange (the dry-run book answers as an exchange would), through the
        # mixin's answer to Freqtrade's timeout check, not an ordinary timeout (10 minutes).
        for order_id, order in resting.items():
            on_exchange = bot.exchange.fetch_order(order_id, order.ft_pair)
            assert (on_exchange["status"], on_exchange["filled"]) == ("canceled", 0.0), on_exchange
            assert f"mandate: cancelling open buy order of {order.ft_pair}: agent halted (webhook" in caplog.text
        # Freqtrade deletes a trade whose only entry was cancelled unfilled, with its order rows:
        # none is left open, and none is left at all (so no row can say canceled / not open).
        assert caplog.text.count("Buy order cancelled due to timeout for Trade(") == len(PRICES)
        assert caplog.text.count("Buy order fully cancelled. Removing Trade(") == len(PRICES)
        assert [i for i in resting if Order.order_by_id(i) is not None] == []
        assert Trade.get_open_trades() == [] and not Order.get_open_orders()
        # Still halted: Freqtrade acts on the entry signal again, the mixin makes the stake 0.
        caplog.clear()
        bot.process()
        assert not Order.get_open_orders() and Trade.get_open_trades() == []
        for pair in PRICES:
            assert f"mandate: stake for {pair} is 0 (halted)" in caplog.text
        assert offline_binance == []
        # The cancellations reached the daemon (the loop after Freqtrade recorded them): no open
        # order is left in its book, each decision shows its order placed and cancelled, and
        # the halt's cancellations are no failed executions.
        usage = usage_after_reports(st, daemon, agent_id)
        assert (usage.open_orders, usage.consecutive_failures, usage.net_positions) == (0, 0, {})
        for decision_id in decisions.values():
            assert daemon.operator.get_decision(decision_id).states == [OrderState.NEW, OrderState.CANCELLED]

        halt_s, cancel_s = halted_at - killed_at, all_cancelled_at - killed_at
        # The measurement, for the record (pytest -rP shows it).
        print(f"kill switch -> halted by the webhook: {halt_s:.3f} s; -> all {len(resting)} resting orders "
              f"cancelled: {cancel_s:.3f} s ({rounds[0]} loop round(s) at a {THROTTLE} s throttle; "
              f"bound: the mandate's revocationTimeout, {revocation_timeout:.0f} s)")
        assert 0 <= halt_s <= cancel_s < revocation_timeout
    finally:
        if bot is not None:
            bot.cleanup()  # Freqtrade's shutdown: the strategy's cleanup stops the listener
        daemon.operator.disable_webhook(hook.id)


def test_a_halted_bot_leaves_its_stop_loss_on_the_exchange_alone(
    daemon: Daemon, agent_id: str, tmp_path: Path, offline_binance: list[str], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A position with its stop loss on the exchange, the bot halted, and the take-profit (ROI)
    reached: Freqtrade cancels the stop loss before it asks ``confirm_trade_exit``, the halted
    mixin refuses the exit, and the next loop places the stop loss again. Reproduced with the
    mixin's ``should_exit`` taken away, then gone with it: the stop loss stays as it is."""
    caplog.set_level(logging.INFO)
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate(
        allowedCounterparties=["binance"], allowedMarkets=["BTC_EUR"], maxOpenOrders=5))
    config = dry_run_config(tmp_path, {
        "url": daemon.base_url, "api_key_file": str(agent_key(daemon, agent_id, tmp_path)), "agent_id": agent_id,
        "cert_dir": str(tmp_path / "certs"),
        "check_interval": 0,  # no webhook here: the status check of every loop halts the bot
        "webhook": None,
        "report_events": True,
    })
    config["exchange"]["pair_whitelist"] = ["BTC/EUR"]
    config["entry_pricing"]["price_side"] = "other"  # a buy at the ask: the dry-run book fills it at once
    bot: Any = None
    try:
        bot = FreqtradeBot(config)
        bot.startup()
        st = bot.strategy
        assert st.order_types["stoploss_on_exchange"] is True  # the sample strategy's

        def protected() -> Any:
            bot.process()
            trades = Trade.get_open_trades()
            return trades and trades[0].amount > 0 and trades[0].has_open_sl_orders and trades[0]

        trade = wait_for("a filled entry with its stop loss on the exchange", protected, deadline=30,
                         interval=THROTTLE)
        entry = next(o for o in trade.orders if o.ft_order_side == "buy")
        (stop,) = trade.open_sl_orders
        # The entry filled as it was placed: reported new and filled, under its decision; the
        # stop loss was never checked and is no resting order of the daemon's book.
        usage = usage_after_reports(st, daemon, agent_id)
        record = daemon.operator.get_decision(st.mandate_decision_id(entry.order_id))
        assert record.states == [OrderState.NEW, OrderState.FILLED], record
        assert (usage.open_orders, usage.max_open_orders) == (0, 5)
        assert usage.position("BTC_EUR") == record.filled_quantity == Decimal(str(entry.filled)) > 0

        daemon.operator.revoke_agent(agent_id, "freqtrade dry-run test: halt with a position")
        wait_for("the bot halted by its status check", lambda: (bot.process(), st.mandate_halted)[1],
                 deadline=30, interval=THROTTLE)
        assert st.mandate_halt_reason.endswith("(status check)"), st.mandate_halt_reason
        monkeypatch.setitem(PRICES, "BTC/EUR", PRICES["BTC/EUR"] * 1.10)  # the 5 % take-profit is reached

        def stops() -> list[Any]:
            return [o for o in Trade.get_open_trades()[0].orders if o.ft_order_side == "stoploss"]

        # Without the mixin's should_exit: the churn, one stop loss placed and cancelled a loop.
        caplog.clear()
        known = {o.order_id for o in stops()}
        with monkeypatch.context() as m:
            m.setattr(type(st), "should_exit", IStrategy.should_exit)
            for _ in range(3):
                bot.process()
        placed = [o for o in stops() if o.order_id not in known]
        cancelled = [o for o in stops() if o.status == "canceled"]
        assert len(placed) >= 2 and len(cancelled) >= 3, [(o.order_id, o.status) for o in stops()]
        assert caplog.text.count("User denied exit for BTC/EUR") == 3
        assert caplog.text.count("mandate denied exit BTC/EUR: halted") == 3

        # With it: no exit is tried while halted, the stop loss rests, nothing is sent.
        caplog.clear()
        bot.process()  # the stop loss cancelled last is placed again, once
        (stop,) = Trade.get_open_trades()[0].open_sl_orders
        before = {o.order_id: o.status for o in stops()}
        for _ in range(3):
            bot.process()
        assert {o.order_id: o.status for o in stops()} == before
        assert [o.order_id for o in Trade.get_open_trades()[0].open_sl_orders] == [stop.order_id]
        assert bot.exchange.fetch_stoploss_order(stop.order_id, "BTC/EUR")["status"] == "open"
        assert "Cancelling stoploss on exchange" not in caplog.text and "User denied exit" not in caplog.text
        assert caplog.text.count("mandate: halted") == 1 and "not exiting BTC/EUR (roi)" in caplog.text
        # The position is as it was, in Freqtrade and in the daemon's book.
        assert Trade.get_open_trades()[0].amount == entry.filled
        assert usage_after_reports(st, daemon, agent_id).position("BTC_EUR") == Decimal(str(entry.filled))
        assert offline_binance == []
    finally:
        if bot is not None:
            bot.cleanup()


def test_a_dry_run_bots_stop_loss_reports_the_loss_it_realised(
    daemon: Daemon, agent_id: str, tmp_path: Path, offline_binance: list[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A position whose stop loss on the exchange fills when the price falls 10 %: the exit's
    fill carries the loss Freqtrade booked (``close_profit_abs``, fees included), the entry's
    none, and the daemon counts it against the mandate's ``maxDailyLoss``."""
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate(
        allowedCounterparties=["binance"], allowedMarkets=["BTC_EUR"], maxOpenOrders=5,
        maxDailyLoss={"amount": "1000", "currency": "EUR"}))
    config = dry_run_config(tmp_path, {
        "url": daemon.base_url, "api_key_file": str(agent_key(daemon, agent_id, tmp_path)), "agent_id": agent_id,
        "cert_dir": str(tmp_path / "certs"), "check_interval": 3600, "webhook": None, "report_events": True,
    })
    config["exchange"]["pair_whitelist"] = ["BTC/EUR"]
    config["entry_pricing"]["price_side"] = "other"  # a buy at the ask: the dry-run book fills it at once
    bot: Any = None
    try:
        bot = FreqtradeBot(config)
        bot.startup()
        st = bot.strategy
        events: list[dict[str, Any]] = []
        report = st.mandate_reporter.report

        def spy(event: dict[str, Any]) -> bool:
            events.append(event)
            return bool(report(event))

        monkeypatch.setattr(st.mandate_reporter, "report", spy)

        def protected() -> Any:
            bot.process()
            trades = Trade.get_open_trades()
            return trades and trades[0].amount > 0 and trades[0].has_open_sl_orders and trades[0]

        trade = wait_for("a filled entry with its stop loss on the exchange", protected, deadline=30,
                         interval=THROTTLE)
        trade_id = trade.id
        monkeypatch.setitem(PRICES, "BTC/EUR", PRICES["BTC/EUR"] * 0.90)  # under the 5 % stop loss

        def closed() -> Any:
            bot.process()
            t = Trade.session.get(Trade, trade_id)
            return t is not None and not t.is_open and t

        trade = wait_for("the trade closed by its stop loss", closed, deadline=30, interval=THROTTLE)
        loss = trade.close_profit_abs
        assert loss < 0, loss
        by_order = {o.order_id: o for o in trade.orders}
        pnl: dict[str, list[Any]] = {}
        for e in events:
            m = e
            if m.get("client_order_id") in by_order and m.get("order_state") in ("filled", "partially_filled"):
                pnl.setdefault(by_order[m["client_order_id"]].ft_order_side, []).append(m.get("realised_pnl"))
        assert pnl.pop("buy") == [None]  # the entry realised nothing
        (exit_pnl,) = [Decimal(p) for fills in pnl.values() for p in fills if p is not None]
        assert exit_pnl == Decimal(repr(loss)).quantize(Decimal("0.00000001")), (exit_pnl, loss, pnl)
        usage = usage_after_reports(st, daemon, agent_id)
        assert (usage.daily_loss, usage.max_daily_loss) == (-exit_pnl, "1000 EUR")
        assert usage.net_positions == {} and offline_binance == []
    finally:
        if bot is not None:
            bot.cleanup()
