//! Key rotation with the daemon running: `mandate ca rotate-intermediate` and
//! `mandate ca rollover-root` from the CLI beside it; issuance switches without a restart, and
//! openssl verifies the chains, the OCSP answers and the CRLs of old and new issuers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Ca, full_mandate, run};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `openssl verify -x509_strict` of `cert` against `root` with `untrusted` as the only helpers.
fn verify(dir: &Path, root: &str, untrusted: &[&str], cert: &Path) -> Result<(), String> {
    let bundle = write(dir, "untrusted.pem", &untrusted.concat());
    let root = write(dir, "trusted.pem", root);
    let out = Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(&root)
        .arg("-untrusted")
        .arg(&bundle)
        .arg(cert)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.contains(": OK") {
        Ok(())
    } else {
        Err(text)
    }
}

/// What `openssl ocsp` says of `cert` (issued by `issuer`), the response verified against
/// `root` with `other` as extra certificates.
fn ocsp(ca: &Ca, dir: &Path, issuer: &str, cert: &Path, root: &str, other: &[&str]) -> String {
    crate::harness::ocsp_status(
        &ca.d.base,
        &write(dir, "ocsp-issuer.pem", issuer),
        cert,
        &write(dir, "ocsp-root.pem", root),
        &write(dir, "ocsp-other.pem", &other.concat()),
    )
}

/// Waits (15 s deadline) until the daemon's chain starts with `intermediate`: it has loaded
/// the rotation.
async fn wait_for_chain(ca: &Ca, intermediate: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let chain = ca.d.get_text("/ca/chain.pem").await;
        if chain.starts_with(intermediate) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not switch to the new intermediate:\n{chain}\n{}",
            ca.d.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Issued {
    path: PathBuf,
    serial: String,
    chain: String,
}

async fn issue(ca: &Ca, dir: &Path, name: &str) -> Issued {
    let r = ca.certify_new_key("bot-r", dir).await;
    Issued {
        path: write(dir, name, r.body["certificate_pem"].as_str().unwrap()),
        serial: r.body["serial_number"].as_str().unwrap().to_owned(),
        chain: r.body["chain_pem"].as_str().unwrap().to_owned(),
    }
}

/// `GET /v1/certificates/{serial}/pem` as the operator.
async fn download(ca: &Ca, serial: &str) -> String {
    let r =
        ca.d.raw()
            .get(format!("{}/v1/certificates/{serial}/pem", ca.d.base))
            .bearer_auth(&ca.operator)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    crate::contract::assert_documented_raw("GET", &r);
    r.text().await.unwrap()
}

fn pem_of(v: &Value) -> String {
    v["pem"].as_str().unwrap().to_owned()
}

/// The DER CRL at `url`, checked by `openssl crl -verify` against `cafile`; returns its text.
async fn crl_text(ca: &Ca, dir: &Path, url: &str, cafile: &str) -> String {
    let der = ca.d.raw().get(url).send().await.unwrap();
    assert_eq!(der.status(), StatusCode::OK, "{url}");
    let der_path = dir.join("rot.crl");
    std::fs::write(&der_path, der.bytes().await.unwrap()).unwrap();
    let ca_path = write(dir, "crl-ca.pem", cafile);
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&der_path)
        .arg("-CAfile")
        .arg(&ca_path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("verify OK"), "{text}");
    text
}

#[tokio::test]
async fn rotations_keep_old_and_new_certificates_verifiable() {
    let ca = Ca::start_with_config("[audit]\ncheckpoint_records = 5\n").await;
    ca.approved_agent("bot-r", full_mandate()).await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let root1 = ca.d.get_text("/ca/root.pem").await;
    let int1 = ca.d.get_text("/ca/intermediate.pem").await;
    let a = issue(&ca, dir, "a.pem").await;
    assert_eq!(a.chain, format!("{int1}{root1}"));

    // --- rotate-intermediate, while the daemon runs.
    let out: Value =
        serde_json::from_str(&run(ca.d.command().args(["ca", "rotate-intermediate"]))).unwrap();
    let int2 = pem_of(&out["intermediate"]);
    assert_eq!(pem_of(&out["retired_intermediate"]), int1);
    assert!(
        out["intermediate"]["subject"]
            .as_str()
            .unwrap()
            .contains(" G2,"),
        "{out}"
    );
    wait_for_chain(&ca, &int2).await;
    let b = issue(&ca, dir, "b.pem").await;
    assert_eq!(b.chain, format!("{int2}{root1}"));

    verify(dir, &root1, &[&int1], &a.path).unwrap();
    verify(dir, &root1, &[&int2], &b.path).unwrap();
    assert!(
        verify(dir, &root1, &[&int1], &b.path).is_err(),
        "b is not from int1"
    );
    // Downloads carry each certificate's own chain.
    let a_dl = download(&ca, &a.serial).await;
    assert!(a_dl.ends_with(&format!("{int1}{root1}")), "{a_dl}");

    // The old intermediate still answers for its certificate, the new one for its own.
    assert_eq!(ocsp(&ca, dir, &int1, &a.path, &root1, &[&int1]), "good");
    assert_eq!(ocsp(&ca, dir, &int2, &b.path, &root1, &[&int2]), "good");
    let r =
        ca.d.post(
            &ca.operator,
            &format!("/v1/certificates/{}/revoke", a.serial),
            &json!({"reason": "superseded"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(ocsp(&ca, dir, &int1, &a.path, &root1, &[&int1]), "revoked");
    assert_eq!(ocsp(&ca, dir, &int2, &b.path, &root1, &[&int2]), "good");

    // Each issuer has its CRL at the URL its certificates name; the old one lists `a`.
    let ski = |pem: &str| {
        let p = write(dir, "ski.pem", pem);
        let text = run(Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectKeyIdentifier", "-in"])
            .arg(&p));
        text.lines()
            .nth(1)
            .unwrap()
            .trim()
            .replace(':', "")
            .to_ascii_lowercase()
    };
    let (ski1, ski2) = (ski(&int1), ski(&int2));
    let crl1 = crl_text(
        &ca,
        dir,
        &format!("{}/crl/{ski1}.crl", ca.d.base),
        &format!("{int1}{root1}"),
    )
    .await;
    assert!(crl1.contains(&a.serial.to_ascii_uppercase()), "{crl1}");
    let crl2 = crl_text(
        &ca,
        dir,
        &format!("{}/crl/{ski2}.crl", ca.d.base),
        &format!("{int2}{root1}"),
    )
    .await;
    assert!(crl2.contains("No Revoked Certificates"), "{crl2}");
    // AIA caIssuers names each issuer's own certificate.
    let b_text = run(Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&b.path));
    assert!(
        b_text.contains(&format!("/ca/issuers/{ski2}.der")),
        "{b_text}"
    );
    let aia = ca.d.get_text(&format!("/ca/issuers/{ski1}.pem")).await;
    assert_eq!(aia, int1);

    // --- rollover-root: a new root, cross-certificates both ways, a new intermediate.
    let out: Value =
        serde_json::from_str(&run(ca.d.command().args(["ca", "rollover-root"]))).unwrap();
    let root2 = pem_of(&out["root"]);
    let int3 = pem_of(&out["intermediate"]);
    assert_eq!(pem_of(&out["retired_root"]), root1);
    assert_eq!(pem_of(&out["retired_intermediate"]), int2);
    let cross = out["cross_certificates"].as_array().unwrap();
    assert_eq!(cross.len(), 2, "{out}");
    let by_issuer = |issuer: &Value| {
        cross
            .iter()
            .find(|c| c["issuer"] == *issuer)
            .map(pem_of)
            .unwrap()
    };
    let new_by_old = by_issuer(&out["retired_root"]["subject"]);
    let old_by_new = by_issuer(&out["root"]["subject"]);
    wait_for_chain(&ca, &int3).await;
    let c = issue(&ca, dir, "c.pem").await;
    assert_eq!(c.chain, format!("{int3}{new_by_old}{root2}"));

    // New certificates verify from the new root and, through the cross-certificate, the old.
    verify(dir, &root2, &[&int3], &c.path).unwrap();
    verify(dir, &root1, &[&int3, &new_by_old], &c.path).unwrap();
    verify(dir, &root1, &[&c.chain], &c.path).unwrap();
    assert!(verify(dir, &root1, &[&int3], &c.path).is_err());
    // Old certificates verify from the old root and, through the other cross, the new.
    verify(dir, &root1, &[&int2], &b.path).unwrap();
    verify(dir, &root2, &[&int2, &old_by_new], &b.path).unwrap();
    let b_dl = download(&ca, &b.serial).await;
    assert!(
        b_dl.ends_with(&format!("{int2}{old_by_new}{root1}")),
        "{b_dl}"
    );
    verify(dir, &root2, &[&b_dl], &b.path).unwrap();
    assert!(verify(dir, &root2, &[&int2], &b.path).is_err());

    // OCSP of the three intermediates, checked from whichever root.
    assert_eq!(ocsp(&ca, dir, &int3, &c.path, &root2, &[&int3]), "good");
    assert_eq!(
        ocsp(&ca, dir, &int3, &c.path, &root1, &[&int3, &new_by_old]),
        "good"
    );
    assert_eq!(ocsp(&ca, dir, &int2, &b.path, &root1, &[&int2]), "good");
    assert_eq!(ocsp(&ca, dir, &int1, &a.path, &root1, &[&int1]), "revoked");

    // The CA list, the audit log and the HSM inventory all know about it.
    let cas: Value = serde_json::from_str(&run(ca.d.command().args(["ca", "show"]))).unwrap();
    let active: Vec<&Value> = cas
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["active"] == true)
        .collect();
    assert_eq!(active.len(), 2, "{cas}");
    let report: Value =
        serde_json::from_str(&run(ca.d.command().args(["audit", "verify"]))).unwrap();
    assert!(report["first_broken"].is_null(), "{report}");
    // Checkpoints signed under the old root verify offline from either root (the export
    // carries the cross-certificates). The checkpointer signs on its own schedule (every
    // 5 records, looked at twice a second): wait until it has signed one.
    let deadline = Instant::now() + Duration::from_secs(20);
    while crate::harness::query_sql(&ca.d, "SELECT COUNT(*) FROM audit_checkpoints")[0][0] == "0" {
        assert!(Instant::now() < deadline, "no audit checkpoint signed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let export = dir.join("audit.jsonl");
    run(ca
        .d
        .command()
        .args(["audit", "export", "--out"])
        .arg(&export));
    for root in [&root1, &root2] {
        let root = write(dir, "audit-root.pem", root);
        let report: Value = serde_json::from_str(&run(ca
            .d
            .command()
            .args(["audit", "verify", "--file"])
            .arg(&export)
            .arg("--root")
            .arg(&root)))
        .unwrap();
        assert!(report["first_broken"].is_null(), "{report}");
        assert!(
            report["checkpoints_verified"].as_u64().unwrap() > 0,
            "{report}"
        );
    }
    let auditor = ca.auditor().await;
    let actions: Vec<String> =
        ca.d.list_all(&auditor, "/v1/audit?limit=100")
            .await
            .iter()
            .filter_map(|r| r["action"].as_str().map(str::to_owned))
            .collect();
    for want in [
        "ca.intermediate_rotated",
        "ca.root_rolled_over",
        "ca.cross_certificate_issued",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "{want} missing: {actions:?}"
        );
    }
}
