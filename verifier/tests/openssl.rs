//! End-to-end checks against a PKI made with the `openssl` command-line tool: a root (EC P-256),
//! an intermediate (RSA 2048), a delegated OCSP signer (EC P-256, id-kp-OCSPSigning) and agent
//! certificates carrying the mandate extension, with OCSP responses from `openssl ocsp`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use mandate_policy::Mandate;
use mandate_verify::{
    Evidence, RevocationInput, RevocationStatus, Verdict, pem_to_der_chain, verify,
};
use tempfile::TempDir;

const MANDATE_JSON: &str = r#"{"agentId":"bot-1","operator":"Acme","maxTransactionSize":{"amount":"1000","currency":"EUR"},"allowedMarkets":["BTC_EUR"]}"#;
const GOOD_ORDER: &str =
    r#"{"action":"trade_execution","market":"BTC_EUR","size":"500","currency":"EUR","side":"buy"}"#;

const CONFIG: &str = "\
[req]
distinguished_name = dn
[dn]
[root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[int]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ocsp]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
[plain]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
";

#[derive(Clone, Copy)]
enum Key {
    P256,
    P384,
    Rsa,
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

/// Runs `openssl` in `dir`; fails the test with the command and its output if it fails, and
/// with a clear message if the tool is missing.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "these tests need the `openssl` command-line tool (OpenSSL 3) on PATH, \
                 and running it failed: {e}"
            )
        });
    assert!(
        out.status.success(),
        "openssl {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Pki {
    dir: TempDir,
}

/// An agent certificate made for a test.
struct Leaf {
    name: String,
    der: Vec<u8>,
    serial: String,
}

impl Pki {
    /// Root "Test Root" (EC P-256) → intermediate "Test Intermediate" (RSA 2048) → delegated
    /// OCSP signer "Test OCSP" (EC P-256).
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(pki.path("pki.cnf"), CONFIG).unwrap();
        pki.root("root", "Test Root");
        pki.issue(
            "int",
            Key::Rsa,
            "/O=Test/CN=Test Intermediate",
            "root",
            "int",
            "0x1001",
            3650,
        );
        pki.issue(
            "ocsp",
            Key::P256,
            "/O=Test/CN=Test OCSP",
            "int",
            "ocsp",
            "0x2001",
            365,
        );
        pki
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).to_string_lossy().into_owned()
    }

    fn run(&self, args: &[&str]) {
        openssl(self.dir.path(), args);
    }

    fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.path(file)).unwrap()
    }

    /// The DER of `<name>.pem`.
    fn der(&self, name: &str) -> Vec<u8> {
        let pem = String::from_utf8(self.read(&format!("{name}.pem"))).unwrap();
        let mut ders = pem_to_der_chain(&pem).unwrap();
        assert_eq!(ders.len(), 1);
        ders.remove(0)
    }

    fn key(&self, name: &str, key: Key) {
        let out = format!("{name}.key");
        match key {
            Key::P256 => self.run(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &out,
            ]),
            Key::P384 => self.run(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-out",
                &out,
            ]),
            Key::Rsa => self.run(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &out,
            ]),
        }
    }

    /// A self-signed EC P-256 root.
    fn root(&self, name: &str, cn: &str) {
        self.key(name, Key::P256);
        self.run(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/O=Test/CN={cn}"),
            "-days",
            "3650",
            "-sha256",
            "-config",
            "pki.cnf",
            "-extensions",
            "root",
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    /// A certificate `<name>.pem` for a new key `<name>.key`, issued by `issuer` with the
    /// extension section `section` of `ext_file`.
    #[allow(clippy::too_many_arguments)]
    fn issue_with(
        &self,
        name: &str,
        key: Key,
        subject: &str,
        issuer: &str,
        ext_file: &str,
        section: &str,
        serial: &str,
        days: u32,
    ) {
        self.key(name, key);
        let csr = format!("{name}.csr");
        self.run(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            subject,
            "-config",
            "pki.cnf",
            "-out",
            &csr,
        ]);
        self.run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{issuer}.pem"),
            "-CAkey",
            &format!("{issuer}.key"),
            "-set_serial",
            serial,
            "-days",
            &days.to_string(),
            "-sha256",
            "-extfile",
            ext_file,
            "-extensions",
            section,
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        name: &str,
        key: Key,
        subject: &str,
        issuer: &str,
        section: &str,
        serial: &str,
        days: u32,
    ) {
        self.issue_with(name, key, subject, issuer, "pki.cnf", section, serial, days);
    }

    /// An agent certificate issued by the intermediate, with CN `cn` and, if given, the
    /// mandate extension. `serial` is hex without `0x`.
    fn leaf(
        &self,
        name: &str,
        key: Key,
        cn: &str,
        mandate: Option<&Mandate>,
        serial: &str,
        days: u32,
    ) -> Leaf {
        let mut ext = String::from(
            "[leaf]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
             extendedKeyUsage = clientAuth\n",
        );
        if let Some(m) = mandate {
            let hex = hex::encode(m.to_der().unwrap());
            ext.push_str(&format!("1.3.6.1.4.1.99999.1.1 = DER:{hex}\n"));
        }
        let ext_file = format!("{name}.ext");
        std::fs::write(self.path(&ext_file), ext).unwrap();
        self.issue_with(
            name,
            key,
            &format!("/O=Acme/CN={cn}"),
            "int",
            &ext_file,
            "leaf",
            &format!("0x{serial}"),
            days,
        );
        Leaf {
            name: name.to_string(),
            der: self.der(name),
            serial: serial.to_string(),
        }
    }

    /// An OCSP response from `openssl ocsp` about `leaf`, with `line` as its index.txt status
    /// columns, signed by `signer` (`<signer>.pem`/`<signer>.key`); `sha256` picks the CertID
    /// hash.
    fn ocsp(&self, leaf: &Leaf, status: &str, signer: &str, sha256: bool) -> Vec<u8> {
        let index = format!("{}.index.txt", leaf.name);
        let line = match status {
            "good" => format!(
                "V\t351231235959Z\t\t{}\tunknown\t/O=Acme/CN=x\n",
                leaf.serial.to_uppercase()
            ),
            revoked => format!(
                "R\t351231235959Z\t{revoked}\t{}\tunknown\t/O=Acme/CN=x\n",
                leaf.serial.to_uppercase()
            ),
        };
        std::fs::write(self.path(&index), line).unwrap();
        let req = format!("{}.req.der", leaf.name);
        let resp = format!("{}.{signer}.resp.der", leaf.name);
        let mut args = vec!["ocsp", "-issuer", "int.pem"];
        if sha256 {
            args.push("-sha256");
        }
        let leaf_pem = format!("{}.pem", leaf.name);
        args.extend(["-cert", &leaf_pem, "-no_nonce", "-reqout", &req]);
        self.run(&args);
        let rsigner = format!("{signer}.pem");
        let rkey = format!("{signer}.key");
        self.run(&[
            "ocsp", "-index", &index, "-CA", "int.pem", "-rsigner", &rsigner, "-rkey", &rkey,
            "-rmd", "sha256", "-reqin", &req, "-respout", &resp, "-ndays", "1",
        ]);
        self.read(&resp)
    }

    /// `openssl dgst -<digest> -sign <key>` over `payload`.
    fn sign(&self, key_name: &str, digest: &str, payload: &[u8]) -> Vec<u8> {
        std::fs::write(self.path("payload.json"), payload).unwrap();
        self.run(&[
            "dgst",
            &format!("-{digest}"),
            "-sign",
            &format!("{key_name}.key"),
            "-out",
            "sig.bin",
            "payload.json",
        ]);
        self.read("sig.bin")
    }
}

fn mandate() -> Mandate {
    serde_json::from_str(MANDATE_JSON).unwrap()
}

/// Owned inputs for one verification.
struct Case {
    cert: Vec<u8>,
    chain: Vec<Vec<u8>>,
    roots: Vec<Vec<u8>>,
    ocsp: Option<Vec<u8>>,
    known: Option<RevocationStatus>,
    signature: Vec<u8>,
    payload: Vec<u8>,
    now: i64,
    max_clock_skew: u32,
}

impl Case {
    /// The good P-256 agent with a good delegated OCSP response and a good, signed order.
    fn new(pki: &Pki, leaf: &Leaf, key: &str, digest: &str, payload: &str) -> Case {
        Case {
            cert: leaf.der.clone(),
            chain: vec![pki.der("int")],
            roots: vec![pki.der("root")],
            ocsp: Some(pki.ocsp(leaf, "good", "ocsp", false)),
            known: None,
            signature: pki.sign(key, digest, payload.as_bytes()),
            payload: payload.as_bytes().to_vec(),
            now: now(),
            max_clock_skew: mandate_verify::DEFAULT_MAX_CLOCK_SKEW,
        }
    }

    fn verify(&self) -> Verdict {
        let revocation = match (&self.known, &self.ocsp) {
            (Some(s), _) => RevocationInput::Known(s.clone()),
            (None, Some(der)) => RevocationInput::Ocsp(der),
            (None, None) => RevocationInput::None,
        };
        let v = verify(&Evidence {
            certificate: &self.cert,
            chain: &self.chain,
            roots: &self.roots,
            revocation,
            signature: &self.signature,
            payload: &self.payload,
            now: self.now,
            max_clock_skew: self.max_clock_skew,
        });
        assert_eq!(v.valid, v.reasons.is_empty(), "{v:#?}");
        v
    }
}

fn codes(v: &Verdict) -> Vec<&str> {
    v.reasons.iter().map(|r| r.code.as_str()).collect()
}

fn detail<'v>(v: &'v Verdict, code: &str) -> &'v str {
    v.reasons
        .iter()
        .find(|r| r.code == code)
        .map(|r| r.detail.as_str())
        .unwrap_or_else(|| panic!("no {code} in {v:#?}"))
}

#[test]
fn good_order_verifies_ec_leaf_delegated_ocsp() {
    let pki = Pki::new();
    let leaf = pki.leaf(
        "leaf",
        Key::P256,
        "bot-1",
        Some(&mandate()),
        "7a1b2c3d4e5f",
        365,
    );
    let case = Case::new(&pki, &leaf, "leaf", "sha256", GOOD_ORDER);
    let v = case.verify();
    assert!(v.valid, "{v:#?}");
    assert_eq!(v.agent_id.as_deref(), Some("bot-1"));
    assert_eq!(v.serial.as_deref(), Some("7a1b2c3d4e5f"));
    assert_eq!(v.revocation, RevocationStatus::Good);
    assert_eq!(v.mandate, Some(mandate()));
    assert_eq!(
        v.order.as_ref().and_then(|o| o.market.as_deref()),
        Some("BTC_EUR")
    );
    assert!(v.not_after.unwrap() > case.now);

    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["revocation"]["status"], "good");
    assert_eq!(json["mandate"]["agentId"], "bot-1");
}

#[test]
fn rsa_leaf_with_issuer_signed_sha256_ocsp() {
    let pki = Pki::new();
    // High bit set: the DER INTEGER gets a leading 00, which the serial keeps.
    let leaf = pki.leaf(
        "rsa",
        Key::Rsa,
        "bot-1",
        Some(&mandate()),
        "8a0102030405",
        365,
    );
    let mut case = Case::new(&pki, &leaf, "rsa", "sha256", GOOD_ORDER);
    case.ocsp = Some(pki.ocsp(&leaf, "good", "int", true));
    let v = case.verify();
    assert!(v.valid, "{v:#?}");
    assert_eq!(v.serial.as_deref(), Some("008a0102030405"));
    assert_eq!(v.revocation, RevocationStatus::Good);
}

#[test]
fn p384_leaf_with_der_and_fixed_signatures() {
    #[derive(der::Sequence)]
    struct EcdsaSig<'a> {
        r: der::asn1::UintRef<'a>,
        s: der::asn1::UintRef<'a>,
    }
    let pki = Pki::new();
    let leaf = pki.leaf("p384", Key::P384, "bot-1", Some(&mandate()), "3c01", 365);
    let mut case = Case::new(&pki, &leaf, "p384", "sha384", GOOD_ORDER);
    let v = case.verify();
    assert!(v.valid, "{v:#?}");

    // The same signature as fixed-size r || s.
    let parsed: EcdsaSig<'_> = der::Decode::from_der(&case.signature).unwrap();
    let mut fixed = vec![0u8; 96];
    let (r, s) = (parsed.r.as_bytes(), parsed.s.as_bytes());
    fixed[48 - r.len()..48].copy_from_slice(r);
    fixed[96 - s.len()..].copy_from_slice(s);
    case.signature = fixed;
    assert!(case.verify().valid);

    // A P-384 key with SHA-256 is not what the verifier accepts for payloads.
    case.signature = pki.sign("p384", "sha256", GOOD_ORDER.as_bytes());
    assert_eq!(codes(&case.verify()), ["signature_invalid"]);
}

#[test]
fn tampered_payload_is_signature_invalid() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::P256, "bot-1", Some(&mandate()), "7a01", 365);
    let mut case = Case::new(&pki, &leaf, "leaf", "sha256", GOOD_ORDER);
    case.payload = GOOD_ORDER.replace("500", "900").into_bytes();
    let v = case.verify();
    assert_eq!(codes(&v), ["signature_invalid"]);
    // The order still parses and is reported.
    assert_eq!(
        v.order.and_then(|o| o.size).map(|s| s.to_string()),
        Some("900".into())
    );

    case.payload = GOOD_ORDER.as_bytes().to_vec();
    case.signature = vec![0x30, 0x00];
    assert_eq!(codes(&case.verify()), ["signature_invalid"]);
}

#[test]
fn order_outside_the_mandate_gets_every_denial() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::P256, "bot-1", Some(&mandate()), "7a02", 365);
    let order = r#"{"action":"trade_execution","market":"ETH_EUR","size":"5000","currency":"EUR"}"#;
    let v = Case::new(&pki, &leaf, "leaf", "sha256", order).verify();
    assert!(!v.valid);
    assert_eq!(codes(&v), ["exceeds_scope_size", "market_not_allowed"]);
    let size = &v.reasons[0];
    assert_eq!(size.limit.as_deref(), Some("1000 EUR"));
    assert_eq!(size.requested.as_deref(), Some("5000 EUR"));
    let market = &v.reasons[1];
    assert_eq!(market.limit.as_deref(), Some("BTC_EUR"));
    assert_eq!(market.requested.as_deref(), Some("ETH_EUR"));
    assert!(!market.detail.is_empty());
}

#[test]
fn payload_that_is_not_an_order() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::P256, "bot-1", Some(&mandate()), "7a03", 365);
    let v = Case::new(&pki, &leaf, "leaf", "sha256", r#"{"action":"fly"}"#).verify();
    assert_eq!(codes(&v), ["payload_invalid"]);
    let v = Case::new(
        &pki,
        &leaf,
        "leaf",
        "sha256",
        r#"{"action":"trade_execution","size":"1"}"#,
    )
    .verify();
    assert_eq!(codes(&v), ["payload_invalid"]);
    assert!(v.order.is_some());
}

#[test]
fn revoked_ocsp_response() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::P256, "bot-1", Some(&mandate()), "7a04", 365);
    let mut case = Case::new(&pki, &leaf, "leaf", "sha256", GOOD_ORDER);
    case.ocsp = Some(pki.ocsp(&leaf, "261120000000Z,keyCompromise", "ocsp", false));
    let v = case.verify();
    assert_eq!(codes(&v), ["certificate_revoked"]);
    // 2026-11-20T00:00:00Z
    assert_eq!(
        v.revocation,
        RevocationStatus::Revoked {
            revoked_at: 1_795_132_800,
            reason: Some(1)
        }
    );
    assert_eq!(
        detail(&v, "certificate_revoked"),
        "the certificate was revoked at 2026-11-20T00:00:00Z (reason: keyCompromise)"
    );
}

#[test]
fn missing_or_stale_ocsp_is_revocation_unknown() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::P256, "bot-1", Some(&mandate()), "7a05", 365);
    let mut case = Case::new(&pki, &leaf, "leaf", "sha256", GOOD_ORDER);

    // -ndays 1: two days later the response is past its nextUpdate.
    case.now += 2 * 86_400;
    let v = case.verify();
    assert_eq!(codes(&v), ["revocation_unknown"]);
    assert!(detail(&v, "revocation_unknown").contains("stale"), "{v:#?}");
    assert_eq!(v.revocation, RevocationStatus::Unknown);

    // An hour early the response's thisUpdate lies beyond the clock skew allowance. (The
    // delegated responder's certificate is not valid yet either: sign with the issuer.)
    case.now -= 2 * 86_400 + 3_600;
    case.ocsp = Some(pki.ocsp(&leaf, "good", "int", false));
    let v = case.verify();
    assert!(
        detail(&v, "revocation_unknown").contains("future"),
        "{v:#?}"
    );

    case.now += 3_600;
    case.ocsp = None;
    let v = case.verify();
    assert_eq!(codes(&v), ["revocation_unknown"]);
    assert_eq!(detail(&v, "revocation_unknown"), "no OCSP response given");

    case.ocsp = Some(b"garbage".to_vec());
    let v = case.verify();
    assert_eq!(codes(&v), ["revocation_unknown"]);
    assert!(detail(&v, "revocation_unknown").contains("not a DER OCSPResponse"));
}

#[test]
fn ocsp_response_for_another_certificate() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::P256, "bot-1", Some(&mandate()), "7a06", 365);
    let other = pki.leaf("other", Key::P256, "bot-1", Some(&mandate()), "7a07", 365);
    let mut case = Case::new(&pki, &leaf, "leaf", "sha256", GOOD_ORDER);
    case.ocsp = Some(pki.ocsp(&other, "good", "ocsp", false));
    let v = case.verify();
    assert_eq!(codes(&v), ["revocation_unknown"]);
    assert!(
        detail(&v, "revocation_unknown").contains("no status for serial 7a06"),
        "{v:#?}"
    );
}

#[test]
fn ocsp_response_from_a_wrong_signer() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::P256, "bot-1", Some(&mandate()), "7a08", 365);
    let mut case = Case::new(&pki, &leaf, "leaf", "sha256", GOOD_ORDER);

    // Issued by the intermediate, but not for OCSP signing.
    pki.issue(
        "plain",
        Key::P256,
        "/O=Test/CN=Not OCSP",
        "int",
        "plain",
        "0x3001",
        365,
    );
    case.ocsp = Some(pki.ocsp(&leaf, "good", "plain", false));
    let v = case.verify();
    assert_eq!(codes(&v), ["revocation_unknown"]);
    assert!(
        detail(&v, "revocation_unknown").contains("lacks id-kp-OCSPSigning"),
        "{v:#?}"
    );

    // For OCSP signing, but issued by another CA of the same name.
    pki.root("evil", "Test Intermediate");
    pki.issue(
        "evilocsp",
        Key::P256,
        "/O=Test/CN=Test OCSP",
        "evil",
        "ocsp",
        "0x2001",
        365,
    );
    case.ocsp = Some(pki.ocsp(&leaf, "good", "evilocsp", false));
    let v = case.verify();
    assert_eq!(codes(&v), ["revocation_unknown"]);
    assert!(
        detail(&v, "revocation_unknown").contains("is not signed by \""),
        "{v:#?}"
    );

    // The root's own key: not the issuer of the agent certificate.
    case.ocsp = Some(pki.ocsp(&leaf, "good", "root", false));
    assert_eq!(codes(&case.verify()), ["revocation_unknown"]);
}

#[test]
fn chain_to_another_root_is_untrusted() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::P256, "bot-1", Some(&mandate()), "7a09", 365);
    let mut case = Case::new(&pki, &leaf, "leaf", "sha256", GOOD_ORDER);
    pki.root("other", "Test Root");
    case.roots = vec![pki.der("other")];
    let v = case.verify();
    assert_eq!(codes(&v), ["untrusted_chain"]);
    assert!(detail(&v, "untrusted_chain").contains("not issued by any of the 1 trusted root"));

    case.roots = vec![];
    assert_eq!(codes(&case.verify()), ["untrusted_chain"]);

    // Without the intermediate nothing links the leaf to the root.
    case.roots = vec![pki.der("root")];
    case.chain = vec![];
    let v = case.verify();
    assert!(codes(&v).contains(&"untrusted_chain"), "{v:#?}");
    // ... and the OCSP response cannot be checked without the issuer.
    assert!(codes(&v).contains(&"revocation_unknown"), "{v:#?}");
}

#[test]
fn chain_may_end_with_the_root_and_come_from_pem() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::P256, "bot-1", Some(&mandate()), "7a0a", 365);
    let mut case = Case::new(&pki, &leaf, "leaf", "sha256", GOOD_ORDER);
    let bundle = [pki.read("int.pem"), pki.read("root.pem")].concat();
    case.chain = pem_to_der_chain(&String::from_utf8(bundle).unwrap()).unwrap();
    assert_eq!(case.chain.len(), 2);
    assert!(case.verify().valid);

    case.chain = vec![vec![0u8; 8]; 5];
    let v = case.verify();
    assert!(detail(&v, "untrusted_chain").contains("at most 4"));
}

#[test]
fn issuer_that_is_not_a_ca_is_untrusted() {
    let pki = Pki::new();
    // The OCSP signer (CA:FALSE) issues an agent certificate.
    let m = mandate();
    let ext = format!(
        "[leaf]\nkeyUsage = critical,digitalSignature\n1.3.6.1.4.1.99999.1.1 = DER:{}\n",
        hex::encode(m.to_der().unwrap())
    );
    std::fs::write(pki.path("bad.ext"), ext).unwrap();
    pki.issue_with(
        "bad",
        Key::P256,
        "/O=Acme/CN=bot-1",
        "ocsp",
        "bad.ext",
        "leaf",
        "0x99",
        365,
    );
    let leaf = Leaf {
        name: "bad".into(),
        der: pki.der("bad"),
        serial: "99".into(),
    };
    let mut case = Case::new(&pki, &leaf, "bad", "sha256", GOOD_ORDER);
    case.chain = vec![pki.der("ocsp"), pki.der("int")];
    case.known = Some(RevocationStatus::Good);
    let v = case.verify();
    assert!(!v.valid);
    // The signer is not a CA, and the intermediate (pathlen 0) may not have a CA below it.
    assert!(codes(&v).iter().all(|c| *c == "untrusted_chain"), "{v:#?}");
    assert!(detail(&v, "untrusted_chain").contains("not a CA certificate"));
}

#[test]
fn expired_and_not_yet_valid() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::P256, "bot-1", Some(&mandate()), "7a0b", 1);
    let mut case = Case::new(&pki, &leaf, "leaf", "sha256", GOOD_ORDER);
    case.known = Some(RevocationStatus::Good);
    assert!(case.verify().valid);

    case.now += 3 * 86_400;
    let v = case.verify();
    assert_eq!(codes(&v), ["certificate_expired"]);
    assert!(detail(&v, "certificate_expired").contains("the agent certificate"));

    // Before anything was issued: the leaf, the intermediate and the root.
    case.now -= 5 * 86_400;
    let v = case.verify();
    assert_eq!(
        codes(&v),
        [
            "certificate_not_yet_valid",
            "certificate_not_yet_valid",
            "certificate_not_yet_valid"
        ]
    );
}

#[test]
fn leaf_without_the_mandate_is_not_an_agent_certificate() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::P256, "bot-1", None, "7a0c", 365);
    let v = Case::new(&pki, &leaf, "leaf", "sha256", GOOD_ORDER).verify();
    assert_eq!(codes(&v), ["not_an_agent_certificate"]);
    assert!(v.mandate.is_none() && v.agent_id.is_none());
    // The order is still read, but there is nothing to decide it against.
    assert!(v.order.is_some());

    // A mandate for another agent than the subject names.
    let leaf = pki.leaf("leaf2", Key::P256, "bot-2", Some(&mandate()), "7a0d", 365);
    let v = Case::new(&pki, &leaf, "leaf2", "sha256", GOOD_ORDER).verify();
    assert_eq!(codes(&v), ["not_an_agent_certificate"]);
    assert!(detail(&v, "not_an_agent_certificate").contains("\"bot-2\""));
    assert_eq!(v.agent_id.as_deref(), Some("bot-1"));
}

#[test]
fn known_status_from_the_daemon() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::Rsa, "bot-1", Some(&mandate()), "7a0e", 365);
    let mut case = Case::new(&pki, &leaf, "leaf", "sha256", GOOD_ORDER);
    case.ocsp = None;
    case.known = Some(RevocationStatus::Good);
    assert!(case.verify().valid);

    case.known = Some(RevocationStatus::Unknown);
    assert_eq!(codes(&case.verify()), ["revocation_unknown"]);

    case.known = Some(RevocationStatus::Revoked {
        revoked_at: case.now - 10,
        reason: None,
    });
    let v = case.verify();
    assert_eq!(codes(&v), ["certificate_revoked"]);
    assert!(detail(&v, "certificate_revoked").contains("reason: not given"));
}

#[test]
fn a_signed_order_is_good_for_the_clock_skew_and_decided_at_the_time_of_the_check() {
    let pki = Pki::new();
    let leaf = pki.leaf("leaf", Key::P256, "bot-1", Some(&mandate()), "7a02", 365);
    let now = now();
    let signed_at = |ts: i64| GOOD_ORDER.replace("\"buy\"", &format!("\"buy\",\"timestamp\":{ts}"));
    // Signed 20 s ago: inside the 30 s window.
    let case = Case::new(&pki, &leaf, "leaf", "sha256", &signed_at(now - 20));
    assert!(case.verify().valid, "{:#?}", case.verify());
    // A day old, a day ahead, or at 0: refused, whatever the signature says.
    for ts in [now - 86_400, now + 86_400, 0] {
        let case = Case::new(&pki, &leaf, "leaf", "sha256", &signed_at(ts));
        let v = case.verify();
        assert_eq!(codes(&v), ["order_time_skew"], "{ts}: {v:#?}");
        assert!(
            detail(&v, "order_time_skew").contains("at most 30 s"),
            "{v:#?}"
        );
    }
    // A relying party may allow more.
    let mut case = Case::new(&pki, &leaf, "leaf", "sha256", &signed_at(now - 90));
    assert_eq!(codes(&case.verify()), ["order_time_skew"]);
    case.max_clock_skew = 120;
    assert!(case.verify().valid);
}
