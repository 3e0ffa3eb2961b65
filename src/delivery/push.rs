//! One push, and what LINE's answer means for it (the classification itself is
//! `line::SendOutcome`'s).

use super::pipeline::Ready;
use super::{RATE_LIMIT_PATIENCE, Worker};
use crate::line::{Halt, SendOutcome};
use crate::store::deliveries::Outcome;
use std::time::Duration;

impl Worker {
    /// How long a run holds a push it is sending: longer than the worst retry schedule of one
    /// send (LINE's retries and waiting out its 429s), so no other run takes it over mid-send.
    pub(super) fn lease(&self) -> Duration {
        self.line.worst_case() + RATE_LIMIT_PATIENCE + Duration::from_secs(30)
    }

    /// Sends one push; `Err` when LINE refuses everything (the run stops).
    pub(super) async fn send_one(&self, r: &Ready) -> Result<Outcome, Halt> {
        let mut waited = Duration::ZERO;
        loop {
            match self.line.push(&r.to, &r.messages, r.key).await {
                o @ (SendOutcome::Sent { .. } | SendOutcome::AlreadyAccepted { .. }) => {
                    return Ok(Outcome::Sent {
                        duplicate: matches!(o, SendOutcome::AlreadyAccepted { .. }),
                        request_id: o.request_id().map(str::to_owned),
                    });
                }
                // LINE's rate limit despite ours: back off and try again with the same key.
                SendOutcome::RateLimited if waited < RATE_LIMIT_PATIENCE => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    waited += Duration::from_secs(1);
                }
                SendOutcome::Halt(h) => return Err(h),
                o @ (SendOutcome::Unknown(_)
                | SendOutcome::NotSent(_)
                | SendOutcome::RateLimited) => {
                    return Ok(Outcome::Retry(o.to_string()));
                }
                o @ (SendOutcome::Rejected { .. } | SendOutcome::InvalidReplyToken) => {
                    return Ok(Outcome::Failed(o.to_string()));
                }
            }
        }
    }
}
