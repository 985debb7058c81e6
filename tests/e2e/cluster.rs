//! Several nodes on one PostgreSQL: two daemons and two stand-alone OCSP responders share a
//! database (and a token). Issuance on both nodes at once hands out no serial twice and keeps
//! the audit chain whole; a revocation on one node reaches every responder and the other node
//! through LISTEN/NOTIFY; PostgreSQL restarted under load loses nothing.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use mandate_testkit::PgServer;
use reqwest::StatusCode;
use serde_json::json;

use crate::faults::{assert_all_kept_and_revocable, certify_load, csrs, wait_count};
use crate::harness::{Ca, Daemon, Responder, full_mandate, ocsp_status};

const VISIBLE_WITHIN: Duration = Duration::from_secs(15);

/// A PostgreSQL database: on the suite's server when it runs on PostgreSQL, else on a server
/// of this test's own (kept alive by the returned handle).
fn database() -> (Option<PgServer>, String) {
    if mandate_testkit::on_postgres() {
        let dir = tempfile::tempdir().unwrap();
        (None, mandate_testkit::database_url(dir.path()))
    } else {
        let server = PgServer::start();
        let url = mandate_testkit::create_database(&server.url("postgres"));
        (Some(server), url)
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_and_two_responders_on_one_postgres_see_every_revocation() {
    let (_server, url) = database();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let a = Ca::on(Daemon::start_on(dir, url, Vec::new()).await).await;
    let b = Ca::on(a.d.another_node().await).await;
    a.approved_agent("bot-n", full_mandate()).await;

    // Both nodes issue at once: every serial distinct, every certificate stored.
    let work = tempfile::tempdir().unwrap();
    let (done_a, done_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (la, lb) = tokio::join!(
        certify_load(
            a.d.base.clone(),
            a.operator.clone(),
            "bot-n",
            csrs(work.path(), "bot-n", 30),
            3,
            done_a
        ),
        certify_load(
            b.d.base.clone(),
            b.operator.clone(),
            "bot-n",
            csrs(work.path(), "bot-n", 30),
            3,
            done_b
        ),
    );
    assert_eq!(la.issued.len() + lb.issued.len(), 60, "{la:?} {lb:?}");

    // A certificate issued by node B, revoked on node A.
    let (serial, pem) = lb.issued[0].clone();
    let cert = write(work.path(), "cert.pem", &pem);
    let root = write(work.path(), "root.pem", &a.d.get_text("/ca/root.pem").await);
    let int = write(
        work.path(),
        "int.pem",
        &a.d.get_text("/ca/intermediate.pem").await,
    );
    let r1 = Responder::start(&a.d).await;
    let r2 = Responder::start(&b.d).await;
    let bases: Vec<String> = [&r1.url, &r2.url]
        .iter()
        .map(|u| u.trim_end_matches("/ocsp").to_owned())
        .chain([a.d.base.clone(), b.d.base.clone()])
        .collect();
    wait_all(&bases, &int, &cert, &root, "good").await;
    let r =
        a.d.post(
            &a.operator,
            &format!("/v1/certificates/{serial}/revoke"),
            &json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let took = wait_all(&bases, &int, &cert, &root, "revoked").await;
    eprintln!("revocation visible on 2 responders and 2 nodes after {took:?}");

    // The audit chain written by two nodes at once verifies, from either node's CLI.
    for ca in [&a, &b] {
        let out = ca.d.command().args(["audit", "verify"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Both nodes' CRLs list it (each publisher hears of the revocation).
    let parsed: serde_json::Value = serde_json::from_str(&crate::harness::run(
        std::process::Command::new("python3")
            .arg(crate::harness::here("check_cert.py"))
            .arg(&cert),
    ))
    .unwrap();
    let crl_url = parsed["crl"][0].as_str().unwrap();
    let crl_path = &crl_url[crl_url.find("/crl/").unwrap()..];
    let cas = write(
        work.path(),
        "cas.pem",
        &(std::fs::read_to_string(&int).unwrap() + &std::fs::read_to_string(&root).unwrap()),
    );
    for ca in [&a, &b] {
        let deadline = Instant::now() + VISIBLE_WITHIN;
        loop {
            let der =
                ca.d.raw()
                    .get(format!("{}{crl_path}", ca.d.base))
                    .send()
                    .await
                    .unwrap();
            assert_eq!(der.status(), StatusCode::OK);
            let path = work.path().join("crl.der");
            std::fs::write(&path, der.bytes().await.unwrap()).unwrap();
            let text = crate::harness::run(
                std::process::Command::new("openssl")
                    .args(["crl", "-inform", "DER", "-noout", "-text", "-CAfile"])
                    .arg(&cas)
                    .arg("-in")
                    .arg(&path),
            );
            if text.to_lowercase().contains(&serial.to_lowercase()) {
                break;
            }
            assert!(Instant::now() < deadline, "{serial} not in {text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits until every OCSP endpoint says `want` for the certificate; returns how long it took.
async fn wait_all(bases: &[String], int: &Path, cert: &Path, root: &Path, want: &str) -> Duration {
    let start = Instant::now();
    let deadline = start + VISIBLE_WITHIN;
    for base in bases {
        loop {
            let got = ocsp_status_or_unknown(base, int, cert, root);
            if got == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{base} did not say {want} within {VISIBLE_WITHIN:?}: {got}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    start.elapsed()
}

/// `ocsp_status`, but a responder with no pre-signed answer yet (`unauthorized`) is "unknown".
fn ocsp_status_or_unknown(base: &str, int: &Path, cert: &Path, root: &Path) -> String {
    let probe = std::process::Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(int)
        .arg("-cert")
        .arg(cert)
        .args(["-url", &format!("{base}/ocsp"), "-noverify"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout).into_owned()
        + &String::from_utf8_lossy(&probe.stderr);
    if text.contains("unauthorized") {
        return "unknown".into();
    }
    ocsp_status(base, int, cert, root, int)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_load_fails_fast_then_resumes_with_nothing_lost() {
    // Always a server of its own: this test stops it.
    let mut server = PgServer::start();
    let url = mandate_testkit::create_database(&server.url("postgres"));
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let ca = Ca::on(Daemon::start_on(dir, url, Vec::new()).await).await;
    ca.approved_agent("bot-p", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(certify_load(
        ca.d.base.clone(),
        ca.operator.clone(),
        "bot-p",
        csrs(work.path(), "bot-p", 80),
        4,
        done.clone(),
    ));
    wait_count(&done, 15).await;
    server.stop("fast");
    // While it is down: 503 problem documents, not hangs.
    let r = ca.d.get(&ca.operator, "/v1/agents").await;
    r.assert_problem(503, "database-unavailable");
    let r = ca.d.get(&ca.operator, "/readyz").await;
    r.assert_problem(503, "not-ready");
    server.start_again();
    let load = load.await.unwrap();
    assert!(
        load.refused.iter().all(|s| *s == 503),
        "only 503 while the database was down: {load:?}"
    );
    assert_eq!(load.no_answer, 0, "{load:?}");
    // Service resumes by itself.
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let r = ca.d.get(&ca.operator, "/readyz").await;
        if r.status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "not ready again: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ca.certify_new_key("bot-p", work.path()).await;
    assert_all_kept_and_revocable(&ca, &load.issued).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_reaches_postgres_over_tls_and_refuses_a_server_it_cannot_verify() {
    let mut server = PgServer::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // A CA of the database's own, and a server certificate for 127.0.0.1 from it.
    let sh = |script: &str| {
        crate::harness::run(
            std::process::Command::new("sh")
                .args(["-ec", script])
                .current_dir(w),
        )
    };
    sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=db-ca -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext.cnf
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext.cnf -out server.pem 2>/dev/null
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=other-ca -keyout other.key -out other.pem 2>/dev/null",
    );
    server.enable_tls(
        &std::fs::read_to_string(w.join("server.pem")).unwrap(),
        &std::fs::read_to_string(w.join("server.key")).unwrap(),
    );
    let db = mandate_testkit::create_database(&server.url("postgres"));
    let verified = format!(
        "{db}?sslmode=verify-full&sslrootcert={}",
        w.join("ca.pem").display()
    );
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let ca = Ca::on(Daemon::start_on(dir.clone(), verified, Vec::new()).await).await;
    ca.approved_agent("bot-tls", full_mandate()).await;
    ca.certify_new_key("bot-tls", w).await;
    let name = db.rsplit('/').next().unwrap();
    let tls = mandate_testkit::psql(
        &server.url("postgres"),
        &format!(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = '{name}'"
        ),
    );
    let (on, off) = tls.trim().split_once('|').unwrap();
    assert!(on.parse::<u32>().unwrap() > 0 && off == "0", "{tls}");

    // A server whose certificate does not chain to the pinned root: the node stays unready
    // and says why; it never talks to that server.
    let wrong = format!(
        "{db}?sslmode=verify-full&sslrootcert={}",
        w.join("other.pem").display()
    );
    let mut d = Daemon::unstarted(dir, wrong, Vec::new());
    d.spawn_unready();
    let deadline = Instant::now() + VISIBLE_WITHIN;
    while !d.log().contains("cannot start") {
        assert!(Instant::now() < deadline, "{}", d.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = d.get(&ca.operator, "/readyz").await;
    r.assert_problem(503, "not-ready");
    let log = d.log();
    assert!(
        log.to_lowercase().contains("certificate") && !log.contains("secret"),
        "{log}"
    );
}
