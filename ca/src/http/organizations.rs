//! `/v1/organizations` and `/v1/people`: the firms sharing the CA and the people in them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mandate_store::{OrganizationRow, PersonRow, Role};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Caller, next_cursor, page_limit};
use crate::ra;
use crate::ra::organizations::{NewOrganization, NewPerson};

/// An organization as the API shows it.
#[derive(Serialize)]
pub struct OrganizationView {
    id: String,
    legal_name: String,
    legal_entities: Vec<String>,
    regulator_id: Option<String>,
    approvals_required: i64,
    /// The certificate profile of its agents' requests that name none (null: the CA's).
    default_profile: Option<String>,
    /// The longest lifetime of its agents' certificates, seconds (null: the CA's maximum).
    max_validity_secs: Option<i64>,
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
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<OrganizationView>, ApiError> {
    let row = ra::organizations::get(&state.node.store, &caller, &id).await?;
    Ok(Json(row.into()))
}

/// A person as the API shows it.
#[derive(Serialize)]
pub struct PersonView {
    id: String,
    name: String,
    email: Option<String>,
    organization: Option<String>,
    roles: Vec<Role>,
    created_at: String,
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    organization: Option<String>,
}

/// `POST /v1/people` (admin).
pub async fn create_person(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewPerson>,
) -> Result<(StatusCode, Json<PersonView>), ApiError> {
    let row = ra::organizations::create_person(&state.node.store, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// `GET /v1/people?organization=&cursor=&limit=` (admin).
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
#[derive(Serialize)]
pub struct DisabledPerson {
    person: PersonView,
    newly_disabled: bool,
}

/// `POST /v1/people/{id}/disable` (admin): every key of the person stops at once.
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
