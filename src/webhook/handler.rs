//! `POST /webhook`.

use super::{event::parse_callback, signature::verify};
use crate::startup::AppState;
use crate::store::ts;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

/// Largest accepted body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// LINE wants an answer within 2 seconds: past this, answer 503 and let LINE redeliver (a late
/// commit of the same events is harmless: the redelivery is deduplicated).
const STORE_DEADLINE: std::time::Duration = std::time::Duration::from_millis(1500);

fn refuse(status: actix_web::http::StatusCode, reason: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "message": reason }))
}

/// Verifies, stores durably, then answers 200; processing happens after.
pub async fn webhook(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return refuse(StatusCode::BAD_REQUEST, "could not read the request body");
        };
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body over 1 MiB");
        }
        body.extend_from_slice(&chunk);
    }
    let Some(signature) = req
        .headers()
        .get("x-line-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return refuse(StatusCode::UNAUTHORIZED, "missing x-line-signature");
    };
    if !verify(state.channel_secret.expose(), &body, signature) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid x-line-signature");
    }
    let events = match parse_callback(&body) {
        Ok(events) => events,
        Err(reason) => {
            tracing::info!(%reason, "malformed webhook body");
            return refuse(StatusCode::BAD_REQUEST, "malformed webhook body");
        }
    };
    if events.is_empty() {
        return HttpResponse::Ok().finish();
    }
    let received_at = ts(state.clock.now());
    let stored =
        match tokio::time::timeout(STORE_DEADLINE, state.inbox.store(events, received_at)).await {
            Ok(stored) => stored,
            Err(_) => {
                tracing::warn!("storing webhook events took too long; asking LINE to redeliver");
                return refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage is busy; please redeliver",
                );
            }
        };
    match stored {
        Ok(new) => {
            if new > 0 {
                state.wake_processor.notify_one();
            }
            HttpResponse::Ok().finish()
        }
        Err(e) => {
            // LINE redelivers after a non-200 when redelivery is on: nothing is lost.
            tracing::error!(error = %e, "could not store webhook events");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily unable to store events",
            )
        }
    }
}
