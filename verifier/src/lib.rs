//! Offline verification of an order an AI trading agent presents, for exchanges and other
//! relying parties, and for the daemon's `POST /v1/verify`.
//!
//! The agent presents its certificate, the intermediates up to a root the relying party
//! trusts, a fresh OCSP response, a signature and the signed order payload (the JSON of
//! [`mandate_policy::OrderJson`]). [`verify`] checks, collecting every reason for a refusal:
//!
//! 1. the certification path to one of the trusted roots, and the validity of every
//!    certificate in it (`untrusted_chain`, `certificate_expired`, `certificate_not_yet_valid`);
//! 2. that the leaf is an agent certificate: it carries a decodable mandate extension
//!    ([`mandate_policy::MANDATE_EXTENSION_OID`]) whose `agentId` is the subject's common name
//!    (`not_an_agent_certificate`);
//! 3. the revocation status, from an OCSP response signed by the issuer or a responder it
//!    delegated, or as the caller knows it (`revocation_unknown`, `certificate_revoked`);
//! 4. the signature over the payload with the leaf's key (`signature_invalid`);
//! 5. the order itself against the mandate, with [`mandate_policy::decide`] (`payload_invalid`
//!    and the decision engine's codes, e.g. `exceeds_scope_size`, `market_not_allowed`), at
//!    the time of the check: an order whose `timestamp` is more than
//!    [`Evidence::max_clock_skew`] seconds from it is refused (`order_time_skew`), so a signed
//!    order is good for that long and nobody picks the hour its trading hours are judged at.
//!
//! **Stateless.** Only what the evidence shows is checked. Daily volume so far, consecutive
//! failures and the risk score are state kept by the daemon: this crate decides with an empty
//! [`mandate_policy::AgentState`], so `maxDailyVolume` is compared with this order alone and the
//! circuit breaker never trips here. Only the daemon's `POST /v1/agents/{id}/preflight` checks
//! those. Replay protection (has this signed order been seen before?) is the caller's business.
//!
//! The crate does no I/O and never panics on input; oversized input is refused with a reason.
//!
//! ```no_run
//! use mandate_verify::{Evidence, RevocationInput, pem_to_der_chain, verify};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let certificate = std::fs::read("agent.der")?;
//! let chain = pem_to_der_chain(&std::fs::read_to_string("chain.pem")?)?;
//! let roots = pem_to_der_chain(&std::fs::read_to_string("mandate-root.pem")?)?;
//! let ocsp = std::fs::read("agent.ocsp.der")?;
//! let (payload, signature) = (std::fs::read("order.json")?, std::fs::read("order.sig")?);
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
//! let verdict = verify(&Evidence {
//!     certificate: &certificate,
//!     chain: &chain,
//!     roots: &roots,
//!     revocation: RevocationInput::Ocsp(&ocsp),
//!     signature: &signature,
//!     payload: &payload,
//!     now: i64::try_from(now)?,
//!     max_clock_skew: mandate_verify::DEFAULT_MAX_CLOCK_SKEW,
//! });
//! for reason in &verdict.reasons {
//!     eprintln!("refused: {} ({})", reason.code, reason.detail);
//! }
//! # Ok(())
//! # }
//! ```

mod cert;
mod crl;
mod ocsp;

use std::time::Duration;

use mandate_policy::{AgentState, Denial, MANDATE_EXTENSION_OID, Mandate, OrderJson};
use serde::{Deserialize, Serialize};

use crate::cert::Cert;
pub use crate::crl::MAX_CRL_LEN;
pub use crate::ocsp::{CLOCK_SKEW_SECS, MAX_OCSP_LEN};

/// A revocation that a CRL or an OCSP response signed by the CA states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvenRevocation {
    /// The certificate's serial, lowercase hex as encoded (leading zero byte kept).
    pub serial_hex: String,
    /// When it was revoked, unix seconds.
    pub revoked_at: i64,
    /// The RFC 5280 CRLReason code, when given.
    pub reason: Option<u8>,
    /// Which of the issuers given signed it (their index).
    pub issuer: usize,
}

/// What a CRL or an OCSP response signed by the CA states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevocationEvidence {
    /// For a CRL: its signer (index in the issuers given) and its CRL number.
    pub crl_number: Option<(usize, u64)>,
    /// The revocations it states.
    pub revocations: Vec<ProvenRevocation>,
}

/// The revocations stated by signed revocation evidence: a CRL (DER; with its signer's index in
/// `issuers` and its CRL number) or an OCSP response (DER), each of which must be signed by one
/// of `issuers` (DER certificates), an OCSP response possibly by a responder an issuer
/// authorized. For recovering revocations a restored database lost: what the CA published is
/// what relying parties saw.
pub fn signed_revocations(der: &[u8], issuers: &[Vec<u8>]) -> Result<RevocationEvidence, String> {
    let issuers: Vec<Cert<'_>> = issuers
        .iter()
        .map(|d| Cert::parse(d))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("an issuer certificate {e}"))?;
    match crl::revocations(der, &issuers) {
        Ok(found) => Ok(found),
        Err(as_crl) => ocsp::revocations(der, &issuers)
            .map(|revocations| RevocationEvidence {
                crl_number: None,
                revocations,
            })
            .map_err(|as_ocsp| {
                format!("neither a CRL ({as_crl}) nor an OCSP response ({as_ocsp})")
            }),
    }
}

/// Largest certificate accepted (leaf, intermediate, root or OCSP responder), in bytes.
pub const MAX_CERT_LEN: usize = 64 * 1024;
/// Most intermediate certificates accepted in [`Evidence::chain`].
pub const MAX_CHAIN_LEN: usize = 4;
/// Largest order payload accepted, in bytes.
pub const MAX_PAYLOAD_LEN: usize = 16 * 1024;
/// Largest payload signature accepted, in bytes (an RSA-8192 signature is 1024).
pub const MAX_SIGNATURE_LEN: usize = 1024;

/// Where the revocation status of the agent certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationInput<'a> {
    /// A DER `OCSPResponse` (RFC 6960), as the agent staples it.
    Ocsp(&'a [u8]),
    /// The caller vouches for the status, e.g. the CA daemon from its own database.
    Known(RevocationStatus),
    /// Nothing: the status is unknown and the order is refused (`revocation_unknown`).
    None,
}

/// The revocation status of the agent certificate.
///
/// JSON: `{"status":"good"}`, `{"status":"revoked","revoked_at":"2026-12-07T10:00:00Z",
/// "revocation_reason":"keyCompromise","revocation_reason_code":1}`, `{"status":"unknown"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationStatus {
    /// Not revoked.
    Good,
    /// Revoked.
    Revoked {
        /// When, unix seconds.
        revoked_at: i64,
        /// The RFC 5280 CRLReason code, when given (1 = keyCompromise, …).
        reason: Option<u8>,
    },
    /// Not established: no, a stale, an unverifiable or a non-matching response, or the
    /// responder does not know the certificate.
    Unknown,
}

/// What the agent presents, and what the relying party trusts.
#[derive(Debug, Clone)]
pub struct Evidence<'a> {
    /// The agent certificate, DER.
    pub certificate: &'a [u8],
    /// The intermediate certificates, DER, the leaf's issuer first; at most
    /// [`MAX_CHAIN_LEN`]. It may end with a trusted root itself.
    pub chain: &'a [Vec<u8>],
    /// The trusted root certificates, DER (unparsable ones are ignored).
    pub roots: &'a [Vec<u8>],
    /// Where the revocation status comes from.
    pub revocation: RevocationInput<'a>,
    /// The signature over `payload` by the agent certificate's key: ECDSA (ASN.1 DER or
    /// fixed `r || s`) with SHA-256 on P-256 or SHA-384 on P-384, or RSA PKCS#1 v1.5 with
    /// SHA-256.
    pub signature: &'a [u8],
    /// The signed order: the JSON of [`OrderJson`] (normally its canonical bytes), at most
    /// [`MAX_PAYLOAD_LEN`] bytes.
    pub payload: &'a [u8],
    /// The time of the check, unix seconds: the order is decided at this time.
    pub now: i64,
    /// Largest distance, in seconds, between the order's `timestamp` and `now` that is accepted
    /// (see [`DEFAULT_MAX_CLOCK_SKEW`]).
    pub max_clock_skew: u32,
}

/// The daemon's default `policy.max_clock_skew_secs`: a signed order is good for 30 s.
pub const DEFAULT_MAX_CLOCK_SKEW: u32 = 30;

/// One reason the order is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = VerifyReason)]
pub struct Reason {
    /// Machine-readable code: a check of the certificate or the signature
    /// (`untrusted_chain`, `wrong_purpose`, `certificate_expired`, `certificate_revoked`,
    /// `revocation_unknown`, `signature_invalid`, `payload_invalid`, `order_time_skew`, …) or
    /// one of the pre-trade codes of `PreflightReason` (`exceeds_scope_size`, …).
    pub code: String,
    /// What exactly is wrong, for people.
    pub detail: String,
    /// The limit that was hit, for mandate refusals, e.g. `1000 EUR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// What was asked, for mandate refusals, e.g. `5000 EUR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
}

impl Reason {
    fn new(code: &str, detail: impl Into<String>) -> Reason {
        Reason {
            code: code.to_string(),
            detail: detail.into(),
            limit: None,
            requested: None,
        }
    }

    fn from_denial(d: Denial) -> Reason {
        Reason {
            code: d.code.to_string(),
            detail: denial_detail(d.code).to_string(),
            limit: Some(d.limit),
            requested: Some(d.requested),
        }
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verdict {
    /// True if and only if `reasons` is empty: the order may be accepted.
    pub valid: bool,
    /// The agent, from the mandate in the certificate.
    #[schema(required = true)]
    pub agent_id: Option<String>,
    /// The certificate serial number as the CA stores it: the DER INTEGER content bytes
    /// (a leading `00` included if present), lowercase hex. JSON: `serial_number`.
    #[serde(rename = "serial_number")]
    #[schema(required = true)]
    pub serial: Option<String>,
    /// The agent certificate's notAfter, unix seconds; JSON: RFC 3339.
    #[serde(with = "json_time")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub not_after: Option<i64>,
    /// The revocation status as established.
    #[schema(value_type = RevocationJson)]
    pub revocation: RevocationStatus,
    /// The mandate from the certificate, if it decoded.
    #[schema(required = true)]
    pub mandate: Option<Mandate>,
    /// The order from the payload, if it parsed.
    #[schema(required = true)]
    pub order: Option<OrderJson>,
    /// Every reason for a refusal; empty if valid.
    pub reasons: Vec<Reason>,
    /// Soft limits of the mandate the order breaks: it is not refused for them (they are for
    /// the firm's oversight), but a relying party may want to know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub soft_breaches: Vec<Reason>,
}

/// Errors of the helpers around [`verify`] (which itself reports problems as [`Reason`]s).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The text holds no `CERTIFICATE` PEM block.
    #[error("no CERTIFICATE PEM block found")]
    NoCertificate,
    /// A `CERTIFICATE` block has no END line.
    #[error("CERTIFICATE block {index} has no END line")]
    UnterminatedPem {
        /// The block's position, from 0.
        index: usize,
    },
    /// A `CERTIFICATE` block's body is not base64.
    #[error("CERTIFICATE block {index} is not valid base64: {reason}")]
    Base64 {
        /// The block's position, from 0.
        index: usize,
        /// What the decoder said.
        reason: String,
    },
}

/// The DER of every `CERTIFICATE` block of a PEM text, in order; other blocks (keys, …) are
/// skipped. Errors if there is none, or a block is cut short or not base64. The DER itself is
/// not checked here: [`verify`] does that.
pub fn pem_to_der_chain(pem: &str) -> Result<Vec<Vec<u8>>, VerifyError> {
    use base64::Engine;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let index = out.len();
        let after = &rest[start + BEGIN.len()..];
        let end = after
            .find(END)
            .ok_or(VerifyError::UnterminatedPem { index })?;
        let body: String = after[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| VerifyError::Base64 {
                index,
                reason: e.to_string(),
            })?;
        out.push(der);
        rest = &after[end + END.len()..];
    }
    if out.is_empty() {
        return Err(VerifyError::NoCertificate);
    }
    Ok(out)
}

/// Checks a signature by one of the CA's own single-purpose keys (e.g. the audit checkpoint
/// signer): `certificate` chains through `chain` to one of `roots` and is valid at `at`, carries
/// the extended key usage `purpose`, and `signature` (ECDSA DER/fixed or RSA PKCS#1 v1.5, SHA-256
/// for P-256 and RSA, SHA-384 for P-384) over `message` verifies with its key. Returns every
/// reason it fails; empty means good.
pub fn verify_signed_by(
    certificate: &[u8],
    chain: &[Vec<u8>],
    roots: &[Vec<u8>],
    purpose: const_oid::ObjectIdentifier,
    message: &[u8],
    signature: &[u8],
    at: i64,
) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let roots: Vec<Cert<'_>> = roots.iter().filter_map(|d| Cert::parse(d).ok()).collect();
    let leaf = match Cert::parse(certificate) {
        Ok(c) => c,
        Err(why) => {
            reasons.push(Reason::new(
                "untrusted_chain",
                format!("the signer certificate {why}"),
            ));
            return reasons;
        }
    };
    let (chain, complete) = cert::parse_chain(chain, &mut reasons);
    cert::check_path(&leaf, &chain, complete, &roots, at, &mut reasons);
    match leaf.has_eku(purpose) {
        Ok(true) => {}
        Ok(false) => reasons.push(Reason::new(
            "wrong_purpose",
            format!("the signer certificate is not for {purpose}"),
        )),
        Err(why) => reasons.push(Reason::new("wrong_purpose", why)),
    }
    match leaf.public_key() {
        Ok(key) if key.verify_payload(message, signature) => {}
        Ok(_) => reasons.push(Reason::new(
            "signature_invalid",
            "the signature does not verify with the signer's key",
        )),
        Err(why) => reasons.push(Reason::new("signature_invalid", why)),
    }
    reasons
}

/// Verifies the evidence; see the crate documentation for what is checked. Every applicable
/// reason is collected; checks that need the result of a failed one are skipped (no signature
/// check without a readable certificate, no OCSP check without a verified issuer, no mandate
/// decision without a mandate).
pub fn verify(e: &Evidence<'_>) -> Verdict {
    let mut reasons = Vec::new();
    let roots: Vec<Cert<'_>> = e.roots.iter().filter_map(|d| Cert::parse(d).ok()).collect();

    // 1. The leaf and its certification path.
    let leaf = match Cert::parse(e.certificate) {
        Ok(c) => Some(c),
        Err(why) => {
            reasons.push(Reason::new(
                "not_an_agent_certificate",
                format!("the agent certificate {why}"),
            ));
            None
        }
    };
    let (chain, complete) = cert::parse_chain(e.chain, &mut reasons);
    let issuer = leaf
        .as_ref()
        .and_then(|l| cert::check_path(l, &chain, complete, &roots, e.now, &mut reasons));

    // 2. The mandate.
    let mandate = leaf.as_ref().and_then(|l| agent_mandate(l, &mut reasons));

    // 3. Revocation.
    let revocation = revocation(e, leaf.as_ref(), issuer, &mut reasons);

    // 4. The signature, 5. the order.
    let payload_ok = e.payload.len() <= MAX_PAYLOAD_LEN;
    if !payload_ok {
        reasons.push(Reason::new(
            "payload_invalid",
            format!(
                "the payload is {} bytes; at most {MAX_PAYLOAD_LEN} are accepted",
                e.payload.len()
            ),
        ));
    }
    if let (true, Some(leaf)) = (payload_ok, &leaf)
        && let Err(why) = check_signature(leaf, e.signature, e.payload)
    {
        reasons.push(Reason::new("signature_invalid", why));
    }
    let mut soft_breaches = Vec::new();
    let order = if payload_ok {
        check_order(e, mandate.as_ref(), &mut reasons, &mut soft_breaches)
    } else {
        None
    };

    Verdict {
        valid: reasons.is_empty(),
        agent_id: mandate.as_ref().map(|m| m.agent_id.clone()),
        serial: leaf.as_ref().map(Cert::serial_hex),
        not_after: leaf.as_ref().map(|l| l.validity().1),
        revocation,
        mandate,
        order,
        reasons,
        soft_breaches,
    }
}

/// The mandate in the leaf, which must be there once, decode, and name the subject's CN.
fn agent_mandate(leaf: &Cert<'_>, reasons: &mut Vec<Reason>) -> Option<Mandate> {
    let not_agent = |detail: String| Reason::new("not_an_agent_certificate", detail);
    let der = match leaf.extension(MANDATE_EXTENSION_OID) {
        Ok(Some(der)) => der,
        Ok(None) => {
            reasons.push(not_agent(format!(
                "the certificate carries no mandate extension ({MANDATE_EXTENSION_OID})"
            )));
            return None;
        }
        Err(why) => {
            reasons.push(not_agent(format!("the certificate's {why}")));
            return None;
        }
    };
    let mandate = match Mandate::from_der(der) {
        Ok(m) => m,
        Err(why) => {
            reasons.push(not_agent(format!(
                "the mandate extension does not decode: {why}"
            )));
            return None;
        }
    };
    let names = leaf.common_names();
    if !matches!(names.as_slice(), [one] if *one == mandate.agent_id) {
        reasons.push(not_agent(format!(
            "the mandate is for agent {:?} but the subject common name is {}",
            mandate.agent_id,
            match names.as_slice() {
                [] => "missing".to_string(),
                [one] => format!("{one:?}"),
                many => format!("given {} times", many.len()),
            }
        )));
    }
    Some(mandate)
}

/// The revocation status, with `revocation_unknown` or `certificate_revoked` when it is not
/// good.
fn revocation(
    e: &Evidence<'_>,
    leaf: Option<&Cert<'_>>,
    issuer: Option<&Cert<'_>>,
    reasons: &mut Vec<Reason>,
) -> RevocationStatus {
    let (status, why_unknown) = match (&e.revocation, leaf, issuer) {
        (RevocationInput::Known(s), _, _) => (
            s.clone(),
            "the caller does not know the certificate's status".to_string(),
        ),
        (RevocationInput::None, _, _) => {
            (RevocationStatus::Unknown, "no OCSP response given".into())
        }
        (RevocationInput::Ocsp(der), Some(leaf), Some(issuer)) => {
            match ocsp::check(der, leaf, issuer, e.now) {
                Ok(s) => (s, "the OCSP responder does not know the certificate".into()),
                Err(why) => (RevocationStatus::Unknown, why),
            }
        }
        (RevocationInput::Ocsp(_), _, _) => (
            RevocationStatus::Unknown,
            "the OCSP response cannot be checked: the certificate's issuer is not established"
                .into(),
        ),
    };
    match &status {
        RevocationStatus::Good => {}
        RevocationStatus::Unknown => reasons.push(Reason::new("revocation_unknown", why_unknown)),
        RevocationStatus::Revoked { revoked_at, reason } => reasons.push(Reason::new(
            "certificate_revoked",
            format!(
                "the certificate was revoked at {} (reason: {})",
                time_text(*revoked_at),
                reason.map_or("not given", crl_reason_name)
            ),
        )),
    }
    status
}

/// Checks the payload signature with the leaf's key.
fn check_signature(leaf: &Cert<'_>, signature: &[u8], payload: &[u8]) -> Result<(), String> {
    if signature.len() > MAX_SIGNATURE_LEN {
        return Err(format!(
            "the signature is {} bytes; at most {MAX_SIGNATURE_LEN} are accepted",
            signature.len()
        ));
    }
    let key = leaf
        .public_key()
        .map_err(|why| format!("the agent certificate's key cannot verify: {why}"))?;
    if let Some(ku) = leaf.key_usage()?
        && !ku.digital_signature()
    {
        return Err("the agent certificate's keyUsage lacks digitalSignature".into());
    }
    if key.verify_payload(payload, signature) {
        Ok(())
    } else {
        Err(format!(
            "the signature does not verify over the payload with the agent certificate's {} key",
            key.kind
        ))
    }
}

/// Parses the order and, with a mandate, decides on it.
fn check_order(
    e: &Evidence<'_>,
    mandate: Option<&Mandate>,
    reasons: &mut Vec<Reason>,
    soft_breaches: &mut Vec<Reason>,
) -> Option<OrderJson> {
    let json = match serde_json::from_slice::<OrderJson>(e.payload) {
        Ok(j) => j,
        Err(why) => {
            reasons.push(Reason::new(
                "payload_invalid",
                format!("the payload is not an order: {why}"),
            ));
            return None;
        }
    };
    if json.skew(e.now).unsigned_abs() > u64::from(e.max_clock_skew) {
        let why = json
            .to_order_now(e.now, e.max_clock_skew)
            .err()
            .map_or_else(String::new, |w| w.to_string());
        reasons.push(Reason::new("order_time_skew", why));
        return Some(json);
    }
    match json.to_order_now(e.now, e.max_clock_skew) {
        Err(why) => reasons.push(Reason::new("payload_invalid", why.to_string())),
        Ok(order) => {
            if let Some(m) = mandate {
                let (hard, soft): (Vec<_>, Vec<_>) =
                    mandate_policy::decide(m, &order, &AgentState::default())
                        .into_iter()
                        .partition(mandate_policy::Denial::is_hard);
                reasons.extend(hard.into_iter().map(Reason::from_denial));
                soft_breaches.extend(soft.into_iter().map(Reason::from_denial));
            }
        }
    }
    Some(json)
}

fn denial_detail(code: &str) -> &'static str {
    match code {
        "action_not_permitted" => "The mandate does not permit this action.",
        "exceeds_scope_size" => "The order is larger than the mandate's maximum transaction size.",
        "market_not_allowed" => "The market is not among the mandate's allowed markets.",
        "counterparty_not_allowed" => {
            "The counterparty is not among the mandate's allowed counterparties."
        }
        "region_not_allowed" => "The region is not among the mandate's allowed regions.",
        "daily_volume_cap_exceeded" => "This order alone exceeds the mandate's daily volume cap.",
        "outside_trading_hours" => "The order falls outside the mandate's trading hours.",
        "exceeds_order_quantity" => "The order's quantity is over the mandate's maxOrderQuantity.",
        "order_type_not_allowed" => "The order type is not among the mandate's allowedOrderTypes.",
        "currency_mismatch" => {
            "The order is in another currency than the mandate's limits, which cannot be compared."
        }
        _ => "The order is outside the agent's mandate.",
    }
}

/// The RFC 5280 name of a CRLReason code.
fn crl_reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown code",
    }
}

/// `RevocationStatus` in JSON, as the rest of mandate's JSON: RFC 3339 times, the reason by
/// its RFC 5280 name with the code beside.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = RevocationStatus)]
struct RevocationJson {
    /// `good`, `revoked` or `unknown` (not established).
    #[schema(pattern = "^(good|revoked|unknown)$")]
    status: String,
    /// When (revoked only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
    /// RFC 5280 CRLReason name, e.g. `keyCompromise` (revoked only).
    #[serde(default)]
    revocation_reason: Option<String>,
    /// Its RFC 5280 code (revoked only).
    #[serde(default)]
    revocation_reason_code: Option<u8>,
}

impl Serialize for RevocationStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let j = match self {
            RevocationStatus::Good | RevocationStatus::Unknown => {
                let status = if *self == RevocationStatus::Good {
                    "good"
                } else {
                    "unknown"
                };
                return serde::Serialize::serialize(
                    &std::collections::BTreeMap::from([("status", status)]),
                    s,
                );
            }
            RevocationStatus::Revoked { revoked_at, reason } => RevocationJson {
                status: "revoked".into(),
                revoked_at: Some(time_text(*revoked_at)),
                revocation_reason: reason.map(|c| crl_reason_name(c).to_owned()),
                revocation_reason_code: *reason,
            },
        };
        j.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RevocationStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = RevocationJson::deserialize(d)?;
        match j.status.as_str() {
            "good" => Ok(RevocationStatus::Good),
            "unknown" => Ok(RevocationStatus::Unknown),
            "revoked" => {
                let at = j
                    .revoked_at
                    .as_deref()
                    .and_then(json_time::parse)
                    .ok_or_else(|| serde::de::Error::custom("revoked_at: expected RFC 3339 UTC"))?;
                Ok(RevocationStatus::Revoked {
                    revoked_at: at,
                    reason: j.revocation_reason_code,
                })
            }
            other => Err(serde::de::Error::custom(format!(
                "status {other:?}: expected good, revoked or unknown"
            ))),
        }
    }
}

/// An optional unix time as RFC 3339 text in JSON (`#[serde(with)]`).
mod json_time {
    use serde::{Deserialize, Deserializer, Serializer};

    /// `YYYY-MM-DDTHH:MM:SSZ` to unix seconds.
    pub(crate) fn parse(text: &str) -> Option<i64> {
        let t: der::DateTime = text.parse().ok()?;
        i64::try_from(t.unix_duration().as_secs()).ok()
    }

    pub(crate) fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(unix) => s.serialize_some(&super::time_text(*unix)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(t) => parse(&t)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("expected RFC 3339 UTC")),
        }
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn time_text(unix: i64) -> String {
    u64::try_from(unix)
        .ok()
        .and_then(|s| der::DateTime::from_unix_duration(Duration::from_secs(s)).ok())
        .map_or_else(|| format!("unix time {unix}"), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence<'a>(cert: &'a [u8], payload: &'a [u8]) -> Evidence<'a> {
        Evidence {
            certificate: cert,
            chain: &[],
            roots: &[],
            revocation: RevocationInput::None,
            signature: &[],
            payload,
            now: 1_700_000_000,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
        }
    }

    fn codes(v: &Verdict) -> Vec<&str> {
        v.reasons.iter().map(|r| r.code.as_str()).collect()
    }

    #[test]
    fn garbage_is_refused_with_reasons() {
        let v = verify(&evidence(b"not a certificate", b"{"));
        assert!(!v.valid);
        assert_eq!(
            codes(&v),
            [
                "not_an_agent_certificate",
                "revocation_unknown",
                "payload_invalid"
            ]
        );
        assert_eq!(v.revocation, RevocationStatus::Unknown);
        assert!(v.serial.is_none() && v.mandate.is_none() && v.order.is_none());
    }

    #[test]
    fn oversized_inputs_are_refused() {
        let big_cert = vec![0x30; MAX_CERT_LEN + 1];
        let big_payload = vec![b' '; MAX_PAYLOAD_LEN + 1];
        let chain = vec![vec![0u8; 10]; MAX_CHAIN_LEN + 1];
        let mut e = evidence(&big_cert, &big_payload);
        e.chain = &chain;
        let v = verify(&e);
        let text = serde_json::to_string(&v.reasons).unwrap();
        assert!(text.contains("at most 65536"), "{text}");
        assert!(text.contains("at most 4"), "{text}");
        assert!(text.contains("at most 16384"), "{text}");
        assert_eq!(
            codes(&v),
            [
                "not_an_agent_certificate",
                "untrusted_chain",
                "revocation_unknown",
                "payload_invalid"
            ]
        );
    }

    #[test]
    fn known_status_is_used_as_is() {
        let mut e = evidence(b"", br#"{"action":"trade_execution"}"#);
        e.revocation = RevocationInput::Known(RevocationStatus::Revoked {
            revoked_at: 1_600_000_000,
            reason: Some(1),
        });
        let v = verify(&e);
        let revoked = v
            .reasons
            .iter()
            .find(|r| r.code == "certificate_revoked")
            .unwrap();
        assert_eq!(
            revoked.detail,
            "the certificate was revoked at 2020-09-13T12:26:40Z (reason: keyCompromise)"
        );
        assert!(v.order.is_some());

        e.revocation = RevocationInput::Known(RevocationStatus::Good);
        assert_eq!(verify(&e).revocation, RevocationStatus::Good);
    }

    #[test]
    fn verdict_json_shape() {
        let revoked = RevocationStatus::Revoked {
            revoked_at: 5,
            reason: None,
        };
        assert_eq!(
            serde_json::to_string(&revoked).unwrap(),
            r#"{"status":"revoked","revoked_at":"1970-01-01T00:00:05Z","revocation_reason":null,"revocation_reason_code":null}"#
        );
        let with_reason = RevocationStatus::Revoked {
            revoked_at: 1_600_000_000,
            reason: Some(1),
        };
        let json = serde_json::to_string(&with_reason).unwrap();
        assert!(json.contains(r#""revocation_reason":"keyCompromise","revocation_reason_code":1"#));
        assert_eq!(
            serde_json::from_str::<RevocationStatus>(&json).unwrap(),
            with_reason
        );
        assert_eq!(
            serde_json::to_string(&RevocationStatus::Good).unwrap(),
            r#"{"status":"good"}"#
        );
        let reason = Reason::new("payload_invalid", "x");
        assert_eq!(
            serde_json::to_string(&reason).unwrap(),
            r#"{"code":"payload_invalid","detail":"x"}"#
        );
    }

    #[test]
    fn pem_blocks() {
        let pem = "junk\n-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n\
                   -----BEGIN PRIVATE KEY-----\nBAUG\n-----END PRIVATE KEY-----\n\
                   -----BEGIN CERTIFICATE-----\r\nBA\r\nUG\r\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_to_der_chain(pem).unwrap(),
            vec![vec![1, 2, 3], vec![4, 5, 6]]
        );
        assert!(matches!(
            pem_to_der_chain("nothing"),
            Err(VerifyError::NoCertificate)
        ));
        assert!(matches!(
            pem_to_der_chain("-----BEGIN CERTIFICATE-----\nAQID\n"),
            Err(VerifyError::UnterminatedPem { index: 0 })
        ));
        assert!(matches!(
            pem_to_der_chain("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----"),
            Err(VerifyError::Base64 { index: 0, .. })
        ));
    }

    #[test]
    fn times_render() {
        assert_eq!(time_text(0), "1970-01-01T00:00:00Z");
        assert_eq!(time_text(-1), "unix time -1");
    }
}
