//! A double of the LINE platform, for tests, benchmarks and the sandbox. It accepts exactly
//! what messaging-api.yml accepts (reply, push, multicast), enforces single-use reply tokens and
//! retry keys (409 for a key seen in the last 24 hours), can enforce rate limits (the channel's,
//! and multicast's own) and the monthly limit, can inject 5xx answers and slow answers, records
//! what each user received, and builds signed webhook events as LINE would send them.

pub mod richmenu;
pub mod validate;

#[cfg(test)]
mod tests;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An injected fault, applied to the next message request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (5xx, or 429) without accepting the request.
    Status(u16),
    /// Accept the request, then answer only after this delay (the client times out).
    SlowAccept(Duration),
}

/// Which endpoint a message went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// `/v2/bot/message/reply`.
    Reply,
    /// `/v2/bot/message/push`.
    Push,
    /// `/v2/bot/message/multicast`.
    Multicast,
}

/// What one user received from an accepted message request (a multicast gives one to each
/// recipient, sharing the request's retry key and request id).
#[derive(Debug, Clone, Serialize)]
pub struct Delivered {
    /// Reply, push or multicast.
    pub via: Via,
    /// The recipient (for replies: the user the token was issued to).
    pub to: String,
    /// The message objects, as sent.
    pub messages: Vec<Value>,
    /// The retry key, if any.
    pub retry_key: Option<String>,
    /// The request id the double answered with.
    pub request_id: String,
    /// When it arrived, on the double's clock.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A message request that reached LINE's handling (past the contract, rate and monthly
/// checks), with what it was answered: the retries a sender made, with their token or key.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attempt {
    /// Reply, push or multicast.
    pub via: Via,
    /// The reply token (replies).
    pub reply_token: Option<String>,
    /// The retry key (pushes and multicasts).
    pub retry_key: Option<String>,
    /// The status answered.
    pub status: u16,
}

/// A request the double refused, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    /// Endpoint path.
    pub path: String,
    /// Status answered.
    pub status: u16,
    /// Why.
    pub message: String,
}

/// Counters.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// Accepted replies.
    pub replies: u64,
    /// Accepted pushes.
    pub pushes: u64,
    /// Accepted multicasts.
    pub multicasts: u64,
    /// Messages the accepted multicasts counted: one per recipient, as LINE counts them.
    pub multicast_recipients: u64,
    /// 409s for a reused retry key.
    pub duplicates: u64,
    /// 429s for the rate limit.
    pub rate_limited: u64,
    /// 400/401 refusals.
    pub refused: u64,
    /// Injected faults served.
    pub faults: u64,
}

struct TokenState {
    user: String,
    /// On the double's clock (the sandbox's, when it travels in time).
    issued: chrono::DateTime<chrono::Utc>,
    used: bool,
}

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, TokenState>,
    /// Accepted retry keys, with when (on the double's clock: the sandbox's travels too).
    retry_keys: HashMap<String, (String, chrono::DateTime<chrono::Utc>)>,
    delivered: Vec<Delivered>,
    attempts: Vec<Attempt>,
    refused: Vec<Refused>,
    /// Queued faults per target endpoint; `None` lets one request through untouched (so a
    /// fault can wait for the Nth request).
    faults: VecDeque<(Option<Via>, Option<Fault>)>,
    window: VecDeque<Instant>,
    multicast_window: VecDeque<Instant>,
    stats: Stats,
    monthly_limit: bool,
    token_revoked: bool,
    /// The month's target limit (`GET /v2/bot/message/quota`); pushes and multicasts (one per
    /// recipient) count against it.
    monthly_quota: Option<u64>,
    record: bool,
}

/// Settings of a double.
#[derive(Clone)]
pub struct DoubleConfig {
    /// The channel access token it accepts.
    pub access_token: String,
    /// The channel secret it signs webhooks with.
    pub channel_secret: String,
    /// Message requests per second it accepts, all endpoints together (sliding one-second
    /// window); `None`: unlimited.
    pub rate_limit: Option<u32>,
    /// Multicast requests per second it accepts, besides `rate_limit` (LINE: 200); `None`:
    /// unlimited.
    pub multicast_rate_limit: Option<u32>,
    /// Keep every delivered message (tests); off for long benchmarks keeps memory flat.
    pub record: bool,
    /// The clock of reply tokens and event timestamps (the sandbox passes its own).
    pub clock: crate::clock::SharedClock,
}

impl Default for DoubleConfig {
    fn default() -> Self {
        Self {
            access_token: "test-access-token".into(),
            channel_secret: "test-channel-secret".into(),
            rate_limit: None,
            multicast_rate_limit: Some(200),
            record: true,
            clock: Arc::new(crate::clock::SystemClock),
        }
    }
}

impl std::fmt::Debug for DoubleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoubleConfig")
            .field("rate_limit", &self.rate_limit)
            .field("multicast_rate_limit", &self.multicast_rate_limit)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

struct Shared {
    config: DoubleConfig,
    inner: Mutex<Inner>,
    per_user: Mutex<HashMap<String, u64>>,
    richmenus: Mutex<richmenu::State>,
    seq: AtomicU64,
    last_timestamp: std::sync::atomic::AtomicI64,
}

/// A running double.
#[derive(Clone)]
pub struct LineDouble {
    shared: Arc<Shared>,
    port: u16,
    /// The data host's (rich menu images): its own listener, as LINE's is another host.
    data_port: u16,
    http: reqwest::Client,
}

fn error(status: u16, message: &str, details: Vec<validate::Problem>) -> HttpResponse {
    let mut body = json!({ "message": message });
    if !details.is_empty() {
        body["details"] = details
            .into_iter()
            .map(|p| json!({ "message": p.message, "property": p.property }))
            .collect();
    }
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    )
    .insert_header(("x-line-request-id", uuid::Uuid::new_v4().to_string()))
    .json(body)
}

impl Inner {
    /// Messages counted this month: a push counts one, a multicast one per recipient.
    fn counted(&self) -> u64 {
        self.stats.pushes + self.stats.multicast_recipients
    }
}

/// Drops what left the one-second window; true if it already holds `limit` requests.
fn window_full(window: &mut VecDeque<Instant>, limit: Option<u32>, now: Instant) -> bool {
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
    {
        window.pop_front();
    }
    limit.is_some_and(|l| window.len() >= l as usize)
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refuse(&self, inner: &mut Inner, path: &str, status: u16, message: String) {
        inner.stats.refused += 1;
        inner.refused.push(Refused {
            path: path.into(),
            status,
            message,
        });
    }
}

async fn message_endpoint(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let path = req.path().to_owned();
    let via = if path.ends_with("/push") {
        Via::Push
    } else if path.ends_with("/multicast") {
        Via::Multicast
    } else {
        Via::Reply
    };
    let auth_ok = authorized(&req, &shared);
    if !auth_ok {
        let mut inner = shared.lock();
        shared.refuse(&mut inner, &path, 401, "authentication failed".into());
        return error(
            401,
            "Authentication failed. Confirm that the access token in the authorization header is valid.",
            vec![],
        );
    }
    let retry_key = req
        .headers()
        .get("x-line-retry-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let mut problems = Vec::new();
    let v = match parsed {
        Ok(v) if v.is_object() => v,
        _ => {
            let mut inner = shared.lock();
            shared.refuse(
                &mut inner,
                &path,
                400,
                "the request body is not a JSON object".into(),
            );
            return error(
                400,
                "The request body has 1 error(s)",
                vec![validate::Problem {
                    property: "".into(),
                    message: "not a JSON object".into(),
                }],
            );
        }
    };
    validate::messages(v.get("messages"), &mut problems);
    match via {
        Via::Push | Via::Multicast => {
            if via == Via::Push {
                match v.get("to").and_then(Value::as_str) {
                    Some(to) if !to.is_empty() => {}
                    _ => problems.push(validate::Problem {
                        property: "to".into(),
                        message: "is required".into(),
                    }),
                }
            } else {
                validate::multicast_to(v.get("to"), &mut problems);
            }
            if let Some(k) = &retry_key
                && !validate::retry_key(k)
            {
                problems.push(validate::Problem {
                    property: "X-Line-Retry-Key".into(),
                    message: "must be a UUID".into(),
                });
            }
        }
        Via::Reply => {
            if retry_key.is_some() {
                problems.push(validate::Problem {
                    property: "X-Line-Retry-Key".into(),
                    message: "is not accepted by the reply endpoint".into(),
                });
            }
            if v.get("replyToken")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                problems.push(validate::Problem {
                    property: "replyToken".into(),
                    message: "is required".into(),
                });
            }
        }
    }
    // Who receives it (for replies: found from the token below).
    let recipients: Vec<String> = match via {
        Via::Push => vec![v["to"].as_str().unwrap_or_default().to_owned()],
        Via::Multicast => v["to"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        Via::Reply => Vec::new(),
    };
    // Messages this request counts against the month (replies are free).
    let counted = recipients.len() as u64;
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut slow = None;
    {
        let mut guard = shared.lock();
        let inner = &mut *guard;
        if !problems.is_empty() {
            let msg = problems
                .iter()
                .map(|p| format!("{}: {}", p.property, p.message))
                .collect::<Vec<_>>()
                .join("; ");
            shared.refuse(inner, &path, 400, msg);
            return error(
                400,
                &format!("The request body has {} error(s)", problems.len()),
                problems,
            );
        }
        // A multicast that would go past the target limit is refused whole.
        let quota_used_up = counted > 0
            && inner
                .monthly_quota
                .is_some_and(|q| inner.counted() + counted > q);
        if (inner.monthly_limit && counted > 0) || quota_used_up {
            return error(429, "You have reached your monthly limit.", vec![]);
        }
        let now = Instant::now();
        let over_channel = window_full(&mut inner.window, shared.config.rate_limit, now);
        let over_multicast = via == Via::Multicast
            && window_full(
                &mut inner.multicast_window,
                shared.config.multicast_rate_limit,
                now,
            );
        if over_channel || over_multicast {
            inner.stats.rate_limited += 1;
            return error(
                429,
                "The API rate limit has been exceeded. Try again later.",
                vec![],
            );
        }
        if shared.config.rate_limit.is_some() {
            inner.window.push_back(now);
        }
        if via == Via::Multicast && shared.config.multicast_rate_limit.is_some() {
            inner.multicast_window.push_back(now);
        }
        let attempt = |status: u16| Attempt {
            via,
            reply_token: v["replyToken"].as_str().map(str::to_owned),
            retry_key: retry_key.clone(),
            status,
        };
        let fault = match inner.faults.front() {
            Some((target, _)) if target.is_none_or(|t| t == via) => {
                inner.faults.pop_front().and_then(|(_, f)| f)
            }
            _ => None,
        };
        match fault {
            Some(Fault::Status(code)) => {
                inner.stats.faults += 1;
                if inner.record {
                    inner.attempts.push(attempt(code));
                }
                return error(code, "injected fault", vec![]);
            }
            Some(Fault::SlowAccept(d)) => {
                inner.stats.faults += 1;
                slow = Some(d);
            }
            None => {}
        }
        if let Some(k) = &retry_key {
            let now = shared.config.clock.now();
            if let Some((accepted, at)) = inner.retry_keys.get(k)
                && now.signed_duration_since(*at) < chrono::Duration::hours(24)
            {
                let accepted = accepted.clone();
                inner.stats.duplicates += 1;
                if inner.record {
                    inner.attempts.push(attempt(409));
                }
                return HttpResponse::Conflict()
                    .insert_header(("x-line-request-id", request_id))
                    .insert_header(("x-line-accepted-request-id", accepted))
                    .json(json!({ "message": "The retry key is already accepted" }));
            }
            inner
                .retry_keys
                .insert(k.clone(), (request_id.clone(), now));
        }
        let to = if via == Via::Reply {
            let token = v["replyToken"].as_str().unwrap_or_default();
            match inner.tokens.get_mut(token) {
                Some(t)
                    if !t.used
                        && shared
                            .config
                            .clock
                            .now()
                            .signed_duration_since(t.issued)
                            .num_seconds()
                            < 60 =>
                {
                    t.used = true;
                    vec![t.user.clone()]
                }
                _ => {
                    if inner.record {
                        inner.attempts.push(attempt(400));
                    }
                    shared.refuse(inner, &path, 400, "invalid reply token".into());
                    return error(400, "Invalid reply token", vec![]);
                }
            }
        } else {
            recipients
        };
        match via {
            Via::Reply => inner.stats.replies += 1,
            Via::Push => inner.stats.pushes += 1,
            Via::Multicast => {
                inner.stats.multicasts += 1;
                inner.stats.multicast_recipients += counted;
            }
        }
        if inner.record {
            inner.attempts.push(attempt(200));
            let messages = v["messages"].as_array().cloned().unwrap_or_default();
            let at = shared.config.clock.now();
            for user in &to {
                inner.delivered.push(Delivered {
                    via,
                    to: user.clone(),
                    messages: messages.clone(),
                    retry_key: retry_key.clone(),
                    request_id: request_id.clone(),
                    at,
                });
            }
        }
        drop(guard);
        let mut per_user = shared.per_user.lock().unwrap_or_else(|e| e.into_inner());
        for user in to {
            *per_user.entry(user).or_default() += 1;
        }
    }
    if let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    if via == Via::Multicast {
        // MulticastResponse is an empty object.
        return HttpResponse::Ok()
            .insert_header(("x-line-request-id", request_id))
            .json(json!({}));
    }
    let sent: Vec<Value> = v["messages"]
        .as_array()
        .map(|a| a.iter().map(|_| json!({ "id": shared.seq.fetch_add(1, Ordering::Relaxed).to_string(), "quoteToken": "q" })).collect())
        .unwrap_or_default();
    HttpResponse::Ok()
        .insert_header(("x-line-request-id", request_id))
        .json(json!({ "sentMessages": sent }))
}

fn authorized(req: &HttpRequest, shared: &Shared) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", shared.config.access_token))
        && !shared.lock().token_revoked
}

/// `GET /v2/bot/message/quota`.
async fn quota(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    if !authorized(&req, &shared) {
        return error(401, "Authentication failed.", vec![]);
    }
    match shared.lock().monthly_quota {
        Some(q) => HttpResponse::Ok().json(json!({ "type": "limited", "value": q })),
        None => HttpResponse::Ok().json(json!({ "type": "none" })),
    }
}

/// `GET /v2/bot/message/quota/consumption`: pushes accepted, and multicasts one per recipient
/// (replies are free).
async fn quota_consumption(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    if !authorized(&req, &shared) {
        return error(401, "Authentication failed.", vec![]);
    }
    HttpResponse::Ok().json(json!({ "totalUsage": shared.lock().counted() }))
}

async fn control_stats(shared: web::Data<Shared>) -> HttpResponse {
    let inner = shared.lock();
    let per_user = shared.per_user.lock().unwrap_or_else(|e| e.into_inner());
    let users_with_more_than_one = per_user.values().filter(|n| **n > 1).count();
    HttpResponse::Ok().json(json!({
        "stats": inner.stats,
        "recipients": per_user.len(),
        "recipients_with_more_than_one": users_with_more_than_one,
        "refused": inner.refused.iter().rev().take(20).collect::<Vec<_>>(),
    }))
}

async fn control_per_user(shared: web::Data<Shared>) -> HttpResponse {
    let per_user = shared.per_user.lock().unwrap_or_else(|e| e.into_inner());
    HttpResponse::Ok().json(&*per_user)
}

async fn control_messages(
    query: web::Query<HashMap<String, String>>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let inner = shared.lock();
    let to = query.get("to");
    let list: Vec<&Delivered> = inner
        .delivered
        .iter()
        .filter(|d| to.is_none_or(|t| *t == d.to))
        .collect();
    HttpResponse::Ok().json(list)
}

async fn control_reset(shared: web::Data<Shared>) -> HttpResponse {
    let mut inner = shared.lock();
    let record = inner.record;
    *inner = Inner {
        record,
        ..Inner::default()
    };
    shared
        .per_user
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    HttpResponse::Ok().json(json!({ "reset": true }))
}

async fn not_found() -> HttpResponse {
    error(404, "Not found", vec![])
}

impl LineDouble {
    /// Starts a double on `addr` (port 0: any free port) in the current runtime.
    pub fn start(config: DoubleConfig, addr: &str) -> anyhow::Result<Self> {
        let record = config.record;
        let shared = Arc::new(Shared {
            config,
            inner: Mutex::new(Inner {
                record,
                ..Inner::default()
            }),
            per_user: Mutex::new(HashMap::new()),
            richmenus: Mutex::default(),
            seq: AtomicU64::new(1),
            last_timestamp: std::sync::atomic::AtomicI64::new(0),
        });
        let listener = TcpListener::bind(addr)?;
        let port = listener.local_addr()?.port();
        let listener_ip = listener.local_addr()?.ip();
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
                .route("/v2/bot/message/reply", web::post().to(message_endpoint))
                .route("/v2/bot/message/push", web::post().to(message_endpoint))
                .route(
                    "/v2/bot/message/multicast",
                    web::post().to(message_endpoint),
                )
                .route("/v2/bot/message/quota", web::get().to(quota))
                .route(
                    "/v2/bot/message/quota/consumption",
                    web::get().to(quota_consumption),
                )
                .route("/__double/stats", web::get().to(control_stats))
                .route("/__double/per-user", web::get().to(control_per_user))
                .route("/__double/messages", web::get().to(control_messages))
                .route("/__double/reset", web::post().to(control_reset))
                .configure(richmenu::api_routes)
                .default_service(web::to(not_found))
        })
        .listen(listener)?
        .disable_signals()
        .run();
        tokio::spawn(server);
        // Any free port on the same interface.
        let data_listener = TcpListener::bind((listener_ip, 0))?;
        let data_port = data_listener.local_addr()?.port();
        let data = web::Data::from(shared.clone());
        let data_server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
                .configure(richmenu::data_routes)
                .default_service(web::to(not_found))
        })
        .listen(data_listener)?
        .disable_signals()
        .workers(1)
        .run();
        tokio::spawn(data_server);
        Ok(Self {
            shared,
            port,
            data_port,
            http: reqwest::Client::new(),
        })
    }

    /// The base URL to give the service as `LINE_API_BASE`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The base URL to give the service as `LINE_DATA_API_BASE` (rich menu images).
    pub fn data_base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.data_port)
    }

    /// The channel secret webhooks are signed with.
    pub fn channel_secret(&self) -> &str {
        &self.shared.config.channel_secret
    }

    /// The access token the double accepts.
    pub fn access_token(&self) -> &str {
        &self.shared.config.access_token
    }

    /// Queues a fault for each of the next `n` message requests.
    pub fn inject(&self, fault: Fault, n: usize) {
        self.inject_on(None, fault, n);
    }

    /// Queues a fault for each of the next `n` requests to one endpoint (`None`: any).
    pub fn inject_on(&self, via: Option<Via>, fault: Fault, n: usize) {
        let mut inner = self.shared.lock();
        for _ in 0..n {
            inner.faults.push_back((via, Some(fault)));
        }
    }

    /// Queues a fault for the `nth` next request to one endpoint (`None`: any; 1: the next),
    /// letting the ones before it through: "the 3rd multicast is delivered but its answer is
    /// lost" is `inject_nth(Some(Via::Multicast), 3, Fault::SlowAccept(..))`.
    pub fn inject_nth(&self, via: Option<Via>, nth: usize, fault: Fault) {
        let mut inner = self.shared.lock();
        for _ in 1..nth {
            inner.faults.push_back((via, None));
        }
        inner.faults.push_back((via, Some(fault)));
    }

    /// Turns the monthly-limit answer on or off.
    pub fn set_monthly_limit(&self, on: bool) {
        self.shared.lock().monthly_limit = on;
    }

    /// Sets the month's target limit (`None`: no limit); accepted pushes count against it, and
    /// accepted multicasts one per recipient.
    pub fn set_monthly_quota(&self, quota: Option<u64>) {
        self.shared.lock().monthly_quota = quota;
    }

    /// Revokes the channel access token (every request answers 401) or restores it.
    pub fn set_token_revoked(&self, revoked: bool) {
        self.shared.lock().token_revoked = revoked;
    }

    /// What every user received, in order (one record per multicast recipient).
    pub fn delivered(&self) -> Vec<Delivered> {
        self.shared.lock().delivered.clone()
    }

    /// Every message request that reached LINE's handling, in order, with its answer.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.lock().attempts.clone()
    }

    /// What one user received, in order.
    pub fn delivered_to(&self, user: &str) -> Vec<Delivered> {
        self.shared
            .lock()
            .delivered
            .iter()
            .filter(|d| d.to == user)
            .cloned()
            .collect()
    }

    /// The texts (or alt texts) one user received, in order.
    pub fn texts_to(&self, user: &str) -> Vec<String> {
        self.delivered_to(user)
            .iter()
            .flat_map(|d| d.messages.iter())
            .map(|m| {
                m.get("text")
                    .or_else(|| m.get("altText"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    /// Every refused request.
    pub fn refused(&self) -> Vec<Refused> {
        self.shared.lock().refused.clone()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    fn next(&self) -> u64 {
        self.shared.seq.fetch_add(1, Ordering::Relaxed)
    }

    fn reply_token(&self, user: &str) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.shared.lock().tokens.insert(
            token.clone(),
            TokenState {
                user: user.into(),
                issued: self.shared.config.clock.now(),
                used: false,
            },
        );
        token
    }

    fn base_event(&self, kind: &str, user: &str) -> Value {
        let n = self.next();
        // Strictly increasing, like the order a person acts in.
        let now = self.shared.config.clock.now().timestamp_millis();
        let prev = self.shared.last_timestamp.fetch_max(now, Ordering::SeqCst);
        let ts = if prev >= now {
            self.shared.last_timestamp.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            now
        };
        json!({
            "type": kind,
            "mode": "active",
            "timestamp": ts,
            "source": { "type": "user", "userId": user },
            "webhookEventId": format!("01DOUBLE{n:018}"),
            "deliveryContext": { "isRedelivery": false },
        })
    }

    /// A `follow` event with a fresh reply token.
    pub fn follow_event(&self, user: &str, unblocked: bool) -> Value {
        let mut e = self.base_event("follow", user);
        e["replyToken"] = self.reply_token(user).into();
        e["follow"] = json!({ "isUnblocked": unblocked });
        e
    }

    /// An `unfollow` event.
    pub fn unfollow_event(&self, user: &str) -> Value {
        self.base_event("unfollow", user)
    }

    /// A text message event with a fresh reply token.
    pub fn text_event(&self, user: &str, text: &str) -> Value {
        let mut e = self.base_event("message", user);
        e["replyToken"] = self.reply_token(user).into();
        e["message"] = json!({ "type": "text", "id": self.next().to_string(), "quoteToken": "q", "text": text });
        e
    }

    /// A sticker message event with a fresh reply token.
    pub fn sticker_event(&self, user: &str) -> Value {
        let mut e = self.base_event("message", user);
        e["replyToken"] = self.reply_token(user).into();
        e["message"] = json!({ "type": "sticker", "id": self.next().to_string(), "quoteToken": "q", "packageId": "446", "stickerId": "1988", "stickerResourceType": "STATIC" });
        e
    }

    /// A postback event (a button's `data`, and the picked date or time) with a fresh reply
    /// token.
    pub fn postback_event(&self, user: &str, data: &str, params: Option<Value>) -> Value {
        let mut e = self.base_event("postback", user);
        e["replyToken"] = self.reply_token(user).into();
        e["postback"] = json!({ "data": data });
        if let Some(p) = params {
            e["postback"]["params"] = p;
        }
        e
    }

    /// A postback event from the date picker with a fresh reply token.
    pub fn date_event(&self, user: &str, data: &str, date: &str) -> Value {
        let mut e = self.base_event("postback", user);
        e["replyToken"] = self.reply_token(user).into();
        e["postback"] = json!({ "data": data, "params": { "date": date } });
        e
    }

    /// A callback body holding `events`.
    pub fn callback_body(events: &[Value]) -> String {
        json!({ "destination": "U0000000000000000000000000000000", "events": events }).to_string()
    }

    /// Sends `events` to a webhook URL, signed as LINE signs them; returns the HTTP status.
    pub async fn send_webhook(&self, url: &str, events: &[Value]) -> anyhow::Result<u16> {
        let body = Self::callback_body(events);
        let sig = crate::webhook::sign(self.channel_secret(), body.as_bytes());
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-line-signature", sig)
            .body(body)
            .send()
            .await?;
        Ok(resp.status().as_u16())
    }
}

/// A LINE user id for test user number `n`.
pub fn user_id(n: u64) -> String {
    format!("U{n:032x}")
}

/// `yorisoi line-double` arguments.
#[derive(Debug, clap::Args)]
pub struct DoubleArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: String,
    /// The channel access token it accepts.
    #[arg(
        long,
        env = "LINE_CHANNEL_ACCESS_TOKEN",
        default_value = "test-access-token"
    )]
    pub token: String,
    /// The channel secret.
    #[arg(
        long,
        env = "LINE_CHANNEL_SECRET",
        default_value = "test-channel-secret"
    )]
    pub secret: String,
    /// Enforce this many message requests per second (429 beyond).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Enforce this many multicast requests per second (429 beyond; 0: unlimited).
    #[arg(long, default_value_t = 200)]
    pub multicast_rate: u32,
    /// Keep every delivered message in memory (off: counters only).
    #[arg(long)]
    pub record: bool,
}

/// Runs a double until interrupted.
pub async fn serve_forever(args: DoubleArgs) -> anyhow::Result<()> {
    let double = LineDouble::start(
        DoubleConfig {
            access_token: args.token,
            channel_secret: args.secret,
            rate_limit: args.rate,
            multicast_rate_limit: (args.multicast_rate > 0).then_some(args.multicast_rate),
            record: args.record,
            ..DoubleConfig::default()
        },
        &args.listen,
    )?;
    eprintln!(
        "LINE double listening on {} (stats: GET /__double/stats); data API on {}",
        double.base_url(),
        double.data_base_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
