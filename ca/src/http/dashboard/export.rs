//! `GET /dashboard/export/{list}.csv`: a list the dashboard shows, whole, as CSV (RFC 4180), read
//! through the same API handler page by page, so it holds exactly what the signed-in person may
//! read. Cells that a spreadsheet would run as a formula are defused.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::layout;
use super::pages::{from_json, value};
use super::session::Signed;
use crate::http::{ApiError, ApiPath, ApiQuery, AppState, agents, audit, incidents, webhooks};

/// Most rows an export holds: past it, the export is refused rather than cut short.
const MAX_ROWS: usize = 100_000;

/// The lists, their columns (header, member of an item).
const LISTS: &[(&str, &[(&str, &str)])] = &[
    (
        "agents",
        &[
            ("agent_id", "/agent_id"),
            ("name", "/name"),
            ("organization", "/organization"),
            ("status", "/status"),
            ("mandate_version", "/mandate_version"),
            ("mandate_status", "/mandate_status"),
            ("approved_mandate_version", "/approved_mandate_version"),
            ("created_at", "/created_at"),
            ("updated_at", "/updated_at"),
        ],
    ),
    (
        "incidents",
        &[
            ("id", "/id"),
            ("agent_id", "/agent_id"),
            ("kind", "/kind"),
            ("status", "/status"),
            ("risk_score", "/risk_score"),
            ("threshold", "/threshold"),
            ("created_at", "/created_at"),
            ("acknowledged_by", "/acknowledged_by"),
            ("acknowledged_at", "/acknowledged_at"),
            ("resolved_by", "/resolved_by"),
            ("resolved_at", "/resolved_at"),
            ("resolution", "/resolution"),
        ],
    ),
    (
        "audit",
        &[
            ("seq", "/seq"),
            ("at", "/at"),
            ("actor", "/actor"),
            ("action", "/action"),
            ("subject", "/subject"),
            ("organization", "/organization"),
            ("person", "/person"),
            ("details", "/details"),
            ("hash", "/hash"),
        ],
    ),
    (
        "webhooks",
        &[
            ("id", "/id"),
            ("url", "/url"),
            ("events", "/events"),
            ("operator", "/operator"),
            ("created_by", "/created_by"),
            ("created_at", "/created_at"),
            ("disabled_at", "/disabled_at"),
        ],
    ),
];

/// `?status=` of the incidents export, `?q=` of the agents export: as on their pages.
#[derive(Deserialize, Default)]
pub(crate) struct ExportFilter {
    status: Option<String>,
    q: Option<String>,
}

/// `GET /dashboard/export/{file}` with `file` one of `agents.csv`, `incidents.csv`,
/// `audit.csv`, `webhooks.csv`.
pub(crate) async fn csv(
    State(state): State<AppState>,
    signed: Signed,
    ApiPath(file): ApiPath<String>,
    Query(filter): Query<ExportFilter>,
) -> Response {
    let Some((name, columns)) = file
        .strip_suffix(".csv")
        .and_then(|n| LISTS.iter().find(|(l, _)| *l == n))
    else {
        return layout::error_page(
            Some(&signed),
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not-found",
                format!("no list {file}"),
            ),
        );
    };
    match rows(&state, &signed, name, &filter).await {
        Ok(items) => {
            let body = to_csv(columns, &items);
            let mut resp =
                ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
            let disposition = format!("attachment; filename=\"mandate-{name}.csv\"");
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
        Err(e) => layout::error_page(Some(&signed), e),
    }
}

/// Every item of the list, page by page through its API handler.
async fn rows(
    state: &AppState,
    signed: &Signed,
    name: &str,
    filter: &ExportFilter,
) -> Result<Vec<Value>, ApiError> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let caller = signed.caller.clone();
        let st = State(state.clone());
        let page = match name {
            "agents" => {
                value(agents::list(
                    st,
                    caller,
                    ApiQuery(from_json(
                        json!({"limit": 100, "cursor": cursor, "q": filter.q}),
                    )?),
                ))
                .await?
            }
            "incidents" => {
                value(incidents::list(
                    st,
                    caller,
                    ApiQuery(from_json(
                        json!({"limit": 100, "cursor": cursor, "status": filter.status}),
                    )?),
                ))
                .await?
            }
            "audit" => {
                value(audit::list(
                    st,
                    caller,
                    ApiQuery(from_json(json!({"limit": 100, "cursor": cursor}))?),
                ))
                .await?
            }
            _ => {
                value(webhooks::list(
                    st,
                    caller,
                    ApiQuery(from_json(json!({"limit": 100, "cursor": cursor}))?),
                ))
                .await?
            }
        };
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        if items.len() > MAX_ROWS {
            return Err(ApiError::bad_request(format!(
                "more than {MAX_ROWS} rows: use the API (GET /v1/{name}) to page through them"
            )));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(items),
        }
    }
}

/// RFC 4180: a header line, CRLF line ends, fields quoted when they hold a comma, a quote or a
/// line break.
fn to_csv(columns: &[(&str, &str)], items: &[Value]) -> String {
    let mut out = String::new();
    let header: Vec<String> = columns.iter().map(|(h, _)| field(h)).collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for item in items {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, p)| field(&cell(item.pointer(p).unwrap_or(&Value::Null))))
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            a.iter().map(cell).collect::<Vec<_>>().join(" ")
        }
        other => other.to_string(),
    }
}

/// One field: a text a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, CR)
/// gets a leading `'`; numbers stay numbers.
fn field(text: &str) -> String {
    let numeric = text.parse::<f64>().is_ok();
    let text = if !numeric && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-12.5"), "-12.5");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        let items = vec![json!({"a": "x\ny", "b": ["p", "q"], "c": null})];
        assert_eq!(
            to_csv(&[("a", "/a"), ("b", "/b"), ("c", "/c")], &items),
            "a,b,c\r\n\"x\ny\",p q,\r\n"
        );
    }
}
