//! A work-around for sqlx 0.9's Any driver: it binds a NULL `Option<f64>` as a NULL FLOAT4 on
//! PostgreSQL (its mapping of `Null(Double)` and `Null(Real)` is swapped). The connection
//! caches the statement with FLOAT4 as that parameter's type, and the next non-NULL f64 bound
//! to it fails with "incorrect binary data format in bind parameter N". [`OptF64`] binds both
//! cases as FLOAT8. SQLite binds either as NULL or REAL, as before.

use sqlx::any::{Any, AnyTypeInfo, AnyTypeInfoKind};
use sqlx::encode::{Encode, IsNull};
use sqlx::error::BoxDynError;
use sqlx::types::Type;
use sqlx_core::any::{AnyArgumentBuffer, AnyValueKind};

/// An optional f64 to bind.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OptF64(pub(crate) Option<f64>);

impl Type<Any> for OptF64 {
    fn type_info() -> AnyTypeInfo {
        <f64 as Type<Any>>::type_info()
    }
}

impl Encode<'_, Any> for OptF64 {
    fn encode_by_ref(&self, buf: &mut AnyArgumentBuffer) -> Result<IsNull, BoxDynError> {
        match self.0 {
            Some(v) => {
                buf.0.push(AnyValueKind::Double(v));
                Ok(IsNull::No)
            }
            None => {
                // The kind sqlx 0.9 turns into a FLOAT8 NULL (see the module doc).
                buf.0.push(AnyValueKind::Null(AnyTypeInfoKind::Real));
                Ok(IsNull::Yes)
            }
        }
    }
}
