//! Time to build and sign (SoftHSM, P-256) a CRL of N revoked entries, and its size.
//!
//! `cargo bench -p mandate-crl --bench generate -- [N ...]` (default 10000 100000 1000000)
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use mandate_crl::{CrlIssuer, RevokedEntry, sign};
use mandate_hsm::testing::SoftHsmHarness;
use mandate_hsm::{Hsm, KeyKind};

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse().unwrap())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000, 1_000_000]
    } else {
        sizes
    };
    let harness = SoftHsmHarness::new("crl-bench").unwrap();
    let hsm = Hsm::connect(harness.hsm_config()).await.unwrap();
    let key = hsm.generate_key(KeyKind::EcP256, "bench").await.unwrap();
    let issuer = CrlIssuer {
        name: "CN=Bench Issuing CA,O=Bench".parse().unwrap(),
        key_identifier: vec![0x11; 20],
        key_id: key.id,
        algorithm: KeyKind::EcP256.default_signature_algorithm(),
    };
    for n in sizes {
        // 16-byte serials shaped like ours (first byte 0x40..0x7f), reasons mixed.
        let entries: Vec<RevokedEntry> = (0..n as u64)
            .map(|i| {
                let mut serial = [0u8; 16];
                serial[0] = 0x40 | (i as u8 & 0x3f);
                serial[8..].copy_from_slice(&i.to_be_bytes());
                RevokedEntry {
                    serial: serial.to_vec(),
                    revoked_at: 1_800_000_000 + i as i64,
                    reason: [0, 1, 4, 5, 9][(i % 5) as usize],
                }
            })
            .collect();
        let start = Instant::now();
        let der = sign(&hsm, &issuer, 1, 1_800_000_000, 1_800_086_400, &entries)
            .await
            .unwrap();
        let took = start.elapsed();
        println!(
            "entries={n} build+sign={:.1} ms size={:.1} MiB",
            took.as_secs_f64() * 1e3,
            der.len() as f64 / (1024.0 * 1024.0)
        );
    }
}
