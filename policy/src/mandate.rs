//! The [`Mandate`] itself, its [`Action`]s and its validation rules.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::controls::{
    Controls, ExecutionThrottle, Limit, MarketControls, OrderToTradeRatio, OrderType,
    PositionLimit, PriceCollar,
};
use crate::{Amount, Money, PolicyError, Threshold, TradingHours};

/// Most entries an `allowedMarkets`/`allowedCounterparties`/`allowedRegions` list may hold.
pub const MAX_LIST_ENTRIES: usize = 256;
const MAX_DNS_LABEL_LEN: usize = 63;
const MAX_OPERATOR_CHARS: usize = 256;
const MAX_REGULATOR_ID_LEN: usize = 64;
const MAX_LIST_ENTRY_LEN: usize = 64;
const MAX_CONSECUTIVE_FAILURES: u32 = 1_000;
const MAX_REVOCATION_TIMEOUT_SECS: u32 = 86_400;

/// Whether `s` is a lowercase DNS label: 1 to 63 characters of `[a-z0-9-]`,
/// neither starting nor ending with `-`.
///
/// This is the rule for `agentId`, which becomes the leftmost label of the
/// agent's DNS SAN; it is equally suitable for other slugs.
pub fn is_dns_label(s: &str) -> bool {
    (1..=MAX_DNS_LABEL_LEN).contains(&s.len())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `s` is a valid market, counterparty or region name: 1 to 64 characters of
/// `A-Z a-z 0-9 _ . : / -` (the rule of `allowedMarkets` and its kin, of `marketControls` and
/// of reference prices).
pub fn is_list_name(s: &str) -> bool {
    (1..=MAX_LIST_ENTRY_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-'))
}

/// Something an agent may be permitted to do.
///
/// JSON and text form is snake_case: `"trade_execution"`, `"data_access"`, … (read in any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Placing, amending or cancelling orders.
    TradeExecution,
    /// Reading market or account data.
    DataAccess,
    /// Calling third-party APIs.
    ApiCall,
    /// Running model inference.
    ModelInference,
    /// Authenticating to other services.
    Authentication,
    /// Changing stored data.
    DataMutation,
}

crate::case_insensitive_enum!(
    Action,
    [
        Action::TradeExecution,
        Action::DataAccess,
        Action::ApiCall,
        Action::ModelInference,
        Action::Authentication,
        Action::DataMutation
    ]
);

impl Action {
    /// Every action, in ASN.1 enumeration order.
    pub const ALL: [Action; 6] = [
        Action::TradeExecution,
        Action::DataAccess,
        Action::ApiCall,
        Action::ModelInference,
        Action::Authentication,
        Action::DataMutation,
    ];

    /// The JSON/text name, e.g. `"trade_execution"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::TradeExecution => "trade_execution",
            Action::DataAccess => "data_access",
            Action::ApiCall => "api_call",
            Action::ModelInference => "model_inference",
            Action::Authentication => "authentication",
            Action::DataMutation => "data_mutation",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                PolicyError::invalid("permittedActions", format!("unknown action {s:?}"))
            })
    }
}

/// What the CA does when a reported event breaks the approved mandate.
///
/// JSON: `"revoke"` (the default) or `"warn"` (read in any case).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnBreach {
    /// Open a `mandate_breach` incident and revoke the agent (the kill switch) at once.
    #[default]
    Revoke,
    /// Open a `mandate_breach` incident and notify; the agent keeps its certificates.
    Warn,
}

crate::case_insensitive_enum!(OnBreach, [OnBreach::Revoke, OnBreach::Warn]);

impl OnBreach {
    /// `"revoke"` or `"warn"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnBreach::Revoke => "revoke",
            OnBreach::Warn => "warn",
        }
    }

    fn is_default(&self) -> bool {
        *self == OnBreach::Revoke
    }
}

/// An agent's authority limits, carried in its certificate.
///
/// A mandate is immutable once issued: changing it means issuing a new
/// certificate. Every `Option` field is a restriction when present and "no
/// restriction" when absent; an empty list (`Some(vec![])`) allows nothing.
/// Lists keep the order given (it is preserved through JSON and DER).
///
/// Deserializing from JSON runs [`Mandate::validate`], so a deserialized value
/// is always valid; values built in code should be validated before use
/// ([`Mandate::to_der`] does so itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawMandate")]
pub struct Mandate {
    /// The agent's identifier; a DNS label (see [`is_dns_label`]).
    pub agent_id: String,
    /// Legal entity operating the agent: 1 to 256 characters, no control characters.
    pub operator: String,
    /// The operator's regulator registration, e.g. `ESMA-001234`: 1 to 64
    /// printable ASCII characters (space allowed, but not at either end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_regulator_id: Option<String>,
    /// Largest single transaction. Must not exceed `max_daily_volume` when both
    /// are in the same currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_transaction_size: Option<Money>,
    /// Largest total traded per day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_daily_volume: Option<Money>,
    /// Markets the agent may trade, e.g. `EUR_USD`. Entries: 1 to 64 characters
    /// of `[A-Za-z0-9_.:/-]`; at most 256 entries; no duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_markets: Option<Vec<String>>,
    /// Counterparties the agent may deal with, e.g. `exchange_a`; same bounds as markets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_counterparties: Option<Vec<String>>,
    /// Regions the agent may operate in, e.g. `eu-west-1`; same bounds as markets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_regions: Option<Vec<String>>,
    /// When the agent may act.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trading_hours: Option<TradingHours>,
    /// What the agent may do; no duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permitted_actions: Option<Vec<Action>>,
    /// Loss/error ratio at which the agent's activity is halted (default 0.75).
    pub circuit_breaker_threshold: Threshold,
    /// Ratio at which the certificate is revoked automatically (default 0.85);
    /// must be at least `circuit_breaker_threshold`.
    pub auto_revoke_threshold: Threshold,
    /// Consecutive failures tolerated before the circuit breaker trips (default 3, 1 to 1000).
    pub max_consecutive_failures: u32,
    /// Seconds within which a triggered revocation must take effect (default 15,
    /// 1 to 86400). JSON name `revocationTimeout`.
    #[serde(rename = "revocationTimeout")]
    pub revocation_timeout_secs: u32,
    /// What the CA does when a reported event breaks this mandate (default `revoke`). Not in
    /// the certificate extension: it is how the CA reacts, not a limit a relying party checks,
    /// so a mandate read from a certificate always says `revoke`.
    #[serde(default, skip_serializing_if = "OnBreach::is_default")]
    pub on_breach: OnBreach,
    /// Version 2: the RTS 6 pre-trade controls, as defaults for every market. Empty (and no
    /// `market_controls`): a version-1 mandate.
    #[serde(flatten)]
    pub controls: Controls,
    /// Version 2: controls of single markets, replacing the defaults there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub market_controls: Option<Vec<MarketControls>>,
    /// Why each limit is what it is, by field name (e.g. `maxOrderQuantity`): kept with the
    /// mandate version for the approval screen and the compliance report, not in the
    /// certificate.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rationale: BTreeMap<String, String>,
}

impl Mandate {
    /// Default `maxConsecutiveFailures`.
    pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 3;
    /// Default `revocationTimeout`, in seconds.
    pub const DEFAULT_REVOCATION_TIMEOUT_SECS: u32 = 15;

    /// A mandate with no restrictions beyond the default risk controls.
    ///
    /// Not validated: call [`Mandate::validate`] after filling it in.
    pub fn new(agent_id: impl Into<String>, operator: impl Into<String>) -> Mandate {
        Mandate {
            agent_id: agent_id.into(),
            operator: operator.into(),
            operator_regulator_id: None,
            max_transaction_size: None,
            max_daily_volume: None,
            allowed_markets: None,
            allowed_counterparties: None,
            allowed_regions: None,
            trading_hours: None,
            permitted_actions: None,
            circuit_breaker_threshold: Threshold::DEFAULT_CIRCUIT_BREAKER,
            auto_revoke_threshold: Threshold::DEFAULT_AUTO_REVOKE,
            max_consecutive_failures: Self::DEFAULT_MAX_CONSECUTIVE_FAILURES,
            revocation_timeout_secs: Self::DEFAULT_REVOCATION_TIMEOUT_SECS,
            on_breach: OnBreach::Revoke,
            controls: Controls::default(),
            market_controls: None,
            rationale: BTreeMap::new(),
        }
    }

    /// Checks every bound documented on the fields; reports the first violation.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !is_dns_label(&self.agent_id) {
            return Err(PolicyError::invalid(
                "agentId",
                "expected 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
            ));
        }
        validate_operator(&self.operator)?;
        if let Some(id) = &self.operator_regulator_id {
            validate_regulator_id(id)?;
        }
        if let (Some(tx), Some(daily)) = (&self.max_transaction_size, &self.max_daily_volume)
            && tx.currency == daily.currency
            && tx.amount > daily.amount
        {
            return Err(PolicyError::invalid(
                "maxTransactionSize",
                format!("{tx} exceeds maxDailyVolume {daily}"),
            ));
        }
        validate_list("allowedMarkets", self.allowed_markets.as_deref())?;
        validate_list(
            "allowedCounterparties",
            self.allowed_counterparties.as_deref(),
        )?;
        validate_list("allowedRegions", self.allowed_regions.as_deref())?;
        if let Some(hours) = &self.trading_hours {
            hours.validate()?;
        }
        if let Some(actions) = &self.permitted_actions {
            let mut seen = BTreeSet::new();
            if let Some(action) = actions.iter().find(|a| !seen.insert(**a)) {
                return Err(PolicyError::invalid(
                    "permittedActions",
                    format!("duplicate action {action}"),
                ));
            }
        }
        if self.auto_revoke_threshold < self.circuit_breaker_threshold {
            return Err(PolicyError::invalid(
                "autoRevokeThreshold",
                format!(
                    "{} is below circuitBreakerThreshold {}",
                    self.auto_revoke_threshold, self.circuit_breaker_threshold
                ),
            ));
        }
        if !(1..=MAX_CONSECUTIVE_FAILURES).contains(&self.max_consecutive_failures) {
            return Err(PolicyError::invalid(
                "maxConsecutiveFailures",
                "must be between 1 and 1000",
            ));
        }
        if !(1..=MAX_REVOCATION_TIMEOUT_SECS).contains(&self.revocation_timeout_secs) {
            return Err(PolicyError::invalid(
                "revocationTimeout",
                "must be between 1 and 86400 seconds",
            ));
        }
        self.controls.validate()?;
        if let Some(markets) = &self.market_controls {
            crate::controls::validate_markets(markets)?;
        }
        if self.rationale.len() > 64
            || self.rationale.iter().any(|(k, v)| {
                k.is_empty()
                    || k.len() > 64
                    || crate::text::exact_human_text("rationale", v, 2000, crate::TextKind::Note)
                        .is_err()
            })
        {
            return Err(PolicyError::invalid(
                "rationale",
                "at most 64 entries: a field name (1 to 64 bytes) and 1 to 2000 characters of visible text, no control characters but line breaks (\\n), no bidirectional formatting, no leading or trailing spaces",
            ));
        }
        Ok(())
    }

    /// The controls `market` sets itself in `marketControls`, if it is listed there.
    pub fn own_controls(&self, market: &str) -> Option<&Controls> {
        self.market_controls
            .as_deref()?
            .iter()
            .find(|m| m.market.eq_ignore_ascii_case(market))
            .map(|m| &m.controls)
    }

    /// The version-2 controls that apply in `market`: the market's own where it sets them,
    /// the defaults otherwise (markets compare case-insensitively).
    pub fn controls_for(&self, market: Option<&str>) -> Controls {
        let mut c = self.controls.clone();
        let Some(market) = market else { return c };
        let Some(own) = self
            .market_controls
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|m| m.market.eq_ignore_ascii_case(market))
        else {
            return c;
        };
        let o = own.controls.clone();
        macro_rules! over {
            ($($f:ident),*) => { $( if o.$f.is_some() { c.$f = o.$f; } )* };
        }
        over!(
            max_order_quantity,
            price_collar,
            reference_price_max_age,
            max_open_orders,
            max_net_position,
            max_daily_loss,
            max_messages_per_second,
            max_order_to_trade_ratio,
            repeated_execution_throttle,
            allowed_order_types,
            short_selling_allowed
        );
        c
    }

    /// Whether the mandate uses version-2 fields (its certificate extension is then version 2).
    pub fn is_v2(&self) -> bool {
        !self.controls.is_empty() || self.market_controls.is_some()
    }

    /// The DER encoding of the `Mandate` ASN.1 type (the extension's `extnValue`
    /// contents); validates first.
    pub fn to_der(&self) -> Result<Vec<u8>, PolicyError> {
        self.validate()?;
        crate::der_codec::encode(self)
    }

    /// Parses a DER-encoded mandate, accepting only the canonical encoding of a
    /// valid mandate: at most [`crate::MAX_DER_LEN`] bytes, no trailing data,
    /// no unknown or reordered fields, and [`Mandate::validate`] must pass.
    pub fn from_der(bytes: &[u8]) -> Result<Mandate, PolicyError> {
        crate::der_codec::decode(bytes)
    }
}

fn validate_operator(operator: &str) -> Result<(), PolicyError> {
    crate::text::exact_human_text(
        "operator",
        operator,
        MAX_OPERATOR_CHARS,
        crate::TextKind::Line,
    )
}

fn validate_regulator_id(id: &str) -> Result<(), PolicyError> {
    let printable = id.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    if !(1..=MAX_REGULATOR_ID_LEN).contains(&id.len())
        || !printable
        || id.starts_with(' ')
        || id.ends_with(' ')
    {
        return Err(PolicyError::invalid(
            "operatorRegulatorId",
            "expected 1 to 64 printable ASCII characters, not starting or ending with a space",
        ));
    }
    Ok(())
}

fn validate_list(field: &'static str, list: Option<&[String]>) -> Result<(), PolicyError> {
    let Some(list) = list else {
        return Ok(());
    };
    if list.len() > MAX_LIST_ENTRIES {
        return Err(PolicyError::invalid(
            field,
            format!(
                "{} entries; at most {MAX_LIST_ENTRIES} are allowed",
                list.len()
            ),
        ));
    }
    // Markets, counterparties and regions compare case-insensitively, so duplicates do too.
    let mut seen = BTreeSet::new();
    for (index, entry) in list.iter().enumerate() {
        if !is_list_name(entry) {
            return Err(PolicyError::invalid(
                field,
                format!(
                    "entry {index}: expected 1 to 64 characters of A-Z, a-z, 0-9 and _ . : / -"
                ),
            ));
        }
        if !seen.insert(entry.to_ascii_lowercase()) {
            return Err(PolicyError::invalid(
                field,
                format!("duplicate entry {entry:?} (entries compare case-insensitively)"),
            ));
        }
    }
    Ok(())
}

/// The schema of `allowedMarkets` and its kin: at most 256 distinct names (see [`is_list_name`]).
fn names(description: &str, example: &[&str]) -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z0-9_.:/-]{1,64}$")),
        )
        .max_items(Some(MAX_LIST_ENTRIES))
        .unique_items(true)
        .description(Some(description))
        .examples([serde_json::json!(example)])
        .build()
}

/// The schema of `allowedMarkets`.
pub(crate) fn market_names() -> utoipa::openapi::schema::Array {
    names(
        "Markets the agent may trade, e.g. BTC_EUR: at most 256 names of 1 to 64 of A-Z a-z 0-9 _ . : / -, no duplicates (compared case-insensitively)",
        &["BTC_EUR", "ETH_EUR"],
    )
}

/// The schema of `allowedCounterparties`.
pub(crate) fn counterparty_names() -> utoipa::openapi::schema::Array {
    names(
        "Counterparties the agent may deal with, e.g. exchange_a; as allowedMarkets",
        &["exchange_a"],
    )
}

/// The schema of `allowedRegions`.
pub(crate) fn region_names() -> utoipa::openapi::schema::Array {
    names(
        "Regions the agent may operate in, e.g. eu-west-1; as allowedMarkets",
        &["eu-west-1"],
    )
}

/// The schema of `rationale`: by field name, why the limit is what it is.
pub(crate) fn rationale() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(64)),
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(2000))
                .into(),
        )))
        .max_properties(Some(64))
        .description(Some(
            "Why each limit is what it is, by field name (e.g. maxOrderQuantity; 1 to 64 bytes): at most 64 entries of 1 to 2000 characters of visible text, line breaks allowed, no other control or bidirectional formatting characters, no leading or trailing spaces. Kept with the mandate version for the approval screen and the report, not in the certificate; written only when not empty",
        ))
        .examples([serde_json::json!({"maxOrderQuantity": "Twice the largest order of the back-test"})])
        .build()
}

fn default_circuit_breaker() -> Threshold {
    Threshold::DEFAULT_CIRCUIT_BREAKER
}

fn default_auto_revoke() -> Threshold {
    Threshold::DEFAULT_AUTO_REVOKE
}

fn default_max_consecutive_failures() -> u32 {
    Mandate::DEFAULT_MAX_CONSECUTIVE_FAILURES
}

fn default_revocation_timeout() -> u32 {
    Mandate::DEFAULT_REVOCATION_TIMEOUT_SECS
}

/// The unchecked JSON shape; `TryFrom` runs [`Mandate::validate`] so that
/// deserialization alone can never produce an invalid [`Mandate`]. Its schema is the API
/// document's `Mandate` (what is read is what is written: a [`Mandate`] serializes to these
/// names, its defaults written out, absent options left out).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(
    description = "The agent's authority limits, camelCase (docs/MANDATE.md). Absent optional fields mean no restriction, an empty list allows nothing; list order is kept. Unknown fields are refused, and so is any field out of its bounds (422 invalid-mandate, naming the field). The version-2 controls (maxOrderQuantity to shortSellingAllowed, marketControls) are the RTS 6 pre-trade controls; a numeric one is its value (hard) or {\"value\": ..., \"enforcement\": \"soft\"}. Written back with its defaults filled in",
    examples(json!({
        "agentId": "trading-bot-1",
        "operator": "Acme Trading GmbH",
        "operatorRegulatorId": "ESMA-001234",
        "maxTransactionSize": {"amount": "50000", "currency": "EUR"},
        "maxDailyVolume": {"amount": "1000000", "currency": "EUR"},
        "allowedMarkets": ["BTC_EUR", "ETH_EUR"],
        "allowedCounterparties": ["exchange_a"],
        "allowedRegions": ["eu-west-1"],
        "tradingHours": {"start": "08:00", "end": "17:00", "timeZone": "Europe/Berlin",
                         "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
        "permittedActions": ["trade_execution", "data_access"],
        "circuitBreakerThreshold": 0.75,
        "autoRevokeThreshold": 0.85,
        "maxConsecutiveFailures": 3,
        "revocationTimeout": 15,
        "maxOrderQuantity": "2",
        "priceCollar": {"value": {"buyBps": 500, "sellBps": 500}, "enforcement": "soft"},
        "maxOpenOrders": 20,
        "maxDailyLoss": {"amount": "10000", "currency": "EUR"},
        "allowedOrderTypes": ["market", "limit"],
        "marketControls": [{"market": "ETH_EUR", "controls": {"maxOrderQuantity": "30"}}],
        "rationale": {"maxOrderQuantity": "Twice the largest order of the back-test"}
    }))
)]
struct RawMandate {
    /// The agent's identifier, the leftmost label of its certificate's DNS name: 1 to 63 of
    /// `a-z 0-9 -`, not starting or ending with `-`.
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    agent_id: String,
    /// The legal entity operating the agent: 1 to 256 characters of visible text, one line,
    /// no leading or trailing spaces, no control or bidirectional formatting characters.
    #[schema(min_length = 1, max_length = 256)]
    operator: String,
    /// The operator's regulator registration, e.g. `ESMA-001234`: 1 to 64 printable ASCII
    /// characters, not starting or ending with a space.
    #[schema(pattern = "^[!-~]([ -~]{0,62}[!-~])?$")]
    operator_regulator_id: Option<String>,
    /// Largest single transaction; at most `maxDailyVolume` when both are in one currency.
    max_transaction_size: Option<Money>,
    /// Largest total traded per trading day.
    max_daily_volume: Option<Money>,
    /// Markets the agent may trade, e.g. `BTC_EUR`: at most 256 names of 1 to 64 of
    /// `A-Z a-z 0-9 _ . : / -`, no duplicates (compared case-insensitively).
    #[schema(schema_with = crate::mandate::market_names)]
    allowed_markets: Option<Vec<String>>,
    /// Counterparties the agent may deal with, e.g. `exchange_a`; as `allowedMarkets`.
    #[schema(schema_with = crate::mandate::counterparty_names)]
    allowed_counterparties: Option<Vec<String>>,
    /// Regions the agent may operate in, e.g. `eu-west-1`; as `allowedMarkets`.
    #[schema(schema_with = crate::mandate::region_names)]
    allowed_regions: Option<Vec<String>>,
    /// When the agent may act.
    trading_hours: Option<TradingHours>,
    /// What the agent may do; no duplicates.
    permitted_actions: Option<Vec<Action>>,
    /// Loss/error ratio at which the agent's activity is halted.
    #[serde(default = "default_circuit_breaker")]
    #[schema(default = 0.75)]
    circuit_breaker_threshold: Threshold,
    /// Ratio at which the agent's certificate is revoked automatically; at least
    /// `circuitBreakerThreshold`.
    #[serde(default = "default_auto_revoke")]
    #[schema(default = 0.85)]
    auto_revoke_threshold: Threshold,
    /// Consecutive failures tolerated before the circuit breaker trips.
    #[serde(default = "default_max_consecutive_failures")]
    #[schema(default = 3, minimum = 1, maximum = 1000)]
    max_consecutive_failures: u32,
    /// Seconds within which a triggered revocation must take effect.
    #[serde(default = "default_revocation_timeout", rename = "revocationTimeout")]
    #[schema(default = 15, minimum = 1, maximum = 86400)]
    revocation_timeout_secs: u32,
    /// What the CA does when a reported event breaks this mandate: `revoke` (the kill switch)
    /// or `warn` (an incident and a webhook only). Not in the certificate; written only when
    /// `warn`.
    #[serde(default)]
    #[schema(default = "revoke")]
    on_breach: OnBreach,
    /// Version 2: largest quantity of one order, in the instrument's unit.
    #[schema(schema_with = crate::controls::max_order_quantity)]
    max_order_quantity: Option<Limit<Amount>>,
    /// Version 2: largest deviation of an order's price from the reference price.
    #[schema(schema_with = crate::controls::price_collar)]
    price_collar: Option<Limit<PriceCollar>>,
    /// Version 2: oldest reference price a collar or a position value is checked against,
    /// seconds (absent: 60); older fails closed.
    #[schema(minimum = 1, maximum = 86400)]
    reference_price_max_age: Option<u32>,
    /// Version 2: most orders open at once.
    #[schema(schema_with = crate::controls::max_open_orders)]
    max_open_orders: Option<Limit<u32>>,
    /// Version 2: largest net position, long or short.
    #[schema(schema_with = crate::controls::max_net_position)]
    max_net_position: Option<Limit<PositionLimit>>,
    /// Version 2: largest realised loss in a trading day.
    #[schema(schema_with = crate::controls::max_daily_loss)]
    max_daily_loss: Option<Limit<Money>>,
    /// Version 2: most order messages (new, amend, cancel) in any one second.
    #[schema(schema_with = crate::controls::max_messages_per_second)]
    max_messages_per_second: Option<Limit<u32>>,
    /// Version 2: largest order-to-trade ratio over a window.
    #[schema(schema_with = crate::controls::max_order_to_trade_ratio)]
    max_order_to_trade_ratio: Option<Limit<OrderToTradeRatio>>,
    /// Version 2: repeated executions that disable the agent.
    #[schema(schema_with = crate::controls::repeated_execution_throttle)]
    repeated_execution_throttle: Option<Limit<ExecutionThrottle>>,
    /// Version 2: the order types allowed (absent: any; empty: none); no duplicates.
    allowed_order_types: Option<Vec<OrderType>>,
    /// Version 2: whether selling more than is held is allowed (absent: no restriction).
    short_selling_allowed: Option<bool>,
    /// Version 2: controls of single markets, each replacing the default in its market: at
    /// most 256, each market once (compared case-insensitively), each setting a control.
    #[schema(max_items = 256)]
    market_controls: Option<Vec<MarketControls>>,
    /// Why each limit is what it is, by field name (e.g. `maxOrderQuantity`): at most 64
    /// entries, each 1 to 2000 characters of visible text (line breaks allowed). Kept with the
    /// mandate version, not in the certificate; written only when not empty.
    #[serde(default)]
    #[schema(schema_with = crate::mandate::rationale)]
    rationale: BTreeMap<String, String>,
}

crate::schema_of!(Mandate, "Mandate", RawMandate);

impl TryFrom<RawMandate> for Mandate {
    type Error = PolicyError;

    fn try_from(raw: RawMandate) -> Result<Self, Self::Error> {
        let mandate = Mandate {
            agent_id: raw.agent_id,
            operator: raw.operator,
            operator_regulator_id: raw.operator_regulator_id,
            max_transaction_size: raw.max_transaction_size,
            max_daily_volume: raw.max_daily_volume,
            allowed_markets: raw.allowed_markets,
            allowed_counterparties: raw.allowed_counterparties,
            allowed_regions: raw.allowed_regions,
            trading_hours: raw.trading_hours,
            permitted_actions: raw.permitted_actions,
            circuit_breaker_threshold: raw.circuit_breaker_threshold,
            auto_revoke_threshold: raw.auto_revoke_threshold,
            max_consecutive_failures: raw.max_consecutive_failures,
            revocation_timeout_secs: raw.revocation_timeout_secs,
            on_breach: raw.on_breach,
            controls: Controls {
                max_order_quantity: raw.max_order_quantity,
                price_collar: raw.price_collar,
                reference_price_max_age: raw.reference_price_max_age,
                max_open_orders: raw.max_open_orders,
                max_net_position: raw.max_net_position,
                max_daily_loss: raw.max_daily_loss,
                max_messages_per_second: raw.max_messages_per_second,
                max_order_to_trade_ratio: raw.max_order_to_trade_ratio,
                repeated_execution_throttle: raw.repeated_execution_throttle,
                allowed_order_types: raw.allowed_order_types,
                short_selling_allowed: raw.short_selling_allowed,
            },
            market_controls: raw.market_controls,
            rationale: raw.rationale,
        };
        mandate.validate()?;
        Ok(mandate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_entries_that_differ_only_in_case_are_duplicates() {
        let list = ["BTC_EUR".to_owned(), "btc_eur".to_owned()];
        let err = validate_list("allowedMarkets", Some(&list)).unwrap_err();
        assert!(
            err.to_string().contains("duplicate entry \"btc_eur\""),
            "{err}"
        );
        let ok = ["BTC_EUR".to_owned(), "ETH_EUR".to_owned()];
        assert!(validate_list("allowedMarkets", Some(&ok)).is_ok());
    }

    #[test]
    fn dns_labels() {
        for good in ["a", "0", "trading-bot-v2", "a-b", &"a".repeat(63)] {
            assert!(is_dns_label(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "-",
            "Trading",
            "a_b",
            "a.b",
            "a b",
            "ä",
            &"a".repeat(64),
        ] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
    }

    #[test]
    fn actions_text_and_json() {
        for action in Action::ALL {
            assert_eq!(action.to_string().parse::<Action>().unwrap(), action);
            assert_eq!(
                serde_json::to_string(&action).unwrap(),
                format!("\"{action}\"")
            );
        }
        assert_eq!(Action::TradeExecution.as_str(), "trade_execution");
        assert!("TradeExecution".parse::<Action>().is_err());
        assert!(serde_json::from_str::<Action>("\"trade\"").is_err());
    }

    fn field_of(m: &Mandate) -> &'static str {
        match m.validate() {
            Err(PolicyError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn new_is_valid_with_defaults() {
        let m = Mandate::new("bot", "Acme Trading GmbH");
        m.validate().unwrap();
        assert_eq!(m.circuit_breaker_threshold.basis_points(), 7_500);
        assert_eq!(m.auto_revoke_threshold.basis_points(), 8_500);
        assert_eq!(m.max_consecutive_failures, 3);
        assert_eq!(m.revocation_timeout_secs, 15);
    }

    #[test]
    fn validate_bounds() {
        let base = Mandate::new("bot", "Acme");
        let with = |f: &dyn Fn(&mut Mandate)| {
            let mut m = base.clone();
            f(&mut m);
            m
        };
        let cases: Vec<(Mandate, &str)> = vec![
            (with(&|m| m.agent_id = "Bot".into()), "agentId"),
            (with(&|m| m.operator = String::new()), "operator"),
            (with(&|m| m.operator = "a".repeat(257)), "operator"),
            (with(&|m| m.operator = "Acme\nEvil".into()), "operator"),
            (
                with(&|m| m.operator_regulator_id = Some(String::new())),
                "operatorRegulatorId",
            ),
            (
                with(&|m| m.operator_regulator_id = Some("x".repeat(65))),
                "operatorRegulatorId",
            ),
            (
                with(&|m| m.operator_regulator_id = Some("ESMA\t1".into())),
                "operatorRegulatorId",
            ),
            (
                with(&|m| m.operator_regulator_id = Some("ÉSMA".into())),
                "operatorRegulatorId",
            ),
            (
                with(&|m| m.operator_regulator_id = Some(" ESMA".into())),
                "operatorRegulatorId",
            ),
            (
                with(&|m| m.allowed_markets = Some(vec!["EUR_USD".into(), "EUR_USD".into()])),
                "allowedMarkets",
            ),
            (
                with(&|m| m.allowed_markets = Some(vec![String::new()])),
                "allowedMarkets",
            ),
            (
                with(&|m| m.allowed_markets = Some(vec!["EUR USD".into()])),
                "allowedMarkets",
            ),
            (
                with(&|m| m.allowed_counterparties = Some(vec!["x".repeat(65)])),
                "allowedCounterparties",
            ),
            (
                with(&|m| m.allowed_regions = Some((0..257).map(|i| format!("r{i}")).collect())),
                "allowedRegions",
            ),
            (
                with(&|m| m.permitted_actions = Some(vec![Action::ApiCall, Action::ApiCall])),
                "permittedActions",
            ),
            (
                with(&|m| m.auto_revoke_threshold = Threshold::from_basis_points(7_499).unwrap()),
                "autoRevokeThreshold",
            ),
            (
                with(&|m| m.max_consecutive_failures = 0),
                "maxConsecutiveFailures",
            ),
            (
                with(&|m| m.max_consecutive_failures = 1_001),
                "maxConsecutiveFailures",
            ),
            (
                with(&|m| m.revocation_timeout_secs = 0),
                "revocationTimeout",
            ),
            (
                with(&|m| m.revocation_timeout_secs = 86_401),
                "revocationTimeout",
            ),
        ];
        for (m, field) in &cases {
            assert_eq!(field_of(m), *field, "{m:?}");
        }

        let edges = [
            with(&|m| m.operator = "ü".repeat(256)),
            with(&|m| m.operator_regulator_id = Some("ESMA-001234 (FR)".into())),
            with(&|m| m.allowed_markets = Some(vec![])),
            with(&|m| m.allowed_regions = Some((0..256).map(|i| format!("r{i}")).collect())),
            with(&|m| m.allowed_markets = Some(vec!["x".repeat(64), "BTC/EUR:spot-1.0".into()])),
            with(&|m| m.auto_revoke_threshold = m.circuit_breaker_threshold),
            with(&|m| m.max_consecutive_failures = 1_000),
            with(&|m| m.revocation_timeout_secs = 86_400),
        ];
        for m in &edges {
            m.validate().unwrap();
        }
    }

    #[test]
    fn transaction_size_within_daily_volume() {
        let money = |s: &str, c: &str| Money {
            amount: s.parse().unwrap(),
            currency: c.parse().unwrap(),
        };
        let mut m = Mandate::new("bot", "Acme");
        m.max_transaction_size = Some(money("100", "EUR"));
        m.max_daily_volume = Some(money("99.99", "EUR"));
        assert_eq!(field_of(&m), "maxTransactionSize");
        m.max_daily_volume = Some(money("100", "EUR"));
        m.validate().unwrap();
        // Different currencies cannot be compared without a rate, so both stand.
        m.max_daily_volume = Some(money("1", "USD"));
        m.validate().unwrap();
    }
}
