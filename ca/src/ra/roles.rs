//! Who may do what: the role lists the RA checks, which the dashboard also reads to decide
//! which buttons to show.

use mandate_store::Role;

/// May read agents, certificates, incidents and webhooks.
pub const READERS: &[Role] = &[Role::Operator, Role::Compliance, Role::Auditor, Role::Admin];
/// May approve or reject mandates and baselines (segregation of duties: never the
/// operator who registered the agent).
pub const DECIDERS: &[Role] = &[Role::Compliance];
/// May revoke any certificate and pull the kill switch.
pub const REVOKERS: &[Role] = &[Role::Operator, Role::Compliance, Role::Admin];
/// May acknowledge an incident.
pub const ACKNOWLEDGERS: &[Role] = &[Role::Operator, Role::Compliance, Role::Admin];
/// May resolve an incident (the human sign-off).
pub const RESOLVERS: &[Role] = &[Role::Compliance];
/// May make compliance reports.
pub const REPORTERS: &[Role] = &[Role::Compliance, Role::Auditor];
/// May register agents and request mandate changes.
pub const MANDATE_REQUESTERS: &[Role] = &[Role::Operator];
/// May register and disable webhook endpoints.
pub const WEBHOOK_MANAGERS: &[Role] = &[Role::Operator, Role::Admin];
/// May read the audit log.
pub const AUDIT_READERS: &[Role] = &[Role::Auditor, Role::Compliance, Role::Admin];
