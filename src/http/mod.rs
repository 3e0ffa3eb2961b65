//! The public HTTP surface: shared state, the one error type every handler answers with, and
//! the routes (the webhook itself lives in `webhook/`).

mod error;
mod healthz;
mod state;

pub use error::HttpError;
pub use healthz::healthz;
pub use state::AppState;

use actix_web::web;

/// The public routes: `POST /webhook`, `GET /healthz`, JSON 404 for anything else.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhook", web::post().to(crate::webhook::webhook))
        .route("/healthz", web::get().to(healthz))
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<actix_web::HttpResponse, HttpError> {
    Err(HttpError::NotFound)
}
