//! ACME (RFC 8555) with external account binding. Being built (issue 4): so far the JWS and
//! EAB checks and the problem documents; the endpoints come next.

pub mod jws;
pub mod problem;
