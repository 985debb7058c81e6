//! Audit tree checkpoints as C2SP signed notes (tlog-checkpoint), and checking signatures by
//! audit signers against the root certificates.
//!
//! A checkpoint's text is the log's origin, the tree size and the base64 root hash, one per line
//! (no extension lines). Its one signature line is an ECDSA P-256 signature (signed-note type
//! 0x02, as transparency-dev's witness makes them) by the audit signer key in the HSM, under the
//! key name of the origin; its key id is the first four bytes of SHA-256 of the signer's DER
//! SubjectPublicKeyInfo. Which signer it was is found by that key id among the signer
//! certificates, each of which must chain to a trusted root.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use der::{Decode, Encode};
use signed_note::{Note, Signature};
use tlog_tiles::checkpoint::Checkpoint;
use tlog_tiles::tlog::Hash;

use crate::CaError;
use crate::x509::AUDIT_SIGNING_EKU;

/// The signed-note key id of a certificate's key: SHA-256 of its DER SubjectPublicKeyInfo,
/// first four bytes, big-endian.
pub fn key_id(cert_der: &[u8]) -> Result<u32, String> {
    let cert = x509_cert::Certificate::from_der(cert_der)
        .map_err(|e| format!("the signer certificate is unreadable: {e}"))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("the signer key is unreadable: {e}"))?;
    let d = mandate_store::spki_digest(&spki);
    Ok(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
}

/// The text a checkpoint signs.
pub fn checkpoint_text(origin: &str, size: u64, root: Hash) -> Result<Vec<u8>, CaError> {
    Ok(Checkpoint::new(origin, size, root, "")
        .map_err(|_| {
            CaError::Internal(format!("audit origin {origin:?} cannot start a checkpoint"))
        })?
        .to_bytes())
}

/// The signed note: the text, a blank line and the signature line.
pub fn assemble(
    text: &[u8],
    origin: &str,
    key_id: u32,
    signature: Vec<u8>,
) -> Result<String, CaError> {
    let bad = |e: signed_note::NoteError| CaError::Internal(format!("checkpoint note: {e}"));
    let sig = Signature::new(origin.to_owned(), key_id, signature).map_err(bad)?;
    let note = Note::new(text, &[sig]).map_err(bad)?;
    String::from_utf8(note.to_bytes()).map_err(|e| CaError::Internal(e.to_string()))
}

/// A checkpoint read from its note (its signature not yet checked).
#[derive(Debug, Clone)]
pub struct OpenedCheckpoint {
    /// The log's origin.
    pub origin: String,
    /// Leaves in the tree.
    pub size: u64,
    /// The tree's root hash.
    pub root: Hash,
    /// The signed text.
    pub text: Vec<u8>,
    /// The signature lines under the origin's key name: (key id, signature).
    pub signatures: Vec<(u32, Vec<u8>)>,
}

/// Reads a checkpoint note: the signed-note syntax, then the tlog-checkpoint text.
pub fn open(note: &str) -> Result<OpenedCheckpoint, String> {
    let parsed = Note::from_bytes(note.as_bytes())
        .map_err(|e| format!("the checkpoint is not a signed note: {e}"))?;
    let cp = Checkpoint::from_bytes(parsed.text())
        .map_err(|e| format!("the checkpoint text is not a tlog checkpoint: {e}"))?;
    let signatures = parsed_signatures(note)?
        .into_iter()
        .filter(|s| s.name() == cp.origin())
        .map(|s| (s.id(), s.signature().to_vec()))
        .collect::<Vec<_>>();
    if signatures.is_empty() {
        return Err(format!(
            "the checkpoint carries no signature by its log ({})",
            cp.origin()
        ));
    }
    Ok(OpenedCheckpoint {
        origin: cp.origin().to_owned(),
        size: cp.size(),
        root: *cp.hash(),
        text: parsed.text().to_vec(),
        signatures,
    })
}

/// The signature lines of a note (the crate keeps them private).
fn parsed_signatures(note: &str) -> Result<Vec<Signature>, String> {
    let (_, sigs) = note
        .rsplit_once("\n\n")
        .ok_or("the checkpoint has no signature lines")?;
    sigs.lines()
        .map(|l| Signature::from_bytes(l.as_bytes()).map_err(|e| format!("a signature line: {e}")))
        .collect()
}

/// What signatures by audit signers are checked against: the trusted roots, and the CA
/// certificates a file carries to reach them.
#[derive(Debug, Default, Clone)]
pub struct SignerTrust {
    /// Trusted root certificates, DER.
    pub roots: Vec<Vec<u8>>,
    /// Intermediates by row id.
    pub intermediates: HashMap<i64, Vec<u8>>,
    /// Cross-certificates between roots (after a root rollover).
    pub cross: Vec<Vec<u8>>,
}

impl SignerTrust {
    /// Checks `signature` over `message` by the audit signer `cert` (issued by intermediate
    /// `issuer_id`), at unix time `at`: directly to a root, or through a cross-certificate.
    pub fn check(
        &self,
        cert: &[u8],
        issuer_id: i64,
        message: &[u8],
        signature: &[u8],
        at: i64,
    ) -> Result<(), String> {
        let chain: Vec<Vec<u8>> = self
            .intermediates
            .get(&issuer_id)
            .cloned()
            .into_iter()
            .collect();
        let verify = |chain: &[Vec<u8>]| {
            mandate_verify::verify_signed_by(
                cert,
                chain,
                &self.roots,
                AUDIT_SIGNING_EKU,
                message,
                signature,
                at,
            )
        };
        let first = verify(&chain);
        if first.is_empty() {
            return Ok(());
        }
        for cross in &self.cross {
            let mut via = chain.clone();
            via.push(cross.clone());
            if verify(&via).is_empty() {
                return Ok(());
            }
        }
        Err(first
            .iter()
            .map(|r| r.detail.clone())
            .collect::<Vec<_>>()
            .join("; "))
    }

    /// Checks a checkpoint's signature by the signer `cert`: its key id must be the
    /// certificate's, and the signature over the text must verify at `at`.
    pub fn check_checkpoint(
        &self,
        cp: &OpenedCheckpoint,
        cert: &[u8],
        issuer_id: i64,
        at: i64,
    ) -> Result<(), String> {
        let id = key_id(cert)?;
        let (_, sig) = cp
            .signatures
            .iter()
            .find(|(k, _)| *k == id)
            .ok_or_else(|| format!("no signature of the checkpoint is by the key {id:08x} of its signer certificate"))?;
        self.check(cert, issuer_id, &cp.text, sig, at)
    }
}

/// A hash as base64 (as checkpoints and proofs write them).
pub fn b64(h: &Hash) -> String {
    B64.encode(h.0)
}

/// A hash from base64.
pub fn hash_b64(s: &str) -> Result<Hash, String> {
    let v = B64.decode(s).map_err(|_| format!("{s:?} is not base64"))?;
    let a: [u8; 32] = v
        .try_into()
        .map_err(|_| format!("{s:?} is not a 32-byte hash"))?;
    Ok(Hash(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_round_trips_and_names_its_parts() {
        let root = tlog_tiles::tlog::record_hash(b"x");
        let text = checkpoint_text("mandate.test/audit", 7, root).unwrap();
        let note = assemble(&text, "mandate.test/audit", 0x0102_0304, vec![9; 70]).unwrap();
        assert!(note.starts_with("mandate.test/audit\n7\n"));
        assert!(note.contains("\n\n\u{2014} mandate.test/audit "));
        let cp = open(&note).unwrap();
        assert_eq!(
            (cp.size, cp.root, cp.origin.as_str()),
            (7, root, "mandate.test/audit")
        );
        assert_eq!(cp.signatures, vec![(0x0102_0304, vec![9; 70])]);
        assert_eq!(cp.text, text);
    }

    #[test]
    fn a_note_signed_under_another_name_is_refused() {
        let text = checkpoint_text("a.test/log", 1, tlog_tiles::tlog::record_hash(b"x")).unwrap();
        let note = assemble(&text, "b.test/log", 1, vec![1; 70]).unwrap();
        assert!(open(&note).unwrap_err().contains("no signature by its log"));
        assert!(open("a.test/log\n1\nnot base64\n\n").is_err());
    }
}
