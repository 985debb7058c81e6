//! Reference prices, for price collars: who may post them for which organization, and what a
//! price must look like to be taken.

use mandate_policy::Amount;
use mandate_store::Role;
use serde::Deserialize;

use super::{Principal, tenant};
use crate::CaError;
use crate::node::Node;

/// Who may post reference prices: an organization's operators and price feeds (market-data
/// keys, which may do nothing else), and CA staff admins for any organization they name.
pub const FEEDERS: &[Role] = &[Role::Operator, Role::MarketData, Role::Admin];

/// Most prices one request may carry.
pub const MAX_PRICES: usize = 1000;

/// One reference price.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// The market, e.g. `BTC_EUR` (compared case-insensitively): 1 to 64 characters of A-Z,
    /// a-z, 0-9 and `_ . : / -`.
    #[schema(pattern = "^[A-Za-z0-9_.:/-]{1,64}$")]
    pub market: String,
    /// The price, above 0.
    #[schema(schema_with = crate::schema_refs::amount)]
    pub price: Amount,
    /// When it was taken (unix seconds or RFC 3339); the time of receipt when absent.
    #[serde(default, deserialize_with = "mandate_policy::unix_or_rfc3339")]
    #[schema(schema_with = crate::schema_refs::time)]
    pub at: Option<i64>,
}

/// Records reference prices for `organization` (default: the caller's); returns how many.
/// A price from further in the future than `policy.max_clock_skew_secs`, or older than a day,
/// is refused: it could only make a stale price look fresh, or is no reference at all.
pub async fn post(
    node: &Node,
    p: &Principal,
    organization: Option<String>,
    prices: Vec<Price>,
) -> Result<usize, CaError> {
    p.require(FEEDERS)?;
    let org = match (organization, &p.organization) {
        (Some(o), _) => o,
        (None, Some(own)) => own.clone(),
        (None, None) => {
            return Err(CaError::InvalidRequest(
                "organization: CA staff name the organization the prices are for".into(),
            ));
        }
    };
    tenant::organization(&node.store, p, &org).await?;
    if prices.is_empty() || prices.len() > MAX_PRICES {
        return Err(CaError::InvalidRequest(format!(
            "prices: send 1 to {MAX_PRICES} prices"
        )));
    }
    let now = mandate_store::now_unix();
    let skew = i64::from(node.cfg.policy.max_clock_skew_secs);
    let mut taken = Vec::with_capacity(prices.len());
    for (i, price) in prices.into_iter().enumerate() {
        if !mandate_policy::is_list_name(&price.market) {
            return Err(CaError::InvalidRequest(format!(
                "prices[{i}].market: 1 to 64 characters of A-Z, a-z, 0-9 and _ . : / -"
            )));
        }
        if price.price == Amount::ZERO {
            return Err(CaError::InvalidRequest(format!(
                "prices[{i}].price: must be above 0"
            )));
        }
        let at = price.at.unwrap_or(now);
        if at > now + skew || at < now - 86_400 {
            return Err(CaError::InvalidRequest(format!(
                "prices[{i}].at: must be within the last day and at most {skew} s ahead"
            )));
        }
        taken.push((price.market, price.price, at));
    }
    // All checked before any is taken: a refusal changes nothing.
    let n = taken.len();
    for (market, price, at) in taken {
        node.behaviour
            .reference_prices
            .set(&org, &market, price, at);
    }
    Ok(n)
}
