//! Key templates and attribute reading, one session at a time.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState};
use cryptoki::types::Ulong;
use tracing::warn;

use crate::encoding;
use crate::error::{HsmError, OpError, ck};
use crate::types::{KeyId, KeyInfo, KeyKind};

/// Length of the random CKA_ID given to each new key pair.
const KEY_ID_LEN: usize = 16;

/// A private key as the signing path needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PrivateKey {
    pub(crate) handle: ObjectHandle,
    pub(crate) kind: KeyKind,
}

/// True if the handle no longer names an object, which is what SoftHSM returns for a cached
/// private-key handle after a logout (it drops all private handles) or after a key is deleted.
/// Kryoptic keeps handles across a logout and answers GENERAL_ERROR instead, a lost session
/// (`error::is_session_lost`): both paths end in a fresh search.
pub(crate) fn is_stale_handle(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _)
    )
}

/// A logged-out session sees no private objects at all, so "nothing found" must be told apart
/// from "logged out" before it is reported as a missing key.
pub(crate) fn ensure_logged_in(session: &Session, op: &'static str) -> Result<(), OpError> {
    let info = session.get_session_info().map_err(ck(op))?;
    match info.session_state() {
        SessionState::RwUser | SessionState::RoUser => Ok(()),
        state => Err(OpError::SessionLost(format!(
            "session is no longer logged in (state {state:?})"
        ))),
    }
}

/// Finds the private key with this CKA_ID and works out its kind.
pub(crate) fn find_private_key(
    session: &Session,
    id: &KeyId,
    op: &'static str,
) -> Result<PrivateKey, OpError> {
    let handles = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id.as_bytes().to_vec()),
        ])
        .map_err(ck(op))?;
    let Some(&handle) = handles.first() else {
        ensure_logged_in(session, op)?;
        return Err(HsmError::KeyNotFound { id: id.clone() }.into());
    };
    if handles.len() > 1 {
        warn!(key_id = %id, count = handles.len(), "several private keys share one CKA_ID; using the first");
    }
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::EcParams,
                AttributeType::Modulus,
            ],
        )
        .map_err(ck(op))?;
    let kind = kind_from_attributes(&Attrs::from(attrs))?;
    Ok(PrivateKey { handle, kind })
}

/// The attributes we read, picked out of cryptoki's list (which silently omits the ones the
/// object does not have).
#[derive(Default)]
struct Attrs {
    id: Option<Vec<u8>>,
    label: Option<Vec<u8>>,
    key_type: Option<KeyType>,
    ec_params: Option<Vec<u8>>,
    ec_point: Option<Vec<u8>>,
    modulus: Option<Vec<u8>>,
    public_exponent: Option<Vec<u8>>,
    sensitive: Option<bool>,
    extractable: Option<bool>,
    never_extractable: Option<bool>,
}

impl From<Vec<Attribute>> for Attrs {
    fn from(list: Vec<Attribute>) -> Attrs {
        let mut a = Attrs::default();
        for attr in list {
            match attr {
                Attribute::Id(v) => a.id = Some(v),
                Attribute::Label(v) => a.label = Some(v),
                Attribute::KeyType(v) => a.key_type = Some(v),
                Attribute::EcParams(v) => a.ec_params = Some(v),
                Attribute::EcPoint(v) => a.ec_point = Some(v),
                Attribute::Modulus(v) => a.modulus = Some(v),
                Attribute::PublicExponent(v) => a.public_exponent = Some(v),
                Attribute::Sensitive(v) => a.sensitive = Some(v),
                Attribute::Extractable(v) => a.extractable = Some(v),
                Attribute::NeverExtractable(v) => a.never_extractable = Some(v),
                _ => {}
            }
        }
        a
    }
}

fn bit_length(unsigned_be: &[u8]) -> usize {
    let trimmed: &[u8] = match unsigned_be.iter().position(|&b| b != 0) {
        Some(i) => &unsigned_be[i..],
        None => &[],
    };
    match trimmed.first() {
        Some(&top) => (trimmed.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    }
}

fn kind_from_attributes(a: &Attrs) -> Result<KeyKind, HsmError> {
    match a.key_type {
        Some(t) if t == KeyType::RSA => {
            let bits = a.modulus.as_deref().map(bit_length).unwrap_or(0);
            KeyKind::from_rsa_bits(bits).ok_or_else(|| HsmError::Unsupported {
                what: format!("RSA key with a {bits}-bit modulus"),
            })
        }
        Some(t) if t == KeyType::EC => {
            let params = a
                .ec_params
                .as_deref()
                .ok_or_else(|| HsmError::Unsupported {
                    what: "EC key without CKA_EC_PARAMS".into(),
                })?;
            let curve = encoding::curve_from_ec_params(params)?;
            KeyKind::from_curve(curve).ok_or_else(|| HsmError::Unsupported {
                what: format!("EC key on curve {curve}"),
            })
        }
        Some(t) => Err(HsmError::Unsupported {
            what: format!("key type {t}"),
        }),
        None => Err(HsmError::Unsupported {
            what: "private key without CKA_KEY_TYPE".into(),
        }),
    }
}

/// Reads everything [`KeyInfo`] holds, starting from the private key's handle.
pub(crate) fn key_info(
    session: &Session,
    private: ObjectHandle,
    op: &'static str,
) -> Result<KeyInfo, OpError> {
    let a = Attrs::from(
        session
            .get_attributes(
                private,
                &[
                    AttributeType::Id,
                    AttributeType::Label,
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::Modulus,
                    AttributeType::PublicExponent,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                ],
            )
            .map_err(ck(op))?,
    );
    let id = match &a.id {
        Some(id) if !id.is_empty() => KeyId::new(id.clone()),
        _ => {
            return Err(HsmError::Unsupported {
                what: "private key without CKA_ID (mandate addresses keys by id)".into(),
            }
            .into());
        }
    };
    let kind = kind_from_attributes(&a)?;
    let public = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(id.as_bytes().to_vec()),
        ])
        .map_err(ck(op))?;
    let public = match public.first() {
        Some(&h) => Some(Attrs::from(
            session
                .get_attributes(
                    h,
                    &[
                        AttributeType::Modulus,
                        AttributeType::PublicExponent,
                        AttributeType::EcPoint,
                    ],
                )
                .map_err(ck(op))?,
        )),
        None => None,
    };
    let spki_der = if kind.rsa_bits().is_some() {
        // A private RSA key carries its public half too, so a missing public object is fine.
        let from = public
            .as_ref()
            .filter(|p| p.modulus.is_some() && p.public_exponent.is_some())
            .unwrap_or(&a);
        match (&from.modulus, &from.public_exponent) {
            (Some(n), Some(e)) => encoding::rsa_spki(n, e)?,
            _ => {
                return Err(HsmError::Unsupported {
                    what: format!("RSA key {id} without readable modulus and exponent"),
                }
                .into());
            }
        }
    } else {
        match public.as_ref().and_then(|p| p.ec_point.as_deref()) {
            Some(point) => encoding::ec_spki(kind, point)?,
            None => {
                return Err(HsmError::Unsupported {
                    what: format!("EC key {id} has no public key object with CKA_EC_POINT"),
                }
                .into());
            }
        }
    };
    Ok(KeyInfo {
        label: String::from_utf8_lossy(a.label.as_deref().unwrap_or_default()).into_owned(),
        id,
        kind,
        spki_der,
        // Unreadable means we cannot vouch for it: report the unsafe value.
        sensitive: a.sensitive.unwrap_or(false),
        extractable: a.extractable.unwrap_or(true),
        never_extractable: a.never_extractable.unwrap_or(false),
    })
}

/// Generates a key pair inside the token and returns its info and private handle.
/// Searches the token for `id` before a key is created with it. Two reasons: the id must be
/// unused, and SoftHSM's file store re-reads the token directory only at a search, while a
/// write by this process stamps the token's generation counter as seen: without a search
/// first, keys another process (`mandate ca rotate-intermediate` beside the daemon) created
/// since the last search would stay invisible here until a restart.
fn refresh_and_check_unused(session: &Session, id: &[u8], op: &'static str) -> Result<(), OpError> {
    let found = session
        .find_objects(&[Attribute::Id(id.to_vec())])
        .map_err(ck(op))?;
    if found.is_empty() {
        Ok(())
    } else {
        Err(OpError::Fail(HsmError::Internal {
            reason: format!("random key id {} already in use", hex::encode(id)),
        }))
    }
}

pub(crate) fn generate(
    session: &Session,
    kind: KeyKind,
    label: &str,
    op: &'static str,
) -> Result<(KeyInfo, ObjectHandle), OpError> {
    let mut id = vec![0u8; KEY_ID_LEN];
    getrandom::fill(&mut id).map_err(|e| HsmError::Internal {
        reason: format!("OS random generator: {e}"),
    })?;
    refresh_and_check_unused(session, &id, op)?;
    let common = |private: bool| {
        vec![
            Attribute::Token(true),
            Attribute::Private(private),
            Attribute::Id(id.clone()),
            Attribute::Label(label.as_bytes().to_vec()),
        ]
    };
    // Set explicitly rather than trusting defaults: SoftHSM defaults DECRYPT and UNWRAP to
    // true, and a CA key must only ever sign.
    let mut private = common(true);
    private.extend([
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Extractable(false),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]);
    let mut public = common(false);
    public.extend([
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
    ]);
    let mechanism = if let Some(bits) = kind.rsa_bits() {
        let bits = usize::try_from(bits)
            .ok()
            .and_then(|b| Ulong::try_from(b).ok())
            .ok_or_else(|| HsmError::Internal {
                reason: "modulus size does not fit CK_ULONG".into(),
            })?;
        public.extend([
            Attribute::ModulusBits(bits),
            Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
        ]);
        Mechanism::RsaPkcsKeyPairGen
    } else {
        let curve = kind.curve().ok_or_else(|| HsmError::Internal {
            reason: format!("{kind} has no curve"),
        })?;
        public.push(Attribute::EcParams(encoding::ec_params_for(curve)?));
        Mechanism::EccKeyPairGen
    };
    let (_public, private) = session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(ck(op))?;
    // Past this point the key pair exists: a retry on a fresh session would create a second
    // one, so a lost session is reported instead of retried.
    let info = key_info(session, private, op).map_err(|e| match e {
        OpError::SessionLost(reason) => OpError::Fail(HsmError::Unavailable {
            operation: op,
            reason: format!(
                "key pair {} was generated but reading it back failed: {reason}",
                hex::encode(&id)
            ),
        }),
        fail => fail,
    })?;
    Ok((info, private))
}

/// Every private key on the token that mandate can use, sorted by label then id.
pub(crate) fn list(session: &Session, op: &'static str) -> Result<Vec<KeyInfo>, OpError> {
    // Logged out, the token shows no private keys: an empty list would be a lie.
    ensure_logged_in(session, op)?;
    let handles = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .map_err(ck(op))?;
    let mut keys = Vec::with_capacity(handles.len());
    for handle in handles {
        match key_info(session, handle, op) {
            Ok(info) => keys.push(info),
            Err(OpError::Fail(HsmError::Unsupported { what })) => {
                warn!(object = %handle, %what, "skipping a private key mandate cannot use");
            }
            Err(e) => return Err(e),
        }
    }
    keys.sort_by(|a, b| (&a.label, a.id.as_bytes()).cmp(&(&b.label, b.id.as_bytes())));
    Ok(keys)
}

/// Length of the HMAC secret keys generated in the token, in bytes (HMAC-SHA256's block-size
/// recommendation is at least the output size).
const HMAC_KEY_LEN: usize = 32;

/// Generates a generic secret key for HMAC-SHA256 inside the token: sensitive, never
/// extractable, usable only to sign and verify (MACs), with `label` and a random CKA_ID.
pub(crate) fn generate_hmac_key(
    session: &Session,
    label: &str,
    op: &'static str,
) -> Result<KeyId, OpError> {
    let mut id = vec![0u8; KEY_ID_LEN];
    getrandom::fill(&mut id).map_err(|e| HsmError::Internal {
        reason: format!("OS random generator: {e}"),
    })?;
    refresh_and_check_unused(session, &id, op)?;
    let len = Ulong::try_from(HMAC_KEY_LEN).map_err(|_| HsmError::Internal {
        reason: "key length does not fit CK_ULONG".into(),
    })?;
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::ValueLen(len),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Id(id.clone()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    session
        .generate_key(&Mechanism::GenericSecretKeyGen, &template)
        .map_err(ck(op))?;
    Ok(KeyId::new(id))
}

/// Finds the HMAC secret key with this CKA_ID.
pub(crate) fn find_hmac_key(
    session: &Session,
    id: &KeyId,
    op: &'static str,
) -> Result<ObjectHandle, OpError> {
    let handles = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Id(id.as_bytes().to_vec()),
        ])
        .map_err(ck(op))?;
    match handles.first() {
        Some(&handle) => Ok(handle),
        None => {
            ensure_logged_in(session, op)?;
            Err(HsmError::KeyNotFound { id: id.clone() }.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_bits() {
        let mut n = vec![0u8; 257];
        n[1] = 0x80;
        assert_eq!(bit_length(&n), 2048);
        n[1] = 0x40;
        assert_eq!(bit_length(&n), 2047);
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0, 1]), 1);
    }
}
