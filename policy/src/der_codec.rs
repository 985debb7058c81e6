//! DER form of a [`Mandate`]; the ASN.1 module is `docs/mandate-extension.asn1`.
//!
//! Encoding goes through private wire structs derived with `der`. Decoding is
//! made strict in two layers: each value is converted back into the validating
//! domain types (so e.g. a non-canonical amount is refused by name), and the
//! result is re-encoded and compared byte for byte with the input. The second
//! layer is what rejects anything the `der` derive would otherwise tolerate,
//! notably its skipping of unknown or out-of-order `[n]` fields, and it makes
//! "the decoder accepts exactly the encoder's output" true by construction.

use der::asn1::PrintableString;
use der::{Decode, Encode, Enumerated, Sequence};

use crate::controls::{
    Controls, ExecutionThrottle, Limit, MarketControls, OrderToTradeRatio, OrderType,
    PositionLimit, PriceCollar,
};
use crate::{
    Action, Amount, Currency, Enforcement, Mandate, Money, PolicyError, Threshold, TimeOfDay,
    TradingHours, Weekday,
};

/// Largest DER input [`Mandate::from_der`] will parse (64 KiB).
///
/// The largest valid mandate (three full 256-entry lists of 64-character
/// names, a 256-character operator) encodes to about 52 KB, so every valid
/// mandate fits.
pub const MAX_DER_LEN: usize = 64 * 1024;

/// A mandate without version-2 fields encodes as version 1, so certificates of such mandates
/// stay readable by version-1 verifiers; one with any encodes as version 2.
const VERSION_1: u64 = 1;
const VERSION_2: u64 = 2;

#[derive(Sequence)]
struct MandateDer {
    version: u64,
    agent_id: String,
    operator: String,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "IMPLICIT")]
    operator_regulator_id: Option<String>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "IMPLICIT")]
    max_transaction_size: Option<MoneyDer>,
    #[asn1(context_specific = "2", optional = "true", tag_mode = "IMPLICIT")]
    max_daily_volume: Option<MoneyDer>,
    #[asn1(context_specific = "3", optional = "true", tag_mode = "IMPLICIT")]
    allowed_markets: Option<Vec<String>>,
    #[asn1(context_specific = "4", optional = "true", tag_mode = "IMPLICIT")]
    allowed_counterparties: Option<Vec<String>>,
    #[asn1(context_specific = "5", optional = "true", tag_mode = "IMPLICIT")]
    allowed_regions: Option<Vec<String>>,
    #[asn1(context_specific = "6", optional = "true", tag_mode = "IMPLICIT")]
    trading_hours: Option<TradingHoursDer>,
    #[asn1(context_specific = "7", optional = "true", tag_mode = "IMPLICIT")]
    permitted_actions: Option<Vec<ActionDer>>,
    risk_controls: RiskControlsDer,
    #[asn1(context_specific = "8", optional = "true", tag_mode = "IMPLICIT")]
    controls: Option<ControlsDer>,
    #[asn1(context_specific = "9", optional = "true", tag_mode = "IMPLICIT")]
    market_controls: Option<Vec<MarketControlsDer>>,
}

/// Version 2's controls. A limit's optional BOOLEAN at its end is present (TRUE) only for a
/// soft limit: DEFAULT FALSE, which DER leaves out.
#[derive(Sequence, Default)]
struct ControlsDer {
    #[asn1(context_specific = "0", optional = "true", tag_mode = "IMPLICIT")]
    max_order_quantity: Option<LimitAmountDer>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "IMPLICIT")]
    price_collar: Option<LimitCollarDer>,
    #[asn1(context_specific = "2", optional = "true", tag_mode = "IMPLICIT")]
    reference_price_max_age: Option<u32>,
    #[asn1(context_specific = "3", optional = "true", tag_mode = "IMPLICIT")]
    max_open_orders: Option<LimitCountDer>,
    #[asn1(context_specific = "4", optional = "true", tag_mode = "IMPLICIT")]
    max_net_position: Option<LimitPositionDer>,
    #[asn1(context_specific = "5", optional = "true", tag_mode = "IMPLICIT")]
    max_daily_loss: Option<LimitMoneyDer>,
    #[asn1(context_specific = "6", optional = "true", tag_mode = "IMPLICIT")]
    max_messages_per_second: Option<LimitCountDer>,
    #[asn1(context_specific = "7", optional = "true", tag_mode = "IMPLICIT")]
    max_order_to_trade_ratio: Option<LimitRatioDer>,
    #[asn1(context_specific = "8", optional = "true", tag_mode = "IMPLICIT")]
    repeated_execution_throttle: Option<LimitThrottleDer>,
    #[asn1(context_specific = "9", optional = "true", tag_mode = "IMPLICIT")]
    allowed_order_types: Option<Vec<OrderTypeDer>>,
    #[asn1(context_specific = "10", optional = "true", tag_mode = "IMPLICIT")]
    short_selling_allowed: Option<bool>,
}

#[derive(Sequence)]
struct MarketControlsDer {
    market: String,
    controls: ControlsDer,
}

#[derive(Sequence)]
struct LimitAmountDer {
    value: String,
    soft: Option<bool>,
}

#[derive(Sequence)]
struct LimitCountDer {
    value: u32,
    soft: Option<bool>,
}

#[derive(Sequence)]
struct LimitMoneyDer {
    value: MoneyDer,
    soft: Option<bool>,
}

#[derive(Sequence)]
struct LimitCollarDer {
    buy_bps: u32,
    sell_bps: u32,
    soft: Option<bool>,
}

#[derive(Sequence)]
struct LimitRatioDer {
    max_ratio: u32,
    window_secs: u32,
    soft: Option<bool>,
}

#[derive(Sequence)]
struct LimitThrottleDer {
    executions: u32,
    within_secs: u32,
    soft: Option<bool>,
}

/// Exactly one of `quantity` and `value` (a CHOICE, written as two tagged OPTIONALs).
#[derive(Sequence)]
struct LimitPositionDer {
    #[asn1(context_specific = "0", optional = "true", tag_mode = "IMPLICIT")]
    quantity: Option<String>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "IMPLICIT")]
    value: Option<MoneyDer>,
    soft: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumerated)]
#[repr(u8)]
enum OrderTypeDer {
    Market = 1,
    Limit = 2,
    Stop = 3,
    StopLimit = 4,
}

#[derive(Sequence)]
struct MoneyDer {
    amount: String,
    currency: PrintableString,
}

#[derive(Sequence)]
struct TradingHoursDer {
    start: u16,
    end: u16,
    time_zone: String,
    weekdays: Vec<WeekdayDer>,
}

#[derive(Sequence)]
struct RiskControlsDer {
    circuit_breaker_threshold: u16,
    auto_revoke_threshold: u16,
    max_consecutive_failures: u32,
    revocation_timeout: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumerated)]
#[repr(u8)]
enum WeekdayDer {
    Monday = 1,
    Tuesday = 2,
    Wednesday = 3,
    Thursday = 4,
    Friday = 5,
    Saturday = 6,
    Sunday = 7,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumerated)]
#[repr(u8)]
enum ActionDer {
    TradeExecution = 1,
    DataAccess = 2,
    ApiCall = 3,
    ModelInference = 4,
    Authentication = 5,
    DataMutation = 6,
}

pub(crate) fn encode(mandate: &Mandate) -> Result<Vec<u8>, PolicyError> {
    Ok(to_wire(mandate)?.to_der()?)
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Mandate, PolicyError> {
    if bytes.len() > MAX_DER_LEN {
        return Err(PolicyError::DerTooLarge {
            len: bytes.len(),
            max: MAX_DER_LEN,
        });
    }
    let wire = MandateDer::from_der(bytes)?;
    if wire.version != VERSION_1 && wire.version != VERSION_2 {
        return Err(PolicyError::UnsupportedVersion(wire.version));
    }
    let mandate = from_wire(wire)?;
    mandate.validate()?;
    if encode(&mandate)? != bytes {
        return Err(PolicyError::NonCanonicalDer);
    }
    Ok(mandate)
}

fn to_wire(m: &Mandate) -> Result<MandateDer, PolicyError> {
    Ok(MandateDer {
        version: if m.is_v2() { VERSION_2 } else { VERSION_1 },
        agent_id: m.agent_id.clone(),
        operator: m.operator.clone(),
        operator_regulator_id: m.operator_regulator_id.clone(),
        max_transaction_size: m
            .max_transaction_size
            .as_ref()
            .map(money_to_wire)
            .transpose()?,
        max_daily_volume: m.max_daily_volume.as_ref().map(money_to_wire).transpose()?,
        allowed_markets: m.allowed_markets.clone(),
        allowed_counterparties: m.allowed_counterparties.clone(),
        allowed_regions: m.allowed_regions.clone(),
        trading_hours: m.trading_hours.as_ref().map(|h| TradingHoursDer {
            start: h.start.minutes(),
            end: h.end.minutes(),
            time_zone: h.time_zone.clone(),
            weekdays: h.weekdays.iter().map(|d| weekday_to_wire(*d)).collect(),
        }),
        permitted_actions: m
            .permitted_actions
            .as_ref()
            .map(|actions| actions.iter().map(|a| action_to_wire(*a)).collect()),
        risk_controls: RiskControlsDer {
            circuit_breaker_threshold: m.circuit_breaker_threshold.basis_points(),
            auto_revoke_threshold: m.auto_revoke_threshold.basis_points(),
            max_consecutive_failures: m.max_consecutive_failures,
            revocation_timeout: m.revocation_timeout_secs,
        },
        controls: if m.controls.is_empty() {
            None
        } else {
            Some(controls_to_wire(&m.controls)?)
        },
        market_controls: m
            .market_controls
            .as_ref()
            .map(|list| {
                list.iter()
                    .map(|mc| {
                        Ok(MarketControlsDer {
                            market: mc.market.clone(),
                            controls: controls_to_wire(&mc.controls)?,
                        })
                    })
                    .collect::<Result<Vec<_>, PolicyError>>()
            })
            .transpose()?,
    })
}

fn soft_to_wire(e: Enforcement) -> Option<bool> {
    (e == Enforcement::Soft).then_some(true)
}

fn soft_from_wire(soft: Option<bool>) -> Result<Enforcement, PolicyError> {
    match soft {
        None => Ok(Enforcement::Hard),
        Some(true) => Ok(Enforcement::Soft),
        // DEFAULT FALSE: DER leaves it out.
        Some(false) => Err(PolicyError::NonCanonicalDer),
    }
}

fn amount_to_wire(a: &Amount) -> String {
    a.to_string()
}

fn amount_from_wire(text: &str) -> Result<Amount, PolicyError> {
    let amount: Amount = text.parse()?;
    // The text is signed over, so exactly one spelling per value is allowed.
    if amount.to_string() != text {
        return Err(PolicyError::NonCanonicalDer);
    }
    Ok(amount)
}

fn controls_to_wire(c: &Controls) -> Result<ControlsDer, PolicyError> {
    Ok(ControlsDer {
        max_order_quantity: c.max_order_quantity.as_ref().map(|l| LimitAmountDer {
            value: amount_to_wire(&l.value),
            soft: soft_to_wire(l.enforcement),
        }),
        price_collar: c.price_collar.as_ref().map(|l| LimitCollarDer {
            buy_bps: l.value.buy_bps,
            sell_bps: l.value.sell_bps,
            soft: soft_to_wire(l.enforcement),
        }),
        reference_price_max_age: c.reference_price_max_age,
        max_open_orders: c.max_open_orders.as_ref().map(|l| LimitCountDer {
            value: l.value,
            soft: soft_to_wire(l.enforcement),
        }),
        max_net_position: c
            .max_net_position
            .as_ref()
            .map(|l| {
                Ok::<_, PolicyError>(match &l.value {
                    PositionLimit::Quantity(q) => LimitPositionDer {
                        quantity: Some(amount_to_wire(q)),
                        value: None,
                        soft: soft_to_wire(l.enforcement),
                    },
                    PositionLimit::Value(m) => LimitPositionDer {
                        quantity: None,
                        value: Some(money_to_wire(m)?),
                        soft: soft_to_wire(l.enforcement),
                    },
                })
            })
            .transpose()?,
        max_daily_loss: c
            .max_daily_loss
            .as_ref()
            .map(|l| {
                Ok::<_, PolicyError>(LimitMoneyDer {
                    value: money_to_wire(&l.value)?,
                    soft: soft_to_wire(l.enforcement),
                })
            })
            .transpose()?,
        max_messages_per_second: c.max_messages_per_second.as_ref().map(|l| LimitCountDer {
            value: l.value,
            soft: soft_to_wire(l.enforcement),
        }),
        max_order_to_trade_ratio: c.max_order_to_trade_ratio.as_ref().map(|l| LimitRatioDer {
            max_ratio: l.value.max_ratio,
            window_secs: l.value.window_secs,
            soft: soft_to_wire(l.enforcement),
        }),
        repeated_execution_throttle: c.repeated_execution_throttle.as_ref().map(|l| {
            LimitThrottleDer {
                executions: l.value.executions,
                within_secs: l.value.within_secs,
                soft: soft_to_wire(l.enforcement),
            }
        }),
        allowed_order_types: c
            .allowed_order_types
            .as_ref()
            .map(|types| types.iter().map(|t| order_type_to_wire(*t)).collect()),
        short_selling_allowed: c.short_selling_allowed,
    })
}

fn controls_from_wire(w: ControlsDer) -> Result<Controls, PolicyError> {
    Ok(Controls {
        max_order_quantity: w
            .max_order_quantity
            .map(|l| {
                Ok::<_, PolicyError>(Limit {
                    value: amount_from_wire(&l.value)?,
                    enforcement: soft_from_wire(l.soft)?,
                })
            })
            .transpose()?,
        price_collar: w
            .price_collar
            .map(|l| {
                Ok::<_, PolicyError>(Limit {
                    value: PriceCollar {
                        buy_bps: l.buy_bps,
                        sell_bps: l.sell_bps,
                    },
                    enforcement: soft_from_wire(l.soft)?,
                })
            })
            .transpose()?,
        reference_price_max_age: w.reference_price_max_age,
        max_open_orders: w
            .max_open_orders
            .map(|l| {
                Ok::<_, PolicyError>(Limit {
                    value: l.value,
                    enforcement: soft_from_wire(l.soft)?,
                })
            })
            .transpose()?,
        max_net_position: w
            .max_net_position
            .map(|l| {
                let value = match (l.quantity, l.value) {
                    (Some(q), None) => PositionLimit::Quantity(amount_from_wire(&q)?),
                    (None, Some(m)) => PositionLimit::Value(money_from_wire(m)?),
                    _ => {
                        return Err(PolicyError::invalid(
                            "maxNetPosition",
                            "exactly one of quantity and value",
                        ));
                    }
                };
                Ok(Limit {
                    value,
                    enforcement: soft_from_wire(l.soft)?,
                })
            })
            .transpose()?,
        max_daily_loss: w
            .max_daily_loss
            .map(|l| {
                Ok::<_, PolicyError>(Limit {
                    value: money_from_wire(l.value)?,
                    enforcement: soft_from_wire(l.soft)?,
                })
            })
            .transpose()?,
        max_messages_per_second: w
            .max_messages_per_second
            .map(|l| {
                Ok::<_, PolicyError>(Limit {
                    value: l.value,
                    enforcement: soft_from_wire(l.soft)?,
                })
            })
            .transpose()?,
        max_order_to_trade_ratio: w
            .max_order_to_trade_ratio
            .map(|l| {
                Ok::<_, PolicyError>(Limit {
                    value: OrderToTradeRatio {
                        max_ratio: l.max_ratio,
                        window_secs: l.window_secs,
                    },
                    enforcement: soft_from_wire(l.soft)?,
                })
            })
            .transpose()?,
        repeated_execution_throttle: w
            .repeated_execution_throttle
            .map(|l| {
                Ok::<_, PolicyError>(Limit {
                    value: ExecutionThrottle {
                        executions: l.executions,
                        within_secs: l.within_secs,
                    },
                    enforcement: soft_from_wire(l.soft)?,
                })
            })
            .transpose()?,
        allowed_order_types: w
            .allowed_order_types
            .map(|types| types.into_iter().map(order_type_from_wire).collect()),
        short_selling_allowed: w.short_selling_allowed,
    })
}

fn order_type_to_wire(t: OrderType) -> OrderTypeDer {
    match t {
        OrderType::Market => OrderTypeDer::Market,
        OrderType::Limit => OrderTypeDer::Limit,
        OrderType::Stop => OrderTypeDer::Stop,
        OrderType::StopLimit => OrderTypeDer::StopLimit,
    }
}

fn order_type_from_wire(t: OrderTypeDer) -> OrderType {
    match t {
        OrderTypeDer::Market => OrderType::Market,
        OrderTypeDer::Limit => OrderType::Limit,
        OrderTypeDer::Stop => OrderType::Stop,
        OrderTypeDer::StopLimit => OrderType::StopLimit,
    }
}

fn from_wire(w: MandateDer) -> Result<Mandate, PolicyError> {
    let trading_hours = match w.trading_hours {
        None => None,
        Some(h) => Some(TradingHours {
            start: TimeOfDay::from_minutes(h.start)?,
            end: TimeOfDay::from_minutes(h.end)?,
            time_zone: h.time_zone,
            weekdays: h.weekdays.into_iter().map(weekday_from_wire).collect(),
        }),
    };
    Ok(Mandate {
        agent_id: w.agent_id,
        operator: w.operator,
        operator_regulator_id: w.operator_regulator_id,
        max_transaction_size: w.max_transaction_size.map(money_from_wire).transpose()?,
        max_daily_volume: w.max_daily_volume.map(money_from_wire).transpose()?,
        allowed_markets: w.allowed_markets,
        allowed_counterparties: w.allowed_counterparties,
        allowed_regions: w.allowed_regions,
        trading_hours,
        permitted_actions: w
            .permitted_actions
            .map(|actions| actions.into_iter().map(action_from_wire).collect()),
        circuit_breaker_threshold: Threshold::from_basis_points(
            w.risk_controls.circuit_breaker_threshold,
        )?,
        auto_revoke_threshold: Threshold::from_basis_points(w.risk_controls.auto_revoke_threshold)?,
        max_consecutive_failures: w.risk_controls.max_consecutive_failures,
        revocation_timeout_secs: w.risk_controls.revocation_timeout,
        // Not carried in the extension (see `Mandate::on_breach`).
        on_breach: crate::OnBreach::Revoke,
        controls: w
            .controls
            .map(controls_from_wire)
            .transpose()?
            .unwrap_or_default(),
        market_controls: w
            .market_controls
            .map(|list| {
                list.into_iter()
                    .map(|mc| {
                        Ok::<_, PolicyError>(MarketControls {
                            market: mc.market,
                            controls: controls_from_wire(mc.controls)?,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?,
        // Not carried in the extension either: the reasons stay with the mandate version.
        rationale: std::collections::BTreeMap::new(),
    })
}

fn money_to_wire(money: &Money) -> Result<MoneyDer, PolicyError> {
    Ok(MoneyDer {
        amount: money.amount.to_string(),
        currency: PrintableString::new(money.currency.as_str())?,
    })
}

fn money_from_wire(wire: MoneyDer) -> Result<Money, PolicyError> {
    let amount = amount_from_wire(&wire.amount)?;
    let currency: Currency = wire.currency.as_str().parse()?;
    Ok(Money { amount, currency })
}

fn weekday_to_wire(day: Weekday) -> WeekdayDer {
    match day {
        Weekday::Mon => WeekdayDer::Monday,
        Weekday::Tue => WeekdayDer::Tuesday,
        Weekday::Wed => WeekdayDer::Wednesday,
        Weekday::Thu => WeekdayDer::Thursday,
        Weekday::Fri => WeekdayDer::Friday,
        Weekday::Sat => WeekdayDer::Saturday,
        Weekday::Sun => WeekdayDer::Sunday,
    }
}

fn weekday_from_wire(day: WeekdayDer) -> Weekday {
    match day {
        WeekdayDer::Monday => Weekday::Mon,
        WeekdayDer::Tuesday => Weekday::Tue,
        WeekdayDer::Wednesday => Weekday::Wed,
        WeekdayDer::Thursday => Weekday::Thu,
        WeekdayDer::Friday => Weekday::Fri,
        WeekdayDer::Saturday => Weekday::Sat,
        WeekdayDer::Sunday => Weekday::Sun,
    }
}

fn action_to_wire(action: Action) -> ActionDer {
    match action {
        Action::TradeExecution => ActionDer::TradeExecution,
        Action::DataAccess => ActionDer::DataAccess,
        Action::ApiCall => ActionDer::ApiCall,
        Action::ModelInference => ActionDer::ModelInference,
        Action::Authentication => ActionDer::Authentication,
        Action::DataMutation => ActionDer::DataMutation,
    }
}

fn action_from_wire(action: ActionDer) -> Action {
    match action {
        ActionDer::TradeExecution => Action::TradeExecution,
        ActionDer::DataAccess => Action::DataAccess,
        ActionDer::ApiCall => Action::ApiCall,
        ActionDer::ModelInference => Action::ModelInference,
        ActionDer::Authentication => Action::Authentication,
        ActionDer::DataMutation => Action::DataMutation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base_wire() -> MandateDer {
        let mut m = Mandate::new("bot", "Acme");
        m.max_transaction_size = Some(Money {
            amount: "12.34".parse().unwrap(),
            currency: "EUR".parse().unwrap(),
        });
        to_wire(&m).unwrap()
    }

    fn decode_wire(wire: &MandateDer) -> Result<Mandate, PolicyError> {
        decode(&wire.to_der().unwrap())
    }

    #[test]
    fn base_wire_decodes() {
        decode_wire(&base_wire()).unwrap();
    }

    #[test]
    fn rejects_non_canonical_amount() {
        for text in ["12.340", "12.34000000"] {
            let mut wire = base_wire();
            wire.max_transaction_size.as_mut().unwrap().amount = text.into();
            assert_eq!(
                decode_wire(&wire),
                Err(PolicyError::NonCanonicalDer),
                "{text}"
            );
        }
        for text in ["012.34", "-12.34", "12,34", ""] {
            let mut wire = base_wire();
            wire.max_transaction_size.as_mut().unwrap().amount = text.into();
            assert!(
                matches!(
                    decode_wire(&wire),
                    Err(PolicyError::Invalid {
                        field: "amount",
                        ..
                    })
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_bad_currency() {
        let mut wire = base_wire();
        wire.max_transaction_size.as_mut().unwrap().currency = PrintableString::new("eur").unwrap();
        assert!(matches!(
            decode_wire(&wire),
            Err(PolicyError::Invalid {
                field: "currency",
                ..
            })
        ));
    }

    #[test]
    fn rejects_other_versions() {
        for version in [0, 3, u64::MAX] {
            let mut wire = base_wire();
            wire.version = version;
            assert_eq!(
                decode_wire(&wire),
                Err(PolicyError::UnsupportedVersion(version))
            );
        }
    }

    #[test]
    fn rejects_oversized_list() {
        let mut wire = base_wire();
        wire.allowed_markets = Some((0..257).map(|i| format!("m{i}")).collect());
        assert!(matches!(
            decode_wire(&wire),
            Err(PolicyError::Invalid {
                field: "allowedMarkets",
                ..
            })
        ));
        wire.allowed_markets = Some((0..256).map(|i| format!("m{i}")).collect());
        decode_wire(&wire).unwrap();
    }

    #[test]
    fn rejects_out_of_range_values() {
        let mut wire = base_wire();
        wire.risk_controls.auto_revoke_threshold = 10_001;
        assert!(decode_wire(&wire).is_err());

        let mut wire = base_wire();
        wire.risk_controls.max_consecutive_failures = 0;
        assert!(decode_wire(&wire).is_err());

        let mut wire = base_wire();
        wire.trading_hours = Some(TradingHoursDer {
            start: 0,
            end: 1440,
            time_zone: "UTC".into(),
            weekdays: vec![WeekdayDer::Monday],
        });
        assert!(decode_wire(&wire).is_err());

        let mut wire = base_wire();
        wire.agent_id = "Not A Label".into();
        assert!(matches!(
            decode_wire(&wire),
            Err(PolicyError::Invalid {
                field: "agentId",
                ..
            })
        ));
    }

    #[test]
    fn rejects_oversized_input_before_parsing() {
        let bytes = vec![0u8; MAX_DER_LEN + 1];
        assert_eq!(
            decode(&bytes),
            Err(PolicyError::DerTooLarge {
                len: MAX_DER_LEN + 1,
                max: MAX_DER_LEN
            })
        );
    }
}
