//! The schemas of the domain's types that several operations share (a mandate, an amount, an
//! order, an event), registered for the API document under their written names.

/// The shared schemas, for the API document (`GET /v1/openapi.json`): each derived from the type
/// the daemon reads and writes it with (what each contains comes along).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    mandate_policy::Mandate,
    mandate_policy::Amount,
    mandate_policy::Time,
    mandate_policy::OrderJson,
    crate::behaviour::EventInput,
    crate::behaviour::OverrideView,
    mandate_policy::Baseline,
    mandate_policy::Contribution,
    mandate_policy::FieldChange,
)))]
pub struct Doc;

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use utoipa::OpenApi;

    /// Whether `value` validates against `#/components/schemas/{name}` of the shared schemas.
    fn accepts(name: &str, value: &Value) -> bool {
        let mut root = serde_json::to_value(super::Doc::openapi()).unwrap_or_default();
        root["$ref"] = Value::String(format!("#/components/schemas/{name}"));
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
        validator.is_valid(value)
    }

    #[test]
    fn every_example_of_the_shared_schemas_is_one_they_accept() {
        let mut root = serde_json::to_value(super::Doc::openapi()).unwrap_or_default();
        mandate_testkit::close_objects(&mut root);
        let schemas = root["components"]["schemas"].clone();
        let mut checked = 0;
        for (name, schema) in schemas.as_object().into_iter().flatten() {
            for example in schema["examples"].as_array().into_iter().flatten() {
                root["$ref"] = Value::String(format!("#/components/schemas/{name}"));
                let validator = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .build(&root)
                    .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
                let errors: Vec<String> = validator
                    .iter_errors(example)
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "{name}: {example} fails: {errors:?}");
                checked += 1;
            }
        }
        assert!(checked >= 6, "{checked} examples");
        for (name, shown) in [
            ("Mandate", "agentId"),
            ("Order", "action"),
            ("Event", "agent_id"),
        ] {
            let example = &schemas[name]["examples"][0];
            assert!(example.get(shown).is_some(), "{name} shows no example");
        }
        let m = &schemas["Mandate"]["examples"][0];
        assert!(serde_json::from_value::<mandate_policy::Mandate>(m.clone()).is_ok());
        let o = &schemas["Order"]["examples"][0];
        assert!(serde_json::from_value::<mandate_policy::OrderJson>(o.clone()).is_ok());
        let e = &schemas["Event"]["examples"][0];
        assert!(serde_json::from_value::<crate::behaviour::EventInput>(e.clone()).is_ok());
    }

    fn mandate(extra: Value) -> Value {
        let mut m = json!({"agentId": "bot-1", "operator": "Acme Trading GmbH"});
        for (k, v) in extra.as_object().into_iter().flatten() {
            m[k] = v.clone();
        }
        m
    }

    #[test]
    fn the_mandate_schema_accepts_what_serde_reads_and_writes() {
        let good = [
            mandate(json!({})),
            mandate(json!({
                "operatorRegulatorId": "ESMA-001234 (FR)",
                "maxTransactionSize": {"amount": 50000, "currency": "EUR"},
                "maxDailyVolume": {"amount": "1000000.5", "currency": "EUR"},
                "allowedMarkets": [], "allowedCounterparties": ["exchange_a"],
                "allowedRegions": ["eu-west-1", "BTC/EUR:spot-1.0"],
                "tradingHours": {"start": "22:00", "end": "06:00", "timeZone": "Etc/GMT+5",
                                 "weekdays": ["fri", "sun"]},
                "permittedActions": ["trade_execution", "data_mutation"],
                "circuitBreakerThreshold": 0, "autoRevokeThreshold": 1,
                "maxConsecutiveFailures": 1000, "revocationTimeout": 86400, "onBreach": "warn",
                "maxOrderQuantity": {"value": "2.5", "enforcement": "soft"},
                "priceCollar": {"buyBps": 1, "sellBps": 100000},
                "referencePriceMaxAge": 86400,
                "maxOpenOrders": 100000,
                "maxNetPosition": {"value": {"value": {"amount": "5", "currency": "EUR"}}},
                "maxDailyLoss": {"value": {"amount": "1", "currency": "USD"}, "enforcement": "hard"},
                "maxMessagesPerSecond": {"value": 1000000},
                "maxOrderToTradeRatio": {"maxRatio": 50, "windowSecs": 3600},
                "repeatedExecutionThrottle": {"value": {"executions": 3, "withinSecs": 60}, "enforcement": "soft"},
                "allowedOrderTypes": ["market", "stop_limit"],
                "shortSellingAllowed": false,
                "marketControls": [{"market": "ETH_EUR", "controls": {"maxNetPosition": {"quantity": 10}}}],
                "rationale": {"maxOrderQuantity": "Twice the back-test's largest order\nper desk"}
            })),
            // Absent and null read alike.
            mandate(json!({"maxDailyVolume": null, "tradingHours": null, "maxOpenOrders": null})),
        ];
        for m in &good {
            let read: mandate_policy::Mandate = serde_json::from_value(m.clone())
                .unwrap_or_else(|e| panic!("serde refuses {m}: {e}"));
            assert!(accepts("Mandate", m), "the schema refuses {m}");
            let written = serde_json::to_value(&read).unwrap_or_default();
            assert!(
                accepts("Mandate", &written),
                "the schema refuses what is written: {written}"
            );
        }
        let bad = [
            json!({"agentId": "bot-1"}),
            mandate(json!({"agentId": "Bot"})),
            mandate(json!({"operator": ""})),
            mandate(json!({"unknown": 1})),
            mandate(json!({"operatorRegulatorId": " ESMA"})),
            mandate(json!({"maxTransactionSize": {"amount": "-1", "currency": "EUR"}})),
            mandate(json!({"maxTransactionSize": {"amount": "1", "currency": "eur"}})),
            mandate(json!({"maxTransactionSize": {"amount": "01", "currency": "EUR"}})),
            mandate(json!({"maxTransactionSize": {"amount": "1", "currency": "EUR", "x": 1}})),
            mandate(json!({"allowedMarkets": ["EUR USD"]})),
            mandate(json!({"allowedMarkets": ["A", "A"]})),
            mandate(
                json!({"tradingHours": {"start": "24:00", "end": "06:00", "timeZone": "UTC", "weekdays": ["mon"]}}),
            ),
            mandate(
                json!({"tradingHours": {"start": "08:00", "end": "16:00", "timeZone": "UTC", "weekdays": []}}),
            ),
            mandate(
                json!({"tradingHours": {"start": "08:00", "end": "16:00", "timeZone": "UTC//X", "weekdays": ["mon"]}}),
            ),
            mandate(json!({"permittedActions": ["trade"]})),
            mandate(json!({"circuitBreakerThreshold": 1.5})),
            mandate(json!({"maxConsecutiveFailures": 0})),
            mandate(json!({"revocationTimeout": 86401})),
            mandate(json!({"onBreach": "ignore"})),
            mandate(json!({"onBreach": null})),
            mandate(json!({"maxOrderQuantity": {"value": "2", "enforcement": "loose"}})),
            mandate(json!({"maxOrderQuantity": {"value": "2", "extra": 1}})),
            mandate(json!({"priceCollar": {"buyBps": 0, "sellBps": 1}})),
            mandate(json!({"maxOpenOrders": 100001})),
            mandate(
                json!({"maxNetPosition": {"quantity": "1", "value": {"amount": "1", "currency": "EUR"}}}),
            ),
            mandate(
                json!({"maxNetPosition": {"value": {"amount": "1", "currency": "EUR"}, "enforcement": "soft"}}),
            ),
            mandate(json!({"maxOrderToTradeRatio": {"maxRatio": 5, "windowSecs": 86401}})),
            mandate(json!({"allowedOrderTypes": ["iceberg"]})),
            mandate(
                json!({"marketControls": [{"market": "ETH EUR", "controls": {"maxOpenOrders": 1}}]}),
            ),
            mandate(
                json!({"marketControls": [{"market": "ETH_EUR", "controls": {"agentId": "x"}}]}),
            ),
            mandate(json!({"rationale": {"maxOrderQuantity": ""}})),
        ];
        for m in &bad {
            assert!(
                serde_json::from_value::<mandate_policy::Mandate>(m.clone()).is_err(),
                "serde reads {m}"
            );
            assert!(!accepts("Mandate", m), "the schema accepts {m}");
        }
    }

    #[test]
    fn the_order_schema_accepts_what_serde_reads_and_writes() {
        let good = [
            json!({"action": "api_call"}),
            json!({"action": "trade_execution", "market": "BTC_EUR", "counterparty": "exchange_a",
                   "region": "eu-west-1", "size": 25000, "currency": "EUR", "side": "sell",
                   "timestamp": "2026-12-07T10:00:00Z", "quantity": "0.5", "price": 50000.5,
                   "order_type": "stop_limit", "client_order_id": "ord-42", "intent": "cancel"}),
            json!({"action": "trade_execution", "timestamp": 1_796_637_600, "market": null}),
        ];
        for o in &good {
            let read: mandate_policy::OrderJson = serde_json::from_value(o.clone())
                .unwrap_or_else(|e| panic!("serde refuses {o}: {e}"));
            assert!(read.to_order(0).is_ok(), "{o}");
            assert!(accepts("Order", o), "the schema refuses {o}");
            let mut written = serde_json::to_value(&read).unwrap_or_default();
            written["decision_id"] = json!(format!("dec_{}", "0a".repeat(16)));
            assert!(
                accepts("Order", &written),
                "the schema refuses what is signed: {written}"
            );
        }
        let bad = [
            json!({}),
            json!({"action": "trade"}),
            json!({"action": "api_call", "extra": 1}),
            json!({"action": "api_call", "size": "1e3"}),
            json!({"action": "api_call", "timestamp": -1}),
            json!({"action": "api_call", "side": "long"}),
            json!({"action": "api_call", "intent": "replace"}),
        ];
        for o in &bad {
            assert!(
                serde_json::from_value::<mandate_policy::OrderJson>(o.clone()).is_err(),
                "serde reads {o}"
            );
            assert!(!accepts("Order", o), "the schema accepts {o}");
        }
        // `format: date-time` is an annotation to a JSON Schema 2020-12 validator: a text that is
        // not RFC 3339 is refused by serde, not by every validator.
        assert!(
            serde_json::from_value::<mandate_policy::OrderJson>(
                json!({"action": "api_call", "timestamp": "yesterday"})
            )
            .is_err()
        );
        // Read, then refused by the order's own checks.
        for o in [
            json!({"action": "api_call", "market": ""}),
            json!({"action": "api_call", "market": "BTC EUR"}),
            json!({"action": "api_call", "region": "eu\u{1680}west"}),
            json!({"action": "api_call", "client_order_id": "x".repeat(65)}),
        ] {
            let read: mandate_policy::OrderJson =
                serde_json::from_value(o.clone()).unwrap_or_else(|e| panic!("{o}: {e}"));
            assert!(read.to_order(0).is_err(), "{o}");
            assert!(!accepts("Order", &o), "the schema accepts {o}");
        }
        // What the checks let through, the schema does too (a BOM is not a space to Rust).
        let o = json!({"action": "api_call", "market": "BTC\u{feff}EUR"});
        let read: mandate_policy::OrderJson =
            serde_json::from_value(o.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert!(read.to_order(0).is_ok());
        assert!(accepts("Order", &o));
    }

    #[test]
    fn the_event_schema_accepts_what_serde_reads() {
        let good = [
            json!({"agent_id": "bot-1", "action": "data_access"}),
            json!({"agent_id": "bot-1", "action": "trade_execution", "market": "BTC_EUR",
                   "size": "100", "currency": "EUR", "side": "buy", "counterparty": "x",
                   "region": "eu", "timestamp": 1_796_637_600, "success": false,
                   "quantity": 1, "price": "2", "order_type": "market", "realised_pnl": -120.5,
                   "order_state": "partially_filled", "client_order_id": "o-1",
                   "fill_quantity": "0.5", "fill_price": 3,
                   "decision_id": format!("dec_{}", "ab".repeat(16))}),
            json!({"agent_id": "bot-1", "action": "trade_execution", "realised_pnl": "-0.5"}),
        ];
        for e in &good {
            assert!(
                serde_json::from_value::<crate::behaviour::EventInput>(e.clone()).is_ok(),
                "serde refuses {e}"
            );
            assert!(accepts("Event", e), "the schema refuses {e}");
        }
        let bad = [
            json!({"agent_id": "bot-1"}),
            json!({"agent_id": "bot-1", "action": null}),
            json!({"agent_id": "bot-1", "action": "api_call", "extra": 1}),
            json!({"agent_id": "bot-1", "action_type": "api_call", "metadata": {}}),
            json!({"agent_id": "bot-1", "action": "api_call", "metadata": {}}),
            json!({"agent_id": "bot-1", "action": "api_call", "realised_pnl": "--1"}),
            json!({"agent_id": "bot-1", "action": "api_call", "order_state": "open"}),
            json!({"agent_id": "bot-1", "action": "api_call", "currency": "euro"}),
        ];
        for e in &bad {
            assert!(
                serde_json::from_value::<crate::behaviour::EventInput>(e.clone()).is_err(),
                "serde reads {e}"
            );
            assert!(!accepts("Event", e), "the schema accepts {e}");
        }
        // Read, then refused by the ingestion's checks.
        for e in [
            json!({"agent_id": "", "action": "api_call"}),
            json!({"agent_id": "bot-1", "action": "api_call", "market": "a b"}),
            json!({"agent_id": "bot-1", "action": "api_call", "decision_id": "dec_1"}),
        ] {
            assert!(!accepts("Event", &e), "the schema accepts {e}");
        }
    }

    #[test]
    fn the_scalars_are_what_their_types_read() {
        for (v, ok) in [
            (json!("0"), true),
            (json!("50000.00"), true),
            (json!("999999999999999999.99999999"), true),
            (json!(0.25), true),
            (json!("1000000000000000000"), false),
            (json!("0.123456789"), false),
            (json!(".5"), false),
            (json!("-1"), false),
            (json!(-1), false),
            (json!(true), false),
        ] {
            assert_eq!(
                serde_json::from_value::<mandate_policy::Amount>(v.clone()).is_ok(),
                ok,
                "{v}"
            );
            assert_eq!(accepts("Amount", &v), ok, "{v}");
        }
        for (v, ok) in [
            (json!(0), true),
            (json!(mandate_policy::TIME_MAX), true),
            (json!("2026-12-07T10:00:00+01:00"), true),
            (json!(-1), false),
            (json!(mandate_policy::TIME_MAX + 1), false),
            (json!(1.5), false),
        ] {
            assert_eq!(accepts("Time", &v), ok, "{v}");
        }
    }
}
