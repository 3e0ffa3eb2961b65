//! One client (one connection pool) for every request yorisoi sends to LINE.

use super::message::Message;
use super::outcome::{Halt, SendOutcome};
use crate::config::Secret;
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// How failed requests are retried: 5xx, timeouts and connection errors only.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubled each time.
    pub base_delay: Duration,
    /// Longest wait between tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, retry: u32) -> Duration {
        self.base_delay
            .saturating_mul(1 << retry.min(16))
            .min(self.max_delay)
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct LineClientConfig {
    /// `https://api.line.me` or a double.
    pub api_base: String,
    /// `https://api-data.line.me` (images of rich menus) or a double.
    pub data_base: String,
    /// Channel access token.
    pub access_token: Secret,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Connections kept open per host.
    pub pool_size: usize,
    /// Requests per second this process sends, all senders together (LINE allows 2,000/s per
    /// channel for push; one process delivers at a time, so this is the channel's rate).
    pub rate: u32,
    /// Multicast requests per second (LINE allows 200/s per channel); each one also takes a
    /// permit of `rate`, so broadcasts and the daily push share the channel's budget.
    pub multicast_rate: u32,
}

/// The month's message quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The target limit, if one is set.
    pub limit: Option<u64>,
    /// Messages counted so far this month (a push counts one, a multicast one per recipient).
    pub used: u64,
}

impl Quota {
    /// Messages left this month (`None`: no limit).
    pub fn left(&self) -> Option<u64> {
        self.limit.map(|l| l.saturating_sub(self.used))
    }
}

#[derive(Deserialize)]
struct ErrorResponse {
    message: String,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    property: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplyRequest<'a> {
    reply_token: &'a str,
    messages: &'a [Message],
}

#[derive(Serialize)]
struct PushRequest<'a> {
    to: &'a str,
    messages: &'a [Message],
}

#[derive(Serialize)]
struct MulticastRequest<'a> {
    to: &'a [String],
    messages: &'a [Message],
}

type Limiter = governor::RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    governor::clock::DefaultClock,
>;

/// LINE's multicast limit per channel, requests per second.
const LINE_MULTICAST_LIMIT: u32 = 200;

fn new_limiter(rate: u32, burst: u32) -> Arc<Limiter> {
    let per_second = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Arc::new(governor::RateLimiter::direct(
        governor::Quota::per_second(per_second).allow_burst(burst),
    ))
}

/// The Messaging API client: one connection pool, one rate limiter (and one more for
/// multicasts) and one view of LINE's health for every sender in the process (clones share
/// them).
#[derive(Clone)]
pub struct LineClient {
    http: reqwest::Client,
    config: LineClientConfig,
    limiter: Arc<Limiter>,
    multicast_limiter: Arc<Limiter>,
    halted: Arc<Mutex<Option<Halt>>>,
}

impl std::fmt::Debug for LineClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LineClient {
    /// Builds the client and its connection pool.
    pub fn new(config: LineClientConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(config.pool_size)
            .user_agent(concat!("yorisoi/", env!("CARGO_PKG_VERSION")))
            .build()?;
        // A small burst: LINE counts requests in a sliding second.
        let limiter = new_limiter(config.rate, (config.rate / 200).clamp(1, 10));
        // A burst of 2 keeps a slot taken late from being lost for good (190/s reached 185/s
        // with 1), while a sliding second stays under LINE's 200 (rate + burst).
        let multicast_burst = if config.multicast_rate + 2 <= LINE_MULTICAST_LIMIT {
            2
        } else {
            1
        };
        let multicast_limiter = new_limiter(config.multicast_rate, multicast_burst);
        Ok(Self {
            http,
            config,
            limiter,
            multicast_limiter,
            halted: Arc::default(),
        })
    }

    /// The connection pool, for the other endpoints' requests (`line/richmenu.rs`).
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The settings.
    pub(super) fn config(&self) -> &LineClientConfig {
        &self.config
    }

    /// Waits for a permit of the channel's rate, the one pushes take.
    pub(super) async fn paced(&self) {
        self.limiter.until_ready().await;
    }

    /// Why LINE refuses to take messages now (revoked token; the monthly limit, which stops
    /// pushes and multicasts only), if it did on the last request; cleared by the next accepted
    /// request (for the monthly limit, the next accepted push or multicast).
    pub fn halted(&self) -> Option<Halt> {
        self.halted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// This month's message quota and use (<https://developers.line.biz/en/reference/messaging-api/#get-quota>,
    /// <https://developers.line.biz/en/reference/messaging-api/#get-consumption>): `None` when
    /// LINE did not answer.
    pub async fn quota(&self) -> Option<Quota> {
        #[derive(Deserialize)]
        struct Limit {
            #[serde(rename = "type")]
            kind: String,
            value: Option<u64>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Usage {
            total_usage: u64,
        }
        async fn get<T: serde::de::DeserializeOwned>(c: &LineClient, path: &str) -> Option<T> {
            let resp = c
                .http
                .get(format!("{}{}", c.config.api_base, path))
                .bearer_auth(c.config.access_token.expose())
                .send()
                .await
                .ok()?;
            if !resp.status().is_success() {
                return None;
            }
            resp.json().await.ok()
        }
        let limit: Limit = get(self, "/v2/bot/message/quota").await?;
        let usage: Usage = get(self, "/v2/bot/message/quota/consumption").await?;
        Some(Quota {
            limit: (limit.kind == "limited").then_some(limit.value).flatten(),
            used: usage.total_usage,
        })
    }

    /// The longest one `push` or `multicast` can take, retries included: a claim on a send must
    /// outlive it.
    pub fn worst_case(&self) -> Duration {
        let p = self.config.retry;
        let waits: Duration = (0..p.attempts.saturating_sub(1)).map(|i| p.delay(i)).sum();
        // Each try: waiting for the rate limiter, connecting, then the request itself.
        waits + (self.config.timeout * 2 + Duration::from_secs(1)) * p.attempts.max(1)
    }

    fn note(&self, outcome: &SendOutcome, counted: bool) {
        let mut halted = self.halted.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            SendOutcome::Halt(h) => {
                if halted.as_ref() != Some(h) {
                    tracing::error!(cause = %h, "LINE refuses messages: sending stops until the cause is fixed");
                }
                *halted = Some(h.clone());
            }
            // LINE took or judged the request: the token works. Replies are free, so only a push
            // or a multicast taken (both keyed, both counted) says the month's limit is lifted.
            o if (o.delivered()
                || matches!(
                    o,
                    SendOutcome::InvalidReplyToken | SendOutcome::Rejected { .. }
                ))
                && halted
                    .as_ref()
                    .is_some_and(|h| counted || *h != Halt::MonthlyLimit) =>
            {
                *halted = None;
                tracing::info!("LINE accepts messages again");
            }
            _ => {}
        }
    }

    /// Sends a reply (<https://developers.line.biz/en/reference/messaging-api/#send-reply-message>),
    /// once: a reply token is single-use, so the caller decides about a retry
    /// ([`SendOutcome::Unknown`]) with the same token.
    pub async fn reply(&self, reply_token: &str, messages: &[Message]) -> SendOutcome {
        let body = ReplyRequest {
            reply_token,
            messages,
        };
        self.attempt("/v2/bot/message/reply", &body, None, None)
            .await
    }

    /// Sends a push message (<https://developers.line.biz/en/reference/messaging-api/#send-push-message>)
    /// with a retry key, retrying 5xx and timeouts with the same key (409 then means delivered
    /// by an earlier try).
    pub async fn push(&self, to: &str, messages: &[Message], retry_key: Uuid) -> SendOutcome {
        let body = PushRequest { to, messages };
        self.keyed("/v2/bot/message/push", &body, retry_key, None)
            .await
    }

    /// Sends one multicast message to 1–500 users (<https://developers.line.biz/en/reference/messaging-api/#send-multicast-message>)
    /// with a retry key, retried as [`LineClient::push`] is. Paced by the multicast rate and by
    /// the channel's rate shared with pushes. An empty list, or one over 500, LINE refuses with
    /// 400 ([`SendOutcome::Rejected`]).
    pub async fn multicast(
        &self,
        to: &[String],
        messages: &[Message],
        retry_key: Uuid,
    ) -> SendOutcome {
        let body = MulticastRequest { to, messages };
        let own = Some(&*self.multicast_limiter);
        self.keyed("/v2/bot/message/multicast", &body, retry_key, own)
            .await
    }

    /// One keyed request, retrying 5xx, timeouts and connection errors with the same key.
    async fn keyed<B: Serialize>(
        &self,
        path: &'static str,
        body: &B,
        retry_key: Uuid,
        own_limiter: Option<&Limiter>,
    ) -> SendOutcome {
        let policy = self.config.retry;
        let mut outcome = SendOutcome::Unknown("not tried".into());
        for attempt in 0..policy.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(policy.delay(attempt - 1)).await;
            }
            outcome = self.attempt(path, body, Some(retry_key), own_limiter).await;
            match &outcome {
                SendOutcome::Unknown(reason) | SendOutcome::NotSent(reason) => {
                    tracing::warn!(path, attempt = attempt + 1, %reason, "request failed, will retry with the same key");
                }
                _ => return outcome,
            }
        }
        outcome
    }

    /// One request. `own_limiter` is the endpoint's own rate, taken before the channel's so
    /// that the shared permit is spent just before the request leaves.
    async fn attempt<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        retry_key: Option<Uuid>,
        own_limiter: Option<&Limiter>,
    ) -> SendOutcome {
        if let Some(own) = own_limiter {
            own.until_ready().await;
        }
        self.limiter.until_ready().await;
        let mut req = self
            .http
            .post(format!("{}{}", self.config.api_base, path))
            .bearer_auth(self.config.access_token.expose())
            .json(body);
        if let Some(key) = retry_key {
            req = req.header("X-Line-Retry-Key", key.hyphenated().to_string());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            // Transport errors are reduced to their kind: reqwest's text names the URL only,
            // but nothing of the request's content should reach a log.
            // No connection: the request never left (a connect timeout included).
            Err(e) if e.is_connect() => return SendOutcome::NotSent("connection failed".into()),
            Err(e) if e.is_timeout() => return SendOutcome::Unknown("timeout".into()),
            Err(_) => return SendOutcome::Unknown("transport error".into()),
        };
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let request_id = header("x-line-request-id");
        let accepted_id = header("x-line-accepted-request-id");
        let outcome = if resp.status().is_success() {
            SendOutcome::Sent { request_id }
        } else {
            let text = resp.text().await.unwrap_or_default();
            let (message, details) = match serde_json::from_str::<ErrorResponse>(&text) {
                Ok(e) => (e.message, e.details),
                Err(_) => (
                    format!("unreadable error body ({} bytes)", text.len()),
                    Vec::new(),
                ),
            };
            // LINE's details name properties and rules, never the values sent.
            let details: Vec<String> = details
                .into_iter()
                .map(|d| {
                    format!(
                        "{}: {}",
                        d.property.unwrap_or_default(),
                        d.message.unwrap_or_default()
                    )
                })
                .collect();
            if status == 409 && retry_key.is_some() {
                // Expected on every rerun after a crash: delivered before, not again.
                tracing::debug!(path, request_id = ?request_id, "retry key already accepted (409)");
            } else {
                tracing::warn!(path, status, request_id = ?request_id, line_message = %message, details = ?details, "LINE request failed");
            }
            let message = if details.is_empty() {
                message
            } else {
                format!("{message} ({})", details.join("; "))
            };
            SendOutcome::from_status(
                status,
                message,
                request_id,
                accepted_id,
                retry_key.is_some(),
            )
        };
        self.note(&outcome, retry_key.is_some());
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line_double::{DoubleConfig, Fault, LineDouble, Via, user_id};
    use std::time::Instant;

    fn double() -> LineDouble {
        LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").expect("double starts")
    }

    fn client(d: &LineDouble, rate: u32, multicast_rate: u32) -> LineClient {
        LineClient::new(LineClientConfig {
            api_base: d.base_url(),
            data_base: d.data_base_url(),
            access_token: Secret::new(d.access_token()),
            timeout: Duration::from_millis(300),
            retry: RetryPolicy {
                attempts: 5,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
            },
            pool_size: 4,
            rate,
            multicast_rate,
        })
        .unwrap()
    }

    fn users(n: u64) -> Vec<String> {
        (1..=n).map(user_id).collect()
    }

    fn hello() -> Vec<Message> {
        vec![Message::text("お知らせ")]
    }

    #[tokio::test]
    async fn a_multicast_reaches_every_recipient_once() {
        let d = double();
        let c = client(&d, 1_000, 200);
        let to = users(3);
        let key = Uuid::new_v4();
        let outcome = c.multicast(&to, &hello(), key).await;
        assert!(
            matches!(
                outcome,
                SendOutcome::Sent {
                    request_id: Some(_)
                }
            ),
            "{outcome:?}"
        );
        for u in &to {
            let got = d.delivered_to(u);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].via, Via::Multicast);
            assert_eq!(got[0].retry_key, Some(key.hyphenated().to_string()));
        }
        assert!(d.refused().is_empty(), "{:?}", d.refused());
    }

    #[tokio::test]
    async fn a_5xx_is_retried_with_the_same_key_until_taken() {
        let d = double();
        let c = client(&d, 1_000, 200);
        d.inject_on(Some(Via::Multicast), Fault::Status(500), 2);
        let key = Uuid::new_v4();
        let outcome = c.multicast(&users(2), &hello(), key).await;
        assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
        let attempts = d.attempts();
        assert_eq!(
            attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
            vec![500, 500, 200]
        );
        assert!(
            attempts
                .iter()
                .all(|a| a.via == Via::Multicast
                    && a.retry_key == Some(key.hyphenated().to_string()))
        );
        assert_eq!(d.delivered_to(&user_id(2)).len(), 1);
    }

    #[tokio::test]
    async fn a_409_for_the_key_means_already_accepted() {
        let d = double();
        let c = client(&d, 1_000, 200);
        let to = users(2);
        // The first try is taken but its answer outlives the client's timeout.
        d.inject_nth(
            Some(Via::Multicast),
            1,
            Fault::SlowAccept(Duration::from_millis(1_000)),
        );
        let key = Uuid::new_v4();
        let outcome = c.multicast(&to, &hello(), key).await;
        let first = d.delivered()[0].request_id.clone();
        assert_eq!(
            outcome,
            SendOutcome::AlreadyAccepted {
                request_id: Some(first.clone())
            }
        );
        // A rerun with the same key (after a crash) is the same.
        let again = c.multicast(&to, &hello(), key).await;
        assert_eq!(
            again,
            SendOutcome::AlreadyAccepted {
                request_id: Some(first)
            }
        );
        assert!(again.delivered());
        assert_eq!(d.delivered_to(&to[0]).len(), 1, "delivered once");
        assert_eq!(
            d.attempts().iter().map(|a| a.status).collect::<Vec<_>>(),
            vec![200, 409, 409]
        );
    }

    #[tokio::test]
    async fn a_refused_multicast_is_not_retried() {
        let d = double();
        let c = client(&d, 1_000, 200);
        let outcome = c.multicast(&users(501), &hello(), Uuid::new_v4()).await;
        assert!(
            matches!(outcome, SendOutcome::Rejected { status: 400, .. }),
            "{outcome:?}"
        );
        let outcome = c.multicast(&[], &hello(), Uuid::new_v4()).await;
        assert!(
            matches!(outcome, SendOutcome::Rejected { status: 400, .. }),
            "{outcome:?}"
        );
        assert_eq!(d.refused().len(), 2, "one request each");
        assert!(d.delivered().is_empty());
    }

    #[tokio::test]
    async fn a_refused_channel_halts_multicasts_and_a_taken_one_clears_it() {
        let d = double();
        let c = client(&d, 1_000, 200);
        d.set_token_revoked(true);
        let outcome = c.multicast(&users(1), &hello(), Uuid::new_v4()).await;
        assert_eq!(
            outcome,
            SendOutcome::Halt(Halt::Unauthorized { status: 401 })
        );
        assert_eq!(c.halted(), Some(Halt::Unauthorized { status: 401 }));
        d.set_token_revoked(false);
        d.set_monthly_limit(true);
        let outcome = c.multicast(&users(1), &hello(), Uuid::new_v4()).await;
        assert_eq!(outcome, SendOutcome::Halt(Halt::MonthlyLimit));
        assert_eq!(c.halted(), Some(Halt::MonthlyLimit));
        d.set_monthly_limit(false);
        assert!(
            c.multicast(&users(1), &hello(), Uuid::new_v4())
                .await
                .delivered()
        );
        assert_eq!(
            c.halted(),
            None,
            "a multicast taken lifts the monthly limit"
        );
    }

    /// Sends `n` multicasts at once and returns how long they took.
    async fn time_multicasts(c: &LineClient, n: usize) -> Duration {
        let (to, m) = (users(1), hello());
        let start = Instant::now();
        let outcomes =
            futures_util::future::join_all((0..n).map(|_| c.multicast(&to, &m, Uuid::new_v4())))
                .await;
        assert!(outcomes.iter().all(SendOutcome::delivered), "{outcomes:?}");
        start.elapsed()
    }

    #[tokio::test]
    async fn multicasts_keep_to_their_own_rate() {
        let d = double();
        // The channel's rate is no bound here: only the multicast rate paces them.
        let c = client(&d, 10_000, 20);
        let took = time_multicasts(&c, 12).await;
        // 12 requests at 20/s with a burst of 2: 10 intervals of 50 ms (a little slack for the
        // clocks).
        assert!(took >= Duration::from_millis(480), "{took:?}");
    }

    #[tokio::test]
    async fn multicasts_take_from_the_channels_rate_too() {
        let d = double();
        let c = client(&d, 20, 10_000);
        let took = time_multicasts(&c, 11).await;
        assert!(took >= Duration::from_millis(480), "{took:?}");
        // And pushes share that budget with them.
        let start = Instant::now();
        let (to, m) = (users(1), hello());
        let multicasts = (0..5).map(|_| c.multicast(&to, &m, Uuid::new_v4()));
        let pushes = (0..6).map(|_| c.push(&to[0], &m, Uuid::new_v4()));
        let (m, p) = tokio::join!(
            futures_util::future::join_all(multicasts),
            futures_util::future::join_all(pushes)
        );
        assert!(m.iter().chain(&p).all(SendOutcome::delivered));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(480), "{took:?}");
    }
}
