//! Signing in and out, the session extractor, and the checks every form post passes.

use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::Digest;
use subtle::ConstantTimeEq;

use super::layout;
use crate::http::auth::{authenticate, caller_by_key_id};
use crate::http::{ApiError, AppState, Caller};
use crate::metrics::METRICS;

/// The session cookie.
const SESSION_COOKIE: &str = "mandate_session";
/// The cookie that pairs a sign-in form with the browser that loaded it.
const LOGIN_COOKIE: &str = "mandate_login";
/// A session lasts this long from sign-in, however busy (seconds).
const SESSION_TTL: i64 = 8 * 3600;

/// Put on requests that came in over the HTTPS listener: cookies are then marked Secure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverTls;

/// A signed-in browser: who it acts as, and the CSRF token its forms must carry.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    /// The API key the session was opened with, as the API handlers see it.
    pub caller: Caller,
    /// The CSRF token of this session.
    pub csrf: String,
    token_hash: Vec<u8>,
}

fn token_hash(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

/// Derived from the session token, so it needs no storage and dies with the session; a page
/// on another site can neither read it nor compute it.
fn csrf_of(token: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"mandate dashboard csrf\0");
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

fn random_token() -> Result<String, ApiError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)
        .map_err(|e| ApiError::from(crate::CaError::Internal(format!("no randomness: {e}"))))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// The value of cookie `name`, if the request carries it in a sane shape.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Why a request is not signed in: the page to go to instead.
pub(crate) struct NotSignedIn(Response);

impl IntoResponse for NotSignedIn {
    fn into_response(self) -> Response {
        self.0
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = NotSignedIn;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, NotSignedIn> {
        let to_login = || NotSignedIn(Redirect::to("/dashboard/login").into_response());
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let hash = token_hash(token);
        let key_id = state
            .node
            .store
            .dashboard_session(&hash)
            .await
            .map_err(|e| NotSignedIn(layout::error_page(None, crate::CaError::from(e).into())))?;
        let Some(key_id) = key_id else {
            return Err(to_login());
        };
        match caller_by_key_id(state, &key_id).await {
            Ok(Some(caller)) if caller.role.signs_in() => Ok(Signed {
                caller,
                csrf: csrf_of(token),
                token_hash: hash,
            }),
            Ok(_) => Err(to_login()),
            Err(e) => Err(NotSignedIn(layout::error_page(None, e))),
        }
    }
}

/// Refuses a form post that did not come from one of our own pages: another origin (by
/// `Sec-Fetch-Site` or `Origin`), or a missing or wrong CSRF token.
pub(crate) fn check_post(headers: &HeaderMap, expected: &str, got: &str) -> Result<(), ApiError> {
    let forbidden = |why: &str| ApiError::new(StatusCode::FORBIDDEN, "csrf", why.to_owned());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(forbidden("a form posted from another site is refused"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, h)| h);
        if host.is_none() || origin_host != host {
            return Err(forbidden("a form posted from another origin is refused"));
        }
    }
    if got.is_empty() || !bool::from(expected.as_bytes().ct_eq(got.as_bytes())) {
        return Err(forbidden(
            "the form's security token is missing or wrong; reload the page and try again",
        ));
    }
    Ok(())
}

/// `GET /dashboard/login`: the form, paired with this browser by a short-lived cookie.
pub(crate) async fn login_page(tls: Option<axum::Extension<OverTls>>) -> Response {
    login_form(tls.is_some(), None, StatusCode::OK)
}

fn login_form(tls: bool, error: Option<&str>, status: StatusCode) -> Response {
    let nonce = match random_token() {
        Ok(n) => n,
        Err(e) => return layout::error_page(None, e),
    };
    let mut resp = (status, layout::login(&nonce, error)).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &nonce, "/dashboard/login", 600, tls),
    );
    resp
}

/// The sign-in form.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    login_token: String,
}

/// `POST /dashboard/login`: checks the key and opens a session.
pub(crate) async fn login(
    State(state): State<AppState>,
    tls: Option<axum::Extension<OverTls>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let tls = tls.is_some();
    let paired = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if let Err(e) = check_post(&headers, paired, &form.login_token) {
        METRICS.dashboard_logins.inc(&["refused"]);
        return layout::error_page(None, e);
    }
    let key = form.api_key.trim();
    if key.len() > 200 {
        return login_form(
            tls,
            Some("That is not an API key."),
            StatusCode::UNAUTHORIZED,
        );
    }
    let caller = match authenticate(&state, key).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            METRICS.dashboard_logins.inc(&["bad_key"]);
            return login_form(
                tls,
                Some("Unknown, wrong or revoked API key."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(e) => return layout::error_page(None, e),
    };
    if !caller.role.signs_in() {
        METRICS.dashboard_logins.inc(&["agent_key"]);
        return login_form(
            tls,
            Some("Agent and market-data keys cannot sign in to the dashboard."),
            StatusCode::FORBIDDEN,
        );
    }
    let token = match random_token() {
        Ok(t) => t,
        Err(e) => return layout::error_page(None, e),
    };
    let expires = mandate_store::now_unix() + SESSION_TTL;
    if let Err(e) = crate::ra::credentials::open_session(
        &state.node.store,
        &caller,
        &token_hash(&token),
        expires,
    )
    .await
    {
        return layout::error_page(None, e.into());
    }
    METRICS.dashboard_logins.inc(&["ok"]);
    tracing::info!(key_id = %caller.key_id, role = %caller.role, "dashboard sign-in");
    let mut resp = Redirect::to("/dashboard").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, "/dashboard", SESSION_TTL, tls),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", "/dashboard/login", 0, tls),
    );
    resp
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub(crate) struct TokenOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /dashboard/logout`: ends the session here and in the store.
pub(crate) async fn logout(
    State(state): State<AppState>,
    signed: Signed,
    tls: Option<axum::Extension<OverTls>>,
    headers: HeaderMap,
    Form(form): Form<TokenOnly>,
) -> Response {
    if let Err(e) = check_post(&headers, &signed.csrf, &form.csrf) {
        return layout::error_page(Some(&signed), e);
    }
    if let Err(e) =
        crate::ra::credentials::close_session(&state.node.store, &signed.token_hash).await
    {
        return layout::error_page(Some(&signed), e.into());
    }
    let mut resp = Redirect::to("/dashboard/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", "/dashboard", 0, tls.is_some()),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn posts_from_elsewhere_or_without_the_token_are_refused() {
        let ok = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(check_post(&ok, "abc", "abc").is_ok());
        assert!(check_post(&ok, "abc", "abd").is_err());
        assert!(check_post(&ok, "abc", "").is_err());
        let other = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(check_post(&other, "abc", "abc").is_err());
        let null = headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]);
        assert!(check_post(&null, "abc", "abc").is_err());
        let cross = headers(&[("host", "h"), ("sec-fetch-site", "cross-site")]);
        assert!(check_post(&cross, "abc", "abc").is_err());
    }

    #[test]
    fn cookies_are_read_only_in_the_token_shape() {
        let t = "A".repeat(43);
        let h = headers(&[("cookie", &format!("x=1; mandate_session={t}; y=2"))]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some(t.as_str()));
        let bad = headers(&[("cookie", "mandate_session=short")]);
        assert_eq!(cookie(&bad, SESSION_COOKIE), None);
        assert_ne!(csrf_of("a"), csrf_of("b"));
    }
}
