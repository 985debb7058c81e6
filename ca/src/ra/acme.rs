//! ACME's writes, for an account that acts for its agent only. The adapter (`crate::acme`)
//! verifies the JWS and the external account binding (authentication) and speaks RFC 8555;
//! what an account may change is decided and recorded here. Errors stay the store's, which
//! the adapter maps to RFC 8555 problems.

use mandate_store::{AcmeAccountRow, AcmeOrderRow, AuditEvent, Revocation, Store, StoreError};
use serde_json::json;

use crate::CaError;
use crate::revocation::RevocationReason;

fn actor(account_id: &str) -> String {
    format!("acme:{account_id}")
}

/// Opens an account bound, by its single-use EAB credentials, to one agent.
pub async fn open_account(store: &Store, account: &AcmeAccountRow) -> Result<(), StoreError> {
    let event = AuditEvent::new(
        actor(&account.id),
        "acme.account_created",
        &account.agent_id,
        json!({"account": account.id, "eab_key_id": account.eab_key_id,
               "thumbprint": account.thumbprint}),
    );
    store.create_acme_account(account, &event).await
}

/// Updates an account's contacts (JSON text) or deactivates it.
pub async fn update_account(
    store: &Store,
    account: &AcmeAccountRow,
    contact: Option<&str>,
    status: Option<&str>,
) -> Result<AcmeAccountRow, StoreError> {
    let event = AuditEvent::new(
        actor(&account.id),
        if status.is_some() {
            "acme.account_deactivated"
        } else {
            "acme.account_updated"
        },
        &account.agent_id,
        json!({"account": account.id, "contact": contact
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())}),
    );
    store
        .update_acme_account(&account.id, contact, status, &event)
        .await
}

/// Replaces an account's key (RFC 8555 §7.3.5).
pub async fn change_key(
    store: &Store,
    account: &AcmeAccountRow,
    new_thumbprint: &str,
    new_jwk: &str,
) -> Result<(), StoreError> {
    let event = AuditEvent::new(
        actor(&account.id),
        "acme.key_changed",
        &account.agent_id,
        json!({"account": account.id, "old_thumbprint": account.thumbprint,
               "new_thumbprint": new_thumbprint}),
    );
    store
        .change_acme_account_key(
            &account.id,
            &account.thumbprint,
            new_thumbprint,
            new_jwk,
            &event,
        )
        .await
}

/// Records a new order of an account for its own agent.
pub async fn open_order(store: &Store, order: &AcmeOrderRow) -> Result<(), StoreError> {
    store.create_acme_order(order).await
}

/// Moves an order from one state to the next (false: it was not in `from`).
pub async fn move_order(
    store: &Store,
    id: &str,
    from: &str,
    to: &str,
    serial: Option<&str>,
) -> Result<bool, StoreError> {
    store.move_acme_order(id, from, to, serial).await
}

/// Revokes a certificate over ACME: by an account of its agent (`account`) or by the
/// certificate's own key (`None`); the adapter checked which, and the reason is one open to
/// agents.
pub async fn revoke(
    store: &Store,
    account: Option<&str>,
    serial: &str,
    reason: RevocationReason,
) -> Result<Revocation, StoreError> {
    let who = account.map_or_else(|| "acme:certificate-key".to_owned(), actor);
    let out = store
        .revoke_certificate(
            serial,
            reason.code(),
            &who,
            json!({"reason": reason.code(), "reason_name": reason.name(), "via": "acme"}),
        )
        .await?;
    if matches!(out, Revocation::Revoked(_)) {
        crate::metrics::METRICS.revocations.inc(&["acme"]);
    }
    Ok(out)
}

/// The lifetime of the certificate an ACME order of `agent_id` gets: its `profile` (draft-
/// ietf-acme-profiles), else the organization's default, else the CA's; checked at `newOrder`
/// and again at finalize.
pub async fn order_lifetime(
    store: &Store,
    cfg: &mandate_config::Config,
    agent_id: &str,
    profile: Option<&str>,
) -> Result<Result<super::certify::Lifetime, super::certify::LifetimeError>, CaError> {
    let (_, limits) = store
        .agent_with_limits(agent_id)
        .await?
        .ok_or_else(|| CaError::NotFound(format!("agent {agent_id}")))?;
    Ok(super::certify::lifetime(
        cfg,
        &limits,
        &super::certify::Asked {
            profile: profile.map(str::to_owned),
            validity_days: None,
        },
    ))
}
