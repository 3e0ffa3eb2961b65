//! The JSON API on the admin listener (`Authorization: Bearer TOKEN`): the same operations as
//! the pages, for scripts and tests. Documented in `docs/API.md`.

use super::auth::Staff;
use super::{ConsoleError, ConsoleState};
use crate::broadcast::Audience;
use crate::broadcast::engine::{self, Request};
use crate::staff::Role;
use crate::store::{self, broadcasts, staff as st};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The API's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .route("/stats", web::get().to(stats))
            .route("/broadcasts", web::get().to(list))
            .route("/broadcasts", web::post().to(create))
            .route("/broadcasts/preview", web::post().to(preview))
            .route("/broadcasts/test", web::post().to(test_send))
            .route("/broadcasts/{id}", web::get().to(get))
            .route("/broadcasts/{id}/cancel", web::post().to(cancel))
            .route("/export/stats.csv", web::get().to(export_stats))
            .route(
                "/export/registrations.csv",
                web::get().to(export_registrations),
            )
            .route("/audit", web::get().to(audit))
            .default_service(web::to(|_: Staff| async {
                ConsoleError::NotFound.into_response()
            })),
    );
}

trait IntoResponse {
    fn into_response(self) -> HttpResponse;
}
impl IntoResponse for ConsoleError {
    fn into_response(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}

/// A body that is not the JSON a request takes: 400 naming what is wrong.
pub fn bad_json(e: &actix_web::error::JsonPayloadError) -> ConsoleError {
    use actix_web::error::JsonPayloadError as J;
    ConsoleError::BadRequest(match e {
        J::ContentType => "Content-Type: application/json で送ってください。".into(),
        J::Overflow { .. } | J::OverflowKnownLength { .. } => "本文が大きすぎます。".into(),
        J::Deserialize(d) if d.is_data() => format!("JSON の項目が正しくありません: {d}"),
        J::Deserialize(d) => format!(
            "JSON として読めません（{} 行 {} 文字目）。",
            d.line(),
            d.column()
        ),
        _ => "本文を読めませんでした。".into(),
    })
}

/// Reads a JSON body once the caller is known to be allowed (a stranger gets 401, not a
/// remark on their body).
fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, ConsoleError> {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(bad_json(&actix_web::error::JsonPayloadError::ContentType));
    }
    serde_json::from_slice(body)
        .map_err(|e| bad_json(&actix_web::error::JsonPayloadError::Deserialize(e)))
}

/// A sender's state-changing call: the role, the CSRF header of a browser session, then the body.
fn sender_call<T: serde::de::DeserializeOwned>(
    staff: &Staff,
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, ConsoleError> {
    staff.require(Role::Sender)?;
    staff.check_csrf(csrf_header(req))?;
    json_body(req, body)
}

fn csrf_header(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
}

async fn stats(staff: Staff, state: web::Data<ConsoleState>) -> Result<HttpResponse, ConsoleError> {
    staff.require(Role::Viewer)?;
    let current = state.db.run(|c| Ok(crate::stats::current(c)?)).await?;
    Ok(HttpResponse::Ok().json(current))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    audience: Audience,
    #[serde(default)]
    send_at: Option<String>,
}

fn parse_time(s: Option<&str>) -> Result<Option<DateTime<Utc>>, ConsoleError> {
    s.map(|s| {
        DateTime::parse_from_rfc3339(s.trim())
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| {
                ConsoleError::Unprocessable(
                    "send_at は RFC 3339 の日時で指定してください（例: 2026-12-01T10:00:00+09:00）。"
                        .into(),
                )
            })
    })
    .transpose()
}

async fn preview(
    staff: Staff,
    req: HttpRequest,
    state: web::Data<ConsoleState>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let body: PreviewBody = sender_call(&staff, &req, &body)?;
    let audience = body
        .audience
        .validate()
        .map_err(|e| ConsoleError::Unprocessable(e.0))?;
    let now = state.clock.now();
    let at = parse_time(body.send_at.as_deref())?.unwrap_or(now).max(now);
    let n = state
        .db
        .run(move |c| engine::count(c, audience, at))
        .await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "recipients": n, "audience": audience.label() })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBody {
    text: String,
    #[serde(default)]
    image_url: Option<String>,
    audience: Audience,
    #[serde(default)]
    send_at: Option<String>,
    #[serde(default)]
    override_quiet_hours: bool,
}

/// Checks and records a broadcast for `staff`, waking the engine.
pub async fn record(
    state: &ConsoleState,
    staff: &Staff,
    req: Request,
) -> Result<engine::Created, ConsoleError> {
    staff.require(Role::Sender)?;
    let now = state.clock.now();
    let req = req
        .validate(now)
        .map_err(|e| ConsoleError::Unprocessable(e.0))?;
    let quiet = state.settings.quiet_hours;
    let by = staff.account.clone();
    let created = state
        .db
        .run(move |c| engine::create(c, &by, &req, now, quiet))
        .await?;
    state.wake_broadcasts.notify_one();
    Ok(created)
}

async fn create(
    staff: Staff,
    req: HttpRequest,
    state: web::Data<ConsoleState>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let body: NewBody = sender_call(&staff, &req, &body)?;
    let request = Request {
        text: body.text,
        image_url: body.image_url,
        audience: body.audience,
        send_at: parse_time(body.send_at.as_deref())?,
        override_quiet_hours: body.override_quiet_hours,
    };
    let created = record(&state, &staff, request).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/broadcasts/{}", created.id)))
        .json(created))
}

async fn list(staff: Staff, state: web::Data<ConsoleState>) -> Result<HttpResponse, ConsoleError> {
    staff.require(Role::Viewer)?;
    let list = state.db.run(|c| Ok(broadcasts::list(c, 100)?)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "broadcasts": list })))
}

fn id(path: &str) -> Result<i64, ConsoleError> {
    path.parse::<i64>().map_err(|_| ConsoleError::NotFound)
}

async fn get(
    staff: Staff,
    state: web::Data<ConsoleState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Role::Viewer)?;
    let id = id(&path)?;
    let (b, failures) = state
        .db
        .run(move |c| Ok((broadcasts::get(c, id)?, broadcasts::failures(c, id)?)))
        .await?;
    let b = b.ok_or(ConsoleError::NotFound)?;
    let mut v = serde_json::to_value(&b).map_err(|e| ConsoleError::Internal(e.into()))?;
    v["failures"] = failures
        .into_iter()
        .map(|(reason, readers)| serde_json::json!({ "reason": reason, "readers": readers }))
        .collect();
    Ok(HttpResponse::Ok().json(v))
}

/// Cancels a scheduled broadcast for `staff`, with its audit entry.
pub async fn cancel_broadcast(
    state: &ConsoleState,
    staff: &Staff,
    id: i64,
) -> Result<(), ConsoleError> {
    staff.require(Role::Sender)?;
    let now = store::ts(state.clock.now());
    let by = staff.account.clone();
    state
        .db
        .run(move |c| {
            let tx = store::write_tx(c)?;
            let Some(b) = broadcasts::get(&tx, id)? else {
                return Ok(Err(ConsoleError::NotFound));
            };
            if !broadcasts::cancel(&tx, id, by.id, &now)? {
                return Ok(Err(ConsoleError::Conflict(format!(
                    "この配信は取り消せません（状態: {}）。送信が始まった配信は取り消せません。",
                    super::views::status_label(&b.status)
                ))));
            }
            st::audit(
                &tx,
                Some(by.id),
                &by.login,
                "broadcast_cancelled",
                &format!("id={id}"),
                &now,
            )?;
            tx.commit()?;
            Ok(Ok(()))
        })
        .await?
}

async fn cancel(
    staff: Staff,
    req: HttpRequest,
    state: web::Data<ConsoleState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Role::Sender)?;
    staff.check_csrf(csrf_header(&req))?;
    let id = id(&path)?;
    cancel_broadcast(&state, &staff, id).await?;
    let b = state.db.run(move |c| Ok(broadcasts::get(c, id)?)).await?;
    Ok(HttpResponse::Ok().json(b))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    text: String,
    #[serde(default)]
    image_url: Option<String>,
    to: Vec<String>,
}

/// Test-sends a message to staff members' own LINE accounts.
pub async fn test_message(
    state: &ConsoleState,
    staff: &Staff,
    text: String,
    image_url: Option<String>,
    to: Vec<String>,
) -> Result<usize, ConsoleError> {
    staff.require(Role::Sender)?;
    let now = state.clock.now();
    let checked = Request {
        text,
        image_url,
        audience: Audience::All {},
        send_at: None,
        override_quiet_hours: false,
    }
    .validate(now)
    .map_err(|e| ConsoleError::Unprocessable(e.0))?;
    let to: Vec<_> = to
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            crate::domain::LineUserId::parse(s).ok_or_else(|| {
                ConsoleError::Unprocessable(
                    "テスト送信先は LINE ユーザーID（U で始まる33文字）で指定してください。".into(),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    if to.is_empty() || to.len() > 10 {
        return Err(ConsoleError::Unprocessable(
            "テスト送信先を1〜10件指定してください。".into(),
        ));
    }
    engine::test_send(
        &state.db,
        &state.line,
        staff.account.clone(),
        checked.text,
        checked.image_url,
        to,
        now,
    )
    .await?
    .map_err(|e| ConsoleError::Unprocessable(e.0))
}

async fn test_send(
    staff: Staff,
    req: HttpRequest,
    state: web::Data<ConsoleState>,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let body: TestBody = sender_call(&staff, &req, &body)?;
    let n = test_message(&state, &staff, body.text, body.image_url, body.to).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sent": n })))
}

/// A CSV download, recorded in the audit log.
pub async fn csv_export(
    state: &ConsoleState,
    staff: &Staff,
    which: &'static str,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(if which == "registrations" {
        Role::Admin
    } else {
        Role::Viewer
    })?;
    let now = state.clock.now();
    let today = now.with_timezone(&crate::clock::jst()).date_naive();
    let by = staff.account.clone();
    let bytes = state
        .db
        .run(move |c| {
            let bytes = if which == "registrations" {
                crate::stats::registrations_csv(c)?
            } else {
                let from = today - chrono::TimeDelta::days(3 * 366);
                crate::stats::stats_csv(c, from, today)?
            };
            st::audit(
                c,
                Some(by.id),
                &by.login,
                "export",
                &format!("{which}.csv bytes={}", bytes.len()),
                &store::ts(now),
            )?;
            Ok(bytes)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"yorisoi-{which}-{today}.csv\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(bytes))
}

async fn export_stats(
    staff: Staff,
    state: web::Data<ConsoleState>,
) -> Result<HttpResponse, ConsoleError> {
    csv_export(&state, &staff, "stats").await
}

async fn export_registrations(
    staff: Staff,
    state: web::Data<ConsoleState>,
) -> Result<HttpResponse, ConsoleError> {
    csv_export(&state, &staff, "registrations").await
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    action: Option<String>,
    login: Option<String>,
    before: Option<i64>,
}

async fn audit(
    staff: Staff,
    state: web::Data<ConsoleState>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ConsoleError> {
    staff.require(Role::Admin)?;
    let q = q.into_inner();
    let entries = state
        .db
        .run(move |c| {
            Ok(st::audit_entries(
                c,
                q.action.as_deref().filter(|s| !s.is_empty()),
                q.login.as_deref().filter(|s| !s.is_empty()),
                q.before,
                200,
            )?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "entries": entries })))
}
