//! `GET /docs`: the API reference, rendered from `GET /v1/openapi.json` by Swagger UI, which is
//! vendored into the binary (`docs_ui/`, pinned, from the npm registry by
//! `scripts/vendor_docs_ui.sh`): the page loads nothing from anywhere but this daemon.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, ApiPath, AppState};

/// The vendored Swagger UI's version: part of the assets' paths, so a new one is never served
/// from a cache of the old.
pub const DOCS_UI_VERSION: &str = "5.36.0";

const BUNDLE: &[u8] = include_bytes!("docs_ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("docs_ui/swagger-ui.css");

/// The page: no inline script (the CSP forbids it), the start-up in `init.js`.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mandate API reference</title>
<link rel="stylesheet" href="/docs/assets/VERSION/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/VERSION/swagger-ui-bundle.js"></script>
<script src="/docs/assets/VERSION/init.js"></script>
</body>
</html>
"#;

/// Starts Swagger UI on this daemon's document; `validatorUrl: null` keeps it from sending the
/// document to an outside validator.
const INIT: &str = r##"window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    displayOperationId: true
  });
});
"##;

/// What the docs pages may load: this daemon's scripts and styles (Swagger UI sets inline
/// styles), its document, data: images; no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The routes: public, like the document they render.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/docs", get(page))
        .route("/docs/", get(page))
        .route("/docs/assets/{version}/{file}", get(asset))
}

fn with_headers(mut resp: Response, cache: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

/// `GET /docs`.
async fn page() -> Response {
    let html = PAGE.replace("VERSION", DOCS_UI_VERSION);
    let resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    with_headers(resp, "no-cache")
}

/// `GET /docs/assets/{version}/{file}`: the vendored files, cached for a year (the version is
/// in the path).
async fn asset(ApiPath((version, file)): ApiPath<(String, String)>) -> Result<Response, ApiError> {
    if version != DOCS_UI_VERSION {
        return Err(not_found());
    }
    let (body, kind): (&'static [u8], &'static str) = match file.as_str() {
        "swagger-ui-bundle.js" => (BUNDLE, "text/javascript; charset=utf-8"),
        "swagger-ui.css" => (CSS, "text/css; charset=utf-8"),
        "init.js" => (INIT.as_bytes(), "text/javascript; charset=utf-8"),
        _ => return Err(not_found()),
    };
    let resp = (StatusCode::OK, [(header::CONTENT_TYPE, kind)], body).into_response();
    Ok(with_headers(resp, "public, max-age=31536000, immutable"))
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such file")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_vendored_version_is_the_one_the_paths_name() {
        let recorded = include_str!("docs_ui/VERSION");
        assert_eq!(
            recorded.trim(),
            format!("swagger-ui-dist {}", super::DOCS_UI_VERSION)
        );
    }
}
