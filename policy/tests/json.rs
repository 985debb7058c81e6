//! JSON form of the mandate: round trips, defaults and rejections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{FULL_JSON, full_mandate};
use mandate_policy::{Action, Mandate, PolicyError, Weekday};
use serde_json::{Value, json};

fn parse(value: &Value) -> Result<Mandate, serde_json::Error> {
    serde_json::from_value(value.clone())
}

fn base() -> Value {
    json!({"agentId": "trading-bot-v2", "operator": "Acme Trading GmbH"})
}

fn with(field: &str, value: Value) -> Value {
    let mut v = base();
    v[field] = value;
    v
}

#[test]
fn full_example_parses_and_round_trips() {
    let m = full_mandate();
    assert_eq!(m.agent_id, "trading-bot-v2");
    assert_eq!(m.operator_regulator_id.as_deref(), Some("ESMA-001234"));
    let daily = m.max_daily_volume.as_ref().unwrap();
    assert_eq!(daily.amount.to_string(), "1000000.5");
    assert_eq!(daily.currency.as_str(), "EUR");
    let hours = m.trading_hours.as_ref().unwrap();
    assert_eq!(hours.start.minutes(), 8 * 60);
    assert_eq!(hours.weekdays[4], Weekday::Fri);
    assert_eq!(
        m.permitted_actions,
        Some(vec![Action::TradeExecution, Action::DataAccess])
    );

    let out = serde_json::to_value(&m).unwrap();
    let mut expected: Value = serde_json::from_str(FULL_JSON).unwrap();
    // Amounts come back in canonical form.
    expected["maxDailyVolume"]["amount"] = json!("1000000.5");
    assert_eq!(out, expected);
    assert_eq!(serde_json::from_value::<Mandate>(out).unwrap(), m);
}

#[test]
fn minimal_mandate_gets_defaults_and_omits_absent_fields() {
    let m = parse(&base()).unwrap();
    assert_eq!(m, Mandate::new("trading-bot-v2", "Acme Trading GmbH"));
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        r#"{"agentId":"trading-bot-v2","operator":"Acme Trading GmbH","circuitBreakerThreshold":0.75,"autoRevokeThreshold":0.85,"maxConsecutiveFailures":3,"revocationTimeout":15}"#
    );
}

#[test]
fn explicit_null_means_absent_and_empty_list_means_nothing_allowed() {
    let m = parse(&with("allowedMarkets", Value::Null)).unwrap();
    assert_eq!(m.allowed_markets, None);
    let m = parse(&with("allowedMarkets", json!([]))).unwrap();
    assert_eq!(m.allowed_markets, Some(vec![]));
    assert_eq!(
        serde_json::to_value(&m).unwrap()["allowedMarkets"],
        json!([])
    );
}

#[test]
fn amounts_accept_numbers() {
    let m = parse(&with(
        "maxTransactionSize",
        json!({"amount": 50000, "currency": "EUR"}),
    ))
    .unwrap();
    assert_eq!(
        m.max_transaction_size.unwrap().amount,
        "50000.00".parse().unwrap()
    );
}

#[test]
fn rejections() {
    let markets_257: Vec<String> = (0..257).map(|i| format!("M{i}")).collect();
    let markets_256: Vec<String> = (0..256).map(|i| format!("M{i}")).collect();
    assert!(parse(&with("allowedMarkets", json!(markets_256))).is_ok());

    let cases: Vec<(&str, Value)> = vec![
        ("unknown field", with("maxLeverage", json!(10))),
        (
            "unknown nested field",
            with(
                "maxTransactionSize",
                json!({"amount": "1", "currency": "EUR", "x": 1}),
            ),
        ),
        ("snake_case name", with("agent_id", json!("x"))),
        (
            "bad currency",
            with(
                "maxTransactionSize",
                json!({"amount": "1", "currency": "eur"}),
            ),
        ),
        (
            "4-letter currency",
            with(
                "maxTransactionSize",
                json!({"amount": "1", "currency": "EURO"}),
            ),
        ),
        (
            "negative amount string",
            with(
                "maxTransactionSize",
                json!({"amount": "-1", "currency": "EUR"}),
            ),
        ),
        (
            "negative amount number",
            with("maxDailyVolume", json!({"amount": -5, "currency": "EUR"})),
        ),
        (
            "9 fraction digits",
            with(
                "maxDailyVolume",
                json!({"amount": "0.000000001", "currency": "EUR"}),
            ),
        ),
        ("threshold > 1", with("autoRevokeThreshold", json!(1.5))),
        (
            "threshold < 0",
            with("circuitBreakerThreshold", json!(-0.1)),
        ),
        (
            "threshold 5 decimals",
            with("circuitBreakerThreshold", json!(0.12345)),
        ),
        (
            "threshold as string",
            with("circuitBreakerThreshold", json!("0.75")),
        ),
        ("auto < circuit", with("autoRevokeThreshold", json!(0.5))),
        (
            "duplicate market",
            with("allowedMarkets", json!(["EUR_USD", "EUR_USD"])),
        ),
        ("257 markets", with("allowedMarkets", json!(markets_257))),
        (
            "market with space",
            with("allowedMarkets", json!(["EUR USD"])),
        ),
        ("empty region", with("allowedRegions", json!([""]))),
        (
            "duplicate action",
            with("permittedActions", json!(["api_call", "api_call"])),
        ),
        (
            "unknown action",
            with("permittedActions", json!(["withdraw_funds"])),
        ),
        (
            "bad agent id (uppercase)",
            with("agentId", json!("Trading-Bot")),
        ),
        (
            "bad agent id (leading dash)",
            with("agentId", json!("-bot")),
        ),
        (
            "bad agent id (too long)",
            with("agentId", json!("a".repeat(64))),
        ),
        ("bad agent id (null)", with("agentId", Value::Null)),
        ("empty operator", with("operator", json!(""))),
        (
            "operator with control char",
            with("operator", json!("Acme\u{7}")),
        ),
        (
            "regulator id non-ASCII",
            with("operatorRegulatorId", json!("ÉSMA-1")),
        ),
        ("zero failures", with("maxConsecutiveFailures", json!(0))),
        ("1001 failures", with("maxConsecutiveFailures", json!(1001))),
        (
            "timeout as duration string",
            with("revocationTimeout", json!("15s")),
        ),
        ("timeout too long", with("revocationTimeout", json!(86_401))),
        ("timeout negative", with("revocationTimeout", json!(-1))),
        (
            "equal start/end",
            with(
                "tradingHours",
                json!({"start": "08:00", "end": "08:00", "timeZone": "UTC", "weekdays": ["mon"]}),
            ),
        ),
        (
            "no weekdays",
            with(
                "tradingHours",
                json!({"start": "08:00", "end": "17:00", "timeZone": "UTC", "weekdays": []}),
            ),
        ),
        ("tx > daily", {
            let mut v = with(
                "maxTransactionSize",
                json!({"amount": "2", "currency": "EUR"}),
            );
            v["maxDailyVolume"] = json!({"amount": "1", "currency": "EUR"});
            v
        }),
    ];
    for (name, value) in &cases {
        assert!(parse(value).is_err(), "{name}: accepted {value}");
    }

    let mut missing = base();
    missing.as_object_mut().unwrap().remove("operator");
    assert!(parse(&missing).is_err());
}

#[test]
fn errors_name_the_field() {
    let err = parse(&with("agentId", json!("Bad Id"))).unwrap_err();
    assert!(err.to_string().contains("agentId"), "{err}");
    let err = parse(&with("autoRevokeThreshold", json!(0.5))).unwrap_err();
    assert!(err.to_string().contains("autoRevokeThreshold"), "{err}");
}

#[test]
fn validate_reports_policy_error() {
    let mut m = Mandate::new("bot", "Acme");
    m.allowed_markets = Some(vec!["A".into(), "A".into()]);
    assert!(matches!(
        m.validate(),
        Err(PolicyError::Invalid {
            field: "allowedMarkets",
            ..
        })
    ));
}
