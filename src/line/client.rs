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
}

/// The month's message quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The target limit, if one is set.
    pub limit: Option<u64>,
    /// Messages (pushes) counted so far this month.
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

type Limiter = governor::RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    governor::clock::DefaultClock,
>;

/// The Messaging API client: one connection pool, one rate limiter and one view of LINE's
/// health for every sender in the process (clones share them).
#[derive(Clone)]
pub struct LineClient {
    http: reqwest::Client,
    config: LineClientConfig,
    limiter: Arc<Limiter>,
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
        let rate = NonZeroU32::new(config.rate).unwrap_or(NonZeroU32::MIN);
        // A small burst: LINE counts requests in a sliding second.
        let burst = NonZeroU32::new((config.rate / 200).clamp(1, 10)).unwrap_or(NonZeroU32::MIN);
        let limiter = Arc::new(governor::RateLimiter::direct(
            governor::Quota::per_second(rate).allow_burst(burst),
        ));
        Ok(Self {
            http,
            config,
            limiter,
            halted: Arc::default(),
        })
    }

    /// Why LINE refuses to take messages now (revoked token; the monthly limit, which stops
    /// pushes only), if it did on the last request; cleared by the next accepted request (for
    /// the monthly limit, the next accepted push).
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

    /// The longest one `push` can take, retries included: a claim on a send must outlive it.
    pub fn worst_case(&self) -> Duration {
        let p = self.config.retry;
        let waits: Duration = (0..p.attempts.saturating_sub(1)).map(|i| p.delay(i)).sum();
        // Each try: waiting for the rate limiter, connecting, then the request itself.
        waits + (self.config.timeout * 2 + Duration::from_secs(1)) * p.attempts.max(1)
    }

    fn note(&self, outcome: &SendOutcome, is_push: bool) {
        let mut halted = self.halted.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            SendOutcome::Halt(h) => {
                if halted.as_ref() != Some(h) {
                    tracing::error!(cause = %h, "LINE refuses messages: sending stops until the cause is fixed");
                }
                *halted = Some(h.clone());
            }
            // LINE took or judged the request: the token works. Replies are free, so only a push
            // taken says the month's limit is lifted.
            o if (o.delivered()
                || matches!(
                    o,
                    SendOutcome::InvalidReplyToken | SendOutcome::Rejected { .. }
                ))
                && halted
                    .as_ref()
                    .is_some_and(|h| is_push || *h != Halt::MonthlyLimit) =>
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
        self.attempt("/v2/bot/message/reply", &body, None).await
    }

    /// Sends a push message (<https://developers.line.biz/en/reference/messaging-api/#send-push-message>)
    /// with a retry key, retrying 5xx and timeouts with the same key (409 then means delivered
    /// by an earlier try).
    pub async fn push(&self, to: &str, messages: &[Message], retry_key: Uuid) -> SendOutcome {
        let body = PushRequest { to, messages };
        let policy = self.config.retry;
        let mut outcome = SendOutcome::Unknown("not tried".into());
        for attempt in 0..policy.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(policy.delay(attempt - 1)).await;
            }
            outcome = self
                .attempt("/v2/bot/message/push", &body, Some(retry_key))
                .await;
            match &outcome {
                SendOutcome::Unknown(reason) | SendOutcome::NotSent(reason) => {
                    tracing::warn!(attempt = attempt + 1, %reason, "push failed, will retry with the same key");
                }
                _ => return outcome,
            }
        }
        outcome
    }

    async fn attempt<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        retry_key: Option<Uuid>,
    ) -> SendOutcome {
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
