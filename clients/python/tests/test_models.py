"""The typed answers and order events of decision ids, order events, usage and stored decisions,
without a daemon: the JSON of docs/API.md's examples parsed into the models and back."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import pytest

from mandate_client import (
    Decision,
    DecisionRecord,
    MandateProtocolError,
    Order,
    OrderState,
    OrderToTrade,
    Reason,
    SignedOrder,
    Usage,
)

DEC = "dec_3f9a1c0b7d2e4f6a8b0c1d2e3f4a5b6c"
ORDER = Order(market="BTC_EUR", counterparty="exchange_a", region="eu-west-1", size="4000", currency="EUR",
              side="buy", quantity="0.1", price="40000", order_type="limit", client_order_id="d1", intent="new")


def test_an_event_without_order_state_is_what_it_always_was() -> None:
    # Executions reported the older way: the order's id and intent left out, success stated.
    # Flat, named as the order is.
    assert ORDER.to_event("bot") == {
        "agent_id": "bot", "action": "trade_execution",
        "market": "BTC_EUR", "counterparty": "exchange_a", "region": "eu-west-1", "size": "4000",
        "currency": "EUR", "side": "buy", "quantity": "0.1", "price": "40000", "order_type": "limit",
        "success": True}
    assert ORDER.to_event(success=False, realised_pnl=Decimal("-12.5"))["success"] is False
    assert ORDER.to_event(realised_pnl=Decimal("-12.5"))["realised_pnl"] == "-12.5"
    # The decision may be named on an execution too.
    assert ORDER.to_event(decision_id=DEC)["decision_id"] == DEC


def test_order_events_carry_state_client_id_fills_and_decision() -> None:
    new = ORDER.to_event(order_state=OrderState.NEW, decision_id=DEC)
    md = new
    assert (md["order_state"], md["client_order_id"], md["decision_id"], md["quantity"]) == ("new", "d1", DEC, "0.1")
    assert "success" not in md and "intent" not in md  # the daemon's default: true (false for rejected)
    fill = Order(market="BTC_EUR", side="buy", size=Decimal("800.00"), currency="EUR").to_event(
        order_state="partially_filled", client_order_id="d1", fill_quantity=Decimal("0.02"),
        fill_price=Decimal("40000"), decision_id=DEC)
    assert (fill["order_state"], fill["client_order_id"], fill["fill_quantity"], fill["fill_price"], fill["size"]) == (
        "partially_filled", "d1", "0.02", "40000", "800.00")
    cancelled = Order(market="BTC_EUR").to_event(order_state="cancelled", client_order_id="d1", success=False)
    assert cancelled == {"action": "trade_execution", "market": "BTC_EUR", "order_state": "cancelled",
                         "client_order_id": "d1", "success": False}
    rejected = Order().to_event(order_state=OrderState.REJECTED, client_order_id="x")
    assert rejected == {"action": "trade_execution", "order_state": "rejected", "client_order_id": "x"}
    assert json.loads(json.dumps(new)) == new  # plain JSON


@pytest.mark.parametrize("kwargs, message", [
    ({"order_state": "new"}, "client_order_id"),
    ({"order_state": "parked", "client_order_id": "a"}, "order_state must be one of"),
    ({"fill_quantity": "1"}, "give order_state"),
    ({"order_state": "partially_filled", "client_order_id": "a"}, "fill_quantity above 0"),
    ({"order_state": "partially_filled", "client_order_id": "a", "fill_quantity": "0"}, "fill_quantity above 0"),
    ({"order_state": "new", "client_order_id": "a", "decision_id": "dec_1"}, "32 lowercase hex"),
])
def test_order_events_the_daemon_would_refuse_fail_here(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Order(market="BTC_EUR", side="buy", quantity="1").to_event(**kwargs)  # type: ignore[arg-type]


def test_order_event_shape_rules() -> None:
    with pytest.raises(ValueError, match="market and side"):
        Order(quantity="1").to_event(order_state="new", client_order_id="a")
    with pytest.raises(ValueError, match="quantity above 0"):
        Order(market="BTC_EUR", side="buy", quantity="0").to_event(order_state="new", client_order_id="a")
    with pytest.raises(ValueError, match="trade_execution"):
        Order(action="data_access").to_event(order_state="cancelled", client_order_id="a")
    # An amendment names its open quantity; a filled event may leave the fill to the book.
    assert Order(quantity="2").to_event(order_state="amended", client_order_id="a")["quantity"] == "2"
    assert "fill_quantity" not in Order(market="BTC_EUR", side="sell").to_event(
        order_state="filled", client_order_id="a")


def test_order_states() -> None:
    assert [s.value for s in OrderState] == ["new", "amended", "cancelled", "filled", "partially_filled", "rejected"]
    assert {s for s in OrderState if s.is_fill} == {OrderState.FILLED, OrderState.PARTIALLY_FILLED}
    assert {s for s in OrderState if s.closes} == {OrderState.CANCELLED, OrderState.REJECTED, OrderState.FILLED}
    assert OrderState("new") is OrderState.NEW and isinstance(OrderState.NEW, str)  # compares as its text


def test_decisions_name_themselves() -> None:
    d = Decision.from_json({"decision_id": DEC, "allowed": False, "reasons": [
        {"code": "max_open_orders_reached", "limit": "20 open orders", "requested": "21 open orders"}]})
    assert (d.decision_id, d.codes, d.fail_closed) == (DEC, ["max_open_orders_reached"], False)
    assert Decision.from_json({"decision_id": DEC, "allowed": True}).decision_id == DEC
    assert Decision.from_json({"allowed": True}).decision_id is None  # a daemon older than decision ids
    assert Decision.deny("mandate_unreachable", "down").decision_id is None  # the client's own denial


def test_a_signed_order_names_its_decision_and_ends_with_it() -> None:
    signed = {"action": "trade_execution", "market": "BTC_EUR", "timestamp": 1795428900, "decision_id": DEC}
    payload = base64.b64encode(json.dumps(signed, separators=(",", ":")).encode()).decode()
    s = SignedOrder.from_json({"decision_id": DEC, "allowed": True, "payload": payload, "signature": "MEUC",
                               "algorithm": "ecdsa-with-SHA256", "certificate_serial": "5a",
                               "certificate_pem": "-----BEGIN", "chain_pem": "-----BEGIN"})
    assert s.decision_id == DEC and s.order == signed and list(s.order)[-1] == "decision_id"
    older = SignedOrder.from_json({**s.raw, "decision_id": None})
    assert older.decision_id is None


USAGE: dict[str, Any] = {"agent_id": "trading-bot-v2", "trading_day_start": "2026-12-07T00:00:00Z",
         "daily_volume": "40200", "max_daily_volume": "1000000 EUR",
         "daily_loss": "110", "max_daily_loss": "100 EUR",
         "messages_last_second": 3, "max_messages_per_second": 50,
         "consecutive_failures": 0,
         "open_orders": 2, "max_open_orders": 20,
         "net_positions": {"BTC_EUR": "0.5", "ETH_EUR": "-4"},
         "order_to_trade": {"orders": 6, "trades": 2, "window_secs": 3600, "max_ratio": 50}}


def test_usage_of_the_api_example() -> None:
    u = Usage.from_json(USAGE)
    assert u.trading_day_start == dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc)
    assert (u.daily_volume, u.max_daily_volume, u.daily_loss, u.max_daily_loss) == (
        Decimal("40200"), "1000000 EUR", Decimal("110"), "100 EUR")
    assert (u.messages_last_second, u.max_messages_per_second, u.consecutive_failures) == (3, 50, 0)
    assert (u.open_orders, u.max_open_orders) == (2, 20)
    assert u.net_positions == {"BTC_EUR": Decimal("0.5"), "ETH_EUR": Decimal("-4")}
    assert u.position("btc_eur") == Decimal("0.5") and u.position("DOGE_EUR") == 0
    assert u.order_to_trade == OrderToTrade(orders=6, trades=2, window_secs=3600, max_ratio=50)
    assert u.order_to_trade is not None and u.order_to_trade.ratio == 3.0
    assert OrderToTrade(4, 0, 60, 3).ratio == 4.0  # no trade counts as one
    assert u.raw == USAGE


def test_usage_of_a_daemon_older_than_the_order_book() -> None:
    older = {k: v for k, v in USAGE.items() if k not in ("open_orders", "max_open_orders", "net_positions",
                                                        "order_to_trade")}
    u = Usage.from_json(older)
    assert (u.open_orders, u.max_open_orders, u.net_positions, u.order_to_trade) == (0, None, {}, None)
    with pytest.raises(MandateProtocolError, match="usage.daily_volume: expected a decimal"):
        Usage.from_json({**USAGE, "daily_volume": "lots"})
    with pytest.raises(MandateProtocolError, match="usage.net_positions.BTC_EUR"):
        Usage.from_json({**USAGE, "net_positions": {"BTC_EUR": None}})


RECORD: dict[str, Any] = {
    "decision_id": "dec_7c41e09a2b3d4c5e8f90a1b2c3d4e5f6", "agent_id": "trading-bot-v2",
    "decided_at": "2026-12-07T09:15:00.120Z", "via": "sign", "allowed": True, "hypothetical": False,
    "order": {"action": "trade_execution", "market": "BTC_EUR", "side": "buy", "quantity": "0.1",
              "client_order_id": "d1", "timestamp": 1796634900, "decision_id": "dec_7c41e09a2b3d4c5e8f90a1b2c3d4e5f6"},
    "reasons": [{"code": "exceeds_order_quantity", "limit": "0.05", "requested": "0.1", "enforcement": "soft"}],
    "decided_by": "key_3b0e",
    "events": [
        {"id": 51, "at": 1796634900, "order_state": "new", "client_order_id": "d1", "market": "BTC_EUR",
         "side": "buy", "quantity": "0.1", "price": None, "fill_quantity": None, "fill_price": None,
         "decision_id": "dec_7c41e09a2b3d4c5e8f90a1b2c3d4e5f6"},
        {"id": 52, "at": 1796634901, "order_state": "partially_filled", "client_order_id": "d1",
         "market": "BTC_EUR", "side": "buy", "quantity": None, "price": None, "fill_quantity": "0.04",
         "fill_price": "2000", "decision_id": None},
        {"id": 53, "at": "2026-12-07T09:15:02Z", "order_state": "filled", "client_order_id": "d1",
         "market": "BTC_EUR", "side": "buy", "quantity": None, "price": None, "fill_quantity": "0.06",
         "fill_price": "2000.5", "decision_id": None}]}


def test_a_stored_decision_with_its_events() -> None:
    r = DecisionRecord.from_json(RECORD)
    assert (r.decision_id, r.agent_id, r.via, r.allowed, r.hypothetical, r.decided_by) == (
        RECORD["decision_id"], "trading-bot-v2", "sign", True, False, "key_3b0e")
    assert r.decided_at == dt.datetime(2026, 12, 7, 9, 15, 0, 120000, tzinfo=dt.timezone.utc)
    assert r.order["decision_id"] == r.decision_id  # the signed payload names it
    assert r.reasons == (Reason("exceeds_order_quantity", "0.05", "0.1", enforcement="soft"),)
    assert r.codes == ["exceeds_order_quantity"]
    assert r.states == [OrderState.NEW, OrderState.PARTIALLY_FILLED, OrderState.FILLED]
    new, part, filled = r.events
    assert (new.id, new.at, new.quantity, new.price, new.decision_id) == (
        51, dt.datetime.fromtimestamp(1796634900, dt.timezone.utc), Decimal("0.1"), None, r.decision_id)
    assert (part.fill_quantity, part.fill_price, part.decision_id) == (Decimal("0.04"), Decimal("2000"), None)
    assert filled.at == dt.datetime(2026, 12, 7, 9, 15, 2, tzinfo=dt.timezone.utc)
    assert r.fills == (part, filled) and r.filled_quantity == Decimal("0.10")
    # An allowed preflight without soft breaches: no reasons; an execution event has no state.
    bare = DecisionRecord.from_json({**RECORD, "via": "preflight", "reasons": [], "events": [
        {**RECORD["events"][0], "order_state": None}]})
    assert (bare.reasons, bare.states, bare.fills) == ((), [], ())


def test_a_malformed_stored_decision_is_a_protocol_error() -> None:
    with pytest.raises(MandateProtocolError, match="unknown order state 'parked'"):
        DecisionRecord.from_json({**RECORD, "events": [{**RECORD["events"][0], "order_state": "parked"}]})
    with pytest.raises(MandateProtocolError, match="decision.order: expected an object"):
        DecisionRecord.from_json({**RECORD, "order": "BTC_EUR"})
    with pytest.raises(MandateProtocolError, match="fill_quantity: expected a decimal"):
        DecisionRecord.from_json({**RECORD, "events": [{**RECORD["events"][1], "fill_quantity": [1]}]})


def test_float_sizes_go_as_plain_decimals_the_daemon_takes() -> None:
    # The daemon refuses JSON numbers in exponent form; Python prints 0.00001 as 1e-05.
    o = Order(market="BTC_EUR", size=0.00001, currency="BTC", quantity=1e-05, price=40000.5)
    j = o.to_json()
    assert j["size"] == "0.00001" and j["quantity"] == "0.00001" and j["price"] == "40000.5"
    assert re.search(r"\d[eE][+-]?\d", json.dumps(j)) is None


# --- the v1 dialect: one page shape, RFC 3339 times, reason names with codes, plain numbers ---


def test_every_page_is_items_and_an_opaque_next_cursor() -> None:
    from mandate_client import (
        AgentPage,
        ApiKeyPage,
        CertificatePage,
        IncidentPage,
        OrganizationPage,
        Page,
        PersonPage,
        WebhookDeliveryPage,
        WebhookPage,
    )

    empty: dict[str, Any] = {"items": [], "next_cursor": None}
    for page_type in (AgentPage, ApiKeyPage, CertificatePage, IncidentPage, OrganizationPage, PersonPage,
                      WebhookDeliveryPage, WebhookPage):
        page = page_type.from_json(empty)
        assert isinstance(page, Page) and (page.items, page.next_cursor) == ([], None)
        # The older shapes are not read as empty pages.
        older: dict[str, Any]
        for older in ({"agents": [], "next_after": None}, {"next_before": 7}):
            with pytest.raises(MandateProtocolError):
                page_type.from_json(older)
        # A cursor is text, never a number (the audit, incidents and deliveries' were).
        with pytest.raises(MandateProtocolError, match="next_cursor"):
            page_type.from_json({"items": [], "next_cursor": 42})
    incidents = IncidentPage.from_json({"items": [{
        "id": 7, "agent_id": "bot", "kind": "warning", "status": "open", "risk_score": 0.8,
        "threshold": 0.75, "contributions": [], "created_at": "2026-12-07T18:00:00Z"}], "next_cursor": "7"})
    assert ([i.id for i in incidents.items], incidents.next_cursor) == ([7], "7")
    assert incidents.items[0].created_at == dt.datetime(2026, 12, 7, 18, tzinfo=dt.timezone.utc)


def test_certificates_carry_the_reason_name_and_code_and_eab_expiry_is_a_time() -> None:
    from mandate_client import Certificate, EabCredentials

    cert = Certificate.from_json({
        "serial_number": "41cf", "agent_id": "bot", "mandate_version": 1, "status": "revoked",
        "not_before": "2026-12-07T18:00:00Z", "not_after": "2026-12-14T18:00:00Z",
        "revoked_at": "2026-12-08T09:30:00Z", "revocation_reason": "keyCompromise", "revocation_reason_code": 1})
    assert (cert.revocation_reason, cert.revocation_reason_code, cert.revoked) == ("keyCompromise", 1, True)
    older = Certificate.from_json({"serial_number": "41cf", "agent_id": "bot", "mandate_version": 1, "status": "issued"})
    assert older.revocation_reason_code is None
    eab = EabCredentials.from_json({"key_id": "eab_1", "hmac_key": "aGk", "agent_id": "bot",
                                    "expires_at": "2026-12-14T18:00:00Z"})
    assert eab.expires_at == dt.datetime(2026, 12, 14, 18, tzinfo=dt.timezone.utc)
    with pytest.raises(MandateProtocolError, match="expires_at"):
        EabCredentials.from_json({**eab.raw, "expires_at": 1797271200})


def test_parse_time_reads_rfc_3339_and_nothing_else() -> None:
    from mandate_client import parse_time

    utc = dt.timezone.utc
    assert parse_time("2026-12-07T18:00:00Z") == dt.datetime(2026, 12, 7, 18, tzinfo=utc)
    assert parse_time("2026-12-07T18:00:00.123Z") == dt.datetime(2026, 12, 7, 18, 0, 0, 123000, tzinfo=utc)
    assert parse_time("2026-12-07t18:00:00.123456789z") == dt.datetime(2026, 12, 7, 18, 0, 0, 123456, tzinfo=utc)
    assert parse_time("2026-12-07T19:30:00+01:30") == dt.datetime(2026, 12, 7, 18, tzinfo=utc)
    assert parse_time("2026-12-07T13:00:00.5-05:00") == dt.datetime(2026, 12, 7, 18, 0, 0, 500000, tzinfo=utc)
    for bad in ("2026-12-07", "2026-12-07T18:00:00", "1797271200", "2026-12-07T18:00Z", "2026-13-07T18:00:00Z",
                "2026-12-07T18:00:00.Z", "2026-12-07T18:00:00ZZ", ""):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_floats_go_out_as_plain_decimal_numbers() -> None:
    from mandate_client.client import encode_json

    body = {"price": 1e-05, "big": 1e22, "neg_zero": -0.0, "pnl": -12.5, "n": 3, "ok": True, "none": None,
            "d": Decimal("1E-7"), "at": dt.datetime(2026, 12, 7, 18, tzinfo=dt.timezone.utc),
            "list": [0.1, (2.5e-3,)], "é": "ü"}
    text = encode_json(body).decode()
    assert text == ('{"price":0.00001,"big":10000000000000000000000,"neg_zero":0,"pnl":-12.5,"n":3,"ok":true,'
                    '"none":null,"d":"0.0000001","at":"2026-12-07T18:00:00Z","list":[0.1,[0.0025]],'
                    '"\\u00e9":"\\u00fc"}')
    assert json.loads(text)["price"] == 1e-05
    # An order's float sizes go as decimal strings, the events built from it too.
    order = Order(market="BTC_EUR", size=1e-05, currency="EUR", quantity=2.5e-7, price=40000.0)
    assert order.to_json() == {"action": "trade_execution", "market": "BTC_EUR", "size": "0.00001",
                               "currency": "EUR", "quantity": "0.00000025", "price": "40000.0"}
    assert order.to_event(realised_pnl=-1e-06)["realised_pnl"] == "-0.000001"
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            encode_json({"x": bad})
    with pytest.raises(TypeError):
        encode_json({"x": object()})
    naive = dt.datetime(2026, 12, 7, 18)
    with pytest.raises(TypeError):
        encode_json({"at": naive})
