//! LINE's answer to one message request, classified once for every sender (replies, daily
//! pushes, broadcasts): what happened, and so what the sender does next.

/// Why every sending must stop until an operator or the month fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// 429 with "monthly limit": the month's message quota is used up.
    MonthlyLimit,
    /// 401/403: the channel access token is invalid, expired or revoked, or lacks permission.
    Unauthorized {
        /// 401 or 403.
        status: u16,
    },
}

impl std::fmt::Display for Halt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Halt::MonthlyLimit => write!(f, "LINE's monthly message limit is reached"),
            Halt::Unauthorized { status } => write!(
                f,
                "LINE answered {status}: the channel access token is invalid, expired or revoked"
            ),
        }
    }
}

/// The one classification of LINE's answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// 2xx: accepted now.
    Sent {
        /// `x-line-request-id`.
        request_id: Option<String>,
    },
    /// 409 for a retry key: an earlier attempt was accepted; delivered once, not again.
    AlreadyAccepted {
        /// `x-line-accepted-request-id` (the earlier request), else this request's id.
        request_id: Option<String>,
    },
    /// A reply token LINE refuses: expired, or already used.
    InvalidReplyToken,
    /// 429 (rate): wait and retry with the same key.
    RateLimited,
    /// Stop the run with nothing marked failed; retry when the cause is gone.
    Halt(Halt),
    /// Any other 4xx: failed for good, with LINE's message.
    Rejected {
        /// HTTP status.
        status: u16,
        /// LINE's `message` and details (never the request's content).
        message: String,
    },
    /// 5xx or a timeout: LINE may or may not have accepted it; retry with the same key (or the
    /// same reply token) while LINE remembers it.
    Unknown(String),
    /// The request never reached LINE (no connection): retry; a reply token is not spent.
    NotSent(String),
}

impl SendOutcome {
    /// Classifies an HTTP answer. `message` is LINE's `ErrorResponse.message`.
    pub fn from_status(
        status: u16,
        message: String,
        request_id: Option<String>,
        accepted_id: Option<String>,
        keyed: bool,
    ) -> Self {
        match status {
            200..=299 => SendOutcome::Sent { request_id },
            409 if keyed => SendOutcome::AlreadyAccepted {
                request_id: accepted_id.or(request_id),
            },
            429 if message.to_ascii_lowercase().contains("monthly limit") => {
                SendOutcome::Halt(Halt::MonthlyLimit)
            }
            429 => SendOutcome::RateLimited,
            401 | 403 => SendOutcome::Halt(Halt::Unauthorized { status }),
            400 if message.to_ascii_lowercase().contains("reply token") => {
                SendOutcome::InvalidReplyToken
            }
            500..=599 => SendOutcome::Unknown(format!("LINE answered {status}")),
            _ => SendOutcome::Rejected { status, message },
        }
    }

    /// LINE has the message (now or from an earlier attempt).
    pub fn delivered(&self) -> bool {
        matches!(
            self,
            SendOutcome::Sent { .. } | SendOutcome::AlreadyAccepted { .. }
        )
    }

    /// The request id to record, if delivered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            SendOutcome::Sent { request_id } | SendOutcome::AlreadyAccepted { request_id } => {
                request_id.as_deref()
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for SendOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendOutcome::Sent { .. } => write!(f, "sent"),
            SendOutcome::AlreadyAccepted { .. } => write!(f, "already accepted (409)"),
            SendOutcome::InvalidReplyToken => write!(f, "invalid reply token"),
            SendOutcome::RateLimited => write!(f, "LINE answered 429 (rate limit)"),
            SendOutcome::Halt(h) => write!(f, "{h}"),
            SendOutcome::Rejected { status, message } => {
                write!(f, "LINE answered {status}: {message}")
            }
            SendOutcome::Unknown(why) => write!(f, "outcome unknown: {why}"),
            SendOutcome::NotSent(why) => write!(f, "not sent: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, message: &str, keyed: bool) -> SendOutcome {
        SendOutcome::from_status(status, message.into(), Some("r".into()), None, keyed)
    }

    #[test]
    fn every_answer_has_one_meaning() {
        assert!(classify(200, "", true).delivered());
        assert_eq!(
            classify(409, "The retry key is already accepted", true),
            SendOutcome::AlreadyAccepted {
                request_id: Some("r".into())
            }
        );
        assert!(matches!(
            classify(409, "conflict", false),
            SendOutcome::Rejected { status: 409, .. }
        ));
        assert_eq!(
            classify(429, "You have reached your monthly limit.", true),
            SendOutcome::Halt(Halt::MonthlyLimit)
        );
        assert_eq!(
            classify(429, "The API rate limit has been exceeded.", true),
            SendOutcome::RateLimited
        );
        assert_eq!(
            classify(401, "Authentication failed", true),
            SendOutcome::Halt(Halt::Unauthorized { status: 401 })
        );
        assert_eq!(
            classify(403, "Not authorized", false),
            SendOutcome::Halt(Halt::Unauthorized { status: 403 })
        );
        assert_eq!(
            classify(400, "Invalid reply token", false),
            SendOutcome::InvalidReplyToken
        );
        assert!(matches!(
            classify(400, "The request body has 1 error(s)", true),
            SendOutcome::Rejected { status: 400, .. }
        ));
        assert!(matches!(classify(502, "", true), SendOutcome::Unknown(_)));
        assert!(!classify(500, "", true).delivered());
    }
}
