//! The pre-trade decision with the agent's state: the pure decision of the policy crate, fed
//! with what only the daemon knows (the day's volume and loss, failures in a row, the risk
//! score, the certificates, the market's reference price) and the message rate it counts.
//! Preflight and custodial signing both come here, so they can never disagree.

use mandate_policy::{Denial, OrderJson, decide};
use mandate_store::DecisionRow;

use super::live::Behaviour;
use crate::CaError;

/// When an order is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// At the daemon's clock; a `timestamp` further than `policy.max_clock_skew_secs` from it
    /// is refused (`sign`).
    Now,
    /// At the daemon's clock when the `timestamp` is within the skew, else a what-if at the
    /// `timestamp` (`preflight`).
    NowOrWhatIf,
}

/// A pre-trade decision.
#[derive(Debug)]
pub(crate) struct Decided {
    /// Every reason the order is out of the mandate, hard and soft.
    pub(crate) denials: Vec<Denial>,
    /// A what-if for another time than now.
    pub(crate) hypothetical: bool,
    /// The decision as recorded (a preflight's is handed to the writer already; signing
    /// stores it once the order is to be signed).
    pub(crate) record: DecisionRow,
}

impl Behaviour {
    /// Every reason `order` is out of `agent_id`'s mandate now (or, for a what-if, at its
    /// timestamp), hard and soft, asked by API key `decided_by`, named by a fresh decision id.
    /// A message let through counts towards the message rate. A preflight's decision is handed
    /// to the decision writer; signing stores its own once the order is to be signed.
    pub(crate) async fn pretrade(
        &self,
        agent_id: &str,
        order: &OrderJson,
        when: When,
        decided_by: &str,
    ) -> Result<Decided, CaError> {
        if order.decision_id.is_some() {
            return Err(CaError::InvalidOrder(
                "decision_id: the daemon names its decisions; leave it out of the order".into(),
            ));
        }
        let (denials, hypothetical) = self.decide(agent_id, order, when).await?;
        let at_ms = crate::now_ms();
        let record = DecisionRow {
            id: crate::decision::new_id(at_ms)?,
            agent_id: agent_id.to_owned(),
            at_ms,
            via: match when {
                When::Now => "sign",
                When::NowOrWhatIf => "preflight",
            }
            .to_owned(),
            allowed: denials.iter().all(|d| !d.is_hard()),
            hypothetical,
            // Canonical JSON is UTF-8: taken as it is, not copied.
            order_json: String::from_utf8(order.canonical_bytes())
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            reasons: serde_json::Value::Array(
                denials
                    .iter()
                    .map(|d| {
                        serde_json::json!({"code": d.code, "limit": d.limit,
                                           "requested": d.requested,
                                           "enforcement": d.enforcement})
                    })
                    .collect(),
            ),
            decided_by: decided_by.to_owned(),
        };
        if when == When::NowOrWhatIf {
            self.decisions.record(record.clone()).await?;
        }
        Ok(Decided {
            denials,
            hypothetical,
            record,
        })
    }

    /// The decision itself: every reason, and whether it is a what-if.
    async fn decide(
        &self,
        agent_id: &str,
        order: &OrderJson,
        when: When,
    ) -> Result<(Vec<Denial>, bool), CaError> {
        let now = mandate_store::now_unix();
        let skew = self.cfg.policy.max_clock_skew_secs;
        let hypothetical =
            when == When::NowOrWhatIf && order.skew(now).unsigned_abs() > u64::from(skew);
        let client_order_id = order.client_order_id.clone();
        let order = if hypothetical {
            order.to_order(now)
        } else {
            order.to_order_now(now, skew)
        }
        .map_err(|e| CaError::InvalidOrder(e.to_string()))?;
        let entry = self.live(agent_id).await?;
        let mut live = entry.lock().await;
        let Some(mandate) = live.mandate_at(order.at) else {
            return Err(CaError::NotApproved(format!(
                "agent {agent_id} has no approved mandate: nothing is allowed"
            )));
        };
        let day = mandate_policy::trading_day_start(&mandate, order.at);
        let mut agent_state = live.policy_state(crate::now_ms(), self.half_life(), day);
        agent_state.book = Some(live.book_state(&mandate, &order, client_order_id.as_deref()));
        let controls = mandate.controls_for(order.market.as_deref());
        let by_value = matches!(
            controls.max_net_position.as_ref().map(|l| &l.value),
            Some(mandate_policy::PositionLimit::Value(_))
        );
        if controls.price_collar.is_some() || by_value {
            agent_state.reference = self
                .reference_prices
                .reference(&live.organization, order.market.as_deref());
        }
        let mut denials = decide(&mandate, &order, &agent_state);
        // The message rate (RTS 6 Art. 15(1)): every order message let through counts, once per
        // client order id and intent (a preflight and the signing of the same message are one);
        // a what-if is no message.
        if !hypothetical {
            // The default counts every market's messages; a market's own limit counts that
            // market's, in addition.
            let own = order
                .market
                .as_deref()
                .and_then(|m| mandate.own_controls(m))
                .and_then(|c| c.max_messages_per_second.clone());
            let scopes = [
                (
                    mandate.controls.max_messages_per_second.clone(),
                    None,
                    String::new(),
                ),
                (
                    own,
                    order.market.clone(),
                    format!(" in {}", order.market.as_deref().unwrap_or_default()),
                ),
            ];
            let id = client_order_id.map(|c| (c, order.intent.as_str()));
            let now_ms = crate::now_ms();
            for (limit, market, scope) in scopes {
                let Some(limit) = limit else { continue };
                let (seen, count) =
                    live.messages_in_last_second(now_ms, market.as_deref(), id.as_ref());
                if !seen && count + 1 > u64::from(limit.value) {
                    denials.push(Denial {
                        code: "message_rate_exceeded",
                        limit: format!("{} messages a second{scope}", limit.value),
                        requested: format!("{} in the last second{scope}", count + 1),
                        enforcement: limit.enforcement,
                    });
                }
            }
            if denials.iter().all(|d| !d.is_hard()) {
                live.note_message(now_ms, order.market.as_deref(), id);
            }
        }
        drop(live);
        Ok((denials, hypothetical))
    }
}

/// The machine-readable code of the refusal or breach (the pre-trade check's `Denial` codes).
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "a type for the document's sake: the codes are texts at run time"
)]
pub(crate) enum ReasonCode {
    CertificateRevoked,
    NoValidCertificate,
    ActionNotPermitted,
    CurrencyMismatch,
    ExceedsScopeSize,
    ExceedsOrderQuantity,
    OrderTypeNotAllowed,
    PriceOutsideCollar,
    ReferencePriceStale,
    MessageRateExceeded,
    DailyLossLimitReached,
    MaxOpenOrdersReached,
    OrderToTradeRatioExceeded,
    ExceedsNetPosition,
    ShortSellingNotAllowed,
    MarketNotAllowed,
    CounterpartyNotAllowed,
    RegionNotAllowed,
    DailyVolumeCapExceeded,
    OutsideTradingHours,
    CircuitBreakerActive,
    TooManyConsecutiveFailures,
    /// A reported event's breach only: the mandate's `repeatedExecutionThrottle`.
    RepeatedExecutionThrottle,
}

/// hard: refused; soft: allowed, flagged.
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "a type for the document's sake: `mandate_policy::Enforcement`"
)]
pub(crate) enum EnforcementDoc {
    Hard,
    Soft,
}

/// A reason with its enforcement, as a decision records it and an event's breach shows it.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "a type for the document's sake: the reasons are JSON at run time"
)]
pub(crate) struct DecidedReason {
    #[schema(inline)]
    code: ReasonCode,
    /// The limit, as text, e.g. 50000 EUR.
    limit: String,
    /// What was asked, as text.
    requested: String,
    #[schema(inline)]
    enforcement: EnforcementDoc,
}
