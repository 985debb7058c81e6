//! The registration authority: every decision about who may do what, for which organization,
//! on which agent, at what time. Adapters (REST, ACME, the dashboard, the CLI, the scoring
//! loop) authenticate, build a [`Principal`] and call in here; they hold no rule of their own.
//! Role first (403), then the tenant rule (another organization's object is 404, exactly as
//! a missing one), then four eyes between people, then the write that acts on it.

pub mod acme;
pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod certify;
pub mod credentials;
pub mod four_eyes;
pub mod market_data;
pub mod organizations;
pub mod overrides;
pub mod oversight;
mod principal;
pub mod revocation;
pub mod roles;
pub mod tenant;
pub mod webhooks;

pub use principal::Principal;
