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
