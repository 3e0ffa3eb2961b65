//! Builds the application from settings: the public listener (webhook, health), the event
//! processor and the daily delivery worker.

use crate::clock::SharedClock;
use crate::config::{PushTime, Secret, Settings};
use crate::content::ContentPack;
use crate::conversation::ServiceInfo;
use crate::delivery;
use crate::line::{LineClient, LineClientConfig, RetryPolicy};
use crate::processor::Processor;
use crate::send::ReplySender;
use crate::store::{self, Inbox};
use crate::webhook;
use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;
use tokio::sync::{Notify, watch};

/// Shared by the HTTP handlers.
pub struct AppState {
    /// Webhook signature key.
    pub channel_secret: Secret,
    /// Where webhook events are committed.
    pub inbox: Inbox,
    /// The clock.
    pub clock: SharedClock,
    /// Wakes the processor when new events are stored.
    pub wake_processor: Arc<Notify>,
}

/// The running service.
pub struct Application {
    port: u16,
    server: Server,
    processor: tokio::task::JoinHandle<()>,
    sender: tokio::task::JoinHandle<()>,
    worker: Option<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

/// Builds the LINE client from settings.
pub fn line_client(settings: &Settings) -> anyhow::Result<LineClient> {
    LineClient::new(LineClientConfig {
        api_base: settings.line_api_base.clone(),
        access_token: settings.channel_access_token.clone(),
        timeout: settings.line_timeout,
        retry: RetryPolicy::default(),
        pool_size: settings.push_concurrency,
        rate: settings.push_rate,
    })
}

/// The municipality's words for the conversation, from the content pack.
pub fn service_info(pack: Option<&ContentPack>, settings: &Settings) -> ServiceInfo {
    let delivery_time = match settings.push_time {
        PushTime::At(t) => format!(
            "毎朝{}時{}ごろ",
            t.format("%-H"),
            match t.format("%M").to_string().as_str() {
                "00" => String::new(),
                m => format!("{}分", m.trim_start_matches('0')),
            }
        ),
        PushTime::Off => "毎朝".into(),
    };
    match pack {
        Some(p) => ServiceInfo {
            service_name: p.municipality.service_name.clone(),
            municipality: p.municipality.name.clone(),
            contact: p.municipality.contact.clone(),
            delivery_time,
        },
        None => ServiceInfo {
            delivery_time,
            ..ServiceInfo::default()
        },
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({ "message": "not found" }))
}

impl Application {
    /// Opens the database (applying migrations), binds the listener and starts the background
    /// tasks. Port 0 binds a free port (tests).
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let db_path = settings.database.clone();
        tokio::task::spawn_blocking(move || store::open_and_migrate(&db_path).map(drop)).await??;
        let pack = match ContentPack::load(&settings.content_dir) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                tracing::warn!(dir = %settings.content_dir.display(), error = %e, "content pack not loaded: daily delivery is off until it loads");
                None
            }
        };
        let line = line_client(&settings)?;
        let info = Arc::new(service_info(pack.as_deref(), &settings));
        let inbox = Inbox::start(&settings.database)?;
        let wake = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);

        let replies_queued = Arc::new(Notify::new());
        let processor = Processor::new(
            store::connect(&settings.database)?,
            clock.clone(),
            info,
            replies_queued.clone(),
        );
        let processor = tokio::spawn(processor.run(wake.clone(), stop_rx.clone()));
        let sender = ReplySender::new(
            store::connect(&settings.database)?,
            line.clone(),
            clock.clone(),
            settings.quota_reserve,
        );
        sender.recover().await?;
        let sender = tokio::spawn(sender.run(replies_queued, stop_rx.clone()));

        // Personal data past its retention period goes once a day.
        tokio::spawn(store::retention::run_daily(
            settings.database.clone(),
            settings.retention_days,
            clock.clone(),
            stop_rx.clone(),
        ));

        let worker = match (settings.push_time, pack) {
            (PushTime::At(at), Some(pack)) => {
                let w = delivery::Worker::new(&settings, pack, line.clone(), clock.clone())?;
                Some(tokio::spawn(w.run_daily(at, stop_rx.clone())))
            }
            _ => None,
        };

        let state = web::Data::new(AppState {
            channel_secret: settings.channel_secret.clone(),
            inbox,
            clock,
            wake_processor: wake,
        });
        let listener = TcpListener::bind(settings.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/webhook", web::post().to(webhook::webhook))
                .route("/healthz", web::get().to(healthz))
                .default_service(web::to(not_found))
        })
        .listen(listener)?
        .shutdown_timeout(10)
        .run();
        tracing::info!(
            port,
            "listening (webhook: POST /webhook, health: GET /healthz)"
        );
        Ok(Self {
            port,
            server,
            processor,
            sender,
            worker,
            stop,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server gracefully (as SIGTERM does).
    pub fn stop_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT, then lets in-flight requests and the current processing
    /// pass finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await;
        tracing::info!("shutting down: finishing in-flight work");
        let _ = self.stop.send(true);
        let _ = self.processor.await;
        let _ = self.sender.await;
        if let Some(w) = self.worker {
            let _ = w.await;
        }
        result.map_err(Into::into)
    }
}
