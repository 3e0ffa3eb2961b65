//! The console's pages: server-rendered, plain forms (a little JavaScript asks before anything
//! irreversible). Every form carries the session's CSRF token.

use super::api;
use super::auth::{self, LoginResult, Staff};
use super::views::{self, TEMPLATES};
use super::{ConsoleError, ConsoleState};
use crate::broadcast::Audience;
use crate::broadcast::engine::Request;
use crate::staff::{self, Role};
use crate::store::{self, broadcasts, staff as st};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The pages' routes (besides `/login`, `/logout`, assets and health, in `mod.rs`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(dashboard))
        .route("/broadcasts", web::get().to(broadcast_list))
        .route("/broadcasts", web::post().to(broadcast_create))
        .route("/broadcasts/new", web::get().to(broadcast_new))
        .route("/broadcasts/new", web::post().to(broadcast_edit))
        .route("/broadcasts/preview", web::post().to(broadcast_preview))
        .route("/broadcasts/test", web::post().to(broadcast_test))
        .route("/broadcasts/{id}", web::get().to(broadcast_page))
        .route("/broadcasts/{id}/cancel", web::post().to(broadcast_cancel))
        .route("/content", web::get().to(content))
        .route("/staff", web::get().to(staff_page))
        .route("/staff", web::post().to(staff_add))
        .route("/staff/tokens/{id}/revoke", web::post().to(token_revoke))
        .route("/staff/{login}/{action}", web::post().to(staff_change))
        .route("/audit", web::get().to(audit))
        .route("/export/stats.csv", web::get().to(export_stats))
        .route(
            "/export/registrations.csv",
            web::get().to(export_registrations),
        );
}

/// A page's error: the same reasons as the API, as a page.
#[derive(Debug)]
pub struct PageError(ConsoleError);

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: Into<ConsoleError>> From<E> for PageError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }
    fn error_response(&self) -> HttpResponse {
        if let ConsoleError::Internal(e) = &self.0 {
            tracing::error!(error = %e, "console page failed");
        }
        let title = match &self.0 {
            ConsoleError::Forbidden(_) => "権限がありません",
            ConsoleError::NotFound => "ページが見つかりません",
            ConsoleError::Internal(_) => "エラーが起きました",
            _ => "お手続きできませんでした",
        };
        let body = TEMPLATES
            .render(
                "error.html",
                json!({ "title": title, "message": self.0.to_string(), "service_name": "yorisoi" }),
            )
            .unwrap_or_else(|_| self.0.to_string());
        HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
}

type Page = Result<HttpResponse, PageError>;

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; frame-ancestors 'none'"))
        .body(body)
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

/// The context every signed-in page has, merged with the page's own.
fn ctx(state: &ConsoleState, staff: &Staff, nav: &str, title: &str, page: Value) -> Value {
    let mut v = json!({
        "service_name": state.pack.municipality.service_name,
        "me": { "login": staff.account.login, "role": staff.account.role.as_str(), "role_label": staff.account.role.label() },
        "csrf": staff.csrf(),
        "nav": nav,
        "title": title,
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut v, page) {
        base.extend(extra);
    }
    v
}

fn render(
    state: &ConsoleState,
    staff: &Staff,
    name: &str,
    nav: &str,
    title: &str,
    page: Value,
) -> Page {
    Ok(html(
        StatusCode::OK,
        TEMPLATES.render(name, ctx(state, staff, nav, title, page))?,
    ))
}

/// `GET /healthz`: the console answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /static/{file}`: the stylesheet and the script, embedded.
pub async fn asset(path: web::Path<String>) -> HttpResponse {
    let (body, kind) = match path.as_str() {
        "console.css" => (
            include_str!("static/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("static/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return ConsoleError::NotFound.error_response(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::CACHE_CONTROL, "max-age=3600"))
        .body(body)
}

/// Anything else: 404 after authentication (a stranger is sent to the login page, so nothing
/// is told about what exists).
pub async fn not_found(_: Staff, req: HttpRequest) -> HttpResponse {
    if req.path().starts_with("/api/") {
        return ConsoleError::NotFound.error_response();
    }
    PageError(ConsoleError::NotFound).error_response()
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path on this site (never `//host` or a scheme) is followed after login.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

fn login_page(
    state: &ConsoleState,
    req: &HttpRequest,
    status: StatusCode,
    next: &str,
    login: &str,
    error: Option<&str>,
) -> HttpResponse {
    // One token per browser, not per page: the browser's own request for /favicon.ico (sent
    // here too) or the page opened in another tab must not void the form already shown.
    let token = req
        .cookie(auth::LOGIN_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|t| {
            t.len() == 43
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .unwrap_or_else(staff::new_secret);
    let body = TEMPLATES.render(
        "login.html",
        json!({
            "service_name": state.pack.municipality.service_name,
            "title": "ログイン",
            "login_csrf": token,
            "next": next,
            "login": login,
            "error": error,
        }),
    );
    match body {
        Ok(body) => {
            let mut r = html(status, body);
            let _ = r.add_cookie(&auth::cookie(state, auth::LOGIN_COOKIE, token));
            r
        }
        Err(e) => PageError(ConsoleError::Internal(e)).error_response(),
    }
}

/// `GET /login`.
pub async fn login_form(
    req: HttpRequest,
    state: web::Data<ConsoleState>,
    q: web::Query<NextQuery>,
) -> HttpResponse {
    login_page(
        &state,
        &req,
        StatusCode::OK,
        &safe_next(q.next.as_deref()),
        "",
        None,
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`.
pub async fn login(
    req: HttpRequest,
    state: web::Data<ConsoleState>,
    form: web::Form<LoginForm>,
) -> Page {
    let form = form.into_inner();
    let next = safe_next(Some(&form.next));
    let cookie = req
        .cookie(auth::LOGIN_COOKIE)
        .map(|c| c.value().to_string());
    if !cookie.is_some_and(|c| staff::same_secret(&c, &form.csrf)) {
        return Ok(login_page(
            &state,
            &req,
            StatusCode::FORBIDDEN,
            &next,
            &form.login,
            Some(&ConsoleError::Csrf.to_string()),
        ));
    }
    let login: String = form.login.trim().chars().take(64).collect();
    match auth::login(&state, login.clone(), form.password).await? {
        LoginResult::Session(secret) => {
            let mut r = see_other(&next);
            r.add_cookie(&auth::cookie(&state, auth::SESSION_COOKIE, secret))
                .map_err(|e| ConsoleError::Internal(anyhow::anyhow!("cookie: {e}")))?;
            let _ = r.add_cookie(&auth::removal(&state, auth::LOGIN_COOKIE));
            Ok(r)
        }
        LoginResult::Refused => Ok(login_page(
            &state,
            &req,
            StatusCode::UNAUTHORIZED,
            &next,
            &login,
            Some("ログイン名またはパスワードが違います。"),
        )),
        LoginResult::Locked => Ok(login_page(
            &state,
            &req,
            StatusCode::FORBIDDEN,
            &next,
            &login,
            Some(
                "このアカウントはロックされているか、無効になっています。管理者に連絡してください。",
            ),
        )),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    staff: Staff,
    state: web::Data<ConsoleState>,
    form: web::Form<CsrfForm>,
) -> Page {
    staff.check_csrf(Some(&form.csrf))?;
    if let auth::Via::Session { token_hash, .. } = staff.via.clone() {
        let now = store::ts(state.clock.now());
        let a = staff.account.clone();
        state
            .db
            .run(move |c| {
                st::end_session(c, &token_hash)?;
                st::audit(c, Some(a.id), &a.login, "logout", "", &now)?;
                Ok(())
            })
            .await?;
    }
    let mut r = see_other("/login");
    let _ = r.add_cookie(&auth::removal(&state, auth::SESSION_COOKIE));
    Ok(r)
}

async fn dashboard(staff: Staff, state: web::Data<ConsoleState>) -> Page {
    staff.require(Role::Viewer)?;
    let today = state
        .clock
        .now()
        .with_timezone(&crate::clock::jst())
        .date_naive();
    let births = state.annual_births;
    let d = state
        .db
        .run(move |c| Ok(crate::stats::dashboard(c, today, births)?))
        .await?;
    render(
        &state,
        &staff,
        "dashboard.html",
        "dashboard",
        "統計",
        dashboard_context(&d),
    )
}

fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "—".to_string(), |s| format!("{:.1} %", s * 100.0))
}

/// The dashboard as the template reads it.
fn dashboard_context(d: &crate::stats::Dashboard) -> Value {
    let defs = crate::stats::Rates::definitions();
    let rates = [d.rates.block_rate, d.rates.stop_rate, d.rates.keeps_reading_rate]
        .iter()
        .zip(defs)
        .map(|(v, (label, definition))| json!({ "label": label, "value": percent(*v), "definition": definition }))
        .collect::<Vec<_>>();
    let t = &d.delivery.today;
    let delivery_summary = if t.sent + t.pending + t.failed + t.dropped == 0 {
        "今日の配信はまだ記録がありません。".to_string()
    } else {
        format!(
            "送信済み {} 件・送信待ち {} 件・失敗 {} 件・見送り {} 件",
            views::number(t.sent as i64),
            views::number(t.pending as i64),
            views::number(t.failed as i64),
            views::number(t.dropped as i64)
        )
    };
    let failures = d
        .delivery
        .failures
        .iter()
        .map(|f| json!({ "day": f.day.to_string(), "reason": f.summary, "count": f.count }))
        .collect::<Vec<_>>();
    json!({
        "today": crate::domain::format_date_ja(d.today),
        "current": d.current,
        "rates": rates,
        "births_reported": d.rates.births_reported,
        "ended_by_loss": d.rates.ended_by_loss,
        "charts": [
            { "title": "今週の友だち追加・ブロック・登録・停止（日別）", "svg": d.charts.week },
            { "title": "登録者の状態の推移（90日）", "svg": d.charts.readers },
            { "title": "配信中の登録（妊娠中・子育て中）の推移（90日）", "svg": d.charts.stages },
            { "title": "妊娠中の登録数と出生数の20%（年度別）", "svg": d.charts.reach },
        ],
        "delivery_summary": delivery_summary,
        "failures": failures,
        "broadcasts_sent": d.delivery.broadcasts_done,
    })
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BroadcastForm {
    #[serde(skip_serializing)]
    csrf: String,
    text: String,
    image_url: String,
    stage: String,
    weeks_from: String,
    weeks_to: String,
    months_from: String,
    months_to: String,
    when: String,
    send_at: String,
    override_quiet_hours: String,
    #[serde(skip_serializing)]
    test_to: String,
}

impl BroadcastForm {
    fn blank() -> Self {
        Self {
            stage: "all".into(),
            weeks_from: "20".into(),
            weeks_to: "27".into(),
            months_from: "4".into(),
            months_to: "6".into(),
            when: "now".into(),
            ..Self::default()
        }
    }

    /// The form's fields to carry to the next step.
    fn hidden(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("text", self.text.clone()),
            ("image_url", self.image_url.clone()),
            ("stage", self.stage.clone()),
            ("weeks_from", self.weeks_from.clone()),
            ("weeks_to", self.weeks_to.clone()),
            ("months_from", self.months_from.clone()),
            ("months_to", self.months_to.clone()),
            ("when", self.when.clone()),
            ("send_at", self.send_at.clone()),
        ];
        if !self.override_quiet_hours.is_empty() {
            v.push(("override_quiet_hours", "on".into()));
        }
        v
    }

    fn request(&self) -> Result<Request, ConsoleError> {
        let n = |s: &str, what: &str| {
            s.trim().parse::<u32>().map_err(|_| {
                ConsoleError::Unprocessable(format!("{what}を数字で入力してください。"))
            })
        };
        let audience = match self.stage.as_str() {
            "all" => Audience::All {},
            "pregnancy" => Audience::Pregnancy {
                weeks: [
                    n(&self.weeks_from, "妊娠週数")?,
                    n(&self.weeks_to, "妊娠週数")?,
                ],
            },
            "child" => Audience::Child {
                months: [n(&self.months_from, "月齢")?, n(&self.months_to, "月齢")?],
            },
            _ => {
                return Err(ConsoleError::Unprocessable(
                    "配信先を選んでください。".into(),
                ));
            }
        };
        let send_at = if self.when == "at" {
            let local = NaiveDateTime::parse_from_str(self.send_at.trim(), "%Y-%m-%dT%H:%M")
                .map_err(|_| ConsoleError::Unprocessable("送信日時を入力してください。".into()))?;
            Some(
                local
                    .and_local_timezone(crate::clock::jst())
                    .single()
                    .ok_or_else(|| {
                        ConsoleError::Unprocessable("送信日時を読み取れません。".into())
                    })?
                    .with_timezone(&chrono::Utc),
            )
        } else {
            None
        };
        Ok(Request {
            text: self.text.clone(),
            image_url: Some(self.image_url.clone()),
            audience,
            send_at,
            override_quiet_hours: !self.override_quiet_hours.is_empty(),
        })
    }
}

fn form_page(
    state: &ConsoleState,
    staff: &Staff,
    form: &BroadcastForm,
    outcome: Result<Option<String>, String>,
    status: StatusCode,
) -> Page {
    let quiet = state.settings.quiet_hours;
    let (notice, error) = match outcome {
        Ok(notice) => (notice, None),
        Err(error) => (None, Some(error)),
    };
    let body = TEMPLATES.render(
        "broadcast_new.html",
        ctx(
            state,
            staff,
            "broadcasts",
            "新しい一斉配信",
            json!({
                "form": form,
                "notice": notice,
                "error": error,
                "quiet_hours": quiet.map(|q| q.label()),
                "quiet_end": quiet.map(|q| q.end.format("%-H:%M").to_string()),
            }),
        ),
    )?;
    Ok(html(status, body))
}

async fn broadcast_new(staff: Staff, state: web::Data<ConsoleState>) -> Page {
    staff.require(Role::Sender)?;
    form_page(
        &state,
        &staff,
        &BroadcastForm::blank(),
        Ok(None),
        StatusCode::OK,
    )
}

async fn broadcast_edit(
    staff: Staff,
    state: web::Data<ConsoleState>,
    form: web::Form<BroadcastForm>,
) -> Page {
    staff.require(Role::Sender)?;
    staff.check_csrf(Some(&form.csrf))?;
    form_page(&state, &staff, &form, Ok(None), StatusCode::OK)
}

/// A form error shown on the form itself (nothing typed is lost); anything else as a page.
fn on_form(state: &ConsoleState, staff: &Staff, form: &BroadcastForm, e: ConsoleError) -> Page {
    match e {
        ConsoleError::Unprocessable(m) => {
            form_page(state, staff, form, Err(m), StatusCode::UNPROCESSABLE_ENTITY)
        }
        e => Err(e.into()),
    }
}

async fn broadcast_preview(
    staff: Staff,
    state: web::Data<ConsoleState>,
    form: web::Form<BroadcastForm>,
) -> Page {
    staff.require(Role::Sender)?;
    staff.check_csrf(Some(&form.csrf))?;
    let form = form.into_inner();
    let now = state.clock.now();
    let req = match form.request().and_then(|r| {
        r.validate(now)
            .map_err(|e| ConsoleError::Unprocessable(e.0))
    }) {
        Ok(r) => r,
        Err(e) => return on_form(&state, &staff, &form, e),
    };
    let quiet = state.settings.quiet_hours;
    let at = req.goes_at(now, quiet);
    let held = at > req.send_at.unwrap_or(now).max(now);
    let audience = req.audience;
    let n = state
        .db
        .run(move |c| crate::broadcast::engine::count(c, audience, at))
        .await?;
    let shown = BroadcastForm {
        text: req.text.clone(),
        image_url: req.image_url.clone().unwrap_or_default(),
        ..form.clone()
    };
    render(
        &state,
        &staff,
        "broadcast_preview.html",
        "broadcasts",
        "配信内容の確認",
        json!({
            "form": shown,
            "hidden": form.hidden(),
            "recipients": n,
            "audience_label": audience.label(),
            "goes_at": views::jst(&store::ts(at)),
            "held": held,
            "quiet_hours": quiet.map(|q| q.label()),
        }),
    )
}

async fn broadcast_create(
    staff: Staff,
    state: web::Data<ConsoleState>,
    form: web::Form<BroadcastForm>,
) -> Page {
    staff.require(Role::Sender)?;
    staff.check_csrf(Some(&form.csrf))?;
    let form = form.into_inner();
    let req = match form.request() {
        Ok(r) => r,
        Err(e) => return on_form(&state, &staff, &form, e),
    };
    match api::record(&state, &staff, req).await {
        Ok(created) => Ok(see_other(&format!("/broadcasts/{}", created.id))),
        Err(e) => on_form(&state, &staff, &form, e),
    }
}

async fn broadcast_test(
    staff: Staff,
    state: web::Data<ConsoleState>,
    form: web::Form<BroadcastForm>,
) -> Page {
    staff.require(Role::Sender)?;
    staff.check_csrf(Some(&form.csrf))?;
    let form = form.into_inner();
    let to: Vec<String> = form.test_to.lines().map(str::to_string).collect();
    let result = api::test_message(
        &state,
        &staff,
        form.text.clone(),
        Some(form.image_url.clone()),
        to,
    )
    .await;
    let outcome = match result {
        Ok(n) => Ok(Some(format!(
            "{n}人にテスト送信しました。LINEで見え方を確かめてから、「確認へ進む」を押してください。"
        ))),
        Err(ConsoleError::Unprocessable(m)) => Err(m),
        Err(e) => return Err(e.into()),
    };
    form_page(&state, &staff, &form, outcome, StatusCode::OK)
}

fn excerpt(s: &str) -> String {
    let first = s.lines().next().unwrap_or("");
    let mut e: String = first.chars().take(40).collect();
    if first.chars().count() > 40 || s.lines().count() > 1 {
        e.push('…');
    }
    e
}

fn audience_label(v: &Value) -> String {
    serde_json::from_value::<Audience>(v.clone())
        .map(|a| a.label())
        .unwrap_or_default()
}

async fn broadcast_list(staff: Staff, state: web::Data<ConsoleState>) -> Page {
    staff.require(Role::Viewer)?;
    let list = state.db.run(|c| Ok(broadcasts::list(c, 200)?)).await?;
    let rows: Vec<Value> = list
        .iter()
        .map(|b| {
            let mut v = json!(b);
            v["excerpt"] = json!(excerpt(&b.text));
            v["audience_label"] = json!(audience_label(&b.audience));
            v
        })
        .collect();
    render(
        &state,
        &staff,
        "broadcasts.html",
        "broadcasts",
        "一斉配信",
        json!({
            "broadcasts": rows,
            "can_send": staff.account.role.allows(Role::Sender),
        }),
    )
}

async fn broadcast_page(
    staff: Staff,
    state: web::Data<ConsoleState>,
    path: web::Path<String>,
) -> Page {
    staff.require(Role::Viewer)?;
    let id: i64 = path.parse().map_err(|_| ConsoleError::NotFound)?;
    let (b, failures) = state
        .db
        .run(move |c| Ok((broadcasts::get(c, id)?, broadcasts::failures(c, id)?)))
        .await?;
    let b = b.ok_or(ConsoleError::NotFound)?;
    render(
        &state,
        &staff,
        "broadcast.html",
        "broadcasts",
        &format!("一斉配信 #{id}"),
        json!({
            "audience_label": audience_label(&b.audience),
            "b": b,
            "failures": failures,
            "can_send": staff.account.role.allows(Role::Sender),
        }),
    )
}

async fn broadcast_cancel(
    staff: Staff,
    state: web::Data<ConsoleState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Page {
    staff.require(Role::Sender)?;
    staff.check_csrf(Some(&form.csrf))?;
    let id: i64 = path.parse().map_err(|_| ConsoleError::NotFound)?;
    api::cancel_broadcast(&state, &staff, id).await?;
    Ok(see_other(&format!("/broadcasts/{id}")))
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContentQuery {
    stage: String,
    date: String,
    on: String,
    days: String,
}

async fn content(
    staff: Staff,
    state: web::Data<ConsoleState>,
    q: web::Query<ContentQuery>,
) -> Page {
    staff.require(Role::Viewer)?;
    let mut q = q.into_inner();
    let today = state
        .clock
        .now()
        .with_timezone(&crate::clock::jst())
        .date_naive();
    if q.on.is_empty() {
        q.on = today.to_string();
    }
    if q.days.is_empty() {
        q.days = "1".into();
    }
    let pack = &state.pack;
    let mut preview_error = None;
    let mut preview = Vec::new();
    if !q.date.is_empty() {
        let date = NaiveDate::parse_from_str(&q.date, "%Y-%m-%d");
        let on = NaiveDate::parse_from_str(&q.on, "%Y-%m-%d");
        let days = q.days.parse::<u32>().ok().filter(|d| (1..=31).contains(d));
        match (date, on, days) {
            (Ok(date), Ok(on), Some(days)) => {
                let stage = if q.stage == "child" {
                    crate::domain::Stage::Child
                } else {
                    crate::domain::Stage::Pregnancy
                };
                for day in crate::content::preview::days(pack, stage, date, on, days, "はなこ") {
                    preview.push(json!({
                        "date": crate::domain::format_date_ja(day.date),
                        "position": day.position,
                        "messages": day.messages.iter().map(crate::content::preview::message_text).collect::<Vec<_>>(),
                    }));
                }
            }
            _ => {
                preview_error =
                    Some("日付（YYYY-MM-DD）と日数（1〜31）を正しく入力してください。".to_string())
            }
        }
    }
    let notices: Vec<Value> = pack
        .notices
        .iter()
        .map(|n| json!({ "id": n.id, "when": n.when_label(), "excerpt": excerpt(&n.preview_text()) }))
        .collect();
    render(
        &state,
        &staff,
        "content.html",
        "content",
        "配信内容",
        json!({
            "counts": {
                "pregnancy": pack.pregnancy.len(),
                "child": pack.child_days.len(),
                "birthdays": pack.birthdays.len(),
                "notices": pack.notices.len(),
            },
            "q": q,
            "preview": preview,
            "preview_error": preview_error,
            "notices": notices,
        }),
    )
}

async fn staff_page_with(
    state: &ConsoleState,
    staff: &Staff,
    shown: Option<Value>,
    error: Option<String>,
) -> Page {
    staff.require(Role::Admin)?;
    let (accounts, tokens) = state
        .db
        .run(|c| Ok((st::list(c)?, st::tokens(c, None)?)))
        .await?;
    let accounts: Vec<Value> = accounts
        .iter()
        .map(|a| {
            json!({
                "login": a.login, "role_label": a.role.label(), "disabled": a.disabled,
                "locked": a.locked, "created_at": a.created_at,
            })
        })
        .collect();
    render(
        state,
        staff,
        "staff.html",
        "staff",
        "職員アカウント",
        json!({
            "accounts": accounts, "tokens": tokens, "shown_secret": shown, "error": error,
        }),
    )
}

async fn staff_page(staff: Staff, state: web::Data<ConsoleState>) -> Page {
    staff_page_with(&state, &staff, None, None).await
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    role: String,
}

async fn staff_add(staff: Staff, state: web::Data<ConsoleState>, form: web::Form<AddForm>) -> Page {
    staff.require(Role::Admin)?;
    staff.check_csrf(Some(&form.csrf))?;
    let login = match staff::parse_login(&form.login) {
        Ok(l) => l,
        Err(e) => return staff_page_with(&state, &staff, None, Some(e.0.into())).await,
    };
    let role = Role::parse(&form.role)
        .ok_or_else(|| ConsoleError::Unprocessable("権限を選んでください。".into()))?;
    match add_account(&state, &staff.account, login.clone(), role, None).await? {
        Ok(password) => {
            staff_page_with(
                &state,
                &staff,
                Some(json!({ "label": format!("{login} の初期パスワード"), "value": password })),
                None,
            )
            .await
        }
        Err(m) => staff_page_with(&state, &staff, None, Some(m)).await,
    }
}

/// Creates an account (a generated password unless one is given), with its audit entry.
/// `Err` (inside) with a reason when the login is taken.
pub async fn add_account(
    state: &ConsoleState,
    by: &st::Account,
    login: String,
    role: Role,
    password: Option<String>,
) -> Result<Result<String, String>, ConsoleError> {
    let password = password.unwrap_or_else(staff::generate_password);
    let p = password.clone();
    let hash = tokio::task::spawn_blocking(move || staff::hash_password(&p))
        .await
        .map_err(|e| ConsoleError::Internal(e.into()))??;
    let now = store::ts(state.clock.now());
    let by = staff::manage::Actor::staff(by);
    let created = state
        .db
        .run(move |c| Ok(staff::manage::add(c, &by, &login, role, &hash, &now)?))
        .await?;
    Ok(match created {
        Some(_) => Ok(password),
        None => Err("そのログイン名はすでに使われています。".into()),
    })
}

async fn staff_change(
    staff: Staff,
    state: web::Data<ConsoleState>,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Page {
    staff.require(Role::Admin)?;
    staff.check_csrf(Some(&form.csrf))?;
    let (login, action) = path.into_inner();
    let now = store::ts(state.clock.now());
    let by = staff.account.clone();
    if action == "token" {
        let token = staff::new_api_token();
        let hash = staff::secret_hash(&token);
        let (l, by) = (login.clone(), staff::manage::Actor::staff(&by));
        let made = state
            .db
            .run(move |c| Ok(staff::manage::create_token(c, &by, &l, &hash, &now)?))
            .await?;
        made.ok_or(ConsoleError::NotFound)?;
        return staff_page_with(
            &state,
            &staff,
            Some(json!({ "label": format!("{login} のAPIトークン"), "value": token })),
            None,
        )
        .await;
    }
    if login == staff.account.login && action == "disable" {
        return staff_page_with(
            &state,
            &staff,
            None,
            Some("自分のアカウントは無効にできません。".into()),
        )
        .await;
    }
    let change = match action.as_str() {
        "disable" => st::Change::Disabled(true),
        "enable" => st::Change::Disabled(false),
        "unlock" => st::Change::Unlock,
        _ => return Err(ConsoleError::NotFound.into()),
    };
    let by = staff::manage::Actor::staff(&by);
    let done = state
        .db
        .run(move |c| Ok(staff::manage::change(c, &by, &login, change, &now)?))
        .await?;
    if !done {
        return Err(ConsoleError::NotFound.into());
    }
    Ok(see_other("/staff"))
}

async fn token_revoke(
    staff: Staff,
    state: web::Data<ConsoleState>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Page {
    staff.require(Role::Admin)?;
    staff.check_csrf(Some(&form.csrf))?;
    let id: i64 = path.parse().map_err(|_| ConsoleError::NotFound)?;
    let now = store::ts(state.clock.now());
    let by = staff::manage::Actor::staff(&staff.account);
    state
        .db
        .run(move |c| Ok(staff::manage::revoke_token(c, &by, id, &now)?))
        .await?;
    Ok(see_other("/staff"))
}

/// The audit log's actions, as staff read them.
pub const ACTIONS: &[(&str, &str)] = &[
    ("login", "ログイン"),
    ("login_failed", "ログイン失敗"),
    ("account_locked", "アカウントのロック"),
    ("login_locked", "ロック中のログイン"),
    ("login_disabled", "無効アカウントのログイン"),
    ("logout", "ログアウト"),
    ("broadcast_created", "一斉配信の作成"),
    ("broadcast_test_sent", "一斉配信のテスト送信"),
    ("broadcast_sent", "一斉配信の送信完了"),
    ("broadcast_cancelled", "一斉配信の取り消し"),
    ("export", "CSV出力"),
    ("staff_added", "職員の追加"),
    ("staff_disabled", "職員の無効化"),
    ("staff_enabled", "職員の有効化"),
    ("staff_unlocked", "ロック解除"),
    ("token_created", "APIトークン発行"),
    ("token_revoked", "APIトークン失効"),
];

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    action: String,
    login: String,
    before: Option<i64>,
}

async fn audit(staff: Staff, state: web::Data<ConsoleState>, q: web::Query<AuditQuery>) -> Page {
    staff.require(Role::Admin)?;
    let q = q.into_inner();
    let (action, login, before) = (q.action.clone(), q.login.clone(), q.before);
    let entries = state
        .db
        .run(move |c| {
            Ok(st::audit_entries(
                c,
                Some(action.as_str()).filter(|s| !s.is_empty()),
                Some(login.trim()).filter(|s| !s.is_empty()),
                before,
                100,
            )?)
        })
        .await?;
    let more = (entries.len() == 100)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut v = json!(e);
            v["action_label"] = json!(
                ACTIONS
                    .iter()
                    .find(|a| a.0 == e.action)
                    .map_or(e.action.as_str(), |a| a.1)
            );
            v
        })
        .collect();
    render(
        &state,
        &staff,
        "audit.html",
        "audit",
        "操作履歴",
        json!({
            "entries": rows, "q": q, "actions": ACTIONS, "more": more,
        }),
    )
}

async fn export_stats(staff: Staff, state: web::Data<ConsoleState>) -> Page {
    Ok(api::csv_export(&state, &staff, "stats").await?)
}

async fn export_registrations(staff: Staff, state: web::Data<ConsoleState>) -> Page {
    Ok(api::csv_export(&state, &staff, "registrations").await?)
}
