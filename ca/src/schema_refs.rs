//! References to the API document's shared schemas by name, for fields whose Rust type is
//! looser than what they carry (a mandate held as a JSON value, a price read as text): the
//! document then says what the registration authority checks. Each name is registered by the
//! type that derives it (`http/schemas.rs`); a unit test fails on a reference to no schema.

use utoipa::openapi::Ref;

/// `#/components/schemas/Mandate`.
pub fn mandate() -> Ref {
    Ref::from_schema_name("Mandate")
}

/// `#/components/schemas/Amount`.
pub fn amount() -> Ref {
    Ref::from_schema_name("Amount")
}

/// `#/components/schemas/Time`.
pub fn time() -> Ref {
    Ref::from_schema_name("Time")
}

/// `#/components/schemas/Order`.
pub fn order() -> Ref {
    Ref::from_schema_name("Order")
}

/// `#/components/schemas/Event`.
pub fn event() -> Ref {
    Ref::from_schema_name("Event")
}

/// `#/components/schemas/Contribution`.
pub fn contribution() -> Ref {
    Ref::from_schema_name("Contribution")
}

/// `#/components/schemas/Baseline`.
pub fn baseline() -> Ref {
    Ref::from_schema_name("Baseline")
}

/// `#/components/schemas/Approvals`.
pub fn approvals() -> Ref {
    Ref::from_schema_name("Approvals")
}

/// `#/components/schemas/MandateChange`.
pub fn mandate_change() -> Ref {
    Ref::from_schema_name("MandateChange")
}

/// `#/components/schemas/LimitOverride`.
pub fn limit_override() -> Ref {
    Ref::from_schema_name("LimitOverride")
}
