//! ACME (RFC 8555) with external account binding. Being built (issue 4): so far the JWS and
//! EAB checks, the problem documents, the EAB credentials (`POST /v1/agents/{id}/eab`), and the
//! directory, nonces and accounts; orders, finalize, certificates, revokeCert, keyChange and ARI
//! come next.

pub mod eab;
pub mod jws;
pub mod nonce;
pub mod problem;
pub mod server;
