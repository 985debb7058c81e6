//! Controlled overrides (RTS 6 Art. 15(6)): for a while, one version-2 limit of one agent takes
//! another value — the default, or one market's own. Pure: the daemon decides who may grant
//! one and for how long; this module checks the limit and the value and builds the mandate the
//! pre-trade check then applies.

use serde_json::Value;

use crate::{Controls, Mandate, MarketControls, PolicyError};

/// The limits an override may change: the numeric version-2 controls.
pub const OVERRIDABLE: [&str; 8] = [
    "maxOrderQuantity",
    "priceCollar",
    "referencePriceMaxAge",
    "maxOpenOrders",
    "maxNetPosition",
    "maxDailyLoss",
    "maxMessagesPerSecond",
    "maxOrderToTradeRatio",
];

/// An override of one limit.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitOverride {
    /// The limit's JSON name, one of [`OVERRIDABLE`].
    pub limit: String,
    /// The market whose own value it sets; none: the default.
    pub market: Option<String>,
    /// The value in force meanwhile, as the mandate's JSON writes it.
    pub value: Value,
}

impl Mandate {
    /// This mandate with `o` applied: the limit set to its value in the defaults, or in the
    /// market's own controls (added for a market that has none). Checks the name, the value's
    /// shape and every bound, as for an approved mandate.
    pub fn with_override(&self, o: &LimitOverride) -> Result<Mandate, PolicyError> {
        if !OVERRIDABLE.contains(&o.limit.as_str()) {
            return Err(PolicyError::invalid(
                "limit",
                format!("one of {}", OVERRIDABLE.join(", ")),
            ));
        }
        let set = |c: &Controls| -> Result<Controls, PolicyError> {
            let mut v = serde_json::to_value(c)
                .map_err(|e| PolicyError::invalid("value", e.to_string()))?;
            if let Some(map) = v.as_object_mut() {
                map.insert(o.limit.clone(), o.value.clone());
            }
            serde_json::from_value::<Controls>(v)
                .map_err(|e| PolicyError::invalid("value", e.to_string()))
        };
        let mut out = self.clone();
        match &o.market {
            None => out.controls = set(&self.controls)?,
            Some(market) => {
                if !crate::mandate::is_list_name(market) {
                    return Err(PolicyError::invalid(
                        "market",
                        "1 to 64 characters of A-Z, a-z, 0-9 and _ . : / -",
                    ));
                }
                let list = out.market_controls.get_or_insert_with(Vec::new);
                match list
                    .iter_mut()
                    .find(|m| m.market.eq_ignore_ascii_case(market))
                {
                    Some(m) => m.controls = set(&m.controls)?,
                    None => list.push(MarketControls {
                        market: market.clone(),
                        controls: set(&Controls::default())?,
                    }),
                }
            }
        }
        out.validate()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mandate() -> Mandate {
        serde_json::from_value(serde_json::json!({
            "agentId": "a", "operator": "A", "maxOrderQuantity": "10",
            "marketControls": [{"market": "BTC_EUR", "controls": {"maxOpenOrders": 2}}]
        }))
        .unwrap()
    }

    fn o(limit: &str, market: Option<&str>, value: Value) -> LimitOverride {
        LimitOverride {
            limit: limit.into(),
            market: market.map(Into::into),
            value,
        }
    }

    #[test]
    fn an_override_sets_the_default_or_a_market_s_own_value() {
        let m = mandate();
        let wider = m
            .with_override(&o("maxOrderQuantity", None, serde_json::json!("20")))
            .unwrap();
        assert_eq!(
            wider.controls.max_order_quantity.unwrap().value,
            "20".parse().unwrap()
        );
        let btc = m
            .with_override(&o("maxOpenOrders", Some("btc_eur"), serde_json::json!(4)))
            .unwrap();
        assert_eq!(
            btc.controls_for(Some("BTC_EUR"))
                .max_open_orders
                .unwrap()
                .value,
            4
        );
        let eth = m
            .with_override(&o("maxOpenOrders", Some("ETH_EUR"), serde_json::json!(1)))
            .unwrap();
        assert_eq!(eth.market_controls.unwrap().len(), 2);
        // Soft, as the mandate writes it.
        let soft = m
            .with_override(&o(
                "maxOrderQuantity",
                None,
                serde_json::json!({"value": "30", "enforcement": "soft"}),
            ))
            .unwrap();
        assert_eq!(
            soft.controls.max_order_quantity.unwrap().enforcement,
            crate::Enforcement::Soft
        );
    }

    #[test]
    fn unknown_limits_bad_values_and_bounds_are_refused() {
        let m = mandate();
        for (limit, value) in [
            ("allowedMarkets", serde_json::json!(["X"])),
            ("maxOrderQuantity", serde_json::json!("-1")),
            ("maxOpenOrders", serde_json::json!(0)),
            ("maxOpenOrders", serde_json::json!(100_001)),
            ("maxOpenOrders", serde_json::json!("many")),
        ] {
            assert!(
                m.with_override(&o(limit, None, value.clone())).is_err(),
                "{limit} {value}"
            );
        }
    }
}
