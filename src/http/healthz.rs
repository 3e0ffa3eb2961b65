//! `GET /healthz`: 200 when every check passes, else 503 naming each failing check.

use super::{AppState, HttpError};
use crate::health::Context;
use actix_web::{HttpResponse, web};

/// Runs the health checks.
pub async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, HttpError> {
    let report = state
        .health
        .check(Context {
            clock: &state.clock,
            push_time: state.push_time,
        })
        .await;
    if !report.healthy() {
        return Err(HttpError::Unhealthy(report));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ok", "checks": report.checks })))
}
