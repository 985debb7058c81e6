//! ACME (RFC 8555, with RFC 9773 renewal information) with external account binding: JWS and
//! EAB checks (`jws`), RFC 8555 problems (`problem`), nonces (`nonce`) and the endpoints
//! (`server`); EAB credentials are made and checked by `crate::eab`.

pub mod jws;
pub mod nonce;
pub mod problem;
pub mod server;
