//! Mandate versions compared field by field: which changes narrow, widen or just change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mandate_policy::{
    Action, Direction, Mandate, Money, OnBreach, Threshold, TimeOfDay, TradingHours, Weekday,
    compare, narrows,
};

fn money(amount: &str, currency: &str) -> Option<Money> {
    Some(Money {
        amount: amount.parse().unwrap(),
        currency: currency.parse().unwrap(),
    })
}

fn hours(start: &str, end: &str, tz: &str, days: &[Weekday]) -> Option<TradingHours> {
    Some(TradingHours {
        start: start.parse::<TimeOfDay>().unwrap(),
        end: end.parse::<TimeOfDay>().unwrap(),
        time_zone: tz.into(),
        weekdays: days.to_vec(),
    })
}

fn base() -> Mandate {
    let mut m = Mandate::new("bot-1", "Acme Ltd");
    m.max_transaction_size = money("50000", "EUR");
    m.max_daily_volume = money("200000", "EUR");
    m.allowed_markets = Some(vec!["EUR_USD".into(), "BTC_EUR".into()]);
    m.permitted_actions = Some(vec![Action::TradeExecution]);
    m.trading_hours = hours(
        "08:00",
        "17:00",
        "Europe/Berlin",
        &[Weekday::Mon, Weekday::Fri],
    );
    m
}

fn one(before: &Mandate, after: &Mandate) -> (&'static str, Direction) {
    let c = compare(before, after);
    assert_eq!(c.len(), 1, "{c:#?}");
    (c[0].field, c[0].direction)
}

#[test]
fn the_same_mandate_has_no_changes() {
    assert!(compare(&base(), &base()).is_empty());
    // Markets compare case-insensitively and regardless of order.
    let mut m = base();
    m.allowed_markets = Some(vec!["btc_eur".into(), "eur_usd".into()]);
    assert!(compare(&base(), &m).is_empty());
}

#[test]
fn each_field_narrows_widens_or_changes() {
    use Direction::{Changed, Narrowed, Widened};
    let b = base();
    let with = |f: &dyn Fn(&mut Mandate)| {
        let mut m = base();
        f(&mut m);
        m
    };
    let cases: Vec<(Mandate, &str, Direction)> = vec![
        (
            with(&|m| m.max_transaction_size = money("40000", "EUR")),
            "maxTransactionSize",
            Narrowed,
        ),
        (
            with(&|m| m.max_transaction_size = money("60000", "EUR")),
            "maxTransactionSize",
            Widened,
        ),
        (
            with(&|m| m.max_transaction_size = None),
            "maxTransactionSize",
            Widened,
        ),
        (
            with(&|m| m.max_transaction_size = money("50000", "USD")),
            "maxTransactionSize",
            Changed,
        ),
        (
            with(&|m| m.max_daily_volume = money("100000", "EUR")),
            "maxDailyVolume",
            Narrowed,
        ),
        (
            with(&|m| m.allowed_markets = Some(vec!["EUR_USD".into()])),
            "allowedMarkets",
            Narrowed,
        ),
        (
            with(&|m| {
                m.allowed_markets = Some(vec!["EUR_USD".into(), "BTC_EUR".into(), "ETH_EUR".into()])
            }),
            "allowedMarkets",
            Widened,
        ),
        (
            with(&|m| m.allowed_markets = Some(vec!["EUR_USD".into(), "ETH_EUR".into()])),
            "allowedMarkets",
            Changed,
        ),
        (
            with(&|m| m.allowed_markets = None),
            "allowedMarkets",
            Widened,
        ),
        (
            with(&|m| m.allowed_regions = Some(vec!["EU".into()])),
            "allowedRegions",
            Narrowed,
        ),
        (
            with(&|m| m.permitted_actions = None),
            "permittedActions",
            Widened,
        ),
        (
            with(&|m| m.permitted_actions = Some(vec![])),
            "permittedActions",
            Narrowed,
        ),
        (
            with(&|m| {
                m.trading_hours = hours(
                    "09:00",
                    "17:00",
                    "Europe/Berlin",
                    &[Weekday::Mon, Weekday::Fri],
                )
            }),
            "tradingHours",
            Narrowed,
        ),
        (
            with(&|m| {
                m.trading_hours = hours(
                    "08:00",
                    "17:00",
                    "Europe/Berlin",
                    &[Weekday::Mon, Weekday::Tue, Weekday::Fri],
                )
            }),
            "tradingHours",
            Widened,
        ),
        (
            with(&|m| {
                m.trading_hours = hours(
                    "08:00",
                    "17:00",
                    "America/New_York",
                    &[Weekday::Mon, Weekday::Fri],
                )
            }),
            "tradingHours",
            Changed,
        ),
        (with(&|m| m.trading_hours = None), "tradingHours", Widened),
        (
            with(&|m| m.circuit_breaker_threshold = Threshold::from_basis_points(5000).unwrap()),
            "circuitBreakerThreshold",
            Narrowed,
        ),
        (
            with(&|m| m.max_consecutive_failures = 5),
            "maxConsecutiveFailures",
            Widened,
        ),
        (
            with(&|m| m.revocation_timeout_secs = 5),
            "revocationTimeout",
            Narrowed,
        ),
        (with(&|m| m.on_breach = OnBreach::Warn), "onBreach", Widened),
        (
            with(&|m| m.operator = "Acme Holding Ltd".into()),
            "operator",
            Changed,
        ),
    ];
    for (after, field, direction) in cases {
        assert_eq!(one(&b, &after), (field, direction), "{field}");
        // Only widening changes do not narrow; and the way back is the other way.
        assert_eq!(
            narrows(&compare(&b, &after)),
            direction != Widened,
            "{field}"
        );
        let back = one(&after, &b).1;
        let expected = match direction {
            Narrowed => Widened,
            Widened => Narrowed,
            Changed => Changed,
        };
        assert_eq!(back, expected, "{field} back");
    }
}

#[test]
fn a_window_across_midnight_compares_by_the_minutes_it_opens() {
    let mut night = base();
    night.trading_hours = hours("22:00", "06:00", "UTC", &[Weekday::Sun]);
    let mut shorter = base();
    shorter.trading_hours = hours("23:00", "05:00", "UTC", &[Weekday::Sun]);
    assert_eq!(one(&night, &shorter), ("tradingHours", Direction::Narrowed));
    let c = compare(&night, &shorter);
    assert_eq!(c[0].before, "22:00-06:00 UTC sun");
    assert_eq!(c[0].after, "23:00-05:00 UTC sun");
}

#[test]
fn several_changes_narrow_if_any_does() {
    let mut m = base();
    m.max_transaction_size = money("60000", "EUR");
    m.allowed_markets = Some(vec!["EUR_USD".into()]);
    let c = compare(&base(), &m);
    assert_eq!(c.len(), 2);
    assert!(narrows(&c));
    assert_eq!(c[0].before, "50000 EUR");
    assert_eq!(c[0].after, "60000 EUR");
    assert_eq!(c[1].after, "EUR_USD");
}
