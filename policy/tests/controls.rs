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

/// `full_v2()` with `changes` applied (a key set to null is removed).
fn changed(changes: serde_json::Value) -> Mandate {
    let mut v = full_v2();
    for (k, x) in changes.as_object().unwrap() {
        if x.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = x.clone();
        }
    }
    mandate(v).unwrap()
}

#[test]
fn each_control_narrows_widens_or_changes_by_its_own_order() {
    use mandate_policy::Direction::{self, Changed, Narrowed, Widened};
    let before = mandate(full_v2()).unwrap();
    let cases: Vec<(serde_json::Value, &str, Direction)> = vec![
        (
            json!({"maxOrderQuantity": "2"}),
            "maxOrderQuantity",
            Narrowed,
        ),
        (
            json!({"maxOrderQuantity": "3"}),
            "maxOrderQuantity",
            Widened,
        ),
        (
            json!({"maxOrderQuantity": null}),
            "maxOrderQuantity",
            Widened,
        ),
        // The same value, soft instead of hard: wider.
        (
            json!({"maxOrderQuantity": {"value": "2.5", "enforcement": "soft"}}),
            "maxOrderQuantity",
            Widened,
        ),
        // Hard, and a looser collar: one way each.
        (
            json!({"priceCollar": {"buyBps": 300, "sellBps": 300}}),
            "priceCollar",
            Changed,
        ),
        (
            json!({"priceCollar": {"value": {"buyBps": 100, "sellBps": 200}, "enforcement": "soft"}}),
            "priceCollar",
            Narrowed,
        ),
        (
            json!({"priceCollar": {"value": {"buyBps": 100, "sellBps": 250}, "enforcement": "soft"}}),
            "priceCollar",
            Changed,
        ),
        (
            json!({"referencePriceMaxAge": 2}),
            "referencePriceMaxAge",
            Narrowed,
        ),
        // Absent is the default age (60 s): longer than 5 s.
        (
            json!({"referencePriceMaxAge": null}),
            "referencePriceMaxAge",
            Widened,
        ),
        (json!({"maxOpenOrders": 10}), "maxOpenOrders", Narrowed),
        (json!({"maxOpenOrders": null}), "maxOpenOrders", Widened),
        (
            json!({"maxNetPosition": {"quantity": "20"}}),
            "maxNetPosition",
            Widened,
        ),
        (
            json!({"maxNetPosition": {"value": {"amount": "1", "currency": "EUR"}}}),
            "maxNetPosition",
            Changed,
        ),
        (
            json!({"maxDailyLoss": {"amount": "4000", "currency": "EUR"}}),
            "maxDailyLoss",
            Narrowed,
        ),
        (
            json!({"maxDailyLoss": {"amount": "4000", "currency": "USD"}}),
            "maxDailyLoss",
            Changed,
        ),
        (
            json!({"maxMessagesPerSecond": 50}),
            "maxMessagesPerSecond",
            Narrowed,
        ),
        (
            json!({"maxMessagesPerSecond": {"value": 100, "enforcement": "soft"}}),
            "maxMessagesPerSecond",
            Widened,
        ),
        (
            json!({"maxOrderToTradeRatio": {"maxRatio": 10, "windowSecs": 3600}}),
            "maxOrderToTradeRatio",
            Narrowed,
        ),
        (
            json!({"maxOrderToTradeRatio": {"maxRatio": 20, "windowSecs": 60}}),
            "maxOrderToTradeRatio",
            Changed,
        ),
        // Fewer executions, or a longer window, trip the throttle sooner.
        (
            json!({"repeatedExecutionThrottle": {"executions": 5, "withinSecs": 60}}),
            "repeatedExecutionThrottle",
            Narrowed,
        ),
        (
            json!({"repeatedExecutionThrottle": {"executions": 10, "withinSecs": 120}}),
            "repeatedExecutionThrottle",
            Narrowed,
        ),
        (
            json!({"repeatedExecutionThrottle": {"executions": 10, "withinSecs": 30}}),
            "repeatedExecutionThrottle",
            Widened,
        ),
        (
            json!({"repeatedExecutionThrottle": {"executions": 20, "withinSecs": 120}}),
            "repeatedExecutionThrottle",
            Changed,
        ),
        (
            json!({"allowedOrderTypes": ["limit"]}),
            "allowedOrderTypes",
            Narrowed,
        ),
        (
            json!({"allowedOrderTypes": ["limit", "stop_limit", "market"]}),
            "allowedOrderTypes",
            Widened,
        ),
        (
            json!({"allowedOrderTypes": ["market"]}),
            "allowedOrderTypes",
            Changed,
        ),
        (
            json!({"shortSellingAllowed": true}),
            "shortSellingAllowed",
            Widened,
        ),
        // A market's own value replaces the default there: 0.5 to 1 widens in BTC_EUR.
        (
            json!({"marketControls": [{"market": "BTC_EUR", "controls": {"maxOrderQuantity": "1",
            "maxNetPosition": {"value": {"amount": "100000", "currency": "EUR"}}}}]}),
            "marketControls",
            Widened,
        ),
        // A new market of its own, below the default: narrower there.
        (
            json!({"marketControls": [{"market": "BTC_EUR", "controls": {"maxOrderQuantity": "0.5",
            "maxNetPosition": {"value": {"amount": "100000", "currency": "EUR"}}}},
            {"market": "ETH_EUR", "controls": {"maxOrderQuantity": "1"}}]}),
            "marketControls",
            Narrowed,
        ),
        // A counting limit of a market's own is one more limit.
        (
            json!({"marketControls": [{"market": "BTC_EUR", "controls": {"maxOrderQuantity": "0.5",
            "maxNetPosition": {"value": {"amount": "100000", "currency": "EUR"}}, "maxOpenOrders": 30}}]}),
            "marketControls",
            Narrowed,
        ),
    ];
    for (change, field, direction) in cases {
        let after = changed(change.clone());
        let c = compare(&before, &after);
        assert_eq!(c.len(), 1, "{change}: {c:#?}");
        assert_eq!(
            (c[0].field, c[0].direction),
            (field, direction),
            "{change}: {c:#?}"
        );
        assert_eq!(narrows(&c), direction != Widened, "{change}");
    }
    // A market's own value may widen down to the default's.
    let same = changed(
        json!({"marketControls": [{"market": "BTC_EUR", "controls": {"maxOrderQuantity": "2.5",
        "maxNetPosition": {"value": {"amount": "100000", "currency": "EUR"}}}}]}),
    );
    let c = compare(&before, &same);
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(
        c[0].direction, Widened,
        "0.5 to the default 2.5 widens BTC_EUR: {c:#?}"
    );
    // A market's own value stated equal to the default changes nothing in force.
    let mut no_own = full_v2();
    no_own["marketControls"] = json!([{"market": "BTC_EUR", "controls":
        {"maxNetPosition": {"value": {"amount": "100000", "currency": "EUR"}}}}]);
    let no_own = mandate(no_own).unwrap();
    let mut stated = no_own.clone();
    stated.market_controls.as_mut().unwrap()[0]
        .controls
        .max_order_quantity = no_own.controls.max_order_quantity.clone();
    assert!(
        compare(&no_own, &stated).is_empty(),
        "{:#?}",
        compare(&no_own, &stated)
    );
    // Widening several controls together only widens; one narrowing among them narrows.
    let wider =
        changed(json!({"maxOrderQuantity": "5", "maxOpenOrders": 40, "shortSellingAllowed": true}));
    assert!(!narrows(&compare(&before, &wider)));
    let mixed = changed(json!({"maxOrderQuantity": "5", "maxOpenOrders": 4}));
    assert!(narrows(&compare(&before, &mixed)));
}
