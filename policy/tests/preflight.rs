//! Pre-trade decisions: each reason code, and trading hours across time zones, weekends and
//! midnight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mandate_policy::{
    Action, AgentState, Mandate, Money, Order, TimeOfDay, TradingHours, Weekday, decide,
    trading_day_start, within_hours,
};

fn money(amount: &str, currency: &str) -> Money {
    Money {
        amount: amount.parse().unwrap(),
        currency: currency.parse().unwrap(),
    }
}

fn hours(start: &str, end: &str, tz: &str, days: &[Weekday]) -> TradingHours {
    TradingHours {
        start: start.parse::<TimeOfDay>().unwrap(),
        end: end.parse::<TimeOfDay>().unwrap(),
        time_zone: tz.into(),
        weekdays: days.to_vec(),
    }
}

/// 2026-11-20 is a Friday. 14:00 UTC = 09:00 in New York (EST, UTC-5).
const FRI_14_UTC: i64 = 1795183200;

fn full_mandate() -> Mandate {
    let mut m = Mandate::new("bot-1", "Acme Ltd");
    m.max_transaction_size = Some(money("50000", "EUR"));
    m.max_daily_volume = Some(money("200000", "EUR"));
    m.allowed_markets = Some(vec!["EUR_USD".into(), "BTC_USD".into()]);
    m.allowed_counterparties = Some(vec!["binance".into()]);
    m.allowed_regions = Some(vec!["EU".into()]);
    m.permitted_actions = Some(vec![Action::TradeExecution]);
    m.trading_hours = Some(hours(
        "08:00",
        "17:00",
        "America/New_York",
        &[
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ],
    ));
    m
}

fn order() -> Order {
    Order {
        action: Action::TradeExecution,
        market: Some("EUR_USD".into()),
        counterparty: Some("binance".into()),
        region: Some("EU".into()),
        size: Some(money("1000", "EUR")),
        at: FRI_14_UTC,
        quantity: None,
        price: None,
        order_type: None,
        intent: mandate_policy::Intent::New,
        side: None,
    }
}

fn codes(m: &Mandate, o: &Order, s: &AgentState) -> Vec<&'static str> {
    decide(m, o, s).into_iter().map(|d| d.code).collect()
}

#[test]
fn an_order_inside_the_mandate_is_allowed() {
    assert!(decide(&full_mandate(), &order(), &AgentState::default()).is_empty());
}

#[test]
fn each_reason_code_with_its_limit_and_request() {
    let m = full_mandate();
    let ok = AgentState::default();
    let case = |o: Order, s: &AgentState, code: &str| {
        let d = decide(&m, &o, s);
        assert_eq!(
            d.iter().map(|d| d.code).collect::<Vec<_>>(),
            [code],
            "{d:?}"
        );
        d.into_iter().next().unwrap()
    };
    let d = case(
        Order {
            size: Some(money("50000.01", "EUR")),
            ..order()
        },
        &ok,
        "exceeds_scope_size",
    );
    assert_eq!(
        (d.limit.as_str(), d.requested.as_str()),
        ("50000 EUR", "50000.01 EUR")
    );
    // Another currency cannot be compared with the limits: said as such, once.
    let d = case(
        Order {
            size: Some(money("10", "USD")),
            ..order()
        },
        &ok,
        "currency_mismatch",
    );
    assert_eq!(
        (d.limit.as_str(), d.requested.as_str()),
        ("amounts in EUR", "USD")
    );
    let d = case(
        Order {
            market: Some("DOGE_USD".into()),
            ..order()
        },
        &ok,
        "market_not_allowed",
    );
    assert_eq!(d.requested, "DOGE_USD");
    case(
        Order {
            counterparty: Some("ftx".into()),
            ..order()
        },
        &ok,
        "counterparty_not_allowed",
    );
    case(
        Order {
            region: Some("US".into()),
            ..order()
        },
        &ok,
        "region_not_allowed",
    );
    case(
        Order {
            region: None,
            ..order()
        },
        &ok,
        "region_not_allowed",
    );
    case(
        Order {
            action: Action::DataMutation,
            ..order()
        },
        &ok,
        "action_not_permitted",
    );
    let near_cap = AgentState {
        daily_volume: Some("199500".parse().unwrap()),
        ..ok.clone()
    };
    let d = case(order(), &near_cap, "daily_volume_cap_exceeded");
    assert_eq!(
        (d.limit.as_str(), d.requested.as_str()),
        ("200000 EUR", "200500 EUR")
    );
    let d = case(
        Order {
            at: FRI_14_UTC - 2 * 3600,
            ..order()
        },
        &ok,
        "outside_trading_hours",
    );
    assert!(d.requested.contains("fri 07:00"), "{d:?}");
    let risky = AgentState {
        risk_score: Some(0.8),
        ..ok.clone()
    };
    case(order(), &risky, "circuit_breaker_active");
    let failing = AgentState {
        consecutive_failures: 3,
        ..ok.clone()
    };
    case(order(), &failing, "too_many_consecutive_failures");
    let revoked = AgentState {
        certificate_revoked: true,
        ..ok.clone()
    };
    case(order(), &revoked, "certificate_revoked");
    let uncertified = AgentState {
        no_valid_certificate: true,
        ..ok.clone()
    };
    case(order(), &uncertified, "no_valid_certificate");
    // Revoked and nothing valid left: the revocation is the reason.
    let both = AgentState {
        no_valid_certificate: true,
        ..revoked.clone()
    };
    case(order(), &both, "certificate_revoked");
    // Several at once: all of them.
    let bad = Order {
        market: Some("X".into()),
        region: Some("US".into()),
        ..order()
    };
    assert_eq!(
        codes(&m, &bad, &revoked),
        [
            "certificate_revoked",
            "market_not_allowed",
            "region_not_allowed"
        ]
    );
    // No limits set: anything goes (but revocation and failures still count).
    let open = Mandate::new("bot-1", "Acme Ltd");
    assert!(
        decide(
            &open,
            &Order {
                market: None,
                region: None,
                ..order()
            },
            &ok
        )
        .is_empty()
    );
}

#[test]
fn trading_hours_follow_the_time_zone_weekdays_and_midnight() {
    let weekdays = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];
    let ny = hours("08:00", "17:00", "America/New_York", &weekdays);
    assert!(
        within_hours(&ny, FRI_14_UTC).unwrap(),
        "Fri 09:00 in New York"
    );
    assert!(
        !within_hours(&ny, FRI_14_UTC - 2 * 3600).unwrap(),
        "Fri 07:00"
    );
    assert!(
        !within_hours(&ny, FRI_14_UTC + 8 * 3600).unwrap(),
        "Fri 17:00 is closed"
    );
    assert!(!within_hours(&ny, FRI_14_UTC + 86_400).unwrap(), "Saturday");
    assert!(
        within_hours(&ny, FRI_14_UTC + 3 * 86_400).unwrap(),
        "Monday 09:00"
    );
    // The same instant in Tokyo is Saturday 00:00 there.
    let tokyo = hours("08:00", "17:00", "Asia/Tokyo", &weekdays);
    assert!(!within_hours(&tokyo, FRI_14_UTC + 9 * 3600).unwrap());
    // A window crossing midnight belongs to the day it opens: Fri 22:00 to Sat 02:00 UTC.
    let night = hours("22:00", "02:00", "UTC", &[Weekday::Fri]);
    assert!(
        within_hours(&night, FRI_14_UTC + 9 * 3600).unwrap(),
        "Fri 23:00"
    );
    assert!(
        within_hours(&night, FRI_14_UTC + 11 * 3600).unwrap(),
        "Sat 01:00, Friday's window"
    );
    assert!(
        !within_hours(&night, FRI_14_UTC + 13 * 3600).unwrap(),
        "Sat 03:00"
    );
    assert!(
        !within_hours(&night, FRI_14_UTC - 86_400 + 11 * 3600).unwrap(),
        "Fri 01:00: Thursday had none"
    );
    // An unknown zone refuses, with a reason.
    let bad = hours("08:00", "17:00", "Mars/Olympus", &weekdays);
    assert!(
        within_hours(&bad, FRI_14_UTC)
            .unwrap_err()
            .contains("Mars/Olympus")
    );
}

#[test]
fn the_trading_day_starts_at_local_midnight() {
    let m = full_mandate();
    // Fri 09:00 in New York: the day began at 05:00 UTC.
    assert_eq!(trading_day_start(&m, FRI_14_UTC), FRI_14_UTC - 9 * 3600);
    let utc = Mandate::new("b", "o");
    assert_eq!(trading_day_start(&utc, FRI_14_UTC), FRI_14_UTC - 14 * 3600);
}

#[test]
fn order_quantity_and_type_are_checked_per_market_hard_or_soft() {
    use mandate_policy::{Enforcement, Intent, Limit, MarketControls, OrderType};
    let mut m = full_mandate();
    m.controls.max_order_quantity = Some(Limit::hard("10".parse().unwrap()));
    m.controls.allowed_order_types = Some(vec![OrderType::Limit]);
    // BTC_USD may trade less, and only as a soft limit (flagged, not refused).
    m.allowed_markets = Some(vec!["EUR_USD".into(), "BTC_USD".into()]);
    let btc = mandate_policy::Controls {
        max_order_quantity: Some(Limit::soft("0.5".parse().unwrap())),
        ..Default::default()
    };
    m.market_controls = Some(vec![MarketControls {
        market: "btc_usd".into(),
        controls: btc,
    }]);
    m.validate().unwrap();
    let ok = AgentState::default();
    let with = |q: &str, t: Option<OrderType>, market: &str| Order {
        quantity: Some(q.parse().unwrap()),
        order_type: t,
        market: Some(market.into()),
        ..order()
    };
    assert!(decide(&m, &with("10", Some(OrderType::Limit), "EUR_USD"), &ok).is_empty());
    let d = decide(&m, &with("10.5", Some(OrderType::Limit), "EUR_USD"), &ok);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (
            d[0].code,
            d[0].limit.as_str(),
            d[0].requested.as_str(),
            d[0].enforcement
        ),
        ("exceeds_order_quantity", "10", "10.5", Enforcement::Hard)
    );
    // The market's own limit replaces the default: 0.6 > 0.5, soft.
    let d = decide(&m, &with("0.6", Some(OrderType::Limit), "BTC_USD"), &ok);
    assert_eq!(
        (d[0].code, d[0].limit.as_str(), d[0].is_hard()),
        ("exceeds_order_quantity", "0.5", false)
    );
    // Without a quantity, or of another type: refused by name.
    let no_qty = Order {
        order_type: Some(OrderType::Limit),
        ..order()
    };
    assert_eq!(codes(&m, &no_qty, &ok), ["exceeds_order_quantity"]);
    let d = decide(&m, &with("1", Some(OrderType::Market), "EUR_USD"), &ok);
    assert_eq!(
        (d[0].code, d[0].limit.as_str(), d[0].requested.as_str()),
        ("order_type_not_allowed", "limit", "market")
    );
    // A cancellation is not held to the order's own limits.
    let cancel = Order {
        intent: Intent::Cancel,
        ..with("100", Some(OrderType::Market), "EUR_USD")
    };
    assert!(decide(&m, &cancel, &ok).is_empty());
}

#[test]
fn a_cancellation_is_refused_by_no_size_volume_hours_score_or_streak_limit() {
    let m = full_mandate();
    let state = AgentState {
        daily_volume: Some("199999".parse().unwrap()),
        consecutive_failures: 99,
        risk_score: Some(0.99),
        ..Default::default()
    };
    // Saturday, far too large, past the day's cap, at a tripped circuit breaker.
    let mut o = order();
    o.at = FRI_14_UTC + 86_400;
    o.size = Some(money("60000", "EUR"));
    let refused = codes(&m, &o, &state);
    for c in [
        "exceeds_scope_size",
        "daily_volume_cap_exceeded",
        "outside_trading_hours",
        "circuit_breaker_active",
        "too_many_consecutive_failures",
    ] {
        assert!(refused.contains(&c), "{c}: {refused:?}");
    }
    o.intent = mandate_policy::Intent::Cancel;
    assert_eq!(codes(&m, &o, &state), Vec::<&str>::new());
    // What says who the agent is still holds: a revoked certificate cancels nothing here (the
    // venue's own cancellation path is the kill function's).
    let revoked = AgentState {
        certificate_revoked: true,
        ..state
    };
    assert_eq!(codes(&m, &o, &revoked), ["certificate_revoked"]);
}
