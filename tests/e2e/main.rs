//! End-to-end tests: the real `mandate` binary on loopback with a SoftHSM token (`second_token`:
//! a Kryoptic token) and SQLite (or PostgreSQL: `MANDATE_TEST_PG_URL`, see `mandate-testkit`),
//! results checked with openssl, python `cryptography`, pkilint and pkcs11-tool.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod acme;
mod acme_client;
mod acme_profiles;
mod api_keys;
mod audit;
mod behaviour;
mod book_controls;
mod cli_remote;
mod cluster;
mod contract;
mod crl;
mod dashboard;
mod dialect;
mod eab;
mod faults;
mod harness;
mod issuance;
mod lifecycle;
mod listener;
mod ocsp;
mod receiver;
mod refusals;
mod report;
mod revocation;
mod role_table;
mod rollback;
mod rotation;
mod second_token;
mod tenants;
mod webdriver;
