//! `POST /webhook`.

use super::{event::parse_callback, signature::verify};
use crate::http::{AppState, HttpError};
use crate::store::ts;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

/// Largest accepted body (the 413's message says 1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// LINE wants an answer within 2 seconds: past this, answer 503 and let LINE redeliver (a late
/// commit of the same events is harmless: the redelivery is deduplicated).
const STORE_DEADLINE: std::time::Duration = std::time::Duration::from_millis(1500);

/// Reads the whole body within `timeout` (all of it, not per chunk: a client dribbling a byte
/// at a time must not hold the connection).
async fn read_body(
    payload: &mut web::Payload,
    timeout: std::time::Duration,
) -> Result<web::BytesMut, HttpError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut body = web::BytesMut::new();
    loop {
        let chunk = match tokio::time::timeout_at(deadline, payload.next()).await {
            Err(_) => return Err(HttpError::RequestTimeout(timeout.as_secs().max(1))),
            Ok(None) => return Ok(body),
            Ok(Some(Err(_))) => {
                return Err(HttpError::BadRequest("could not read the request body"));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(HttpError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
}

/// Verifies, stores durably, then answers 200; processing happens after.
pub async fn webhook(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    let body = read_body(&mut payload, state.body_timeout).await?;
    let signature = req
        .headers()
        .get("x-line-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(HttpError::Unauthorized("missing x-line-signature"))?;
    if !verify(state.channel_secret.expose(), &body, signature) {
        return Err(HttpError::Unauthorized("invalid x-line-signature"));
    }
    let events = parse_callback(&body).map_err(|reason| {
        tracing::info!(%reason, "malformed webhook body");
        HttpError::BadRequest("malformed webhook body")
    })?;
    if events.is_empty() {
        return Ok(HttpResponse::Ok().finish());
    }
    let received_at = ts(state.clock.now());
    let stored = tokio::time::timeout(STORE_DEADLINE, state.inbox.store(events, received_at))
        .await
        .map_err(|_| {
            tracing::warn!("storing webhook events took too long; asking LINE to redeliver");
            HttpError::Unavailable("storage is busy; please redeliver")
        })?;
    // On an error LINE redelivers after the non-200 when redelivery is on: nothing is lost.
    if stored.map_err(HttpError::Store)? > 0 {
        state.wake_processor.notify_one();
    }
    Ok(HttpResponse::Ok().finish())
}
