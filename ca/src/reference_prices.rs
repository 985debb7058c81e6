//! Reference prices for price collars: the latest price of each market, per organization, as
//! its operators (or their market-data feed) post them. Kept in memory: a reference price is
//! good for seconds (`referencePriceMaxAge`), so one older than a restart is stale anyway, and
//! a collar without a fresh one fails closed.

use std::collections::HashMap;
use std::sync::Mutex;

use mandate_policy::{Amount, Reference};

/// The newest reference price per (organization, market).
#[derive(Debug, Default)]
pub struct ReferencePrices {
    prices: Mutex<HashMap<(String, String), (Amount, i64)>>,
}

impl ReferencePrices {
    /// Records `price` for `market` of `organization` taken at `at` (unix s), unless a newer
    /// one is already known.
    pub fn set(&self, organization: &str, market: &str, price: Amount, at: i64) {
        if let Ok(mut map) = self.prices.lock() {
            let key = (organization.to_owned(), market.to_ascii_lowercase());
            match map.get(&key) {
                Some((_, known)) if *known > at => {}
                _ => {
                    map.insert(key, (price, at));
                }
            }
        }
    }

    /// What the pre-trade check knows of `market`'s reference price for `organization`.
    pub fn reference(&self, organization: &str, market: Option<&str>) -> Reference {
        let Some(market) = market else {
            return Reference::Missing;
        };
        let key = (organization.to_owned(), market.to_ascii_lowercase());
        match self.prices.lock().ok().and_then(|m| m.get(&key).copied()) {
            Some((price, at)) => Reference::Known { price, at },
            None => Reference::Missing,
        }
    }
}
