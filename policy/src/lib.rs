//! Pure policy types for `mandate`: the agent mandate (its authority limits),
//! its JSON form and its DER encoding as a private X.509 certificate extension.
//!
//! The crate does no I/O. Its entry point is [`Mandate`]: deserialize it from
//! JSON (which validates), encode it with [`Mandate::to_der`] into the value of
//! the extension identified by [`MANDATE_EXTENSION_OID`], and read it back from
//! a certificate with [`Mandate::from_der`]. The ASN.1 module is in
//! `docs/mandate-extension.asn1`; field semantics in `docs/MANDATE.md`.

/// Implements `Deserialize` for an enum whose `as_str` names are what people type, ignoring
/// ASCII case (`"BUY"` is `buy`), with an error that lists the names.
#[macro_export]
#[doc(hidden)]
macro_rules! case_insensitive_enum {
    ($t:ty, [$($v:expr),+ $(,)?]) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                [$($v),+]
                    .into_iter()
                    .find(|v| v.as_str().eq_ignore_ascii_case(&text))
                    .ok_or_else(|| {
                        let names: Vec<&str> = [$($v),+].iter().map(|v| v.as_str()).collect();
                        serde::de::Error::custom(format!(
                            "{text:?} is not one of {} (any case)",
                            names.join(", ")
                        ))
                    })
            }
        }
    };
}

/// Implements `utoipa::ToSchema` for `$t` under the name `$name` with the schema of `$shape`, the
/// type serde reads `$t` through (`#[serde(try_from = "...")]`): the API document then shows
/// exactly the fields, defaults and closed object that deserialization accepts.
#[macro_export]
#[doc(hidden)]
macro_rules! schema_of {
    ($t:ty, $name:literal, $shape:ty) => {
        impl utoipa::PartialSchema for $t {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                <$shape as utoipa::PartialSchema>::schema()
            }
        }
        impl utoipa::ToSchema for $t {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }
            fn schemas(
                schemas: &mut Vec<(
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
                )>,
            ) {
                <$shape as utoipa::ToSchema>::schemas(schemas);
            }
        }
    };
}

mod amount;
mod anomaly;
mod baseline;
mod book;
mod compare;
mod compare_controls;
mod controls;
mod der_codec;
mod error;
mod json_numbers;
mod mandate;
mod order_json;
mod overrides;
mod preflight;
mod schedule;
mod text;
mod threshold;

use const_oid::ObjectIdentifier;

pub use amount::{Amount, Currency, Money, SignedAmount};
pub use anomaly::{Contribution, Score, Weights, score};
pub use baseline::{Baseline, Observation, utc_hour};
pub use book::{
    Book, BookState, MAX_TRACKED_OPEN_ORDERS, OpenOrder, OrderState, OrderUpdate, position_text,
};
pub use compare::{Direction, FieldChange, compare, narrows};
pub use controls::{
    Controls, Enforcement, ExecutionThrottle, Limit, MAX_MARKET_CONTROLS, MarketControls,
    OrderToTradeRatio, OrderType, PositionLimit, PriceCollar,
};
pub use der_codec::MAX_DER_LEN;
pub use error::PolicyError;
pub use json_numbers::plain_json_numbers;
pub use mandate::{Action, MAX_LIST_ENTRIES, Mandate, OnBreach, is_dns_label, is_list_name};
pub use order_json::{
    MAX_NAME_LEN, OrderJson, OrderName, Side, TIME_MAX, TIME_MIN, Time, unix_or_rfc3339,
};
pub use overrides::{LimitOverride, OVERRIDABLE};
pub use preflight::{
    AgentState, DEFAULT_REFERENCE_PRICE_MAX_AGE, Denial, Intent, Order, Reference, decide,
    trading_day_start, within_hours,
};
pub use schedule::{TimeOfDay, TradingHours, Weekday};
pub use text::{TextKind, exact_human_text, human_text};
pub use threshold::Threshold;

/// OID of the mandate certificate extension: `1.3.6.1.4.1.99999.1.1`.
///
/// **Provisional.** It sits under a placeholder private-enterprise arc
/// (`1.3.6.1.4.1.99999`) until an IANA Private Enterprise Number is assigned
/// to the project; relying parties must match on this constant, never on the
/// literal, so the switch is a one-line change. The extension is non-critical.
pub const MANDATE_EXTENSION_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1.1");
