//! Compliance evidence for one agent over a period: a signed JSON bundle that `mandate report
//! verify` checks offline with only the root certificate, and a PDF for people.
//!
//! The bundle is one JSON document in canonical form (keys sorted, no whitespace), so any
//! changed byte is caught: either the file is no longer canonical or the signature fails. It
//! holds the agent's registration, every mandate version and its decision, its certificates
//! and the CA certificates they chain to, its baselines, incidents, revocations and webhook
//! deliveries, its orders with the pre-trade decision behind each, and the audit extract with its proof: the unbroken run of audit records from the
//! agent's first record in the period to a signed checkpoint made for the report.
//! The report is signed by the audit signer (a key in the HSM, certified for audit signing).

mod build;
mod orders;
mod pdf;
mod sections;
mod verify;

pub use build::{Bundle, Period, ReportOptions, build as build_report};
pub use pdf::render as render_pdf;
pub use sections::events_csv;
pub use verify::{ReportCheck, verify as verify_report};

/// The bundle's `format`.
pub(crate) const FORMAT: &str = "mandate-compliance-report-v2";

/// The bytes the report signature covers: a domain tag and the SHA-256 of the canonical report.
pub(crate) fn signed_message(report: &serde_json::Value) -> Result<Vec<u8>, crate::CaError> {
    use sha2::Digest;
    /// Hashes what serde writes, without holding the text (a report can be hundreds of MB).
    struct Hashing(sha2::Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Hashing(sha2::Sha256::new());
    serde_json::to_writer(&mut h, report).map_err(|e| crate::CaError::Internal(e.to_string()))?;
    let mut msg = FORMAT.as_bytes().to_vec();
    msg.push(0);
    msg.extend_from_slice(&h.0.finalize());
    Ok(msg)
}
