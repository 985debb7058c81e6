//! The controls that need the agent's orders and positions (RTS 6): open orders, net positions
//! (in quantity and in value), short selling, the order-to-trade ratio and a market's own
//! daily loss, hard and soft, through preflight, signing and events; and the book surviving a
//! kill -9.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, full_mandate};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A mandate without trading hours (the tests run at any time), warning on breaches so one
/// breach does not stop the next check, with `extra` merged in.
fn mandate(extra: Value) -> Value {
    let mut m = full_mandate();
    let o = m.as_object_mut().unwrap();
    o.remove("tradingHours");
    o.insert("onBreach".into(), json!("warn"));
    o.insert("allowedMarkets".into(), json!(["BTC_EUR", "ETH_EUR"]));
    for (k, v) in extra.as_object().unwrap() {
        o.insert(k.clone(), v.clone());
    }
    m
}

/// An agent with `mandate`, approved, holding a key in the HSM (for custodial signing).
async fn agent(ca: &Ca, id: &str, m: Value) {
    ca.approved_agent(id, m).await;
    let r =
        ca.d.post(
            &ca.operator,
            &format!("/v1/agents/{id}/certify"),
            &json!({"hsm_key_type": "ec-p256"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
}

fn order(market: &str, side: &str, qty: &str, intent: &str, id: &str) -> Value {
    json!({"action": "trade_execution", "market": market, "counterparty": "exchange_a",
           "region": "eu-west-1", "size": "10", "currency": "EUR", "side": side,
           "quantity": qty, "price": "2000", "order_type": "limit", "intent": intent,
           "client_order_id": id})
}

/// An order event: `state` of order `id`.
fn ev(agent: &str, state: &str, id: &str, market: &str, side: &str, extra: Value) -> Value {
    let mut event = json!({"agent_id": agent, "action": "trade_execution",
                          "market": market, "side": side, "counterparty": "exchange_a",
                          "region": "eu-west-1", "size": "10", "currency": "EUR",
                          "order_state": state, "client_order_id": id, "order_type": "limit",
                          "timestamp": now()});
    for (k, v) in extra.as_object().unwrap() {
        event[k] = v.clone();
    }
    event
}

async fn preflight(ca: &Ca, agent: &str, order: Value) -> Value {
    let r =
        ca.d.post(
            &ca.operator,
            &format!("/v1/agents/{agent}/preflight"),
            &order,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    r.body
}

async fn events(ca: &Ca, batch: Value) -> Value {
    events_as(ca, &ca.operator, batch).await
}

async fn events_as(ca: &Ca, key: &str, batch: Value) -> Value {
    let r = ca.d.post(key, "/v1/events", &batch).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}\n{}", ca.d.log());
    r.body
}

/// The reason with `code` among a preflight answer's hard and soft reasons.
fn reason<'a>(r: &'a Value, list: &str, code: &str) -> &'a Value {
    r[list]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["code"] == code))
        .unwrap_or_else(|| panic!("no {code} in {list}: {r}"))
}

#[tokio::test]
async fn open_orders_are_capped_hard_by_default_and_soft_per_market() {
    let ca = Ca::start().await;
    agent(
        &ca,
        "book-bot",
        mandate(json!({
            "maxOpenOrders": 2,
            "marketControls": [{"market": "ETH_EUR",
                                "controls": {"maxOpenOrders": {"value": 1, "enforcement": "soft"}}}]
        })),
    )
    .await;
    let q = json!({"quantity": "0.1"});
    events(
        &ca,
        json!([
            ev("book-bot", "new", "o1", "BTC_EUR", "buy", q.clone()),
            ev("book-bot", "new", "o2", "BTC_EUR", "buy", q.clone())
        ]),
    )
    .await;
    // A third is refused, with the limit and what it would make.
    let r = preflight(&ca, "book-bot", order("BTC_EUR", "buy", "0.1", "new", "o3")).await;
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(
        reason(&r, "reasons", "max_open_orders_reached"),
        &json!({"code": "max_open_orders_reached", "limit": "2 open orders",
                "requested": "3 open orders"})
    );
    ca.d.post(
        &ca.operator,
        "/v1/agents/book-bot/sign",
        &order("BTC_EUR", "buy", "0.1", "new", "o3"),
    )
    .await
    .assert_problem(403, "out-of-mandate");
    // Amending or cancelling a resting order opens none.
    for intent in ["amend", "cancel"] {
        let r = preflight(
            &ca,
            "book-bot",
            order("BTC_EUR", "buy", "0.2", intent, "o1"),
        )
        .await;
        assert_eq!(r["allowed"], true, "{intent}: {r}");
    }
    // Reported anyway: a hard breach of the event, an incident (warned only here).
    let r = events(
        &ca,
        ev("book-bot", "new", "o3", "BTC_EUR", "buy", q.clone()),
    )
    .await;
    assert_eq!(
        r["events"][0]["breach"][0],
        json!({"code": "max_open_orders_reached", "limit": "2 open orders",
               "requested": "3 open orders", "enforcement": "hard"}),
        "{r}"
    );
    assert_eq!(r["incidents"][0]["kind"], "mandate_breach", "{r}");
    // Cancelled, filled and rejected orders no longer rest.
    events(
        &ca,
        json!([
            ev("book-bot", "cancelled", "o3", "BTC_EUR", "buy", json!({})),
            ev(
                "book-bot",
                "filled",
                "o2",
                "BTC_EUR",
                "buy",
                json!({"fill_quantity": "0.1", "fill_price": "2000"})
            ),
            ev("book-bot", "new", "o4", "BTC_EUR", "buy", q.clone()),
            ev("book-bot", "rejected", "o4", "BTC_EUR", "buy", json!({}))
        ]),
    )
    .await;
    let u = ca.d.get(&ca.operator, "/v1/agents/book-bot/usage").await;
    assert_eq!(u.body["open_orders"], 1, "{u:?}");
    assert_eq!(u.body["max_open_orders"], 2, "{u:?}");
    // The market's own soft limit: ETH has one resting, a second is allowed and flagged; the
    // default still counts every market (o1 and e1 rest: a third anywhere is refused).
    events(
        &ca,
        ev("book-bot", "new", "e1", "ETH_EUR", "sell", q.clone()),
    )
    .await;
    let r = preflight(
        &ca,
        "book-bot",
        order("ETH_EUR", "sell", "0.1", "new", "e2"),
    )
    .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(
        reason(&r, "soft_breaches", "max_open_orders_reached"),
        &json!({"code": "max_open_orders_reached", "limit": "1 open orders in ETH_EUR",
                "requested": "2 open orders in ETH_EUR"})
    );
    assert_eq!(
        reason(&r, "reasons", "max_open_orders_reached")["limit"],
        "2 open orders"
    );
    events(
        &ca,
        ev("book-bot", "cancelled", "o1", "BTC_EUR", "buy", json!({})),
    )
    .await;
    let r = preflight(
        &ca,
        "book-bot",
        order("ETH_EUR", "sell", "0.1", "new", "e2"),
    )
    .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(
        r["soft_breaches"][0]["code"], "max_open_orders_reached",
        "{r}"
    );
    let signed =
        ca.d.post(
            &ca.operator,
            "/v1/agents/book-bot/sign",
            &order("ETH_EUR", "sell", "0.1", "new", "e2"),
        )
        .await;
    assert_eq!(signed.status, StatusCode::OK, "{signed:?}");
    assert_eq!(
        signed.body["soft_breaches"][0]["code"],
        "max_open_orders_reached"
    );
    let r = events(&ca, ev("book-bot", "new", "e2", "ETH_EUR", "sell", q)).await;
    assert_eq!(r["events"][0]["breach"][0]["enforcement"], "soft", "{r}");
    // An order event without what it needs is refused, and nothing is stored.
    let r =
        ca.d.post(
            &ca.operator,
            "/v1/events",
            &ev(
                "book-bot",
                "new",
                "o9",
                "BTC_EUR",
                "buy",
                json!({"quantity": null}),
            ),
        )
        .await;
    r.assert_problem(400, "invalid-request");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("needs a quantity above 0"),
        "{r:?}"
    );
    let u = ca.d.get(&ca.operator, "/v1/agents/book-bot/usage").await;
    assert_eq!(u.body["open_orders"], 2, "{u:?}");
}

#[tokio::test]
async fn net_positions_and_short_selling_are_held_on_the_worst_case() {
    let ca = Ca::start().await;
    agent(
        &ca,
        "pos-bot",
        mandate(json!({
            "maxNetPosition": {"quantity": "1"},
            "shortSellingAllowed": false,
            "marketControls": [{"market": "ETH_EUR", "controls": {
                "maxNetPosition": {"value": {"value": {"amount": "5000", "currency": "EUR"}},
                                   "enforcement": "soft"},
                "shortSellingAllowed": true}}]
        })),
    )
    .await;
    // 0.6 resting to buy: another 0.5 could make 1.1 long.
    events(
        &ca,
        ev(
            "pos-bot",
            "new",
            "b1",
            "BTC_EUR",
            "buy",
            json!({"quantity": "0.6"}),
        ),
    )
    .await;
    let r = preflight(&ca, "pos-bot", order("BTC_EUR", "buy", "0.5", "new", "b2")).await;
    assert_eq!(
        reason(&r, "reasons", "exceeds_net_position"),
        &json!({"code": "exceeds_net_position", "limit": "1 net", "requested": "1.1 BTC_EUR"})
    );
    ca.d.post(
        &ca.operator,
        "/v1/agents/pos-bot/sign",
        &order("BTC_EUR", "buy", "0.5", "new", "b2"),
    )
    .await
    .assert_problem(403, "out-of-mandate");
    let r = preflight(&ca, "pos-bot", order("BTC_EUR", "buy", "0.4", "new", "b2")).await;
    assert_eq!(r["allowed"], true, "{r}");
    // Filled: 0.6 long. Selling 0.7 would go short; 0.6 closes the position.
    events(
        &ca,
        ev(
            "pos-bot",
            "filled",
            "b1",
            "BTC_EUR",
            "buy",
            json!({"fill_price": "2000"}),
        ),
    )
    .await;
    let r = preflight(&ca, "pos-bot", order("BTC_EUR", "sell", "0.7", "new", "s1")).await;
    assert_eq!(
        reason(&r, "reasons", "short_selling_not_allowed"),
        &json!({"code": "short_selling_not_allowed", "limit": "no short position",
                "requested": "-0.1 BTC_EUR"})
    );
    let r = preflight(&ca, "pos-bot", order("BTC_EUR", "sell", "0.6", "new", "s1")).await;
    assert_eq!(r["allowed"], true, "{r}");
    // A fill that goes short is a breach of the event.
    let r = events(
        &ca,
        ev(
            "pos-bot",
            "filled",
            "s9",
            "BTC_EUR",
            "sell",
            json!({"fill_quantity": "0.7"}),
        ),
    )
    .await;
    assert_eq!(
        r["events"][0]["breach"][0],
        json!({"code": "short_selling_not_allowed", "limit": "no short position",
               "requested": "-0.1 BTC_EUR", "enforcement": "hard"}),
        "{r}"
    );
    // And one past the quantity limit (after partial fills).
    let r = events(
        &ca,
        json!([
            ev(
                "pos-bot",
                "new",
                "b3",
                "BTC_EUR",
                "buy",
                json!({"quantity": "1.5"})
            ),
            ev(
                "pos-bot",
                "partially_filled",
                "b3",
                "BTC_EUR",
                "buy",
                json!({"fill_quantity": "0.5"})
            ),
            ev(
                "pos-bot",
                "partially_filled",
                "b3",
                "BTC_EUR",
                "buy",
                json!({"fill_quantity": "0.7"})
            )
        ]),
    )
    .await;
    assert_eq!(
        r["events"][0]["breach"][0]["code"], "exceeds_net_position",
        "{r}"
    );
    assert!(r["events"][1].get("breach").is_none(), "0.4 long: {r}");
    assert_eq!(
        r["events"][2]["breach"][0],
        json!({"code": "exceeds_net_position", "limit": "1 net", "requested": "1.1 BTC_EUR",
               "enforcement": "hard"}),
        "{r}"
    );
    let u = ca.d.get(&ca.operator, "/v1/agents/pos-bot/usage").await;
    assert_eq!(u.body["net_positions"], json!({"BTC_EUR": "1.1"}), "{u:?}");
    assert_eq!(u.body["open_orders"], 1, "{u:?}");

    // In value: at the reference price, which must be fresh; soft here.
    let r = preflight(&ca, "pos-bot", order("ETH_EUR", "buy", "3", "new", "v1")).await;
    assert_eq!(
        reason(&r, "reasons", "reference_price_stale")["requested"],
        "none",
        "{r}"
    );
    let posted =
        ca.d.post(
            &ca.operator,
            "/v1/reference-prices",
            &json!({"prices": [{"market": "ETH_EUR", "price": "2000"}]}),
        )
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{posted:?}");
    let r = preflight(&ca, "pos-bot", order("ETH_EUR", "buy", "3", "new", "v1")).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(
        reason(&r, "soft_breaches", "exceeds_net_position"),
        &json!({"code": "exceeds_net_position", "limit": "5000 EUR net",
                "requested": "6000 EUR in ETH_EUR at 2000"})
    );
    // Short selling is allowed in ETH_EUR.
    let r = preflight(&ca, "pos-bot", order("ETH_EUR", "sell", "2", "new", "v2")).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(
        r.get("soft_breaches").is_none_or(|s| s == &json!([])),
        "{r}"
    );
    // A fill past it, in value at the fill's price: a soft breach.
    let r = events(
        &ca,
        ev(
            "pos-bot",
            "filled",
            "v1",
            "ETH_EUR",
            "buy",
            json!({"fill_quantity": "3", "fill_price": "2000"}),
        ),
    )
    .await;
    assert_eq!(
        r["events"][0]["breach"][0],
        json!({"code": "exceeds_net_position", "limit": "5000 EUR net",
               "requested": "6000 EUR in ETH_EUR at 2000", "enforcement": "soft"}),
        "{r}"
    );
}

#[tokio::test]
async fn the_order_to_trade_ratio_counts_reported_messages_and_trades() {
    let ca = Ca::start().await;
    agent(
        &ca,
        "otr-bot",
        mandate(json!({
            "maxOrderToTradeRatio": {"maxRatio": 3, "windowSecs": 600},
            "marketControls": [{"market": "ETH_EUR", "controls": {
                "maxOrderToTradeRatio": {"value": {"maxRatio": 1, "windowSecs": 600},
                                         "enforcement": "soft"}}}]
        })),
    )
    .await;
    let q = json!({"quantity": "0.1"});
    let r = events(
        &ca,
        json!([
            ev("otr-bot", "new", "a1", "BTC_EUR", "buy", q.clone()),
            ev("otr-bot", "new", "a2", "BTC_EUR", "buy", q.clone()),
            ev("otr-bot", "filled", "a1", "BTC_EUR", "buy", json!({})),
            ev("otr-bot", "cancelled", "a2", "BTC_EUR", "buy", json!({}))
        ]),
    )
    .await;
    assert_eq!(r["incidents"], json!([]), "{r}");
    // Three messages and one trade: a fourth message makes 4 > 3.
    let r = preflight(&ca, "otr-bot", order("BTC_EUR", "buy", "0.1", "new", "a3")).await;
    assert_eq!(
        reason(&r, "reasons", "order_to_trade_ratio_exceeded"),
        &json!({"code": "order_to_trade_ratio_exceeded",
                "limit": "3 orders per trade over 600 s",
                "requested": "4 orders, 1 trades over 600 s"})
    );
    ca.d.post(
        &ca.operator,
        "/v1/agents/otr-bot/sign",
        &order("BTC_EUR", "buy", "0.1", "new", "a3"),
    )
    .await
    .assert_problem(403, "out-of-mandate");
    // A cancellation is never refused by it.
    let r = preflight(
        &ca,
        "otr-bot",
        order("BTC_EUR", "buy", "0.1", "cancel", "a2"),
    )
    .await;
    assert_eq!(r["allowed"], true, "{r}");
    let r = events(&ca, ev("otr-bot", "new", "a3", "BTC_EUR", "buy", q.clone())).await;
    assert_eq!(
        r["events"][0]["breach"][0],
        json!({"code": "order_to_trade_ratio_exceeded",
               "limit": "3 orders per trade over 600 s",
               "requested": "4 orders, 1 trades over 600 s", "enforcement": "hard"}),
        "{r}"
    );
    let u = ca.d.get(&ca.operator, "/v1/agents/otr-bot/usage").await;
    assert_eq!(
        u.body["order_to_trade"],
        json!({"orders": 4, "trades": 1, "window_secs": 600, "max_ratio": 3}),
        "{u:?}"
    );
    // The market's own, soft: ETH has no message yet, 1 ≤ 1 × 1; a second message is
    // flagged (and the default, over every market, refuses it).
    let r = events(&ca, ev("otr-bot", "new", "e1", "ETH_EUR", "buy", q.clone())).await;
    assert_eq!(
        r["events"][0]["breach"][0]["limit"], "3 orders per trade over 600 s",
        "{r}"
    );
    let r = preflight(&ca, "otr-bot", order("ETH_EUR", "buy", "0.1", "new", "e2")).await;
    assert_eq!(
        reason(&r, "soft_breaches", "order_to_trade_ratio_exceeded"),
        &json!({"code": "order_to_trade_ratio_exceeded",
                "limit": "1 orders per trade over 600 s in ETH_EUR",
                "requested": "2 orders, 0 trades over 600 s in ETH_EUR"})
    );
}

#[tokio::test]
async fn a_market_s_own_daily_loss_counts_that_market_and_the_default_every_market() {
    let ca = Ca::start().await;
    agent(
        &ca,
        "loss2-bot",
        mandate(json!({
            "maxDailyLoss": {"amount": "100", "currency": "EUR"},
            "marketControls": [{"market": "BTC_EUR", "controls": {
                "maxDailyLoss": {"value": {"amount": "50", "currency": "EUR"},
                                 "enforcement": "soft"}}}]
        })),
    )
    .await;
    let pnl = |market: &str, p: &str| {
        json!({"agent_id": "loss2-bot", "action": "trade_execution",
               "market": market, "size": "10", "currency": "EUR",
                            "counterparty": "exchange_a", "region": "eu-west-1",
                            "timestamp": now(), "realised_pnl": p})
    };
    let r = events(&ca, pnl("BTC_EUR", "-60")).await;
    assert_eq!(
        r["events"][0]["breach"][0],
        json!({"code": "daily_loss_limit_reached", "limit": "50 EUR in BTC_EUR",
               "requested": "60 EUR lost today in BTC_EUR", "enforcement": "soft"}),
        "{r}"
    );
    let r = preflight(
        &ca,
        "loss2-bot",
        order("BTC_EUR", "buy", "0.1", "new", "x1"),
    )
    .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(
        reason(&r, "soft_breaches", "daily_loss_limit_reached"),
        &json!({"code": "daily_loss_limit_reached", "limit": "50 EUR in BTC_EUR",
                "requested": "60 EUR lost today in BTC_EUR"})
    );
    let r = preflight(
        &ca,
        "loss2-bot",
        order("ETH_EUR", "buy", "0.1", "new", "x2"),
    )
    .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(
        r.get("soft_breaches").is_none_or(|s| s == &json!([])),
        "{r}"
    );
    // 50 more lost in ETH: 110 over every market, past the default of 100: refused anywhere.
    let r = events(&ca, pnl("ETH_EUR", "-50")).await;
    assert_eq!(r["events"][0]["breach"][0]["limit"], "100 EUR", "{r}");
    let r = preflight(
        &ca,
        "loss2-bot",
        order("ETH_EUR", "buy", "0.1", "new", "x3"),
    )
    .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(
        reason(&r, "reasons", "daily_loss_limit_reached")["requested"],
        "110 EUR lost today"
    );
}

#[tokio::test]
async fn open_orders_positions_and_the_day_s_loss_survive_a_kill_9() {
    let mut ca = Ca::start_with_config("[scoring]\nauto_learn = false\n").await;
    agent(
        &ca,
        "crash-bot",
        mandate(json!({
            "maxOpenOrders": 3,
            "maxNetPosition": {"quantity": "5"},
            "maxDailyLoss": {"amount": "1000", "currency": "EUR"},
            "maxOrderToTradeRatio": {"maxRatio": 50, "windowSecs": 3600},
            "marketControls": [{"market": "ETH_EUR", "controls": {
                "maxDailyLoss": {"amount": "20", "currency": "EUR"}}}]
        })),
    )
    .await;
    events(
        &ca,
        json!([
            ev(
                "crash-bot",
                "new",
                "k1",
                "BTC_EUR",
                "buy",
                json!({"quantity": "2"})
            ),
            ev(
                "crash-bot",
                "partially_filled",
                "k1",
                "BTC_EUR",
                "buy",
                json!({"fill_quantity": "0.5"})
            ),
            ev(
                "crash-bot",
                "new",
                "k2",
                "ETH_EUR",
                "sell",
                json!({"quantity": "4"})
            ),
            ev(
                "crash-bot",
                "filled",
                "k2",
                "ETH_EUR",
                "sell",
                json!({"realised_pnl": "-25"})
            ),
            ev(
                "crash-bot",
                "new",
                "k3",
                "ETH_EUR",
                "buy",
                json!({"quantity": "1"})
            ),
            ev(
                "crash-bot",
                "amended",
                "k3",
                "ETH_EUR",
                "buy",
                json!({"quantity": "1.5"})
            ),
            ev(
                "crash-bot",
                "new",
                "k4",
                "BTC_EUR",
                "sell",
                json!({"quantity": "1"})
            ),
            ev("crash-bot", "cancelled", "k4", "BTC_EUR", "sell", json!({}))
        ]),
    )
    .await;
    let usage = async |ca: &Ca| {
        let u = ca.d.get(&ca.operator, "/v1/agents/crash-bot/usage").await;
        assert_eq!(u.status, StatusCode::OK, "{u:?}");
        u.body
    };
    let probes = [
        order("BTC_EUR", "buy", "3.6", "new", "p1"),
        order("ETH_EUR", "buy", "0.1", "new", "p2"),
        order("BTC_EUR", "sell", "0.1", "amend", "k1"),
    ];
    let decide = async |ca: &Ca| {
        let mut out = Vec::new();
        for p in &probes {
            let r = preflight(ca, "crash-bot", p.clone()).await;
            out.push((
                r["allowed"].clone(),
                r["reasons"].clone(),
                r["soft_breaches"].clone(),
            ));
        }
        out
    };
    let before = usage(&ca).await;
    assert_eq!(before["open_orders"], 2, "{before}");
    assert_eq!(
        before["net_positions"],
        json!({"BTC_EUR": "0.5", "ETH_EUR": "-4"}),
        "{before}"
    );
    assert_eq!(before["daily_loss"], "25", "{before}");
    assert_eq!(before["order_to_trade"]["orders"], 6, "{before}");
    assert_eq!(before["order_to_trade"]["trades"], 2, "{before}");
    let decided = decide(&ca).await;
    // 0.5 long + 1.5 resting + 3.6 = 5.6 > 5; ETH lost 25 > 20.
    assert_eq!(
        decided[0].1[0]["code"], "exceeds_net_position",
        "{decided:?}"
    );
    assert_eq!(
        decided[1].1[0]["code"], "daily_loss_limit_reached",
        "{decided:?}"
    );
    assert_eq!(decided[2].0, true, "{decided:?}");

    ca.d.kill9_and_restart().await;
    let mut after = usage(&ca).await;
    // The message count of the last second is in memory only, by design.
    after["messages_last_second"] = before["messages_last_second"].clone();
    assert_eq!(after, before);
    assert_eq!(decide(&ca).await, decided);
}

fn is_decision_id(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 36
            && s.starts_with("dec_")
            && s[4..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

#[tokio::test]
async fn decision_ids_link_the_order_its_signature_and_its_fills() {
    let ca = Ca::start().await;
    agent(&ca, "dec-bot", mandate(json!({"maxOpenOrders": 5}))).await;
    // Every preflight answer names its decision, allowed or not.
    let allowed = preflight(&ca, "dec-bot", order("BTC_EUR", "buy", "0.1", "new", "d1")).await;
    let refused = preflight(&ca, "dec-bot", order("XRP_EUR", "buy", "0.1", "new", "d0")).await;
    assert!(is_decision_id(&allowed["decision_id"]), "{allowed}");
    assert!(is_decision_id(&refused["decision_id"]), "{refused}");
    assert_ne!(allowed["decision_id"], refused["decision_id"]);
    // Signing decides again, at its own clock, and the signed bytes name that decision.
    let signed =
        ca.d.post(
            &ca.operator,
            "/v1/agents/dec-bot/sign",
            &order("BTC_EUR", "buy", "0.1", "new", "d1"),
        )
        .await;
    assert_eq!(signed.status, StatusCode::OK, "{signed:?}");
    let id = signed.body["decision_id"].as_str().unwrap().to_owned();
    use base64::Engine;
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(signed.body["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["decision_id"], id, "{payload}");
    let v =
        ca.d.post(
            &ca.auditor().await,
            "/v1/verify",
            &json!({"certificate": signed.body["certificate_pem"], "signature": signed.body["signature"],
                    "payload": signed.body["payload"]}),
        )
        .await;
    assert_eq!(v.body["valid"], true, "{v:?}");
    assert_eq!(v.body["order"]["decision_id"], id, "{v:?}");
    // The bot reports the order with the decision, then its fills under its client id.
    events(
        &ca,
        json!([
            ev(
                "dec-bot",
                "new",
                "d1",
                "BTC_EUR",
                "buy",
                json!({"quantity": "0.1", "decision_id": id})
            ),
            ev(
                "dec-bot",
                "partially_filled",
                "d1",
                "BTC_EUR",
                "buy",
                json!({"fill_quantity": "0.04", "fill_price": "1999"})
            ),
            ev(
                "dec-bot",
                "filled",
                "d1",
                "BTC_EUR",
                "buy",
                json!({"fill_quantity": "0.06", "fill_price": "2000"})
            ),
            ev(
                "dec-bot",
                "new",
                "other",
                "BTC_EUR",
                "buy",
                json!({"quantity": "1"})
            )
        ]),
    )
    .await;
    let d =
        ca.d.get(&ca.auditor().await, &format!("/v1/decisions/{id}"))
            .await;
    assert_eq!(d.status, StatusCode::OK, "{d:?}");
    let b = &d.body;
    assert_eq!(
        (&b["agent_id"], &b["via"], &b["allowed"], &b["hypothetical"]),
        (
            &json!("dec-bot"),
            &json!("sign"),
            &json!(true),
            &json!(false)
        ),
        "{b}"
    );
    assert_eq!(b["order"], payload, "the decision keeps the signed payload");
    assert_eq!(b["reasons"], json!([]));
    let states: Vec<(&str, &str)> = b["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["order_state"].as_str().unwrap(),
                e["fill_quantity"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("new", "-"),
            ("partially_filled", "0.04"),
            ("filled", "0.06")
        ],
        "{b}"
    );
    assert_eq!(b["events"][0]["decision_id"], id);
    // The compliance report lists each order with the decision that let it through.
    let today = crate::behaviour::day(crate::behaviour::midnight());
    let report =
        ca.d.get(
            &ca.auditor().await,
            &format!("/v1/reports/agents/dec-bot?from={today}&to={today}"),
        )
        .await;
    assert_eq!(report.status, StatusCode::OK, "{report:?}");
    let orders = report.body["report"]["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2, "{orders:?}");
    let d1 = &orders[0];
    assert_eq!(
        (&d1["client_order_id"], &d1["state"], &d1["decision_id"]),
        (&json!("d1"), &json!("filled"), &json!(id)),
        "{d1}"
    );
    assert_eq!(
        (&d1["decision"]["via"], &d1["decision"]["allowed"]),
        (&json!("sign"), &json!(true)),
        "{d1}"
    );
    assert_eq!(d1["decision"]["decided_by"], b["decided_by"], "{d1}");
    assert_eq!(d1["events"].as_array().map(Vec::len), Some(3), "{d1}");
    // An order that names no decision says so.
    assert_eq!(
        (&orders[1]["client_order_id"], &orders[1]["decision"]),
        (&json!("other"), &Value::Null),
        "{}",
        orders[1]
    );
    // A refusal is a decision too, with its reasons and their enforcement.
    let r =
        ca.d.get(
            &ca.operator,
            &format!("/v1/decisions/{}", refused["decision_id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(
        (&r.body["via"], &r.body["allowed"]),
        (&json!("preflight"), &json!(false))
    );
    assert_eq!(
        r.body["reasons"][0],
        json!({"code": "market_not_allowed", "limit": "BTC_EUR,ETH_EUR",
               "requested": "XRP_EUR", "enforcement": "hard"})
    );
    // Unknown and malformed ids are not found; an order may not name its own decision; an
    // event's decision id must look like one.
    for bad in ["dec_00000000000000000000000000000000", "nope"] {
        ca.d.get(&ca.operator, &format!("/v1/decisions/{bad}"))
            .await
            .assert_problem(404, "not-found");
    }
    let mut o = order("BTC_EUR", "buy", "0.1", "new", "d2");
    o["decision_id"] = json!(id);
    ca.d.post(&ca.operator, "/v1/agents/dec-bot/preflight", &o)
        .await
        .assert_problem(422, "invalid-order");
    ca.d.post(
        &ca.operator,
        "/v1/events",
        &ev(
            "dec-bot",
            "new",
            "d3",
            "BTC_EUR",
            "buy",
            json!({"quantity": "1", "decision_id": "dec_XYZ"}),
        ),
    )
    .await
    .assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn an_override_widens_one_limit_for_its_time_with_four_eyes_and_no_longer() {
    let ca = Ca::start().await;
    let d = &ca.d;
    let r = d
        .post(
            &d.admin_key(),
            "/v1/organizations",
            &json!({"id": "desk", "legal_name": "Desk Capital AG", "approvals_required": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let op = d.person_key(Some("desk"), "operator").await;
    let comp1 = d.person_key(Some("desk"), "compliance").await;
    let comp2 = d.person_key(Some("desk"), "compliance").await;
    let mut m = mandate(json!({"maxOrderQuantity": "10"}));
    m["operator"] = json!("Desk Capital AG");
    let r = d
        .post(
            &op,
            "/v1/agents",
            &json!({"agent_id": "ov-bot", "name": "ov", "mandate": m}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    for c in [&comp1, &comp2] {
        let r = d
            .post(c, "/v1/agents/ov-bot/approve", &json!({"version": 1}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
    }
    let r = d
        .post(
            &op,
            "/v1/agents/ov-bot/certify",
            &json!({"hsm_key_type": "ec-p256"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let check = async |qty: &str| {
        let r = d
            .post(
                &op,
                "/v1/agents/ov-bot/preflight",
                &order("BTC_EUR", "buy", qty, "new", "q"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        r.body
    };
    let refused = |r: &Value, limit: &str| {
        assert_eq!(r["allowed"], false, "{r}");
        assert_eq!(r["reasons"][0]["code"], "exceeds_order_quantity", "{r}");
        assert_eq!(r["reasons"][0]["limit"], limit, "{r}");
    };
    refused(&check("15").await, "10");

    // Refusals change nothing: an operator, an unknown limit, a bad value, a bad duration.
    let grant = |limit: &str, value: Value, secs: u32| {
        json!({"limit": limit, "value": value, "duration_secs": secs,
               "reason": "a block trade the desk agreed with the client"})
    };
    let wider = grant("maxOrderQuantity", json!("20"), 3);
    d.post(&op, "/v1/agents/ov-bot/overrides", &wider)
        .await
        .assert_problem(403, "forbidden");
    for bad in [
        grant("allowedMarkets", json!(["XRP_EUR"]), 60),
        grant("maxOrderQuantity", json!("-5"), 60),
        grant("maxOrderQuantity", json!("20"), 0),
        grant("maxOrderQuantity", json!("20"), 86_401),
    ] {
        d.post(&comp1, "/v1/agents/ov-bot/overrides", &bad)
            .await
            .assert_problem(400, "invalid-request");
    }
    let list = d.get(&comp1, "/v1/agents/ov-bot/overrides").await;
    assert_eq!(list.body["items"], json!([]), "{list:?}");

    // Four eyes: the first person's request waits for a second person's.
    let r = d.post(&comp1, "/v1/agents/ov-bot/overrides", &wider).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{r:?}");
    assert_eq!(
        r.body["approvals"],
        json!({"recorded": 1, "required": 2}),
        "{r:?}"
    );
    refused(&check("15").await, "10");
    d.post(&comp1, "/v1/agents/ov-bot/overrides", &wider)
        .await
        .assert_problem(409, "conflict");
    let r = d.post(&comp2, "/v1/agents/ov-bot/overrides", &wider).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert_eq!(r.body["in_force"], true, "{r:?}");
    assert_eq!(r.body["limit"], "maxOrderQuantity");
    assert_eq!(r.body["value"], "20");
    let granted_by = r.body["granted_by"].as_array().unwrap();
    assert!(
        granted_by.len() == 2 && granted_by[0] != granted_by[1],
        "{r:?}"
    );
    // Widened: 15 goes through, 25 not (limit 20); an event of 15 is no breach.
    assert_eq!(check("15").await["allowed"], true);
    refused(&check("25").await, "20");
    let e = events_as(
        &ca,
        &op,
        ev(
            "ov-bot",
            "new",
            "w1",
            "BTC_EUR",
            "buy",
            json!({"quantity": "15"}),
        ),
    )
    .await;
    assert!(e["events"][0].get("breach").is_none(), "{e}");
    let u = d.get(&comp1, "/v1/agents/ov-bot/usage").await;
    assert_eq!(u.body["overrides"][0]["limit"], "maxOrderQuantity", "{u:?}");
    // For its time and no longer: refused again once it expired (a deadline, not a sleep).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let r = check("15").await;
        if r["allowed"] == false {
            refused(&r, "10");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still widened: {r}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let list = d.get(&comp1, "/v1/agents/ov-bot/overrides").await;
    assert_eq!(list.body["items"][0]["in_force"], false, "{list:?}");
    let e = events_as(
        &ca,
        &op,
        ev(
            "ov-bot",
            "new",
            "w2",
            "BTC_EUR",
            "buy",
            json!({"quantity": "15"}),
        ),
    )
    .await;
    assert_eq!(
        e["events"][0]["breach"][0]["code"], "exceeds_order_quantity",
        "{e}"
    );

    // Ended before its time by one compliance person.
    let long = grant(
        "maxOrderQuantity",
        json!({"value": "30", "enforcement": "soft"}),
        3600,
    );
    d.post(&comp2, "/v1/agents/ov-bot/overrides", &long).await;
    let r = d.post(&comp1, "/v1/agents/ov-bot/overrides", &long).await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    let oid = r.body["id"].as_i64().unwrap();
    let soft = check("40").await;
    assert_eq!(soft["allowed"], true, "{soft}");
    assert_eq!(soft["soft_breaches"][0]["limit"], "30", "{soft}");
    let path = format!("/v1/agents/ov-bot/overrides/{oid}/end");
    d.post(&op, &path, &json!({}))
        .await
        .assert_problem(403, "forbidden");
    let r = d.post(&comp1, &path, &json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    refused(&check("15").await, "10");
    d.post(&comp1, &path, &json!({}))
        .await
        .assert_problem(404, "not-found");
    // Audited: granted twice, ended once.
    let mut actions = Vec::new();
    for a in d.list_all(&comp1, "/v1/audit?limit=100").await {
        let action = a["action"].as_str().unwrap().to_owned();
        if action.starts_with("override.") {
            assert_eq!(a["subject"], "ov-bot", "{a}");
            actions.push(action);
        }
    }
    assert_eq!(
        actions.iter().filter(|a| **a == "override.granted").count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "override.ended").count(),
        1,
        "{actions:?}"
    );
}
