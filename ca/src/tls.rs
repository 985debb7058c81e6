//! HTTPS for ACME clients and the REST API: a rustls listener beside the plain HTTP one (OCSP
//! and CRLs stay on plain HTTP, RFC 5019). The certificate comes from files, or the daemon
//! issues itself one from its own intermediate, for the host of `http.tls_public_url`: the
//! key is a P-256 key made here and kept in `<data_dir>/tls/` (mode 0600) — it protects the
//! transport, not the CA, and rustls signs handshakes with it in memory.

use std::path::Path;
use std::sync::Arc;

use der::Decode;
use mandate_config::Config;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use spki::SubjectPublicKeyInfoOwned;

use crate::CaError;
use crate::issuance::Issuer;

/// Validity of a self-issued server certificate; a new one is issued at start-up when less than
/// a third of it is left.
const SELF_ISSUED_DAYS: u32 = 90;

/// The rustls configuration: from the configured files, or self-issued.
pub async fn server_config(
    cfg: &Config,
    issuer: &Issuer,
) -> Result<Arc<rustls::ServerConfig>, CaError> {
    let (chain, key) = if cfg.http.tls_cert_file.as_os_str().is_empty() {
        self_issued(cfg, issuer).await?
    } else {
        read_pem(&cfg.http.tls_cert_file, &cfg.http.tls_key_file)?
    };
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| CaError::Internal(format!("TLS versions: {e}")))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| CaError::InvalidRequest(format!("TLS certificate or key refused: {e}")))?;
    Ok(Arc::new(config))
}

fn read_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CaError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            CaError::InvalidRequest(format!("http.tls_cert_file {}: {e}", cert.display()))
        })?;
    if chain.is_empty() {
        return Err(CaError::InvalidRequest(format!(
            "http.tls_cert_file {}: no certificate in it",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        CaError::InvalidRequest(format!("http.tls_key_file {}: {e}", key.display()))
    })?;
    Ok((chain, key))
}

/// The self-issued certificate and key in `<data_dir>/tls/`, renewed when needed.
async fn self_issued(
    cfg: &Config,
    issuer: &Issuer,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CaError> {
    let dir = cfg.data_dir.join("tls");
    let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
    let host = host_of(&cfg.http.tls_public_url)?;
    if let Ok((chain, key)) = read_pem(&cert_path, &key_path)
        && still_good(&chain, &host)
    {
        return Ok((chain, key));
    }
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| CaError::Internal("TLS key generation failed".into()))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| CaError::Internal("TLS key unreadable".into()))?;
    let spki = p256_spki(pair.public_key().as_ref())?;
    let der = issuer
        .server_certificate(spki, &host, SELF_ISSUED_DAYS)
        .await?;
    let pem = format!("{}{}", crate::x509::cert_pem(&der)?, issuer.chain_pem());
    let key_pem = der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, pkcs8.as_ref())
        .map_err(|e| CaError::Internal(format!("PEM: {e}")))?;
    crate::node::write_private(&key_path, key_pem.as_bytes())?;
    crate::node::write_private(&cert_path, pem.as_bytes())?;
    read_pem(&cert_path, &key_path)
}

/// The host part of an `https://host[:port][/...]` URL.
fn host_of(url: &str) -> Result<String, CaError> {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(CaError::InvalidRequest(format!("no host in {url:?}")));
    }
    Ok(host.to_owned())
}

/// True if the leaf is for `host` and more than a third of its validity is left.
fn still_good(chain: &[CertificateDer<'_>], host: &str) -> bool {
    let Some(leaf) = chain.first() else {
        return false;
    };
    let Ok(cert) = x509_cert::Certificate::from_der(leaf.as_ref()) else {
        return false;
    };
    let v = &cert.tbs_certificate.validity;
    let (nb, na) = (
        v.not_before.to_unix_duration().as_secs(),
        v.not_after.to_unix_duration().as_secs(),
    );
    let now = u64::try_from(mandate_store::now_unix()).unwrap_or(0);
    let cn_matches = cert
        .tbs_certificate
        .subject
        .to_string()
        .contains(&format!("CN={host}"));
    cn_matches && now + (na.saturating_sub(nb)) / 3 < na
}

/// SubjectPublicKeyInfo of a P-256 public key (uncompressed point).
fn p256_spki(point: &[u8]) -> Result<SubjectPublicKeyInfoOwned, CaError> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
            parameters: Some(der::Any::from(&const_oid::db::rfc5912::SECP_256_R_1)),
        },
        subject_public_key: der::asn1::BitString::from_bytes(point)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls() {
        for (url, host) in [
            ("https://127.0.0.1:8443", "127.0.0.1"),
            ("https://ca.example.com/acme", "ca.example.com"),
            ("https://[::1]:8443", "::1"),
            ("https://ca.example.com", "ca.example.com"),
        ] {
            assert_eq!(host_of(url).ok().as_deref(), Some(host), "{url}");
        }
    }
}
