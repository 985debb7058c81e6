//! The schemas of the domain's types that several operations share (a mandate, an amount, an
//! order, an event), registered for the API document under their written names.

/// The shared schemas, for the API document (`GET /v1/openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Doc;
