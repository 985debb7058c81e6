//! JWS as ACME uses it (RFC 8555 §6.2, RFC 7515 flattened JSON serialization): parse the
//! request body, read the protected header, turn a JWK into a verifying key, check the
//! signature, compute the key's thumbprint (RFC 7638), and check external account binding
//! (RFC 8555 §7.3.4).
//!
//! Accepted: ES256, ES384, RS256 and EdDSA (Ed25519) for account keys; HS256 only inside an
//! external account binding. `none` and MAC algorithms on the outer JWS are
//! `badSignatureAlgorithm`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature as rs;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Digest;

use super::problem::{AcmeError, AcmeErrorType};

/// Largest JWS body read (a CSR with a 4096-bit key is ~2 KiB of base64).
pub const MAX_JWS_BYTES: usize = 64 * 1024;

/// Signature algorithms accepted on account keys, for the directory's error details.
pub const ACCOUNT_ALGS: [&str; 4] = ["ES256", "ES384", "RS256", "EdDSA"];

/// A parsed, not yet verified, flattened JWS.
#[derive(Debug, Clone)]
pub struct Jws {
    /// The protected header.
    pub header: Protected,
    /// The decoded payload; empty for POST-as-GET.
    pub payload: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

/// The protected header fields ACME uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Protected {
    /// Signature algorithm.
    pub alg: String,
    /// Anti-replay nonce (absent only inside an EAB JWS).
    pub nonce: Option<String>,
    /// The URL the request was sent to.
    pub url: String,
    /// Who signs: a new key (`jwk`) or an account (`kid`).
    pub key: KeyRef,
}

/// How the signer is named (exactly one of `jwk` or `kid`).
#[derive(Debug, Clone, PartialEq)]
pub enum KeyRef {
    /// The public key itself (newAccount, revokeCert by certificate key).
    Jwk(Jwk),
    /// An account URL.
    Kid(String),
}

/// A flattened JWS (RFC 7515 §7.2.2), the body of every ACME POST (RFC 8555 §6.2).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AcmeJws)]
pub(crate) struct Flattened {
    /// The protected header, base64url JSON: `alg`, `nonce`, `url`, and exactly one of `jwk`
    /// (a new key) and `kid` (an account URL).
    #[schema(pattern = "^[A-Za-z0-9_-]+$")]
    protected: String,
    /// The payload, base64url JSON; empty for POST-as-GET.
    #[schema(pattern = "^[A-Za-z0-9_-]*$")]
    payload: String,
    /// The signature, base64url.
    #[schema(pattern = "^[A-Za-z0-9_-]+$")]
    signature: String,
}

#[derive(Deserialize)]
struct RawProtected {
    alg: Option<String>,
    nonce: Option<String>,
    url: Option<String>,
    jwk: Option<Value>,
    kid: Option<String>,
    /// Whether the header has `crit` at all, whatever its value (`null` and `[]` included):
    /// see [`parse`].
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// True for a member that is there, whatever it holds: serde's `Option` would read `null` as
/// absent, and a `crit` of `null` must be refused like any other.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// The refusal of a JWS whose protected header has `crit`. RFC 7515 §4.1.11: a recipient must
/// reject a JWS listing an extension it does not understand, and we understand none (not even
/// `b64`, RFC 7797, which ACME does not use); an empty or non-array `crit` is invalid anyway.
fn crit_refused(which: &str) -> AcmeError {
    AcmeError::malformed(format!(
        "{which} has \"crit\": this server understands no JWS header extension, so it must \
         refuse it (RFC 7515 §4.1.11)"
    ))
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>, AcmeError> {
    B64.decode(s)
        .map_err(|_| AcmeError::malformed(format!("{field} is not base64url without padding")))
}

/// Parses a flattened JWS request body and its protected header. Nothing is verified yet, but a
/// header with `crit` is refused here (`malformed`), before the nonce is spent: we understand no
/// JWS extension (RFC 7515 §4.1.11).
pub fn parse(body: &[u8]) -> Result<Jws, AcmeError> {
    if body.len() > MAX_JWS_BYTES {
        return Err(AcmeError::malformed(format!(
            "request body over {MAX_JWS_BYTES} bytes"
        )));
    }
    let f: Flattened = serde_json::from_slice(body).map_err(|e| {
        AcmeError::malformed(format!(
            "body is not a flattened JWS (protected, payload, signature): {e}"
        ))
    })?;
    let header_json = b64("protected", &f.protected)?;
    let raw: RawProtected = serde_json::from_slice(&header_json)
        .map_err(|e| AcmeError::malformed(format!("protected header is not a JSON object: {e}")))?;
    if raw.crit {
        return Err(crit_refused("protected header"));
    }
    let alg = raw
        .alg
        .ok_or_else(|| AcmeError::malformed("protected header has no alg"))?;
    let url = raw
        .url
        .ok_or_else(|| AcmeError::malformed("protected header has no url"))?;
    let key = match (raw.jwk, raw.kid) {
        (Some(jwk), None) => KeyRef::Jwk(Jwk::from_json(&jwk)?),
        (None, Some(kid)) => KeyRef::Kid(kid),
        _ => {
            return Err(AcmeError::malformed(
                "protected header must have exactly one of jwk and kid",
            ));
        }
    };
    Ok(Jws {
        header: Protected {
            alg,
            nonce: raw.nonce,
            url,
            key,
        },
        payload: b64("payload", &f.payload)?,
        signing_input: format!("{}.{}", f.protected, f.payload).into_bytes(),
        signature: b64("signature", &f.signature)?,
    })
}

impl Jws {
    /// Checks the signature with `key` under the header's algorithm, which must be one we
    /// accept for account keys and match the key's type.
    pub fn verify(&self, key: &Jwk) -> Result<(), AcmeError> {
        key.verify(&self.header.alg, &self.signing_input, &self.signature)
    }

    /// The payload as a JSON value; `{}`-less POST-as-GET payloads are refused.
    pub fn json_payload(&self) -> Result<Value, AcmeError> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| AcmeError::malformed(format!("payload is not JSON: {e}")))
    }
}

/// A public key from a JWK (RFC 7517), with the members that define it.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwk {
    kind: JwkKind,
    /// The JWK's required members only, for the thumbprint and for comparisons.
    members: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
enum JwkKind {
    /// Uncompressed point (0x04 ‖ x ‖ y).
    P256(Vec<u8>),
    P384(Vec<u8>),
    /// Modulus and exponent, big-endian.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, AcmeError> {
    jwk.get(name).and_then(Value::as_str).ok_or_else(|| {
        AcmeError::new(
            AcmeErrorType::BadPublicKey,
            format!("JWK has no string member {name:?}"),
        )
    })
}

fn bad_key(detail: impl Into<String>) -> AcmeError {
    AcmeError::new(AcmeErrorType::BadPublicKey, detail)
}

impl Jwk {
    /// Reads a public JWK: EC P-256/P-384, RSA (2048 to 8192 bits), or OKP Ed25519.
    pub fn from_json(value: &Value) -> Result<Jwk, AcmeError> {
        let jwk = value
            .as_object()
            .ok_or_else(|| bad_key("jwk is not a JSON object"))?;
        if jwk.contains_key("d") {
            return Err(bad_key("jwk holds a private key"));
        }
        let keep = |names: &[&str]| -> Result<Map<String, Value>, AcmeError> {
            names
                .iter()
                .map(|n| Ok(((*n).to_owned(), Value::String(member(jwk, n)?.to_owned()))))
                .collect()
        };
        let kind = member(jwk, "kty")?;
        let (kind, members) = match kind {
            "EC" => {
                let members = keep(&["crv", "kty", "x", "y"])?;
                let (x, y) = (
                    b64("jwk.x", member(jwk, "x")?)?,
                    b64("jwk.y", member(jwk, "y")?)?,
                );
                let (len, p256) = match member(jwk, "crv")? {
                    "P-256" => (32, true),
                    "P-384" => (48, false),
                    other => return Err(bad_key(format!("unsupported EC curve {other:?}"))),
                };
                if x.len() != len || y.len() != len {
                    return Err(bad_key("EC coordinates of the wrong length"));
                }
                let point = [&[4u8][..], &x, &y].concat();
                let kind = if p256 {
                    JwkKind::P256(point)
                } else {
                    JwkKind::P384(point)
                };
                (kind, members)
            }
            "RSA" => {
                let members = keep(&["e", "kty", "n"])?;
                let n = b64("jwk.n", member(jwk, "n")?)?;
                let e = b64("jwk.e", member(jwk, "e")?)?;
                let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
                if !(2048..=8192).contains(&bits) {
                    return Err(bad_key(format!(
                        "RSA keys must have 2048 to 8192 bits (got about {bits})"
                    )));
                }
                (JwkKind::Rsa { n, e }, members)
            }
            "OKP" => {
                let members = keep(&["crv", "kty", "x"])?;
                if member(jwk, "crv")? != "Ed25519" {
                    return Err(bad_key("OKP keys must be Ed25519"));
                }
                let x = b64("jwk.x", member(jwk, "x")?)?;
                if x.len() != 32 {
                    return Err(bad_key("Ed25519 key of the wrong length"));
                }
                (JwkKind::Ed25519(x), members)
            }
            other => return Err(bad_key(format!("unsupported key type {other:?}"))),
        };
        Ok(Jwk { kind, members })
    }

    /// RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order, base64url.
    pub fn thumbprint(&self) -> String {
        // The members were inserted in lexicographic order (and serde_json's Map keeps keys
        // sorted or in insertion order, by feature) and hold plain strings: the compact output
        // is the RFC 7638 canonical form.
        let canonical = Value::Object(self.members.clone()).to_string();
        B64.encode(sha2::Sha256::digest(canonical.as_bytes()))
    }

    /// The key as a JSON value (required members only), as stored with an account.
    pub fn to_json(&self) -> Value {
        Value::Object(self.members.clone())
    }

    /// True if this is the key of a certificate with this SubjectPublicKeyInfo (revocation by
    /// the certificate's own key, RFC 8555 §7.6).
    pub fn is_key_of(&self, spki: &spki::SubjectPublicKeyInfoOwned) -> bool {
        let bits = spki.subject_public_key.raw_bytes();
        match &self.kind {
            JwkKind::P256(point) | JwkKind::P384(point) => bits == point.as_slice(),
            JwkKind::Ed25519(x) => bits == x.as_slice(),
            JwkKind::Rsa { n, e } => {
                use der::Decode;
                #[derive(der::Sequence)]
                struct RsaPublicKey<'a> {
                    modulus: der::asn1::UintRef<'a>,
                    exponent: der::asn1::UintRef<'a>,
                }
                let strip =
                    |b: &[u8]| -> Vec<u8> { b.iter().copied().skip_while(|x| *x == 0).collect() };
                RsaPublicKey::from_der(bits).is_ok_and(|k| {
                    strip(k.modulus.as_bytes()) == strip(n)
                        && strip(k.exponent.as_bytes()) == strip(e)
                })
            }
        }
    }

    fn verify(&self, alg: &str, msg: &[u8], sig: &[u8]) -> Result<(), AcmeError> {
        let bad_sig = || AcmeError::malformed("JWS signature does not verify");
        let wrong = || {
            AcmeError::new(
                AcmeErrorType::BadSignatureAlgorithm,
                format!(
                    "algorithm {alg:?} is not accepted for this key; use one of {}",
                    ACCOUNT_ALGS.join(", ")
                ),
            )
        };
        match (alg, &self.kind) {
            ("ES256", JwkKind::P256(p)) => {
                rs::UnparsedPublicKey::new(&rs::ECDSA_P256_SHA256_FIXED, p).verify(msg, sig)
            }
            ("ES384", JwkKind::P384(p)) => {
                rs::UnparsedPublicKey::new(&rs::ECDSA_P384_SHA384_FIXED, p).verify(msg, sig)
            }
            ("RS256", JwkKind::Rsa { n, e }) => rs::RsaPublicKeyComponents { n, e }.verify(
                &rs::RSA_PKCS1_2048_8192_SHA256,
                msg,
                sig,
            ),
            ("EdDSA", JwkKind::Ed25519(x)) => {
                rs::UnparsedPublicKey::new(&rs::ED25519, x).verify(msg, sig)
            }
            _ => return Err(wrong()),
        }
        .map_err(|_| bad_sig())
    }
}

/// Checks an external account binding (RFC 8555 §7.3.4): a JWS over the account's public key,
/// MACed with the HMAC key that goes with its `kid`, addressed to the newAccount URL. `lookup`
/// gives the HMAC key for a key id, or `None` if there is no such (unused) binding. Returns the
/// key id.
pub fn verify_eab(
    eab: &Value,
    account_key: &Jwk,
    new_account_url: &str,
    lookup: impl FnOnce(&str) -> Option<Vec<u8>>,
) -> Result<String, AcmeError> {
    let unauthorized = |d: &str| AcmeError::new(AcmeErrorType::Unauthorized, d);
    let f: Flattened = serde_json::from_value(eab.clone()).map_err(|e| {
        AcmeError::malformed(format!(
            "externalAccountBinding is not a flattened JWS: {e}"
        ))
    })?;
    let header: Map<String, Value> =
        serde_json::from_slice(&b64("eab protected", &f.protected)?)
            .map_err(|_| AcmeError::malformed("externalAccountBinding header is not JSON"))?;
    // The binding is a JWS too (RFC 8555 §7.3.4), so RFC 7515 §4.1.11 holds for it as well.
    if header.contains_key("crit") {
        return Err(crit_refused("externalAccountBinding header"));
    }
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(AcmeError::new(
            AcmeErrorType::BadSignatureAlgorithm,
            "externalAccountBinding must use HS256",
        ));
    }
    if header.contains_key("nonce") {
        return Err(AcmeError::malformed(
            "externalAccountBinding must not have a nonce",
        ));
    }
    if header.get("url").and_then(Value::as_str) != Some(new_account_url) {
        return Err(unauthorized(
            "externalAccountBinding url is not the newAccount URL",
        ));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| AcmeError::malformed("externalAccountBinding has no kid"))?;
    let bound = Jwk::from_json(
        &serde_json::from_slice::<Value>(&b64("eab payload", &f.payload)?)
            .map_err(|_| AcmeError::malformed("externalAccountBinding payload is not a JWK"))?,
    )?;
    if &bound != account_key {
        return Err(unauthorized(
            "externalAccountBinding binds another key than the account's",
        ));
    }
    let hmac_key = lookup(kid)
        .ok_or_else(|| unauthorized("unknown or already used external account key id"))?;
    let mac = b64("eab signature", &f.signature)?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &hmac_key);
    ring::hmac::verify(
        &key,
        format!("{}.{}", f.protected, f.payload).as_bytes(),
        &mac,
    )
    .map_err(|_| unauthorized("externalAccountBinding MAC does not verify"))?;
    Ok(kid.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use serde_json::json;

    const URL: &str = "https://ca.test/acme/new-account";

    fn p256() -> (EcdsaKeyPair, Value) {
        let rng = SystemRandom::new();
        let alg = &rs::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = key.public_key().as_ref().to_vec();
        let jwk = json!({"kty": "EC", "crv": "P-256",
                         "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..])});
        (key, jwk)
    }

    fn sign(key: &EcdsaKeyPair, header: &Value, payload: &[u8]) -> Vec<u8> {
        let protected = B64.encode(header.to_string());
        let payload = B64.encode(payload);
        let sig = key
            .sign(
                &SystemRandom::new(),
                format!("{protected}.{payload}").as_bytes(),
            )
            .unwrap();
        json!({"protected": protected, "payload": payload, "signature": B64.encode(sig.as_ref())})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn es256_and_eddsa_verify_and_tampering_does_not() {
        let (key, jwk) = p256();
        let body = sign(
            &key,
            &json!({"alg": "ES256", "nonce": "n1", "url": URL, "jwk": jwk}),
            b"{}",
        );
        let jws = parse(&body).unwrap();
        let KeyRef::Jwk(k) = &jws.header.key else {
            panic!("jwk expected")
        };
        jws.verify(k).unwrap();
        assert_eq!(jws.header.nonce.as_deref(), Some("n1"));
        assert_eq!(jws.json_payload().unwrap(), json!({}));

        // The same signature over another payload.
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        v["payload"] = json!(B64.encode(b"{\"x\":1}"));
        let forged = parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(forged.verify(k).unwrap_err().kind, AcmeErrorType::Malformed);

        // Ed25519.
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let ejwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(ed.public_key())});
        let protected = B64.encode(json!({"alg": "EdDSA", "url": URL, "jwk": ejwk}).to_string());
        let payload = B64.encode(b"");
        let sig = ed.sign(format!("{protected}.{payload}").as_bytes());
        let body = json!({"protected": protected, "payload": payload,
                          "signature": B64.encode(sig.as_ref())});
        let jws = parse(body.to_string().as_bytes()).unwrap();
        let KeyRef::Jwk(k) = &jws.header.key else {
            panic!("jwk expected")
        };
        jws.verify(k).unwrap();
        assert!(jws.payload.is_empty(), "POST-as-GET");
    }

    #[test]
    fn none_mac_and_mismatched_algorithms_are_refused() {
        let (key, jwk) = p256();
        for alg in ["none", "HS256", "ES384", "RS256"] {
            let body = sign(
                &key,
                &json!({"alg": alg, "nonce": "n", "url": URL, "jwk": jwk}),
                b"{}",
            );
            let jws = parse(&body).unwrap();
            let KeyRef::Jwk(k) = &jws.header.key else {
                panic!()
            };
            assert_eq!(
                jws.verify(k).unwrap_err().kind,
                AcmeErrorType::BadSignatureAlgorithm,
                "{alg}"
            );
        }
    }

    #[test]
    fn malformed_bodies_and_headers_are_named() {
        let (key, jwk) = p256();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), "flattened JWS"),
            (vec![b' '; MAX_JWS_BYTES + 1], "over"),
            (
                sign(&key, &json!({"alg": "ES256", "url": URL}), b"{}"),
                "exactly one of jwk and kid",
            ),
            (
                sign(
                    &key,
                    &json!({"alg": "ES256", "url": URL, "jwk": jwk, "kid": "k"}),
                    b"{}",
                ),
                "exactly one of jwk and kid",
            ),
            (
                sign(&key, &json!({"alg": "ES256", "jwk": jwk}), b"{}"),
                "no url",
            ),
        ];
        for (body, want) in cases {
            let err = parse(&body).unwrap_err();
            assert_eq!(err.kind, AcmeErrorType::Malformed);
            assert!(err.detail.contains(want), "{want}: {}", err.detail);
        }
        // Keys we do not take: private, small RSA, unknown curve.
        let mut private = jwk.clone();
        private["d"] = json!("AAAA");
        let small = json!({"kty": "RSA", "n": B64.encode([0xffu8; 128]), "e": "AQAB"});
        let curve = json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"});
        for bad in [private, small, curve, json!("x")] {
            assert_eq!(
                Jwk::from_json(&bad).unwrap_err().kind,
                AcmeErrorType::BadPublicKey,
                "{bad}"
            );
        }
    }

    #[test]
    fn any_crit_is_refused_as_malformed() {
        let (key, jwk) = p256();
        let base = json!({"alg": "ES256", "nonce": "n", "url": URL, "jwk": jwk});
        assert!(parse(&sign(&key, &base, b"{}")).is_ok());
        // RFC 7797's b64, an unknown name, an empty list and non-lists: we understand no
        // extension, so every crit is refused, whatever it holds.
        for crit in [
            json!(["b64"]),
            json!(["exp"]),
            json!([]),
            json!("b64"),
            json!(null),
            json!({}),
            json!(true),
        ] {
            let mut header = base.clone();
            header["crit"] = crit.clone();
            if crit == json!(["b64"]) {
                header["b64"] = json!(false);
            }
            let err = parse(&sign(&key, &header, b"{}")).unwrap_err();
            assert_eq!(err.kind, AcmeErrorType::Malformed, "{crit}");
            assert!(err.detail.contains("\"crit\""), "{crit}: {}", err.detail);
        }
    }

    #[test]
    fn rs256_verifies_with_a_2048_bit_key() {
        let dir = tempfile::tempdir().unwrap();
        let der = dir.path().join("rsa.der"); // RSAPrivateKey: what genpkey -outform DER writes
        let made = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .args(["-outform", "DER", "-out"])
            .arg(&der)
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
        let key = rs::RsaKeyPair::from_der(&std::fs::read(&der).unwrap()).unwrap();
        let public: rs::RsaPublicKeyComponents<Vec<u8>> = key.public().into();
        let jwk = json!({"kty": "RSA", "n": B64.encode(&public.n), "e": B64.encode(&public.e)});
        let protected = B64.encode(json!({"alg": "RS256", "url": URL, "jwk": jwk}).to_string());
        let payload = B64.encode(b"{}");
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(
            &rs::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            format!("{protected}.{payload}").as_bytes(),
            &mut sig,
        )
        .unwrap();
        let body =
            json!({"protected": protected, "payload": payload, "signature": B64.encode(&sig)});
        let jws = parse(body.to_string().as_bytes()).unwrap();
        let KeyRef::Jwk(k) = &jws.header.key else {
            panic!("jwk expected")
        };
        jws.verify(k).unwrap();
        assert_eq!(k.thumbprint().len(), 43);
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        // RFC 7638 §3.1.
        let jwk = Jwk::from_json(&json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }))
        .unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn external_account_binding() {
        let (_, jwk) = p256();
        let account = Jwk::from_json(&jwk).unwrap();
        let hmac = b"0123456789abcdef0123456789abcdef".to_vec();
        let eab = |kid: &str, url: &str, alg: &str, key: &[u8], bound: &Value| {
            let protected = B64.encode(json!({"alg": alg, "kid": kid, "url": url}).to_string());
            let payload = B64.encode(bound.to_string());
            let tag = ring::hmac::sign(
                &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
                format!("{protected}.{payload}").as_bytes(),
            );
            json!({"protected": protected, "payload": payload,
                   "signature": B64.encode(tag.as_ref())})
        };
        let lookup = |k: &str| (k == "kid-1").then(|| hmac.clone());
        let good = eab("kid-1", URL, "HS256", &hmac, &jwk);
        assert_eq!(verify_eab(&good, &account, URL, lookup).unwrap(), "kid-1");

        // The binding with crit in its header, otherwise good and correctly MACed.
        let protected = B64.encode(
            json!({"alg": "HS256", "kid": "kid-1", "url": URL, "crit": ["b64"], "b64": true})
                .to_string(),
        );
        let payload = B64.encode(jwk.to_string());
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &hmac),
            format!("{protected}.{payload}").as_bytes(),
        );
        let crit = json!({"protected": protected, "payload": payload,
                          "signature": B64.encode(tag.as_ref())});
        let err = verify_eab(&crit, &account, URL, lookup).unwrap_err();
        assert_eq!(err.kind, AcmeErrorType::Malformed);
        assert!(err.detail.contains("\"crit\""), "{}", err.detail);

        let (_, other) = p256();
        let cases = [
            (
                eab("kid-1", URL, "HS256", b"wrong key", &jwk),
                AcmeErrorType::Unauthorized,
            ),
            (
                eab("kid-2", URL, "HS256", &hmac, &jwk),
                AcmeErrorType::Unauthorized,
            ),
            (
                eab("kid-1", "https://evil/", "HS256", &hmac, &jwk),
                AcmeErrorType::Unauthorized,
            ),
            (
                eab("kid-1", URL, "HS256", &hmac, &other),
                AcmeErrorType::Unauthorized,
            ),
            (
                eab("kid-1", URL, "none", &hmac, &jwk),
                AcmeErrorType::BadSignatureAlgorithm,
            ),
            (json!({"protected": "x"}), AcmeErrorType::Malformed),
        ];
        for (e, kind) in cases {
            assert_eq!(
                verify_eab(&e, &account, URL, lookup).unwrap_err().kind,
                kind,
                "{e}"
            );
        }
    }
}
