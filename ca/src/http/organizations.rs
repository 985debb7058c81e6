//! `/v1/organizations` and `/v1/people`: the firms sharing the CA and the people in them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mandate_store::{OrganizationRow, PersonRow, Role};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Caller, next_cursor, page_limit};
use crate::ra;
use crate::ra::organizations::{NewOrganization, NewPerson};

/// The operations of this module, for the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, get_one, create_person, list_people, disable_person))]
pub struct Doc;

/// An example organization, as answered.
fn example_organization() -> serde_json::Value {
    serde_json::json!({
        "id": "acme", "legal_name": "Acme Capital Ltd", "legal_entities": ["Acme Capital Europe SA"],
        "regulator_id": "FCA-123456", "approvals_required": 2, "default_profile": null,
        "max_validity_secs": 86400, "created_at": "2026-12-07T09:30:00Z"
    })
}

/// An example person, as answered.
fn example_person() -> serde_json::Value {
    serde_json::json!({
        "id": "carol", "name": "Carol Compliance", "email": "carol@acme.example",
        "organization": "acme", "roles": ["compliance"],
        "created_at": "2026-12-07T09:31:00Z", "disabled_at": null
    })
}

/// A firm sharing the CA: its agents, people and records are its own.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Organization)]
pub struct OrganizationView {
    /// DNS label; names its agents (`<agent>.<organization>.<agent domain>`).
    id: String,
    /// What mandates name as operator by default (the certificates' O).
    legal_name: String,
    /// Further legal entities its mandates may name as operator.
    legal_entities: Vec<String>,
    /// E.g. `ESMA-001234`.
    #[schema(required = true)]
    regulator_id: Option<String>,
    /// Different compliance people who must approve a mandate version (1 or 2).
    #[schema(minimum = 1, maximum = 2)]
    approvals_required: i64,
    /// The certificate profile of its agents' requests that name none (null: the CA's).
    #[schema(required = true)]
    default_profile: Option<String>,
    /// The longest lifetime of its agents' certificates, seconds (null: the CA's maximum).
    #[schema(required = true)]
    max_validity_secs: Option<i64>,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<OrganizationRow> for OrganizationView {
    fn from(o: OrganizationRow) -> Self {
        OrganizationView {
            id: o.id,
            legal_name: o.legal_name,
            legal_entities: o.legal_entities,
            regulator_id: o.regulator_id,
            approvals_required: o.approvals_required,
            default_profile: o.default_profile,
            max_validity_secs: o.max_validity_secs,
            created_at: crate::rfc3339(o.created_at),
        }
    }
}

/// `POST /v1/organizations` (admin).
#[utoipa::path(post, path = "/v1/organizations", operation_id = "createOrganization",
    tag = "organizations", summary = "Create an organization",
    description = "Roles: admin, CA staff only (a person of no organization).",
    security(("apiKey" = [])), request_body = NewOrganization,
    responses((status = 201, description = "created", body = OrganizationView,
        example = json!(example_organization()))))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewOrganization>,
) -> Result<(StatusCode, Json<OrganizationView>), ApiError> {
    let row =
        ra::organizations::create(&state.node.store, &state.node.cfg.ca, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// `GET /v1/organizations`: CA staff see all; everyone else their own.
#[utoipa::path(get, path = "/v1/organizations", operation_id = "listOrganizations",
    tag = "organizations", summary = "List organizations",
    description = "Roles: admin, operator, compliance, auditor. CA staff see every organization; \
        a person of an organization sees only their own.",
    security(("apiKey" = [])), params(super::PageQuery),
    responses((status = 200, description = "page", body = super::Page<OrganizationView>,
        example = json!({"items": [example_organization()], "next_cursor": null}))))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<super::PageQuery>,
) -> Result<Json<super::Page<OrganizationView>>, ApiError> {
    let limit = page_limit(q.limit)?;
    let rows =
        ra::organizations::list(&state.node.store, &caller, q.cursor.as_deref(), limit).await?;
    let next_cursor = next_cursor(&rows, limit, |r| &r.id);
    Ok(Json(super::Page {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// `GET /v1/organizations/{id}`.
#[utoipa::path(get, path = "/v1/organizations/{id}", operation_id = "getOrganization",
    tag = "organizations", summary = "One organization",
    description = "Roles: admin, operator, compliance, auditor. Another organization's answers \
        404, as an unknown one.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "organization id")),
    responses(
        (status = 200, description = "organization", body = OrganizationView,
            example = json!(example_organization())),
        (status = 404, response = super::problem::NotFoundOrOtherOrganization)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<OrganizationView>, ApiError> {
    let row = ra::organizations::get(&state.node.store, &caller, &id).await?;
    Ok(Json(row.into()))
}

/// Holder of API keys; of one organization, or CA staff (organization null).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Person)]
pub struct PersonView {
    id: String,
    name: String,
    #[schema(required = true)]
    email: Option<String>,
    /// null: CA staff.
    #[schema(required = true)]
    organization: Option<String>,
    roles: Vec<Role>,
    #[schema(format = DateTime)]
    created_at: String,
    /// Set once disabled: every key of the person is refused (401).
    #[schema(format = DateTime, required = true)]
    disabled_at: Option<String>,
}

impl From<PersonRow> for PersonView {
    fn from(p: PersonRow) -> Self {
        PersonView {
            id: p.id,
            name: p.name,
            email: p.email,
            organization: p.organization,
            roles: p.roles,
            created_at: crate::rfc3339(p.created_at),
            disabled_at: p.disabled_at.map(crate::rfc3339),
        }
    }
}

/// `GET /v1/people` query: a page, optionally of one organization.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeopleQuery {
    /// Page size (default 50, at most 100).
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only this organization's people.
    organization: Option<String>,
}

/// `POST /v1/people` (admin).
#[utoipa::path(post, path = "/v1/people", operation_id = "createPerson", tag = "organizations",
    summary = "Create a person",
    description = "Roles: admin, CA staff only. A person of an organization holds operator, \
        compliance, auditor or market-data; CA staff (no organization) admin or auditor.",
    security(("apiKey" = [])), request_body = NewPerson,
    responses((status = 201, description = "created", body = PersonView,
        example = json!(example_person()))))]
pub async fn create_person(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewPerson>,
) -> Result<(StatusCode, Json<PersonView>), ApiError> {
    let row = ra::organizations::create_person(&state.node.store, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// `GET /v1/people?organization=&cursor=&limit=` (admin).
#[utoipa::path(get, path = "/v1/people", operation_id = "listPeople", tag = "organizations",
    summary = "List people, disabled ones included", description = "Roles: admin, CA staff only.",
    security(("apiKey" = [])), params(PeopleQuery),
    responses((status = 200, description = "page", body = super::Page<PersonView>,
        example = json!({"items": [example_person()], "next_cursor": "carol"}))))]
pub async fn list_people(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PeopleQuery>,
) -> Result<Json<super::Page<PersonView>>, ApiError> {
    let limit = page_limit(q.limit)?;
    let rows = ra::organizations::list_people(
        &state.node.store,
        &caller,
        q.organization.as_deref(),
        q.cursor.as_deref(),
        limit,
    )
    .await?;
    let next_cursor = next_cursor(&rows, limit, |r| &r.id);
    Ok(Json(super::Page {
        items: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// What disabling did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DisabledPerson {
    person: PersonView,
    /// False when the person was disabled already.
    newly_disabled: bool,
}

/// `POST /v1/people/{id}/disable` (admin): every key of the person stops at once.
#[utoipa::path(post, path = "/v1/people/{id}/disable", operation_id = "disablePerson",
    tag = "organizations",
    summary = "Disable a person: every key of theirs stops at once (idempotent; never the last \
        admin)",
    description = "Roles: admin, CA staff only. No body.",
    security(("apiKey" = [])), params(("id" = String, Path, description = "person id")),
    responses((status = 200, description = "disabled", body = DisabledPerson,
        example = json!({"person": example_person(), "newly_disabled": true}))))]
pub async fn disable_person(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DisabledPerson>, ApiError> {
    let (row, newly_disabled) =
        ra::organizations::disable_person(&state.node.store, &caller, &id).await?;
    Ok(Json(DisabledPerson {
        person: row.into(),
        newly_disabled,
    }))
}
