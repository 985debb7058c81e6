//! Shared test helpers: a strategy for arbitrary valid mandates and hex decoding.

#![allow(dead_code)]

use mandate_policy::{Action, Amount, Mandate, Money, Threshold, TimeOfDay, TradingHours, Weekday};
use proptest::collection::btree_set;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::subsequence;

/// Decodes whitespace-separated hex, so test vectors can be laid out by field.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn arb_amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        (0u64..1_000_000).prop_map(|whole| u128::from(whole) * 100_000_000),
        0u128..100_000_000,
        0u128..10u128.pow(26),
    ]
    .prop_map(|units| Amount::from_minor_units(units).unwrap())
}

fn arb_money() -> impl Strategy<Value = Money> {
    (arb_amount(), prop_oneof!["EUR", "USD", "[A-Z]{3}"]).prop_map(|(amount, currency)| Money {
        amount,
        currency: currency.parse().unwrap(),
    })
}

fn arb_list() -> impl Strategy<Value = Vec<String>> {
    // Entries compare case-insensitively: a valid list has no two that differ only in case.
    btree_set("[A-Za-z0-9_.:/-]{1,64}", 0..12)
        .prop_map(|set| {
            let mut seen = std::collections::BTreeSet::new();
            set.into_iter()
                .filter(|e| seen.insert(e.to_ascii_lowercase()))
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

fn arb_hours() -> impl Strategy<Value = TradingHours> {
    (
        (0u16..1440, 0u16..1440).prop_filter("start must differ from end", |(s, e)| s != e),
        "[A-Za-z0-9_+-]{1,20}(/[A-Za-z0-9_+-]{1,20}){0,2}",
        subsequence(Weekday::ALL.to_vec(), 1..=7).prop_shuffle(),
    )
        .prop_map(|((start, end), time_zone, weekdays)| TradingHours {
            start: TimeOfDay::from_minutes(start).unwrap(),
            end: TimeOfDay::from_minutes(end).unwrap(),
            time_zone,
            weekdays,
        })
}

fn arb_actions() -> impl Strategy<Value = Vec<Action>> {
    subsequence(Action::ALL.to_vec(), 0..=6).prop_shuffle()
}

fn arb_risk() -> impl Strategy<Value = (Threshold, Threshold, u32, u32)> {
    (
        (0u16..=10_000).prop_flat_map(|cb| (Just(cb), cb..=10_000)),
        1u32..=1_000,
        1u32..=86_400,
    )
        .prop_map(|((cb, auto), failures, timeout)| {
            (
                Threshold::from_basis_points(cb).unwrap(),
                Threshold::from_basis_points(auto).unwrap(),
                failures,
                timeout,
            )
        })
}

fn arb_limit<T: std::fmt::Debug + Clone>(
    value: impl Strategy<Value = T>,
) -> impl Strategy<Value = mandate_policy::Limit<T>> {
    (value, any::<bool>()).prop_map(|(value, soft)| mandate_policy::Limit {
        value,
        enforcement: if soft {
            mandate_policy::Enforcement::Soft
        } else {
            mandate_policy::Enforcement::Hard
        },
    })
}

/// Version-2 controls, each sometimes present.
pub fn arb_controls() -> impl Strategy<Value = mandate_policy::Controls> {
    use mandate_policy::{
        Controls, ExecutionThrottle, OrderToTradeRatio, OrderType, PositionLimit, PriceCollar,
    };
    (
        (
            option::of(arb_limit(arb_amount())),
            option::of(arb_limit((1u32..=100_000, 1u32..=100_000).prop_map(
                |(b, s)| PriceCollar {
                    buy_bps: b,
                    sell_bps: s,
                },
            ))),
            option::of(1u32..=86_400),
            option::of(arb_limit(1u32..=100_000)),
        ),
        (
            option::of(arb_limit(prop_oneof![
                arb_amount().prop_map(PositionLimit::Quantity),
                arb_money().prop_map(PositionLimit::Value),
            ])),
            option::of(arb_limit(arb_money())),
            option::of(arb_limit(1u32..=1_000_000)),
        ),
        (
            option::of(arb_limit((1u32..=1_000_000, 1u32..=86_400).prop_map(
                |(r, w)| OrderToTradeRatio {
                    max_ratio: r,
                    window_secs: w,
                },
            ))),
            option::of(arb_limit((1u32..=1_000_000, 1u32..=86_400).prop_map(
                |(e, w)| ExecutionThrottle {
                    executions: e,
                    within_secs: w,
                },
            ))),
            option::of(subsequence(OrderType::ALL.to_vec(), 0..=4).prop_shuffle()),
            option::of(any::<bool>()),
        ),
    )
        .prop_map(
            |((q, collar, age, open), (pos, loss, msgs), (otr, throttle, types, short))| Controls {
                max_order_quantity: q,
                price_collar: collar,
                reference_price_max_age: age,
                max_open_orders: open,
                max_net_position: pos,
                max_daily_loss: loss,
                max_messages_per_second: msgs,
                max_order_to_trade_ratio: otr,
                repeated_execution_throttle: throttle,
                allowed_order_types: types,
                short_selling_allowed: short,
            },
        )
}

/// Any valid mandate, version 1 or 2, with every optional field sometimes present.
pub fn arb_mandate() -> impl Strategy<Value = Mandate> {
    (
        arb_mandate_v1(),
        arb_controls(),
        option::of(
            btree_set("[A-Za-z0-9_.:/-]{1,16}", 0..4).prop_flat_map(|markets| {
                let n = markets.len();
                (
                    Just(markets),
                    proptest::collection::vec(
                        arb_controls().prop_filter("a market sets something", |c| !c.is_empty()),
                        n,
                    ),
                )
            }),
        ),
    )
        .prop_filter("markets compare case-insensitively", |(_, _, markets)| {
            markets.as_ref().is_none_or(|(names, _)| {
                let lower: std::collections::BTreeSet<String> =
                    names.iter().map(|n| n.to_ascii_lowercase()).collect();
                lower.len() == names.len()
            })
        })
        .prop_map(|(mut m, controls, markets)| {
            m.controls = controls;
            m.market_controls = markets.map(|(names, controls)| {
                names
                    .into_iter()
                    .zip(controls)
                    .map(|(market, controls)| mandate_policy::MarketControls { market, controls })
                    .collect()
            });
            m
        })
}

/// Any valid version-1 mandate, with every optional field sometimes present and sometimes absent.
pub fn arb_mandate_v1() -> impl Strategy<Value = Mandate> {
    (
        (
            "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
            // Visible text, trimmed (the rule of `human_text`), with non-ASCII letters.
            "[A-Za-z0-9äöüßÉ株&.,'()-]([A-Za-z0-9äöüßÉ株&.,'() -]{0,38}[A-Za-z0-9äöüßÉ株&.,'()-])?",
            option::of("[!-~]([ -~]{0,62}[!-~])?"),
        ),
        (option::of(arb_money()), option::of(arb_money())),
        (
            option::of(arb_list()),
            option::of(arb_list()),
            option::of(arb_list()),
        ),
        (option::of(arb_hours()), option::of(arb_actions())),
        arb_risk(),
    )
        .prop_map(
            |(
                (agent_id, operator, regulator),
                (mut tx, mut daily),
                (markets, counterparties, regions),
                (hours, actions),
                (cb, auto, failures, timeout),
            )| {
                if let (Some(t), Some(d)) = (&tx, &daily)
                    && t.currency == d.currency
                    && t.amount > d.amount
                {
                    std::mem::swap(&mut tx, &mut daily);
                }
                Mandate {
                    agent_id,
                    operator,
                    operator_regulator_id: regulator,
                    max_transaction_size: tx,
                    max_daily_volume: daily,
                    allowed_markets: markets,
                    allowed_counterparties: counterparties,
                    allowed_regions: regions,
                    trading_hours: hours,
                    permitted_actions: actions,
                    circuit_breaker_threshold: cb,
                    auto_revoke_threshold: auto,
                    max_consecutive_failures: failures,
                    revocation_timeout_secs: timeout,
                    // Not in the extension: a mandate that round-trips through DER says revoke.
                    on_breach: mandate_policy::OnBreach::Revoke,
                    controls: mandate_policy::Controls::default(),
                    market_controls: None,
                    rationale: std::collections::BTreeMap::new(),
                }
            },
        )
}

/// A mandate with every optional field set, for deterministic tests.
pub fn full_mandate() -> Mandate {
    serde_json::from_str(FULL_JSON).unwrap()
}

/// The example from the product description, with every field present.
pub const FULL_JSON: &str = r#"{
  "agentId": "trading-bot-v2",
  "operator": "Acme Trading GmbH",
  "operatorRegulatorId": "ESMA-001234",
  "maxTransactionSize": {"amount": "50000", "currency": "EUR"},
  "maxDailyVolume": {"amount": "1000000.50", "currency": "EUR"},
  "allowedMarkets": ["EUR_USD", "BTC_EUR"],
  "allowedCounterparties": ["exchange_a"],
  "allowedRegions": ["eu-west-1"],
  "tradingHours": {"start": "08:00", "end": "17:00", "timeZone": "UTC",
                   "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
  "permittedActions": ["trade_execution", "data_access"],
  "circuitBreakerThreshold": 0.75,
  "autoRevokeThreshold": 0.85,
  "maxConsecutiveFailures": 3,
  "revocationTimeout": 15
}"#;
