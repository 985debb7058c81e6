//! Mandate version 2 (the RTS 6 controls): JSON forms, bounds, the DER version, and how a
//! change of a control counts when versions are compared.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mandate_policy::{Enforcement, Mandate, OrderType, compare, narrows};
use serde_json::json;

fn mandate(extra: serde_json::Value) -> Result<Mandate, serde_json::Error> {
    let mut m = json!({"agentId": "bot-1", "operator": "Acme Ltd"});
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    serde_json::from_value(m)
}

/// The `version` INTEGER's three bytes, after the outer SEQUENCE's header.
fn version_bytes(der: &[u8]) -> [u8; 3] {
    let header = if der[1] & 0x80 == 0 {
        2
    } else {
        2 + usize::from(der[1] & 0x7f)
    };
    [der[header], der[header + 1], der[header + 2]]
}

fn full_v2() -> serde_json::Value {
    json!({
        "maxOrderQuantity": "2.5",
        "priceCollar": {"value": {"buyBps": 150, "sellBps": 200}, "enforcement": "soft"},
        "referencePriceMaxAge": 5,
        "maxOpenOrders": 20,
        "maxNetPosition": {"quantity": "10"},
        "maxDailyLoss": {"value": {"amount": "5000", "currency": "EUR"}, "enforcement": "hard"},
        "maxMessagesPerSecond": {"value": 50, "enforcement": "soft"},
        "maxOrderToTradeRatio": {"maxRatio": 20, "windowSecs": 3600},
        "repeatedExecutionThrottle": {"executions": 10, "withinSecs": 60},
        "allowedOrderTypes": ["limit", "stop_limit"],
        "shortSellingAllowed": false,
        "marketControls": [
            {"market": "BTC_EUR", "controls": {"maxOrderQuantity": "0.5",
                                               "maxNetPosition": {"value": {"amount": "100000", "currency": "EUR"}}}}
        ],
        "rationale": {"maxOrderQuantity": "twice the desk's largest fill in 2026"}
    })
}

#[test]
fn limits_are_hard_by_default_and_soft_when_said() {
    let m = mandate(full_v2()).unwrap();
    let q = m.controls.max_order_quantity.as_ref().unwrap();
    assert_eq!(
        (q.value.to_string(), q.enforcement),
        ("2.5".into(), Enforcement::Hard)
    );
    assert_eq!(
        m.controls.price_collar.as_ref().unwrap().enforcement,
        Enforcement::Soft
    );
    assert_eq!(
        m.controls.allowed_order_types,
        Some(vec![OrderType::Limit, OrderType::StopLimit])
    );
    // Serialized: a hard limit is its value, a soft one is wrapped; the same JSON comes back.
    let out = serde_json::to_value(&m).unwrap();
    assert_eq!(out["maxOrderQuantity"], "2.5");
    assert_eq!(
        out["maxDailyLoss"],
        json!({"amount": "5000", "currency": "EUR"})
    );
    assert_eq!(
        out["maxMessagesPerSecond"],
        json!({"value": 50, "enforcement": "soft"})
    );
    assert_eq!(serde_json::from_value::<Mandate>(out).unwrap(), m);
    assert!(m.is_v2());
    assert!(!mandate(json!({})).unwrap().is_v2());
}

#[test]
fn version_2_round_trips_through_der_and_version_1_stays_version_1() {
    let v2 = mandate(full_v2()).unwrap();
    let der = v2.to_der().unwrap();
    assert_eq!(version_bytes(&der), [0x02, 0x01, 0x02], "version 2");
    let back = Mandate::from_der(&der).unwrap();
    // The rationale stays with the mandate version, not in the certificate.
    let mut expected = v2.clone();
    expected.rationale.clear();
    assert_eq!(back, expected);
    let v1 = mandate(json!({"maxTransactionSize": {"amount": "10", "currency": "EUR"}})).unwrap();
    assert_eq!(
        version_bytes(&v1.to_der().unwrap()),
        [0x02, 0x01, 0x01],
        "version 1"
    );
    // A rationale alone does not make a version 2.
    let explained = mandate(json!({"rationale": {"operator": "the desk's legal entity"}})).unwrap();
    assert_eq!(
        version_bytes(&explained.to_der().unwrap()),
        [0x02, 0x01, 0x01]
    );
    // The seed the fuzz target starts from for version 2 (fuzz/seeds/mandate_der/full-v2.der).
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds/mandate_der/full-v2.der");
    assert_eq!(
        std::fs::read(&seed).ok(),
        Some(der),
        "rewrite {}",
        seed.display()
    );
}

#[test]
fn bounds_are_checked_by_name() {
    for (extra, field) in [
        (
            json!({"priceCollar": {"buyBps": 0, "sellBps": 10}}),
            "priceCollar.buyBps",
        ),
        (json!({"maxOpenOrders": 0}), "maxOpenOrders"),
        (
            json!({"referencePriceMaxAge": 86_401}),
            "referencePriceMaxAge",
        ),
        (
            json!({"maxOrderToTradeRatio": {"maxRatio": 5, "windowSecs": 0}}),
            "maxOrderToTradeRatio.windowSecs",
        ),
        (
            json!({"repeatedExecutionThrottle": {"executions": 0, "withinSecs": 10}}),
            "repeatedExecutionThrottle.executions",
        ),
        (
            json!({"allowedOrderTypes": ["limit", "limit"]}),
            "allowedOrderTypes",
        ),
        (
            json!({"marketControls": [{"market": "BTC_EUR", "controls": {"maxOpenOrders": 1}},
                                      {"market": "btc_eur", "controls": {"maxOpenOrders": 2}}]}),
            "marketControls",
        ),
        (
            json!({"marketControls": [{"market": "BTC_EUR", "controls": {}}]}),
            "marketControls",
        ),
    ] {
        let e = mandate(extra.clone()).unwrap_err().to_string();
        assert!(e.contains(field), "{extra}: {e}");
    }
    for bad in [
        json!({"maxOrderQuantity": {"value": "1", "enforcement": "sometimes"}}),
        json!({"maxNetPosition": {"quantity": "1", "value": {"amount": "1", "currency": "EUR"}}}),
        json!({"allowedOrderTypes": ["iceberg"]}),
    ] {
        assert!(mandate(bad.clone()).is_err(), "{bad}");
    }
}

#[test]
fn a_changed_control_counts_as_narrowing() {
    let before = mandate(full_v2()).unwrap();
    let mut after = before.clone();
    after.controls.max_open_orders = None;
    let c = compare(&before, &after);
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(c[0].field, "maxOpenOrders");
    assert!(narrows(&c));
    let mut markets = before.clone();
    markets.market_controls = None;
    assert_eq!(compare(&before, &markets)[0].field, "marketControls");
}
