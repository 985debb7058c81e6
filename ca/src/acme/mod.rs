//! ACME (RFC 8555) with external account binding. Being built (issue 4): so far the JWS and
//! EAB checks, the problem documents and the EAB credentials (`POST /v1/agents/{id}/eab`); the
//! ACME endpoints come next.

pub mod eab;
pub mod jws;
pub mod problem;
