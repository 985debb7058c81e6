//! Raw signing throughput against a throw-away SoftHSM2 token.
//!
//! ```text
//! cargo run --release -p mandate-hsm --features test-harness --example sign_rate -- ec-p256 2 5
//! ```
//! Arguments: key kind (rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384), number of sessions in
//! the pool, seconds to run. Twice as many tasks as sessions keep the pool busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mandate_hsm::testing::SoftHsmHarness;
use mandate_hsm::{Hsm, HsmConfig, KeyKind};

const USAGE: &str =
    "usage: sign_rate <rsa-2048|rsa-3072|rsa-4096|ec-p256|ec-p384> <sessions> <seconds>";

fn parse_args() -> Result<(KeyKind, usize, u64), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, sessions, seconds] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let kind: KeyKind = kind.parse().map_err(|e| format!("{e}\n{USAGE}"))?;
    let sessions: usize = sessions
        .parse()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("sessions must be a positive integer\n{USAGE}"))?;
    let seconds: u64 = seconds
        .parse()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("seconds must be a positive integer\n{USAGE}"))?;
    Ok((kind, sessions, seconds))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (kind, sessions, seconds) = parse_args()?;
    let harness = SoftHsmHarness::new("sign-rate")?;
    let hsm = Hsm::connect(HsmConfig {
        pool_size: sessions,
        ..harness.hsm_config()
    })
    .await?;
    let key = hsm.generate_key(kind, "sign-rate").await?;
    let alg = kind.default_signature_algorithm();
    // A message about the size of a leaf certificate's TBSCertificate.
    let message = Arc::new(vec![0x5au8; 700]);

    // Warm-up: opens every session and caches the key handle.
    for _ in 0..sessions {
        hsm.sign(&key.id, alg, &message).await?;
    }

    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..sessions * 2 {
        let (hsm, id, message, count) =
            (hsm.clone(), key.id.clone(), message.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                hsm.sign(&id, alg, &message).await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), mandate_hsm::HsmError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let signs = count.load(Ordering::Relaxed);
    println!(
        "kind={kind} alg={alg:?} sessions={sessions} seconds={elapsed:.1} signs={signs} rate={:.0}/s",
        signs as f64 / elapsed
    );
    hsm.shutdown().await;
    Ok(())
}
