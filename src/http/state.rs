//! What the HTTP handlers share.

use crate::clock::SharedClock;
use crate::config::{PushTime, Secret};
use crate::health::Health;
use crate::store::Inbox;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

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
    /// What the background tasks report, for `/healthz`.
    pub health: Health,
    /// The daily push time (the health check's delivery day).
    pub push_time: PushTime,
    /// How long a request body may take to arrive in full.
    pub body_timeout: Duration,
}
