use serde::{Deserialize, Serialize};

use crate::StoreError;

/// Declares a string-backed enum stored as TEXT, with its JSON form equal to its stored form.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }
        // What people type is read in any case ("Operator" is `operator`).
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(&text))
                    .ok_or_else(|| {
                        let names: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        serde::de::Error::custom(format!(
                            "{text:?} is not one of {} (any case)",
                            names.join(", ")
                        ))
                    })
            }
        }
        // By hand: the derive does not see a `rename` made of a macro's literal.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }
        impl utoipa::ToSchema for $name {}
        impl $name {
            /// The stored (and JSON) form.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// All values, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $name {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError::Corrupt(format!(
                        "{other:?} is not a valid {}", stringify!($name)
                    ))),
                }
            }
        }
    };
}

text_enum! {
    /// What an API key may do.
    Role {
        /// Manages API keys and the CA.
        Admin = "admin",
        /// Registers agents and requests their certificates.
        Operator = "operator",
        /// Approves mandates; must be a different identity from the registrant.
        Compliance = "compliance",
        /// Reads everything, changes nothing.
        Auditor = "auditor",
        /// One agent's own key.
        Agent = "agent",
        /// An organization's price feed: posts reference prices, nothing else.
        MarketData = "market-data",
    }
}

impl Role {
    /// Whether a person may sign in to the dashboard with a key of this role: not an
    /// agent's key, nor a price feed's.
    pub fn signs_in(self) -> bool {
        !matches!(self, Role::Agent | Role::MarketData)
    }
}

text_enum! {
    /// Lifecycle of an agent.
    AgentStatus {
        /// Registered; its mandate waits for a compliance officer.
        PendingApproval = "pending_approval",
        /// Has an approved mandate; certificates may be issued.
        Active = "active",
        /// Blocked from issuance (kill switch).
        Suspended = "suspended",
    }
}

text_enum! {
    /// Lifecycle of one mandate version.
    MandateStatus {
        /// Waiting for a compliance officer.
        PendingApproval = "pending_approval",
        /// Approved: certificates carry this version.
        Approved = "approved",
        /// Refused by a compliance officer.
        Rejected = "rejected",
        /// Was approved; a later version replaced it.
        Superseded = "superseded",
        /// Was pending; a later request replaced it before anyone decided.
        Withdrawn = "withdrawn",
    }
}

text_enum! {
    /// Lifecycle of an agent certificate.
    CertStatus {
        /// Serial reserved and to-be-signed bytes stored; signing not confirmed.
        Reserved = "reserved",
        /// Signed and stored.
        Issued = "issued",
        /// Revoked.
        Revoked = "revoked",
    }
}

text_enum! {
    /// Place of a CA certificate in the hierarchy.
    CaRole {
        /// Self-signed trust anchor.
        Root = "root",
        /// Issues agent certificates.
        Intermediate = "intermediate",
    }
}

/// A CA key and its certificate, as the key ceremony stores them.
#[derive(Debug, Clone)]
pub struct NewCaCert {
    /// CKA_ID of the key, hex.
    pub key_id: String,
    /// CKA_LABEL of the key.
    pub key_label: String,
    /// Key type, e.g. `ec-p256`.
    pub key_kind: String,
    /// Root or intermediate.
    pub role: CaRole,
    /// SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
    /// Subject as text, for people.
    pub subject: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    /// SubjectKeyIdentifier bytes.
    pub ski: Vec<u8>,
    /// Validity start, unix seconds.
    pub not_before: i64,
    /// Validity end, unix seconds.
    pub not_after: i64,
}

/// A stored CA certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CaCertRow {
    /// Row id; agent certificates name their issuer by it.
    pub id: i64,
    /// CKA_ID of the key, hex.
    pub key_id: String,
    /// CKA_LABEL of the key.
    pub key_label: String,
    /// Key type, e.g. `ec-p256`.
    pub key_kind: String,
    /// Root or intermediate.
    pub role: CaRole,
    /// Subject as text.
    pub subject: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// The certificate, DER.
    #[serde(skip)]
    pub der: Vec<u8>,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    /// SubjectKeyIdentifier bytes.
    #[serde(skip)]
    pub ski: Vec<u8>,
    /// Validity start, unix seconds.
    pub not_before: i64,
    /// Validity end, unix seconds.
    pub not_after: i64,
    /// Whether new issuance uses it.
    pub active: bool,
}

/// An API key to store; only the hash of its secret.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Public id (the part before the secret).
    pub id: String,
    /// SHA-256 of the secret.
    pub secret_hash: Vec<u8>,
    /// What it may do.
    pub role: Role,
    /// The agent it belongs to (role agent only).
    pub agent_id: Option<String>,
    /// The person holding it (every role but agent).
    pub person_id: Option<String>,
    /// A name for people.
    pub label: String,
    /// Id of the key that created it (none for the bootstrap key).
    pub created_by: Option<String>,
}

/// A stored API key.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyRow {
    /// Public id.
    pub id: String,
    /// SHA-256 of the secret.
    #[serde(skip)]
    pub secret_hash: Vec<u8>,
    /// What it may do.
    pub role: Role,
    /// The agent it belongs to (role agent only).
    pub agent_id: Option<String>,
    /// The person holding it (every role but agent).
    pub person_id: Option<String>,
    /// A name for people.
    pub label: String,
    /// Id of the key that created it.
    pub created_by: Option<String>,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Revocation time, unix seconds.
    pub revoked_at: Option<i64>,
}

/// An agent to register.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// Agent id (a DNS label).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Operator organization slug (a DNS label).
    pub organization: String,
    /// API key id of the registrant.
    pub created_by: String,
    /// The requested mandate, canonical JSON.
    pub mandate_json: String,
}

/// A stored agent.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRow {
    /// Agent id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Operator organization slug.
    pub organization: String,
    /// Lifecycle state.
    pub status: AgentStatus,
    /// API key id of the registrant.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// An agent as lists show it: its newest mandate version and which version is approved.
#[derive(Debug, Clone)]
pub struct AgentOverview {
    /// The agent.
    pub agent: AgentRow,
    /// The newest mandate version (pending or decided).
    pub latest: MandateRow,
    /// The version certificates are issued with, if any.
    pub approved_version: Option<i64>,
}

/// A stored mandate version.
#[derive(Debug, Clone, Serialize)]
pub struct MandateRow {
    /// The agent.
    pub agent_id: String,
    /// 1, 2, ...
    pub version: i64,
    /// Canonical JSON.
    pub mandate_json: String,
    /// Lifecycle state.
    pub status: MandateStatus,
    /// API key id that submitted it.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// API key id that approved or rejected it.
    pub decided_by: Option<String>,
    /// Unix seconds.
    pub decided_at: Option<i64>,
}

/// A certificate about to be signed: serial and exact to-be-signed bytes.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// Serial, lowercase hex.
    pub serial: String,
    /// The agent.
    pub agent_id: String,
    /// The approved mandate version it carries.
    pub mandate_version: i64,
    /// The issuing CA certificate's row id.
    pub issuer_id: i64,
    /// TBSCertificate DER.
    pub tbs: Vec<u8>,
    /// Validity start, unix seconds.
    pub not_before: i64,
    /// Validity end, unix seconds.
    pub not_after: i64,
    /// API key id of the requester.
    pub requested_by: String,
    /// The profile it is issued under (none: a lifetime asked for in days).
    pub profile: Option<String>,
}

/// A stored agent certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateRow {
    /// Serial, lowercase hex.
    pub serial: String,
    /// The agent.
    pub agent_id: String,
    /// The mandate version it carries.
    pub mandate_version: i64,
    /// Issuing CA certificate row id.
    pub issuer_id: i64,
    /// Lifecycle state.
    pub status: CertStatus,
    /// The certificate, DER, once signed.
    #[serde(skip)]
    pub der: Option<Vec<u8>>,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: Option<String>,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// API key id of the requester.
    pub requested_by: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub issued_at: Option<i64>,
    /// Unix seconds.
    pub revoked_at: Option<i64>,
    /// RFC 5280 CRLReason code.
    pub revocation_reason: Option<i64>,
    /// Who revoked it: an API key id, or `cli:<command>`.
    pub revoked_by: Option<String>,
    /// When it stops being valid because a newer mandate version was approved (unix s): it is
    /// revoked `superseded` then, and ARI tells its holder to renew now.
    pub retire_at: Option<i64>,
    /// The profile it was issued under (none: a lifetime asked for in days, or issued before
    /// profiles existed).
    pub profile: Option<String>,
}

/// One audit record to append.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// Who: an API key id, `system`, or `cli:<command>`.
    pub actor: String,
    /// What, dotted: `agent.registered`, `certificate.issued`, ...
    pub action: String,
    /// On what: an agent id, a serial, a key id.
    pub subject: String,
    /// SHA-256 of the certificate concerned, if any.
    pub cert_fingerprint: Option<String>,
    /// Further facts, a JSON object.
    pub details: serde_json::Value,
    /// The agent's risk score behind the decision, if there is one.
    pub risk_score: Option<f64>,
    /// The organization it concerns; found from the subject (an agent or a certificate) or the
    /// acting person when left out.
    pub organization: Option<String>,
    /// The person who acted; found from the actor's API key when left out.
    pub person: Option<String>,
    /// Both above are known (set by [`AuditEvent::by`]): nothing to look up.
    pub resolved: bool,
}

impl AuditEvent {
    /// An event with no certificate and the given details.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        subject: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        AuditEvent {
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            cert_fingerprint: None,
            details,
            risk_score: None,
            organization: None,
            person: None,
            resolved: false,
        }
    }

    /// The same event, naming the organization it concerns and the person who acted (`None`:
    /// none), so appending it looks nothing up: for hot paths that know both.
    pub fn by(mut self, organization: Option<&str>, person: Option<&str>) -> Self {
        self.organization = organization.map(str::to_owned);
        self.person = person.map(str::to_owned);
        self.resolved = true;
        self
    }

    /// The same event, naming a certificate.
    pub fn with_fingerprint(mut self, sha256_hex: impl Into<String>) -> Self {
        self.cert_fingerprint = Some(sha256_hex.into());
        self
    }

    /// The same event, with the risk score behind it.
    pub fn with_risk_score(mut self, score: f64) -> Self {
        self.risk_score = Some(score);
        self
    }
}

/// A stored audit record.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    /// Position in the log.
    pub seq: i64,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub subject: String,
    /// Certificate concerned.
    pub cert_fingerprint: Option<String>,
    /// Further facts.
    pub details: serde_json::Value,
    /// The details exactly as stored (what the hash covers).
    #[serde(skip)]
    pub details_text: String,
    /// The risk score behind the decision, if any.
    pub risk_score: Option<f64>,
    /// The organization it concerns (none: CA-wide, or written before organizations).
    pub organization: Option<String>,
    /// The person who acted, if a person did.
    pub person: Option<String>,
    /// The previous record's hash (zeros before the first), hex.
    pub prev_hash: String,
    /// SHA-256 of this record's canonical encoding and `prev_hash`, hex.
    pub hash: String,
}
