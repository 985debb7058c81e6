//! Faults under load, each with real processes on loopback: HSM sessions dropped while
//! certificates are being issued, an HSM that cannot be reached at start-up, a daemon killed
//! with SIGKILL mid-issuance, PostgreSQL stopped and restarted. In every case: no certificate a
//! client received is lost, none is half-written, and service comes back by itself.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, Daemon, csr, full_mandate, run};

const DEADLINE: Duration = Duration::from_secs(60);

/// What a load of certify requests got back.
#[derive(Debug, Default)]
pub struct Load {
    /// (serial, PEM) of every certificate a client received.
    pub issued: Vec<(String, String)>,
    /// Status codes of refused requests.
    pub refused: Vec<u16>,
    /// Requests that got no HTTP answer (the daemon died under them).
    pub no_answer: usize,
}

/// CSRs for `n` fresh P-256 keys, made by openssl on a few threads.
pub fn csrs(dir: &Path, agent: &str, n: usize) -> Vec<String> {
    let dir = dir.to_path_buf();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let dir = dir.clone();
            let agent = agent.to_owned();
            std::thread::spawn(move || {
                (0..n)
                    .filter(|i| i % 4 == t)
                    .map(|_| csr(&dir, "ec-p256", &format!("/CN={agent}"), None))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

/// Certifies `agent` once per CSR from `workers` concurrent clients; `done` counts answers.
pub async fn certify_load(
    base: String,
    key: String,
    agent: &'static str,
    csrs: Vec<String>,
    workers: usize,
    done: Arc<AtomicUsize>,
) -> Load {
    let queue = Arc::new(std::sync::Mutex::new(csrs));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (queue, http, done) = (queue.clone(), http.clone(), done.clone());
        let url = format!("{base}/v1/agents/{agent}/certify");
        let key = key.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut load = Load::default();
            loop {
                let Some(csr) = queue.lock().unwrap().pop() else {
                    return load;
                };
                let sent = http
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({ "csr": csr }))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        let body: Value = r.json().await.unwrap();
                        load.issued.push((
                            body["serial_number"].as_str().unwrap().to_owned(),
                            body["certificate_pem"].as_str().unwrap().to_owned(),
                        ));
                    }
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
                        assert_eq!(ct, "application/problem+json", "status {status}");
                        load.refused.push(status);
                    }
                    Err(_) => load.no_answer += 1,
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let mut all = Load::default();
    for t in tasks {
        let l = t.await.unwrap();
        all.issued.extend(l.issued);
        all.refused.extend(l.refused);
        all.no_answer += l.no_answer;
    }
    all
}

/// Waits until `counter` reaches `n`.
pub async fn wait_count(counter: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + DEADLINE;
    while counter.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "load stalled at {counter:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every certificate a client received is stored as issued, verifies against the root, and
/// can be revoked; no serial was handed out twice; the audit chain verifies.
pub async fn assert_all_kept_and_revocable(ca: &Ca, issued: &[(String, String)]) {
    let serials: HashSet<&str> = issued.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(serials.len(), issued.len(), "a serial was handed out twice");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root.pem");
    std::fs::write(&root, ca.d.get_text("/ca/root.pem").await).unwrap();
    let chain = work.path().join("chain.pem");
    std::fs::write(&chain, ca.d.get_text("/ca/chain.pem").await).unwrap();
    for (i, (serial, pem)) in issued.iter().enumerate() {
        let r =
            ca.d.get(&ca.operator, &format!("/v1/certificates/{serial}"))
                .await;
        assert_eq!(r.status, StatusCode::OK, "{serial} not stored: {r:?}");
        assert_eq!(r.body["status"], "issued", "{r:?}");
        if i % 10 == 0 {
            let cert = work.path().join(format!("{serial}.pem"));
            std::fs::write(&cert, pem).unwrap();
            run(std::process::Command::new("openssl")
                .args(["verify", "-CAfile"])
                .arg(&root)
                .arg("-untrusted")
                .arg(&chain)
                .arg(&cert));
        }
        let r =
            ca.d.post(
                &ca.operator,
                &format!("/v1/certificates/{serial}/revoke"),
                &json!({"reason": "superseded"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{serial} not revocable: {r:?}");
        assert_eq!(r.body["status"], "revoked");
    }
    let out = ca.d.command().args(["audit", "verify"]).output().unwrap();
    assert!(
        out.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_daemon_killed_mid_issuance_loses_nothing_it_returned() {
    let mut ca = Ca::start().await;
    ca.approved_agent("bot-k", full_mandate()).await;
    // A webhook receiver for issuance events: the outbox is written in each certificate's own
    // transaction, so every certificate a client received is also announced, after the kill.
    let port = crate::harness::free_port();
    let receiver = crate::receiver::Receiver::start(port).await;
    let r = ca
        .d
        .post(
            &ca.operator,
            "/v1/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["certificate.issued"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    *receiver.secret.lock().unwrap() = r.body["secret"].as_str().unwrap().to_owned();
    let work = tempfile::tempdir().unwrap();
    let csrs = csrs(work.path(), "bot-k", 80);
    let done = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(certify_load(
        ca.d.base.clone(),
        ca.operator.clone(),
        "bot-k",
        csrs,
        6,
        done.clone(),
    ));
    // Kill it while requests are in flight: some answered, the rest cut off.
    wait_count(&done, 20).await;
    ca.d.kill9();
    let load = load.await.unwrap();
    assert!(load.issued.len() >= 20, "{load:?}");
    assert!(load.no_answer > 0, "the kill cut no request off: {load:?}");
    ca.d.restart().await;
    // The outbox resumes: every certificate the clients got is announced (at least once).
    let deadline = Instant::now() + DEADLINE;
    loop {
        let announced: HashSet<String> = receiver
            .received
            .of_type("certificate.issued")
            .iter()
            .filter_map(|v| v["data"]["serial_number"].as_str().map(str::to_owned))
            .collect();
        if load.issued.iter().all(|(s, _)| announced.contains(s)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every issued certificate announced: {} of {}",
            announced.len(),
            load.issued.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_all_kept_and_revocable(&ca, &load.issued).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hsm_sessions_dropped_under_load_and_issuance_carries_on() {
    let ca = Ca::start().await;
    ca.approved_agent("bot-h", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let csrs = csrs(work.path(), "bot-h", 60);
    let done = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(certify_load(
        ca.d.base.clone(),
        ca.operator.clone(),
        "bot-h",
        csrs,
        4,
        done.clone(),
    ));
    // SIGUSR1 logs the token out and closes every session of the daemon's process, as an HSM
    // restart would, five times while certificates are being signed.
    for round in 1..=5 {
        wait_count(&done, round * 10).await;
        run(std::process::Command::new("kill").args(["-USR1", &ca.d.pid().to_string()]));
    }
    let load = load.await.unwrap();
    assert_eq!(load.issued.len(), 60, "{load:?}\n{}", ca.d.log());
    assert!(load.refused.is_empty() && load.no_answer == 0, "{load:?}");
    let log = ca.d.log();
    assert_eq!(log.matches("every HSM session closed").count(), 5, "{log}");
    // Still ready, and everything issued is there and revocable.
    let r = ca.d.get(&ca.operator, "/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_all_kept_and_revocable(&ca, &load.issued).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_hsm_unreachable_at_start_leaves_the_daemon_up_and_unready_until_it_is_back() {
    let mut first = Daemon::start().await;
    let module = mandate_hsm::softhsm::find_module().expect("SoftHSM2 installed");
    first.stop().await;
    // The PKCS#11 module the node is configured with is not there yet.
    let mods = tempfile::tempdir().unwrap();
    let link = mods.path().join("libpkcs11-hsm.so");
    let mut d = Daemon::unstarted(
        first.shared_dir(),
        first.db_url.clone(),
        vec![("MANDATE_HSM_MODULE".into(), link.display().to_string())],
    );
    d.spawn_unready();
    let deadline = Instant::now() + DEADLINE;
    while !d
        .log()
        .contains("cannot start: a dependency is unreachable")
    {
        assert!(Instant::now() < deadline, "{}", d.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(d.log().contains(&link.display().to_string()), "{}", d.log());
    // Alive, not ready, and every route says why with a problem document.
    let health = d
        .raw()
        .get(format!("{}/healthz", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let admin = first.admin_key();
    for path in ["/readyz", "/v1/agents"] {
        let r = d.get(&admin, path).await;
        r.assert_problem(503, "not-ready");
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("libpkcs11-hsm.so"),
            "{r:?}"
        );
    }
    // The HSM comes back: the node starts by itself and issues.
    std::os::unix::fs::symlink(&module, &link).unwrap();
    d.wait_ready().await;
    let ca = Ca::on(d).await;
    ca.approved_agent("bot-u", full_mandate()).await;
    ca.certify_new_key("bot-u", mods.path()).await;
}
