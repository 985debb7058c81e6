//! Data objects (CKO_DATA) on the token: small values the token keeps where a restored database
//! cannot reach them. Private (read only after login), token objects, named by an application
//! and a label.

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use crate::error::{HsmError, OpError, ck};
use crate::keys::ensure_logged_in;

/// Largest value kept in one data object.
pub const MAX_DATA_LEN: usize = 64 * 1024;

fn template(application: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Application(application.as_bytes().to_vec()),
    ]
}

/// Creates a data object of `application` with `label` and `value`.
pub(crate) fn put(
    session: &Session,
    application: &str,
    label: &str,
    value: &[u8],
    op: &'static str,
) -> Result<(), OpError> {
    if value.len() > MAX_DATA_LEN {
        return Err(HsmError::Internal {
            reason: format!("a data object holds at most {MAX_DATA_LEN} bytes"),
        }
        .into());
    }
    let mut t = template(application);
    t.push(Attribute::Label(label.as_bytes().to_vec()));
    t.push(Attribute::Value(value.to_vec()));
    t.push(Attribute::Modifiable(false));
    session.create_object(&t).map_err(ck(op))?;
    Ok(())
}

fn handles(
    session: &Session,
    application: &str,
    op: &'static str,
) -> Result<Vec<ObjectHandle>, OpError> {
    let found = session
        .find_objects(&template(application))
        .map_err(ck(op))?;
    if found.is_empty() {
        // A logged-out session sees no private object: not the same as none.
        ensure_logged_in(session, op)?;
    }
    Ok(found)
}

/// Every data object of `application`: (label, value).
pub(crate) fn read(
    session: &Session,
    application: &str,
    op: &'static str,
) -> Result<Vec<(String, Vec<u8>)>, OpError> {
    let mut out = Vec::new();
    for h in handles(session, application, op)? {
        let attrs = session
            .get_attributes(h, &[AttributeType::Label, AttributeType::Value])
            .map_err(ck(op))?;
        let (mut label, mut value) = (String::new(), Vec::new());
        for a in attrs {
            match a {
                Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
                Attribute::Value(v) => value = v,
                _ => {}
            }
        }
        out.push((label, value));
    }
    Ok(out)
}

/// Destroys the data objects of `application` whose label is in `labels`; returns how many.
pub(crate) fn destroy(
    session: &Session,
    application: &str,
    labels: &[String],
    op: &'static str,
) -> Result<usize, OpError> {
    let mut n = 0;
    for label in labels {
        let mut t = template(application);
        t.push(Attribute::Label(label.as_bytes().to_vec()));
        for h in session.find_objects(&t).map_err(ck(op))? {
            session.destroy_object(h).map_err(ck(op))?;
            n += 1;
        }
    }
    Ok(n)
}
