//! The forms' targets. Each checks the origin and the CSRF token, then calls the API handler
//! that does the same thing for API clients (its role check included), and answers with a
//! redirect to the page the change shows on, or an error page with the handler's refusal.

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::layout;
use super::pages::from_json;
use super::session::{Signed, check_post};
use crate::http::{
    ApiError, ApiJson, ApiPath, AppState, OptionalJson, agents, api_keys, behaviour, form_json,
    incidents, organizations, revocation, webhooks,
};

/// Approve or reject a mandate or a baseline.
#[derive(Deserialize)]
pub(crate) struct DecisionForm {
    #[serde(default)]
    csrf: String,
    version: Option<i64>,
    comment: Option<String>,
}

impl DecisionForm {
    /// The comment, trimmed; none when empty.
    fn comment(&self) -> Option<&str> {
        self.comment
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
    }
}

/// What a handler's answer becomes: a redirect on success, the refusal as a page.
fn outcome<T>(signed: &Signed, r: Result<T, ApiError>, to: String) -> Response {
    match r {
        Ok(_) => Redirect::to(&to).into_response(),
        Err(e) => {
            tracing::info!(key_id = %signed.caller.key_id, kind = e.kind, "dashboard action refused");
            layout::error_page(Some(signed), e)
        }
    }
}

/// What a creation whose answer carries a secret becomes: the page that shows it, once (a
/// redirect would lose it), or the refusal as a page.
fn shown_once<T: serde::Serialize>(
    signed: &Signed,
    r: Result<(axum::http::StatusCode, axum::Json<T>), ApiError>,
    page: fn(&Signed, &serde_json::Value) -> Response,
) -> Response {
    let created = r.and_then(|(_, axum::Json(created))| {
        serde_json::to_value(created)
            .map_err(|e| ApiError::from(crate::CaError::Internal(e.to_string())))
    });
    match created {
        Ok(v) => page(signed, &v),
        Err(e) => outcome::<()>(signed, Err(e), String::new()),
    }
}

/// Checks the form, builds the decision body the API handler takes, and calls it.
async fn decide<B, R, Fut>(
    signed: &Signed,
    headers: &HeaderMap,
    form: &DecisionForm,
    with_comment: bool,
    call: impl FnOnce(OptionalJson<B>) -> Fut,
    to: String,
) -> Response
where
    B: serde::de::DeserializeOwned,
    Fut: Future<Output = Result<R, ApiError>>,
{
    let r = async {
        check_post(headers, &signed.csrf, &form.csrf)?;
        let comment = form.comment();
        let body = if with_comment {
            from_json(json!({"version": form.version, "comment": comment}))?
        } else {
            from_json(json!({"version": form.version}))?
        };
        call(OptionalJson(body)).await
    }
    .await;
    outcome(signed, r, to)
}

/// `POST /dashboard/agents/{id}/approve` (compliance).
pub(crate) async fn approve_mandate(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let to = format!("/dashboard/agents/{id}?done=mandate-approved");
    let caller = signed.caller.clone();
    let call = |b| agents::approve(State(state), caller, ApiPath(id), b);
    decide(&signed, &headers, &form, true, call, to).await
}

/// `POST /dashboard/agents/{id}/reinstate` (compliance).
pub(crate) async fn reinstate(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let to = format!("/dashboard/agents/{id}?done=reinstated");
    let caller = signed.caller.clone();
    let call = |b| agents::reinstate(State(state), caller, ApiPath(id), b);
    let r = async {
        check_post(&headers, &signed.csrf, &form.csrf)?;
        call(OptionalJson(from_json(
            json!({ "comment": form.comment() }),
        )?))
        .await
    }
    .await;
    outcome(&signed, r, to)
}

/// `POST /dashboard/agents/{id}/reject` (compliance).
pub(crate) async fn reject_mandate(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let to = format!("/dashboard/agents/{id}?done=mandate-rejected");
    let caller = signed.caller.clone();
    let call = |b| agents::reject(State(state), caller, ApiPath(id), b);
    decide(&signed, &headers, &form, true, call, to).await
}

/// `POST /dashboard/agents/{id}/baseline/approve` (compliance).
pub(crate) async fn approve_baseline(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let to = format!("/dashboard/agents/{id}?done=baseline-approved");
    let caller = signed.caller.clone();
    let call = |b| behaviour::approve(State(state), caller, ApiPath(id), b);
    decide(&signed, &headers, &form, false, call, to).await
}

/// `POST /dashboard/agents/{id}/baseline/reject` (compliance).
pub(crate) async fn reject_baseline(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    let to = format!("/dashboard/agents/{id}?done=baseline-rejected");
    let caller = signed.caller.clone();
    let call = |b| behaviour::reject(State(state), caller, ApiPath(id), b);
    decide(&signed, &headers, &form, false, call, to).await
}

/// The kill switch's confirmation form.
#[derive(Deserialize)]
pub(crate) struct KillForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm: String,
}

/// `POST /dashboard/agents/{id}/kill` (operator, compliance, admin): only with the agent id
/// typed again.
pub(crate) async fn kill(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    Form(form): Form<KillForm>,
) -> Response {
    let r = async {
        check_post(&headers, &signed.csrf, &form.csrf)?;
        if form.confirm.trim() != id {
            return Err(ApiError::bad_request(
                "the kill switch was not pulled: type the agent id exactly to confirm",
            ));
        }
        let body = ApiJson(from_json(json!({"reason": form.reason}))?);
        revocation::kill_agent(
            State(state),
            signed.caller.clone(),
            ApiPath(id.clone()),
            body,
        )
        .await
    }
    .await;
    outcome(&signed, r, format!("/dashboard/agents/{id}?done=killed"))
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub(crate) struct Plain {
    #[serde(default)]
    csrf: String,
}

/// `POST /dashboard/incidents/{id}/acknowledge` (operator, compliance, admin).
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    Form(form): Form<Plain>,
) -> Response {
    let r = async {
        check_post(&headers, &signed.csrf, &form.csrf)?;
        let body = OptionalJson(from_json(json!({}))?);
        incidents::acknowledge(State(state), signed.caller.clone(), ApiPath(id), body).await
    }
    .await;
    outcome(&signed, r, "/dashboard/incidents?done=acknowledged".into())
}

/// The resolution form.
#[derive(Deserialize)]
pub(crate) struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    resolution: String,
}

/// `POST /dashboard/incidents/{id}/resolve` (compliance).
pub(crate) async fn resolve(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    Form(form): Form<ResolveForm>,
) -> Response {
    let r = async {
        check_post(&headers, &signed.csrf, &form.csrf)?;
        let body = ApiJson(from_json(json!({"resolution": form.resolution}))?);
        incidents::resolve(State(state), signed.caller.clone(), ApiPath(id), body).await
    }
    .await;
    outcome(&signed, r, "/dashboard/incidents?done=resolved".into())
}

/// The new-endpoint form.
#[derive(Deserialize)]
pub(crate) struct WebhookForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
    /// Event types separated by commas or spaces; empty: every event.
    #[serde(default)]
    events: String,
    /// The organization (CA staff only); empty: the caller's, or every event for CA staff.
    #[serde(default)]
    organization: String,
}

/// `POST /dashboard/webhooks` (operator, admin): registers the endpoint and shows its signing
/// secret on the page it answers with, once (a redirect would lose it).
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<WebhookForm>,
) -> Response {
    let r = async {
        check_post(&headers, &signed.csrf, &form.csrf)?;
        let events: Vec<&str> = form
            .events
            .split([',', ' ', '\n', '\r', '\t'])
            .filter(|e| !e.is_empty())
            .collect();
        let organization = form.organization.trim();
        let body = from_json(json!({
            "url": form.url.trim(),
            "events": (!events.is_empty()).then_some(events),
            "operator": (!organization.is_empty()).then_some(organization),
        }))?;
        webhooks::create(State(state), signed.caller.clone(), ApiJson(body)).await
    }
    .await;
    shown_once(&signed, r, super::pages::webhook_created)
}

/// `POST /dashboard/webhooks/{id}/disable` (operator, admin).
pub(crate) async fn disable_webhook(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    Form(form): Form<Plain>,
) -> Response {
    let to = format!(
        "/dashboard/webhooks/{}?done=webhook-disabled",
        layout::query_escape(&id)
    );
    let r = async {
        check_post(&headers, &signed.csrf, &form.csrf)?;
        let body = OptionalJson(from_json(json!({}))?);
        webhooks::disable(State(state), signed.caller.clone(), ApiPath(id), body).await
    }
    .await;
    outcome(&signed, r, to)
}

/// The register form.
#[derive(Deserialize)]
pub(crate) struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    mandate: String,
}

/// `POST /dashboard/agents` (operator): registers an agent with its first mandate.
pub(crate) async fn register(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<RegisterForm>,
) -> Response {
    let id = form.agent_id.trim().to_owned();
    let to = format!(
        "/dashboard/agents/{}?done=registered",
        layout::query_escape(&id)
    );
    let r = async {
        check_post(&headers, &signed.csrf, &form.csrf)?;
        let mandate = form_json("mandate", &form.mandate)?;
        let body = from_json(json!({"agent_id": id, "name": form.name, "mandate": mandate}))?;
        agents::register(State(state), signed.caller.clone(), ApiJson(body)).await
    }
    .await;
    outcome(&signed, r, to)
}

/// The mandate-change form.
#[derive(Deserialize)]
pub(crate) struct MandateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mandate: String,
}

/// `POST /dashboard/agents/{id}/mandate` (operator): a new version, waiting for compliance.
pub(crate) async fn submit_mandate(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    Form(form): Form<MandateForm>,
) -> Response {
    let to = format!(
        "/dashboard/agents/{}?done=mandate-submitted",
        layout::query_escape(&id)
    );
    let r = async {
        check_post(&headers, &signed.csrf, &form.csrf)?;
        let mandate = form_json("mandate", &form.mandate)?;
        let body = from_json(json!({ "mandate": mandate }))?;
        agents::submit_mandate(
            State(state),
            signed.caller.clone(),
            ApiPath(id),
            ApiJson(body),
        )
        .await
    }
    .await;
    outcome(&signed, r, to)
}

/// The new-person form: one checkbox per role.
#[derive(Deserialize)]
pub(crate) struct PersonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    organization: String,
    role_operator: Option<String>,
    role_compliance: Option<String>,
    role_auditor: Option<String>,
    #[serde(rename = "role_market-data")]
    role_market_data: Option<String>,
    role_admin: Option<String>,
}

/// `POST /dashboard/people` (admin).
pub(crate) async fn create_person(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<PersonForm>,
) -> Response {
    let r = async {
        check_post(&headers, &signed.csrf, &form.csrf)?;
        let roles: Vec<&str> = [
            ("operator", &form.role_operator),
            ("compliance", &form.role_compliance),
            ("auditor", &form.role_auditor),
            ("market-data", &form.role_market_data),
            ("admin", &form.role_admin),
        ]
        .into_iter()
        .filter(|(_, on)| on.is_some())
        .map(|(r, _)| r)
        .collect();
        let optional = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_owned());
        let body = from_json(json!({
            "id": form.id.trim(), "name": form.name, "email": optional(&form.email),
            "organization": optional(&form.organization), "roles": roles,
        }))?;
        organizations::create_person(State(state), signed.caller.clone(), ApiJson(body)).await
    }
    .await;
    outcome(&signed, r, "/dashboard/people?done=person-created".into())
}

/// The new-key form.
#[derive(Deserialize)]
pub(crate) struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    person: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    label: String,
}

/// `POST /dashboard/api-keys` (admin): the key is shown on the page that answers, once.
pub(crate) async fn create_key(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> Response {
    let r = async {
        check_post(&headers, &signed.csrf, &form.csrf)?;
        let body = from_json(json!({
            "role": form.role.trim(), "label": form.label, "person": form.person.trim(),
        }))?;
        api_keys::create(State(state), signed.caller.clone(), ApiJson(body)).await
    }
    .await;
    shown_once(&signed, r, super::pages::key_created)
}

/// `POST /dashboard/webhooks/{id}/deliveries/{delivery}/redeliver` (operator, admin).
pub(crate) async fn redeliver(
    State(state): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    ApiPath((id, delivery)): ApiPath<(String, String)>,
    Form(form): Form<Plain>,
) -> Response {
    let to = format!(
        "/dashboard/webhooks/{}?done=redelivered",
        layout::query_escape(&id)
    );
    let r = async {
        check_post(&headers, &signed.csrf, &form.csrf)?;
        let body = OptionalJson(from_json(json!({}))?);
        webhooks::redeliver(
            State(state),
            signed.caller.clone(),
            ApiPath((id, delivery)),
            body,
        )
        .await
    }
    .await;
    outcome(&signed, r, to)
}
