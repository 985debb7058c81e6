//! An agent's orders and positions as its events report them: the open (resting) orders by
//! client order id, and the net position per market from the fills. Pure: the daemon keeps one
//! per agent in memory, feeds it every order event in the order they were stored, and rebuilds
//! it from the stored events after a restart. The pre-trade check reads it through
//! [`BookState`] (`maxOpenOrders`, `maxNetPosition`, `shortSellingAllowed`).

use std::collections::HashMap;

use serde::Serialize;

use crate::{Amount, Side};

/// Most open orders one agent may have tracked at once; an event that would open more is
/// refused (it would be a breach of any `maxOpenOrders`, which is bounded below this).
pub const MAX_TRACKED_OPEN_ORDERS: usize = 100_000;

/// What an event says happened to an order (read in any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// The order was placed and rests on the venue.
    New,
    /// The order was changed; `quantity` is its open quantity after the change.
    Amended,
    /// The order was cancelled (by the agent or the venue).
    Cancelled,
    /// The order executed in full (or its last part executed).
    Filled,
    /// Part of the order executed; the rest still rests.
    PartiallyFilled,
    /// The venue refused the order.
    Rejected,
}

crate::case_insensitive_enum!(
    OrderState,
    [
        OrderState::New,
        OrderState::Amended,
        OrderState::Cancelled,
        OrderState::Filled,
        OrderState::PartiallyFilled,
        OrderState::Rejected
    ]
);

impl OrderState {
    /// Every state.
    pub const ALL: [OrderState; 6] = [
        OrderState::New,
        OrderState::Amended,
        OrderState::Cancelled,
        OrderState::Filled,
        OrderState::PartiallyFilled,
        OrderState::Rejected,
    ];

    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::New => "new",
            OrderState::Amended => "amended",
            OrderState::Cancelled => "cancelled",
            OrderState::Filled => "filled",
            OrderState::PartiallyFilled => "partially_filled",
            OrderState::Rejected => "rejected",
        }
    }

    /// An order message (new, amend, cancel): what the order-to-trade ratio counts as orders.
    pub fn is_message(self) -> bool {
        matches!(
            self,
            OrderState::New | OrderState::Amended | OrderState::Cancelled
        )
    }

    /// An execution: what moves positions and counts as a trade.
    pub fn is_fill(self) -> bool {
        matches!(self, OrderState::Filled | OrderState::PartiallyFilled)
    }
}

impl std::str::FromStr for OrderState {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderState::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or(())
    }
}

/// One order event, as the book needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderUpdate<'a> {
    /// What happened.
    pub state: OrderState,
    /// The agent's id of the order.
    pub client_order_id: &'a str,
    /// The market (needed for new orders and fills).
    pub market: Option<&'a str>,
    /// Buy or sell (needed for new orders and fills).
    pub side: Option<Side>,
    /// New and amended: the open quantity; filled without `fill_quantity`: what filled.
    pub quantity: Option<Amount>,
    /// The order's limit price, if any.
    pub price: Option<Amount>,
    /// What this execution filled.
    pub fill_quantity: Option<Amount>,
}

/// An order resting on a venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOrder {
    /// Its market, as reported.
    pub market: String,
    /// Buy or sell.
    pub side: Side,
    /// What is still open.
    pub remaining: Amount,
    /// Its limit price, if any.
    pub price: Option<Amount>,
}

/// Open orders and resting quantities of one market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Resting {
    orders: u32,
    buy: u128,
    sell: u128,
}

/// An agent's open orders and net positions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Book {
    open: HashMap<String, OpenOrder>,
    /// Per market (lower case): open orders and resting quantities, kept with `open`.
    resting: HashMap<String, Resting>,
    /// Per market (lower case): the net position in minor units of its quantity, long
    /// positive.
    positions: HashMap<String, i128>,
}

fn units(a: Amount) -> i128 {
    i128::try_from(a.as_minor_units()).unwrap_or(i128::MAX)
}

/// `position` after `side` filled `q`.
fn moved(position: i128, side: Side, q: Amount) -> i128 {
    match side {
        Side::Buy => position.saturating_add(units(q)),
        Side::Sell => position.saturating_sub(units(q)),
    }
}

impl Book {
    /// Applies one order event.
    pub fn apply(&mut self, u: &OrderUpdate<'_>) {
        match u.state {
            OrderState::New | OrderState::Amended => {
                let known = self.remove(u.client_order_id);
                let market = u
                    .market
                    .map(str::to_owned)
                    .or_else(|| known.as_ref().map(|o| o.market.clone()));
                let side = u.side.or(known.as_ref().map(|o| o.side));
                let remaining = u.quantity.or(known.as_ref().map(|o| o.remaining));
                if let (Some(market), Some(side), Some(remaining)) = (market, side, remaining)
                    && remaining > Amount::ZERO
                {
                    let price = u.price.or(known.and_then(|o| o.price));
                    self.insert(
                        u.client_order_id,
                        OpenOrder {
                            market,
                            side,
                            remaining,
                            price,
                        },
                    );
                }
            }
            OrderState::Cancelled | OrderState::Rejected => {
                self.remove(u.client_order_id);
            }
            OrderState::Filled | OrderState::PartiallyFilled => {
                let fill = self.fill_of(u);
                let known = self.remove(u.client_order_id);
                if let Some((market, side, filled)) = &fill {
                    let p = self
                        .positions
                        .entry(market.to_ascii_lowercase())
                        .or_default();
                    *p = moved(*p, *side, *filled);
                }
                if u.state == OrderState::PartiallyFilled
                    && let Some(mut order) = known
                {
                    let filled = fill.map_or(Amount::ZERO, |(_, _, f)| f);
                    order.remaining = Amount::from_minor_units(
                        order
                            .remaining
                            .as_minor_units()
                            .saturating_sub(filled.as_minor_units()),
                    )
                    .unwrap_or(Amount::ZERO);
                    if order.remaining > Amount::ZERO {
                        self.insert(u.client_order_id, order);
                    }
                }
            }
        }
    }

    /// A fill's market, side and quantity: as the event says, else as the order it fills (a
    /// `filled` without `fill_quantity` filled what was open).
    fn fill_of(&self, u: &OrderUpdate<'_>) -> Option<(String, Side, Amount)> {
        if !u.state.is_fill() {
            return None;
        }
        let known = self.open.get(u.client_order_id);
        let filled = u
            .fill_quantity
            .or(match u.state {
                OrderState::Filled => known.map(|o| o.remaining),
                _ => None,
            })
            .or(u.quantity)
            .unwrap_or(Amount::ZERO);
        let market = u
            .market
            .map(str::to_owned)
            .or(known.map(|o| o.market.clone()))?;
        let side = u.side.or(known.map(|o| o.side))?;
        Some((market, side, filled))
    }

    /// What a fill does to the net position of its market: (market, before, after); none for
    /// other events, or without a market and a side.
    pub fn fill_effect(&self, u: &OrderUpdate<'_>) -> Option<(String, i128, i128)> {
        let (market, side, filled) = self.fill_of(u)?;
        let before = self.position(&market);
        Some((market, before, moved(before, side, filled)))
    }

    /// Whether applying `u` would track one more open order than [`MAX_TRACKED_OPEN_ORDERS`].
    pub fn would_overflow(&self, u: &OrderUpdate<'_>) -> bool {
        u.state == OrderState::New
            && !self.open.contains_key(u.client_order_id)
            && self.open.len() >= MAX_TRACKED_OPEN_ORDERS
    }

    fn insert(&mut self, id: &str, order: OpenOrder) {
        let r = self
            .resting
            .entry(order.market.to_ascii_lowercase())
            .or_default();
        r.orders += 1;
        match order.side {
            Side::Buy => r.buy = r.buy.saturating_add(order.remaining.as_minor_units()),
            Side::Sell => r.sell = r.sell.saturating_add(order.remaining.as_minor_units()),
        }
        self.open.insert(id.to_owned(), order);
    }

    fn remove(&mut self, id: &str) -> Option<OpenOrder> {
        let order = self.open.remove(id)?;
        let key = order.market.to_ascii_lowercase();
        if let Some(r) = self.resting.get_mut(&key) {
            r.orders = r.orders.saturating_sub(1);
            match order.side {
                Side::Buy => r.buy = r.buy.saturating_sub(order.remaining.as_minor_units()),
                Side::Sell => r.sell = r.sell.saturating_sub(order.remaining.as_minor_units()),
            }
            if r.orders == 0 {
                self.resting.remove(&key);
            }
        }
        Some(order)
    }

    /// Open orders in every market.
    pub fn open_orders(&self) -> usize {
        self.open.len()
    }

    /// Open orders in `market`.
    pub fn open_orders_in(&self, market: &str) -> u32 {
        self.resting
            .get(&market.to_ascii_lowercase())
            .map_or(0, |r| r.orders)
    }

    /// The open order `id`, if it rests.
    pub fn order(&self, id: &str) -> Option<&OpenOrder> {
        self.open.get(id)
    }

    /// The quantity resting on `side` in `market`, without the order `except` (the one an
    /// amendment replaces).
    pub fn resting(&self, market: &str, side: Side, except: Option<&str>) -> Amount {
        let r = self
            .resting
            .get(&market.to_ascii_lowercase())
            .copied()
            .unwrap_or_default();
        let mut total = match side {
            Side::Buy => r.buy,
            Side::Sell => r.sell,
        };
        if let Some(o) = except.and_then(|id| self.open.get(id))
            && o.side == side
            && o.market.eq_ignore_ascii_case(market)
        {
            total = total.saturating_sub(o.remaining.as_minor_units());
        }
        Amount::from_minor_units(total).unwrap_or(Amount::MAX)
    }

    /// The net position in `market`, in minor units of its quantity (long positive).
    pub fn position(&self, market: &str) -> i128 {
        self.positions
            .get(&market.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Every non-zero net position: (market in lower case, minor units).
    pub fn positions(&self) -> impl Iterator<Item = (&str, i128)> {
        self.positions
            .iter()
            .filter(|(_, p)| **p != 0)
            .map(|(m, p)| (m.as_str(), *p))
    }

    /// Every open order: (client order id, order).
    pub fn open(&self) -> impl Iterator<Item = (&str, &OpenOrder)> {
        self.open.iter().map(|(id, o)| (id.as_str(), o))
    }
}

/// A net position (minor units, long positive) as text: `-1.5`.
pub fn position_text(units: i128) -> String {
    let magnitude = Amount::from_minor_units(units.unsigned_abs()).unwrap_or(Amount::MAX);
    if units < 0 {
        format!("-{magnitude}")
    } else {
        magnitude.to_string()
    }
}

/// What the pre-trade check needs of the book and the order flow, for the order's market; the
/// daemon fills it in, a relying party leaves it out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BookState {
    /// The net position in the order's market (minor units, long positive).
    pub position: i128,
    /// Resting buys in the order's market, without the order an amendment replaces.
    pub open_buy: Amount,
    /// Resting sells in the order's market, without the order an amendment replaces.
    pub open_sell: Amount,
    /// Open orders in every market.
    pub open_orders: u32,
    /// Open orders in the order's market.
    pub open_orders_market: u32,
    /// Order messages and trades reported within the default `maxOrderToTradeRatio`'s window,
    /// every market.
    pub flow: (u64, u64),
    /// Order messages and trades reported within the market's own window, that market.
    pub flow_market: (u64, u64),
    /// The net realised loss today in the order's market, in the currency of the market's own
    /// `maxDailyLoss` (zero after a net profit).
    pub market_daily_loss: Amount,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Amount {
        s.parse().unwrap()
    }

    fn up<'a>(
        state: OrderState,
        id: &'a str,
        side: Side,
        q: Option<&str>,
        fill: Option<&str>,
    ) -> OrderUpdate<'a> {
        OrderUpdate {
            state,
            client_order_id: id,
            market: Some("BTC_EUR"),
            side: Some(side),
            quantity: q.map(a),
            price: None,
            fill_quantity: fill.map(a),
        }
    }

    #[test]
    fn orders_rest_fill_and_cancel() {
        let mut b = Book::default();
        b.apply(&up(OrderState::New, "o1", Side::Buy, Some("2"), None));
        b.apply(&up(OrderState::New, "o2", Side::Sell, Some("1"), None));
        assert_eq!(b.open_orders(), 2);
        assert_eq!(b.open_orders_in("btc_eur"), 2);
        assert_eq!(b.resting("BTC_EUR", Side::Buy, None), a("2"));
        b.apply(&up(
            OrderState::PartiallyFilled,
            "o1",
            Side::Buy,
            None,
            Some("0.5"),
        ));
        assert_eq!(b.position("BTC_EUR"), units(a("0.5")));
        assert_eq!(b.resting("BTC_EUR", Side::Buy, None), a("1.5"));
        b.apply(&up(OrderState::Filled, "o1", Side::Buy, None, None));
        assert_eq!(b.position("BTC_EUR"), units(a("2")));
        assert_eq!(b.open_orders(), 1);
        b.apply(&up(OrderState::Amended, "o2", Side::Sell, Some("3"), None));
        assert_eq!(b.resting("BTC_EUR", Side::Sell, None), a("3"));
        assert_eq!(b.resting("BTC_EUR", Side::Sell, Some("o2")), Amount::ZERO);
        b.apply(&up(OrderState::Cancelled, "o2", Side::Sell, None, None));
        assert_eq!(b.open_orders(), 0);
        assert_eq!(b.open_orders_in("BTC_EUR"), 0);
        // A fill of an order never reported as new still moves the position.
        b.apply(&up(OrderState::Filled, "x", Side::Sell, Some("5"), None));
        assert_eq!(position_text(b.position("BTC_EUR")), "-3");
        assert_eq!(b.positions().count(), 1);
    }

    #[test]
    fn a_rejected_order_never_rests_and_an_empty_one_is_dropped() {
        let mut b = Book::default();
        b.apply(&up(OrderState::New, "o1", Side::Buy, Some("1"), None));
        b.apply(&up(OrderState::Rejected, "o1", Side::Buy, None, None));
        assert_eq!(b.open_orders(), 0);
        b.apply(&up(OrderState::New, "o2", Side::Buy, Some("1"), None));
        b.apply(&up(
            OrderState::PartiallyFilled,
            "o2",
            Side::Buy,
            None,
            Some("1"),
        ));
        assert_eq!(b.open_orders(), 0);
        assert_eq!(
            "partially_filled".parse::<OrderState>(),
            Ok(OrderState::PartiallyFilled)
        );
    }
}
