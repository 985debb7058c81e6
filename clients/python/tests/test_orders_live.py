"""Order events against the real daemon: a bot reports an order's lifecycle through the client
(``Order.to_event`` with ``order_state``, the ``EventReporter``), and the daemon's open orders,
net positions and order-to-trade flow (``usage``), its pre-trade refusals
(``max_open_orders_reached``, ``exceeds_net_position``, ``short_selling_not_allowed``,
``order_to_trade_ratio_exceeded``) and the stored decisions (``get_decision``) follow them."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import Daemon
from helpers import approved_agent, desk_mandate
from mandate_client import (
    DECISION_ID,
    DecisionRecord,
    EventReporter,
    MandateClient,
    MandateError,
    Order,
    OrderState,
    Usage,
    generate_key_and_csr,
)

BUY = Order(market="BTC_EUR", counterparty="exchange_a", region="eu-west-1", side="buy", quantity="0.5",
            price="40000", order_type="limit", size="20000", currency="EUR")


def bot_of(daemon: Daemon, agent_id: str, mandate: dict[str, object]) -> MandateClient:
    """An approved agent holding a certificate (the pre-trade check needs one), and its key."""
    approved_agent(daemon.operator, daemon.compliance, agent_id, mandate)
    bot = daemon.agent_client(agent_id)
    bot.certify(agent_id, generate_key_and_csr(agent_id).csr_pem)
    return bot


def test_an_order_lifecycle_reported_through_the_client(daemon: Daemon, agent_id: str) -> None:
    bot = bot_of(daemon, agent_id, desk_mandate(
        maxOpenOrders=2, maxNetPosition={"quantity": "1"}, shortSellingAllowed=False,
        maxOrderToTradeRatio={"maxRatio": 10, "windowSecs": 600},
        maxDailyVolume={"amount": "1000000", "currency": "EUR"}))
    usage = bot.usage(agent_id)
    assert (usage.open_orders, usage.max_open_orders, usage.net_positions) == (0, 2, {})
    assert usage.order_to_trade is not None and (usage.order_to_trade.orders, usage.order_to_trade.trades) == (0, 0)

    first = bot.preflight(agent_id, BUY)
    assert first.allowed and first.decision_id is not None and DECISION_ID.fullmatch(first.decision_id)

    with EventReporter(bot, agent_id=agent_id, close_at_exit=False) as reporter:
        def report(*events: dict[str, object]) -> None:
            for e in events:
                assert reporter.report(e)
            assert reporter.flush(timeout=15)
            stats = reporter.stats()
            assert (stats.dropped, stats.pending) == (0, 0), stats

        # The order rests; a part fills at 40000 (a fill carries the value that was traded).
        fill_part = dataclasses.replace(BUY, size="8000")
        report(BUY.to_event(order_state=OrderState.NEW, client_order_id="o-1", decision_id=first.decision_id),
               fill_part.to_event(order_state="partially_filled", client_order_id="o-1", fill_quantity="0.2",
                                  fill_price="40000", decision_id=first.decision_id))
        usage = bot.usage(agent_id)
        assert (usage.open_orders, usage.position("BTC_EUR"), usage.daily_volume) == (1, Decimal("0.2"), Decimal("8000"))

        # A second order rests: with two open, a third is refused, a cancellation is not.
        second = bot.preflight(agent_id, dataclasses.replace(BUY, quantity="0.1", size="4000"))
        assert second.allowed and second.decision_id not in (None, first.decision_id)
        report(dataclasses.replace(BUY, quantity="0.1").to_event(
            order_state="new", client_order_id="o-2", decision_id=second.decision_id))
        third = bot.preflight(agent_id, dataclasses.replace(BUY, quantity="0.1", size="4000"))
        assert third.codes == ["max_open_orders_reached"] and third.decision_id is not None
        assert third.reasons[0].limit == "2 open orders"
        assert bot.preflight(agent_id, dataclasses.replace(BUY, intent="cancel", client_order_id="o-2")).allowed
        report(Order(market="BTC_EUR", counterparty="exchange_a", region="eu-west-1", side="buy").to_event(
            order_state="cancelled", client_order_id="o-2", decision_id=second.decision_id))

        # The rest of the first order fills: the position is 0.5, no order rests.
        report(dataclasses.replace(BUY, size="12000").to_event(
            order_state="filled", client_order_id="o-1", fill_quantity="0.3", fill_price="40000",
            decision_id=first.decision_id))

    usage = bot.usage(agent_id)
    assert (usage.open_orders, usage.net_positions) == (0, {"BTC_EUR": Decimal("0.5")})
    # Only the fills counted towards the day's volume; new and cancelled are messages.
    assert usage.daily_volume == Decimal("20000")
    assert usage.order_to_trade is not None
    assert (usage.order_to_trade.orders, usage.order_to_trade.trades, usage.order_to_trade.window_secs,
            usage.order_to_trade.max_ratio) == (3, 2, 600, 10)

    # The position controls see the fills: more than 1 net long, or any net short, is refused.
    over = bot.preflight(agent_id, dataclasses.replace(BUY, quantity="0.6", size="24000"))
    assert over.codes == ["exceeds_net_position"], over
    short = bot.preflight(agent_id, dataclasses.replace(BUY, side="sell", quantity="0.6", size="24000"))
    assert short.codes == ["short_selling_not_allowed"], short
    assert short.reasons[0].requested == "-0.1 BTC_EUR"
    flat = bot.preflight(agent_id, dataclasses.replace(BUY, side="sell", quantity="0.5", size="20000"))
    assert flat.allowed, flat  # back to flat: never refused

    # The decision, as stored, with the order's events (they name it).
    record = bot.get_decision(first.decision_id)
    assert (record.decision_id, record.agent_id, record.via, record.allowed, record.hypothetical) == (
        first.decision_id, agent_id, "preflight", True, False)
    assert record.order["quantity"] == "0.5" and record.order["market"] == "BTC_EUR"
    assert record.reasons == () and record.decided_by
    assert record.states == [OrderState.NEW, OrderState.PARTIALLY_FILLED, OrderState.FILLED]
    assert {e.client_order_id for e in record.events} == {"o-1"}
    assert {e.decision_id for e in record.events} == {first.decision_id}
    assert record.filled_quantity == Decimal("0.5")
    assert [e.fill_price for e in record.fills] == [Decimal("40000"), Decimal("40000")]
    assert daemon.operator.get_decision(second.decision_id).states == [OrderState.NEW, OrderState.CANCELLED]
    refused = daemon.operator.get_decision(third.decision_id)  # a refusal is a decision too
    assert not refused.allowed and [(r.code, r.enforcement) for r in refused.reasons] == [
        ("max_open_orders_reached", "hard")]
    assert refused.events == ()

    # Unknown and malformed ids are 404; an order may not name a decision of its own.
    for unknown in ("dec_" + "0" * 32, "nope"):
        with pytest.raises(MandateError) as e:
            bot.get_decision(unknown)
        assert e.value.status == 404
    with pytest.raises(MandateError) as e:
        bot.preflight(agent_id, {**BUY.to_json(), "decision_id": first.decision_id}, strict=True)
    assert (e.value.status, e.value.code) == (422, "invalid-order")


def test_the_order_to_trade_ratio_follows_order_events(daemon: Daemon, agent_id: str) -> None:
    bot = bot_of(daemon, agent_id, desk_mandate(maxOrderToTradeRatio={"maxRatio": 2, "windowSecs": 600}))
    for i in range(2):
        d = bot.preflight(agent_id, BUY)
        assert d.allowed, d
        bot.report_events(BUY.to_event(agent_id, order_state="new", client_order_id=f"r-{i}",
                                       decision_id=d.decision_id))
    # Two messages, no trade (counted as one): a third message would make 3 per trade.
    refused = bot.preflight(agent_id, BUY)
    assert refused.codes == ["order_to_trade_ratio_exceeded"], refused
    flow = bot.usage(agent_id).order_to_trade
    assert flow is not None and (flow.orders, flow.trades, flow.ratio) == (2, 0, 2.0)
    # Each fill is a trade: with two, a third message makes 1.5 per trade.
    bot.report_events([
        BUY.to_event(agent_id, order_state="partially_filled", client_order_id="r-0", fill_quantity="0.2",
                     fill_price="40000"),
        BUY.to_event(agent_id, order_state="filled", client_order_id="r-0", fill_quantity="0.3",
                     fill_price="40000")])
    flow = bot.usage(agent_id).order_to_trade
    assert flow is not None and (flow.orders, flow.trades, flow.ratio) == (2, 2, 1.0)
    assert bot.preflight(agent_id, BUY).allowed


def test_a_signed_order_names_its_decision(daemon: Daemon, agent_id: str) -> None:
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate())
    bot = daemon.agent_client(agent_id)
    bot.certify(agent_id, hsm_key_type="ec-p256")
    order = Order(market="BTC_EUR", counterparty="exchange_a", region="eu-west-1", size="1000", currency="EUR",
                  side="buy", quantity="0.025", order_type="market")
    signed = bot.sign(agent_id, order)
    assert signed.decision_id is not None and DECISION_ID.fullmatch(signed.decision_id)
    # The signed bytes end with the decision: a relying party can cite it.
    assert list(signed.order)[-1] == "decision_id" and signed.order["decision_id"] == signed.decision_id
    assert bot.verify_signed_order(signed).valid
    bot.report_events(order.to_event(agent_id, order_state="new", client_order_id="s-1",
                                     decision_id=signed.decision_id))
    bot.report_events(order.to_event(agent_id, order_state="filled", client_order_id="s-1",
                                     fill_quantity="0.025", fill_price="40000", decision_id=signed.decision_id))
    record = daemon.operator.get_decision(signed.decision_id)
    assert (record.via, record.allowed, record.order["decision_id"]) == ("sign", True, signed.decision_id)
    assert record.order["timestamp"] == signed.order["timestamp"]
    assert record.states == [OrderState.NEW, OrderState.FILLED]
    assert bot.usage(agent_id).position("BTC_EUR") == Decimal("0.025")


def test_the_readme_order_events_block(
    daemon: Daemon, agent_id: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Orders, positions and decisions"):]
    start = section.index("```python\n") + len("```python\n")
    code = section[start:section.index("```", start)]
    for old, new in {'"trading-bot-v2"': repr(agent_id), '"https://mandate.acme.example"': repr(daemon.base_url)}.items():
        assert old in code, old
        code = code.replace(old, new)
    approved_agent(daemon.operator, daemon.compliance, agent_id, desk_mandate(maxOpenOrders=5))
    key = daemon.admin.create_api_key("agent", f"readme {agent_id}", agent_id).api_key
    assert key
    daemon.client(key).certify(agent_id, generate_key_and_csr(agent_id).csr_pem)
    monkeypatch.setenv("MANDATE_API_KEY", key)
    placed: list[Order] = []

    class Exchange:
        def place(self, order: Order) -> str:
            placed.append(order)
            return f"venue-{len(placed)}"

    ns: dict[str, object] = {"__name__": "readme", "exchange": Exchange()}
    exec(compile(code, "README.md", "exec"), ns)
    assert [o.quantity for o in placed] == ["0.5"]
    usage, record = ns["usage"], ns["record"]
    assert isinstance(usage, Usage) and isinstance(record, DecisionRecord)
    assert (usage.open_orders, usage.net_positions, usage.daily_volume) == (0, {"BTC_EUR": Decimal("0.2")},
                                                                            Decimal("7998"))
    assert record.states == [OrderState.NEW, OrderState.PARTIALLY_FILLED, OrderState.CANCELLED]
    assert {e.client_order_id for e in record.events} == {"venue-1"}
    assert capsys.readouterr().out.strip() == (
        "preflight [<OrderState.NEW: 'new'>, <OrderState.PARTIALLY_FILLED: 'partially_filled'>, "
        "<OrderState.CANCELLED: 'cancelled'>] 0.2")
