//! Builds the application from settings: the public listener (webhook, health), the event
//! processor and the daily delivery worker.

use crate::clock::SharedClock;
use crate::config::{PushTime, Settings};
use crate::content::{self, ContentPack};
use crate::conversation::ServiceInfo;
use crate::delivery;
use crate::health::Health;
use crate::http::{self, AppState};
use crate::line::{LineClient, LineClientConfig, RetryPolicy};
use crate::processor::Processor;
use crate::send::ReplySender;
use crate::store::{self, Inbox, leases};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use rusqlite::Connection;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The lease that keeps a second `serve` off the same database.
const SERVE_LEASE: &str = "serve";
/// A `serve` that stopped renewing (crashed elsewhere, or hung) is taken over this long after
/// its last renewal.
const SERVE_LEASE_TTL: Duration = Duration::from_secs(30);
/// How often the lease is renewed: several tries fit in one TTL.
const SERVE_LEASE_RENEW: Duration = Duration::from_secs(5);
/// How long in-flight requests may take once a stop is asked for (actix's graceful stop).
const HTTP_SHUTDOWN: Duration = Duration::from_secs(3);
/// How long the background tasks get to finish their step once the listener has stopped.
/// With `HTTP_SHUTDOWN`, the lease release (≤ 1 s) and the runtime's own stop (≤ 1 s, in
/// `cli.rs`): at most 9 s, within a container runtime's 10 s, whatever LINE does.
const BACKGROUND_SHUTDOWN: Duration = Duration::from_secs(4);

/// Who runs the event processor and the reply sender.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Drive {
    /// Background tasks, woken by the webhook and every second: the service.
    #[default]
    Background,
    /// The caller, step by step through [`Application::steps`]: tests that await each step
    /// instead of waiting for it.
    Caller,
}

/// The event processor and the reply sender of an application its caller drives.
#[derive(Clone)]
pub struct Steps {
    processor: Arc<Processor>,
    sender: Arc<ReplySender>,
    broadcasts: crate::broadcast::engine::Engine,
    relinker: crate::richmenu::Relinker,
    health: Health,
}

/// What [`Steps::settle`] did, and what it left.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Events processed.
    pub events: usize,
    /// Replies delivered.
    pub sent: usize,
    /// Replies still queued: due later (a backoff after LINE failed) or held back.
    pub waiting: i64,
}

impl Steps {
    /// Processes every stored event and sends every reply due, in turns, until neither has
    /// anything to do now. Replies due later (a backoff after a failure) stay queued, counted
    /// in `waiting`.
    pub async fn settle(&self) -> anyhow::Result<Settled> {
        let mut settled = Settled::default();
        loop {
            let events = self.processor.run_once().await?.events;
            self.health.processor_ran(Instant::now());
            let pass = self.sender.run_once().await?;
            self.health.sender_ran(Instant::now());
            settled.events += events;
            settled.sent += pass.sent;
            if events == 0 && pass.claimed == 0 {
                settled.waiting = self.sender.pending().await?;
                return Ok(settled);
            }
        }
    }
}

impl Steps {
    /// Runs broadcast passes until nothing is left to start or send now.
    pub async fn broadcasts(&self) -> anyhow::Result<crate::broadcast::engine::Pass> {
        let mut total = crate::broadcast::engine::Pass::default();
        loop {
            let p = self.broadcasts.run_once().await?;
            total.started += p.started;
            total.sent += p.sent;
            total.failed += p.failed;
            total.later += p.later;
            total.finished += p.finished;
            total.halted |= p.halted;
            if p.started == 0 && p.sent == 0 && p.failed == 0 {
                return Ok(total);
            }
        }
    }
}

impl Steps {
    /// Links and unlinks rich menus until no marked reader is due now.
    pub async fn relink(&self) -> anyhow::Result<crate::richmenu::relink::Pass> {
        self.relinker.drain().await
    }
}

/// More routes on the public listener (the sandbox's, in sandbox mode only).
pub type ExtraRoutes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// The running service.
pub struct Application {
    running: Running,
    lease: ServeLease,
}

/// What `Application::start` started, before the lease joins it.
struct Running {
    port: u16,
    server: Server,
    admin_port: u16,
    admin: actix_web::dev::ServerHandle,
    admin_task: JoinHandle<std::io::Result<()>>,
    broadcaster: Option<JoinHandle<()>>,
    processor: Option<JoinHandle<()>>,
    sender: Option<JoinHandle<()>>,
    steps: Option<Steps>,
    worker: Option<JoinHandle<()>>,
    delivery_passes: Option<watch::Receiver<u64>>,
    stop: watch::Sender<bool>,
    health: Health,
}

/// This process's hold on the database's `serve` lease, renewed by a small task, and on the lock
/// file beside the database (released when the process ends, however it ends).
struct ServeLease {
    conn: Arc<Mutex<Connection>>,
    holder: leases::Holder,
    renewer: Option<JoinHandle<()>>,
    lock: Option<std::fs::File>,
}

/// Takes the lock file `<database>.lock` (an OS lock on a file of its own: closing it never
/// touches SQLite's locks on the database). Held: another `serve` runs on this database, and
/// the message names it when the lease table says who.
fn serve_lock(database: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                anyhow::anyhow!("cannot create the database folder {}: {e}", dir.display())
            })?;
    }
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = rusqlite::Connection::open_with_flags(
                database,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .ok()
            .and_then(|c| leases::current(&c, SERVE_LEASE).ok().flatten());
            match holder {
                Some(held) => anyhow::bail!(
                    "another yorisoi serve is running on the database {}: {held}; stop it first",
                    database.display()
                ),
                None => anyhow::bail!(
                    "another yorisoi serve is running on the database {} (it holds {}); stop it first",
                    database.display(),
                    path.display()
                ),
            }
        }
        Err(std::fs::TryLockError::Error(e)) => {
            anyhow::bail!("cannot lock {}: {e}", path.display())
        }
    }
}

impl ServeLease {
    /// Takes the lease or says, in one line, who holds it.
    async fn acquire(path: &Path) -> anyhow::Result<Self> {
        let holder = leases::Holder::new();
        let (p, h) = (path.to_owned(), holder.clone());
        let conn = tokio::task::spawn_blocking(move || -> anyhow::Result<Connection> {
            let conn = store::connect(&p)?;
            // Renewal and release must answer quickly, not queue behind a long writer.
            conn.busy_timeout(Duration::from_secs(2))?;
            match leases::acquire(&conn, SERVE_LEASE, &h, SERVE_LEASE_TTL) {
                Ok(got) => {
                    if let Some(old) = got.took_over {
                        tracing::warn!(pid = old.pid, "took over the serve lease of a process that stopped or is gone");
                    }
                    Ok(conn)
                }
                Err(leases::AcquireError::Held(held)) => anyhow::bail!(
                    "another yorisoi serve is running on the database {}: {held}; stop it first (one that stopped answering is taken over {} s after its last renewal)",
                    p.display(),
                    SERVE_LEASE_TTL.as_secs()
                ),
                Err(leases::AcquireError::Store(e)) => anyhow::bail!(
                    "cannot take the serve lease on the database {}: {e}",
                    p.display()
                ),
            }
        })
        .await??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            holder,
            renewer: None,
            lock: None,
        })
    }

    fn start_renewing(&mut self) {
        let (conn, holder) = (self.conn.clone(), self.holder.clone());
        self.renewer = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(SERVE_LEASE_RENEW);
            tick.tick().await;
            loop {
                tick.tick().await;
                let (conn, holder) = (conn.clone(), holder.clone());
                let renewed = tokio::task::spawn_blocking(move || {
                    let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                    match leases::renew(&conn, SERVE_LEASE, &holder, SERVE_LEASE_TTL)? {
                        true => Ok(true),
                        // Lost (this process stalled past the TTL): take it back if free.
                        false => leases::acquire(&conn, SERVE_LEASE, &holder, SERVE_LEASE_TTL)
                            .map(|_| false),
                    }
                })
                .await;
                match renewed {
                    Ok(Ok(true)) => {}
                    Ok(Ok(false)) => tracing::warn!("the serve lease had expired; taken again"),
                    Ok(Err(leases::AcquireError::Held(held))) => tracing::error!(
                        pid = held.pid,
                        "another serve took over this database after this process stalled; stop one of them"
                    ),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "could not renew the serve lease; will retry")
                    }
                    Err(_) => tracing::warn!("the serve lease renewal did not run; will retry"),
                }
            }
        }));
    }

    /// Stops renewing, logs what is left to send, and releases the lease.
    async fn release(mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        let (conn, holder) = (self.conn.clone(), self.holder.clone());
        let release = tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            // Both counts read partial indexes: quick however large the tables. Planned pushes
            // are not counted (no such index); the delivery run resumes them by date.
            let left: rusqlite::Result<(i64, i64)> = conn.query_row(
                "SELECT (SELECT count(*) FROM webhook_events WHERE processed_at IS NULL),
                        (SELECT count(*) FROM sends WHERE kind = 'reply' AND status = 'pending')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            );
            if let Ok((events, replies)) = left {
                tracing::info!(
                    events,
                    replies,
                    "left for after the restart (recorded, not lost)"
                );
            }
            leases::release(&conn, SERVE_LEASE, &holder)
        });
        match tokio::time::timeout(Duration::from_secs(1), release).await {
            Ok(Ok(Ok(()))) => {}
            // The lease expires by itself: the next start waits at most its TTL.
            _ => tracing::warn!(
                ttl_s = SERVE_LEASE_TTL.as_secs(),
                "could not release the serve lease; it expires by itself"
            ),
        }
    }
}

/// Checks the content pack as `yorisoi content check` does and loads it; refuses a pack with
/// errors in one message naming the folder and the first problems.
fn load_content(dir: &Path) -> anyhow::Result<ContentPack> {
    const SHOWN: usize = 3;
    let report = content::check::check(dir, false);
    if report.has_errors() {
        let errors: Vec<String> = report
            .diagnostics
            .iter()
            .filter(|d| d.level == "error")
            .map(|d| match (&d.file, d.line) {
                (Some(f), Some(l)) => format!("{f}:{l}: {}", d.message),
                (Some(f), None) => format!("{f}: {}", d.message),
                _ => d.message.clone(),
            })
            .collect();
        let more = match errors.len().saturating_sub(SHOWN) {
            0 => String::new(),
            n => format!("; and {n} more"),
        };
        anyhow::bail!(
            "the content pack in {} has {} error(s): {}{more} (see `yorisoi content check --dir {}`)",
            dir.display(),
            errors.len(),
            errors[..errors.len().min(SHOWN)]
                .join("; ")
                .replace('\n', " "),
            dir.display()
        );
    }
    ContentPack::load(dir).map_err(|e| {
        anyhow::anyhow!(
            "the content pack in {} cannot be loaded: {}",
            dir.display(),
            e.to_string().replace('\n', "; ")
        )
    })
}

/// Builds the LINE client from settings.
pub fn line_client(settings: &Settings) -> anyhow::Result<LineClient> {
    LineClient::new(LineClientConfig {
        api_base: settings.line_api_base.clone(),
        data_base: settings.line_data_api_base.clone(),
        access_token: settings.channel_access_token.clone(),
        timeout: settings.line_timeout,
        retry: RetryPolicy::default(),
        pool_size: settings.push_concurrency,
        rate: settings.push_rate,
        multicast_rate: settings.multicast_rate,
    })
}

/// The municipality's words for the conversation, from the content pack.
pub fn service_info(pack: Option<&ContentPack>, settings: &Settings) -> ServiceInfo {
    let delivery_time = match settings.push_time {
        PushTime::At(t) => format!(
            "朝{}時{}ごろ",
            t.format("%-H"),
            match t.format("%M").to_string().as_str() {
                "00" => String::new(),
                m => format!("{}分", m.trim_start_matches('0')),
            }
        ),
        PushTime::Off => "朝".into(),
    };
    match pack {
        Some(p) => ServiceInfo {
            service_name: p.municipality.service_name.clone(),
            municipality: p.municipality.name.clone(),
            contact: p.municipality.contact.clone(),
            grief_contact: p.municipality.grief_contact.clone(),
            delivery_time,
            child_daily_until: p.first_child_daily_run_end(),
            last_pregnancy_day: p.last_pregnancy_day(),
            faq: p.municipality.faq.clone(),
            line_basic_id: settings.line_basic_id.clone(),
        },
        None => ServiceInfo {
            delivery_time,
            line_basic_id: settings.line_basic_id.clone(),
            ..ServiceInfo::default()
        },
    }
}

impl Application {
    /// Opens the database (applying migrations), takes the `serve` lease, checks and loads the
    /// content pack, binds the listener and starts the background tasks. Port 0 binds a free
    /// port (tests). Each refusal is one line naming the file or folder at fault.
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        Self::build_driven(settings, clock, Drive::Background).await
    }

    /// [`Application::build`], with the processor and the reply sender run by `drive`.
    pub async fn build_driven(
        settings: Settings,
        clock: SharedClock,
        drive: Drive,
    ) -> anyhow::Result<Self> {
        Self::build_with(settings, clock, drive, None).await
    }

    /// [`Application::build_driven`], with `extra` routes on the public listener.
    pub async fn build_with(
        settings: Settings,
        clock: SharedClock,
        drive: Drive,
        extra: Option<ExtraRoutes>,
    ) -> anyhow::Result<Self> {
        // Before anything touches the database (a migration above all): a second `serve`, a
        // newer binary started beside a running one, stops here.
        let lock = serve_lock(&settings.database)?;
        let db_path = settings.database.clone();
        tokio::task::spawn_blocking(move || store::open_and_migrate(&db_path).map(drop)).await??;
        let mut lease = ServeLease::acquire(&settings.database).await?;
        lease.lock = Some(lock);
        match Self::start(settings, clock, drive, extra).await {
            Ok(running) => {
                lease.start_renewing();
                Ok(Self { running, lease })
            }
            Err(e) => {
                lease.release().await;
                Err(e)
            }
        }
    }

    async fn start(
        settings: Settings,
        clock: SharedClock,
        drive: Drive,
        extra: Option<ExtraRoutes>,
    ) -> anyhow::Result<Running> {
        let dir = settings.content_dir.clone();
        let pack = Arc::new(tokio::task::spawn_blocking(move || load_content(&dir)).await??);
        let line = line_client(&settings)?;
        let info = Arc::new(service_info(Some(&pack), &settings));
        let health = Health::open(&settings.database)?;
        health.content_loaded(true);
        health.watch_line(line.clone());
        let inbox = Inbox::start(&settings.database)?;
        let wake = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);

        let listener = TcpListener::bind(settings.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let admin_listener = TcpListener::bind(settings.admin_listen).map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} (the staff console, YORISOI_ADMIN_LISTEN): {e}",
                settings.admin_listen
            )
        })?;
        let admin_port = admin_listener.local_addr()?.port();

        let replies_queued = Arc::new(Notify::new());
        let processor = Processor::new(
            store::connect(&settings.database)?,
            clock.clone(),
            info,
            replies_queued.clone(),
        );

        // Durable commits: a reply attempt is on disk before its request leaves (and with it
        // the processor's commit that queued the reply).
        let sender = ReplySender::new(
            store::connect_durable(&settings.database)?,
            line.clone(),
            clock.clone(),
            settings.quota_reserve,
        );
        // This process alone serves the database (the serve lease): claims left by a process
        // that stopped mid-send are void.
        sender.recover().await?;
        // Broadcasts: delivered by this process alone (the serve lease), so claims left by a
        // process that stopped mid-send are void too.
        let wake_broadcasts = Arc::new(Notify::new());
        let broadcasts = crate::broadcast::engine::Engine::new(
            store::connect_durable(&settings.database)?,
            line.clone(),
            clock.clone(),
        )?;
        broadcasts.recover().await?;
        let broadcaster = match drive {
            Drive::Background => Some(tokio::spawn(
                broadcasts
                    .clone()
                    .run(wake_broadcasts.clone(), stop_rx.clone()),
            )),
            Drive::Caller => None,
        };
        let console = web::Data::new(crate::console::ConsoleState::new(
            store::Db::new(store::connect(&settings.database)?),
            line.clone(),
            clock.clone(),
            settings.console,
            pack.clone(),
            wake_broadcasts,
        )?);
        let admin_server = crate::console::serve(admin_listener, console)?;
        let admin = admin_server.handle();
        // A server runs once polled: the console's own task polls it.
        let admin_task = tokio::spawn(admin_server);
        tracing::info!(port = admin_port, "staff console listening");
        // Each reader's rich menu follows their stage (once menus are synced).
        let relinker = crate::richmenu::Relinker::new(
            store::Db::new(store::connect(&settings.database)?),
            line.clone(),
            clock.clone(),
        );
        if drive == Drive::Background {
            tokio::spawn(relinker.clone().run(stop_rx.clone()));
        }
        let (processor, sender, steps) = match drive {
            Drive::Background => (
                Some(tokio::spawn(processor.run(
                    wake.clone(),
                    stop_rx.clone(),
                    health.clone(),
                ))),
                Some(tokio::spawn(sender.run(
                    replies_queued,
                    stop_rx.clone(),
                    health.clone(),
                ))),
                None,
            ),
            Drive::Caller => (
                None,
                None,
                Some(Steps {
                    processor: Arc::new(processor),
                    sender: Arc::new(sender),
                    broadcasts,
                    relinker,
                    health: health.clone(),
                }),
            ),
        };

        // Personal data past its retention period goes once a day.
        tokio::spawn(store::retention::run_daily(
            settings.database.clone(),
            settings.retention_days,
            clock.clone(),
            stop_rx.clone(),
        ));

        let (worker, delivery_passes) = match settings.push_time {
            PushTime::At(at) => {
                let w = delivery::Worker::new(&settings, pack, line.clone(), clock.clone())?;
                let (passes, passes_rx) = watch::channel(0);
                (
                    Some(tokio::spawn(w.run_daily(at, stop_rx.clone(), passes))),
                    Some(passes_rx),
                )
            }
            PushTime::Off => (None, None),
        };

        let state = web::Data::new(AppState {
            channel_secret: settings.channel_secret.clone(),
            inbox,
            clock,
            wake_processor: wake,
            health: health.clone(),
            push_time: settings.push_time,
            body_timeout: settings.limits.request_timeout,
        });
        let limits = settings.limits;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let server = HttpServer::new(move || {
            let extra = extra.clone();
            App::new()
                .app_data(state.clone())
                .configure(move |cfg| {
                    if let Some(extra) = &extra {
                        extra(cfg);
                    }
                })
                .configure(http::routes)
        })
        .workers(workers)
        // actix counts connections per worker.
        .max_connections(limits.max_connections.div_ceil(workers))
        .backlog(u32::try_from(limits.max_connections).unwrap_or(u32::MAX))
        .client_request_timeout(limits.request_timeout)
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(limits.keep_alive)
        .shutdown_timeout(HTTP_SHUTDOWN.as_secs())
        .listen(listener)?
        .run();
        tracing::info!(
            port,
            max_connections = limits.max_connections,
            "listening (webhook: POST /webhook, health: GET /healthz)"
        );
        Ok(Running {
            port,
            server,
            admin_port,
            admin,
            admin_task,
            broadcaster,
            processor,
            sender,
            steps,
            worker,
            delivery_passes,
            stop,
            health,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.running.port
    }

    /// The staff console's bound port.
    pub fn admin_port(&self) -> u16 {
        self.running.admin_port
    }

    /// What `/healthz` reports from; the send engine reports LINE problems into it.
    pub fn health(&self) -> Health {
        self.running.health.clone()
    }

    /// The processor and the reply sender, when the caller drives them ([`Drive::Caller`]).
    pub fn steps(&self) -> Option<Steps> {
        self.running.steps.clone()
    }

    /// How many looks the in-process daily schedule has finished (each runs every day that is
    /// due on the clock); `None` when the schedule is off.
    pub fn delivery_passes(&self) -> Option<watch::Receiver<u64>> {
        self.running.delivery_passes.clone()
    }

    /// A handle that stops the server gracefully (as SIGTERM does).
    pub fn stop_handle(&self) -> actix_web::dev::ServerHandle {
        self.running.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or the stop handle); then the listener stops accepting and
    /// lets in-flight requests finish (at most `HTTP_SHUTDOWN`), the background tasks are told
    /// to stop and get `BACKGROUND_SHUTDOWN` to finish the step in hand, and whatever is still
    /// running is aborted: what it had not sent stays recorded and goes out after the restart.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self { running, lease } = self;
        let result = running.server.await;
        let stopping = Instant::now();
        running.admin.stop(true).await;
        let _ = running.admin_task.await;
        tracing::info!("shutting down: finishing the step in hand");
        let _ = running.stop.send(true);
        let deadline = tokio::time::Instant::from_std(stopping + BACKGROUND_SHUTDOWN);
        let tasks = [
            ("processor", running.processor),
            ("replies", running.sender),
            ("delivery", running.worker),
            ("broadcasts", running.broadcaster),
        ];
        let mut aborted = Vec::new();
        for (name, mut task) in tasks
            .into_iter()
            .filter_map(|(name, task)| Some((name, task?)))
        {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                aborted.push(name);
            }
        }
        if !aborted.is_empty() {
            tracing::warn!(
                ?aborted,
                waited_ms = stopping.elapsed().as_millis() as u64,
                "stopped tasks that had not finished in time"
            );
        }
        lease.release().await;
        tracing::info!(took_ms = stopping.elapsed().as_millis() as u64, "stopped");
        result.map_err(Into::into)
    }
}
