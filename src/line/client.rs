//! One client (one connection pool) for every request yorisoi sends to LINE.

use super::message::Message;
use crate::config::Secret;
use serde::{Deserialize, Serialize};
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
}

/// A request LINE accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOk {
    /// `x-line-request-id` of the accepted request.
    pub request_id: Option<String>,
    /// The retry key was already accepted earlier (409): delivered before, not again.
    pub duplicate: bool,
}

/// Why a request failed for good.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LineError {
    /// LINE refused the request (4xx other than 409/429); never retried.
    #[error("LINE answered {status}: {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// LINE's `ErrorResponse.message`.
        message: String,
        /// `x-line-request-id`.
        request_id: Option<String>,
    },
    /// 429: the rate limit, or the monthly message limit.
    #[error("LINE answered 429 ({})", if *.monthly { "monthly limit reached" } else { "rate limit" })]
    RateLimited {
        /// The monthly limit, as opposed to the per-second rate.
        monthly: bool,
        /// LINE's message.
        message: String,
    },
    /// 5xx, timeouts or connection errors, still failing after every retry.
    #[error("LINE unavailable after retries: {0}")]
    Unavailable(String),
    /// A reply got no answer in time: LINE may or may not have delivered it.
    #[error("LINE did not answer in time")]
    Timeout,
}

impl LineError {
    /// Whether this is LINE's "invalid reply token" answer (expired or already used).
    pub fn is_invalid_reply_token(&self) -> bool {
        matches!(self, LineError::Rejected { status: 400, message, .. }
            if message.to_ascii_lowercase().contains("reply token"))
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

enum Attempt {
    Done(Result<SendOk, LineError>),
    Retry(String),
}

/// The Messaging API client.
#[derive(Debug, Clone)]
pub struct LineClient {
    http: reqwest::Client,
    config: LineClientConfig,
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
        Ok(Self { http, config })
    }

    /// Sends a reply (<https://developers.line.biz/en/reference/messaging-api/#send-reply-message>).
    /// Not retried once LINE may have received it: a reply token is single-use.
    pub async fn reply(
        &self,
        reply_token: &str,
        messages: &[Message],
    ) -> Result<SendOk, LineError> {
        let body = ReplyRequest {
            reply_token,
            messages,
        };
        match self.attempt("/v2/bot/message/reply", &body, None).await {
            Attempt::Done(r) => r,
            Attempt::Retry(reason) if reason == "timeout" => Err(LineError::Timeout),
            Attempt::Retry(reason) => Err(LineError::Unavailable(reason)),
        }
    }

    /// Sends a push message (<https://developers.line.biz/en/reference/messaging-api/#send-push-message>)
    /// with a retry key, retrying 5xx and timeouts with the same key. 409 means delivered before.
    pub async fn push(
        &self,
        to: &str,
        messages: &[Message],
        retry_key: Uuid,
    ) -> Result<SendOk, LineError> {
        let body = PushRequest { to, messages };
        let policy = self.config.retry;
        let mut last = String::new();
        for attempt in 0..policy.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(policy.delay(attempt - 1)).await;
            }
            match self
                .attempt("/v2/bot/message/push", &body, Some(retry_key))
                .await
            {
                Attempt::Done(r) => return r,
                Attempt::Retry(reason) => {
                    tracing::warn!(attempt = attempt + 1, %reason, "push failed, will retry with the same key");
                    last = reason;
                }
            }
        }
        Err(LineError::Unavailable(last))
    }

    async fn attempt<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        retry_key: Option<Uuid>,
    ) -> Attempt {
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
            Err(e) if e.is_timeout() => return Attempt::Retry("timeout".into()),
            Err(e) if e.is_connect() => return Attempt::Retry(format!("connection: {e}")),
            Err(e) => return Attempt::Retry(format!("transport: {e}")),
        };
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get("x-line-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if resp.status().is_success() {
            return Attempt::Done(Ok(SendOk {
                request_id,
                duplicate: false,
            }));
        }
        let accepted_id = resp
            .headers()
            .get("x-line-accepted-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.unwrap_or_default();
        let (message, details) = match serde_json::from_str::<ErrorResponse>(&text) {
            Ok(e) => (e.message, e.details),
            Err(_) => (text.chars().take(200).collect(), Vec::new()),
        };
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
        tracing::warn!(path, status, request_id = ?request_id, line_message = %message, details = ?details, "LINE request failed");
        match status {
            409 if retry_key.is_some() => Attempt::Done(Ok(SendOk {
                request_id: accepted_id.or(request_id),
                duplicate: true,
            })),
            429 => Attempt::Done(Err(LineError::RateLimited {
                monthly: message.to_ascii_lowercase().contains("monthly limit"),
                message,
            })),
            500..=599 => Attempt::Retry(format!("{status}: {message}")),
            _ => Attempt::Done(Err(LineError::Rejected {
                status,
                message,
                request_id,
            })),
        }
    }
}
