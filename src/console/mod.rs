//! The staff console on the admin listener (`YORISOI_ADMIN_LISTEN`), never on the public one:
//! server-rendered pages (`pages.rs`, templates in `templates/`) and the JSON API (`api.rs`),
//! both behind `auth.rs` (sessions with CSRF tokens, API tokens, roles). Broadcasts are recorded
//! here and delivered by `broadcast::engine`.

pub mod api;
pub mod auth;
pub mod error;
pub mod pages;
mod views;

use crate::clock::SharedClock;
use crate::config::ConsoleSettings;
use crate::content::ContentPack;
use crate::line::LineClient;
use crate::store::Db;
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;
use tokio::sync::Notify;

pub use error::ConsoleError;

/// What the console's handlers share.
pub struct ConsoleState {
    /// The console's connection (reads and staff writes).
    pub db: Db,
    /// The channel's one LINE client (test sends).
    pub line: LineClient,
    /// The clock.
    pub clock: SharedClock,
    /// Cookies, sessions, quiet hours.
    pub settings: ConsoleSettings,
    /// The loaded content pack (the content view, the municipality's names).
    pub pack: Arc<ContentPack>,
    /// Wakes the broadcast engine when a broadcast is recorded.
    pub wake_broadcasts: Arc<Notify>,
    /// Births a year in the municipality (the reach target's base), if known.
    pub annual_births: Option<u32>,
}

impl ConsoleState {
    /// The state; fails if a template does not parse.
    pub fn new(
        db: Db,
        line: LineClient,
        clock: SharedClock,
        settings: ConsoleSettings,
        pack: Arc<ContentPack>,
        wake_broadcasts: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        views::Templates::load()?;
        let annual_births = pack.municipality.annual_births;
        Ok(Self {
            db,
            line,
            clock,
            settings,
            pack,
            wake_broadcasts,
            annual_births,
        })
    }
}

/// Every console route. Only `/login`, `/static/…` and `/healthz` answer without a session or
/// token; every other handler takes an [`auth::Staff`] with the role it needs.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(pages::healthz)))
        .service(web::resource("/static/{file}").route(web::get().to(pages::asset)))
        .service(
            web::resource("/login")
                .route(web::get().to(pages::login_form))
                .route(web::post().to(pages::login)),
        )
        .service(web::resource("/logout").route(web::post().to(pages::logout)))
        .configure(pages::routes)
        .configure(api::routes)
        .default_service(web::to(pages::not_found));
}

/// Starts the console's server on `listener`.
pub fn serve(listener: TcpListener, state: web::Data<ConsoleState>) -> anyhow::Result<Server> {
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::FormConfig::default().limit(64 * 1024))
            .app_data(web::PayloadConfig::default().limit(64 * 1024))
            .configure(routes)
    })
    .workers(2)
    .shutdown_timeout(3)
    .listen(listener)?
    .run())
}
