//! The one error type every handler answers with: a status and a JSON `{"message": reason}`.
//! Reasons are fixed texts: never the input, never internals.

use crate::health::Report;
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(&'static str),
    /// The request is not signed, or not by LINE.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The body is larger than accepted.
    #[error("request body over 1 MiB")]
    PayloadTooLarge,
    /// The body did not arrive in time.
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    /// No such route.
    #[error("not found")]
    NotFound,
    /// Not now: the caller should try again (LINE redelivers).
    #[error("{0}")]
    Unavailable(&'static str),
    /// The store failed; the cause is logged, not answered.
    #[error("temporarily unable to store events")]
    Store(#[source] StoreError),
    /// A health check failed.
    #[error("unhealthy: {}", .0.failing.join(", "))]
    Unhealthy(Report),
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unavailable(_) | Self::Store(_) | Self::Unhealthy(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            // The store's error names the SQLite failure kind, never data.
            Self::Store(cause) => {
                tracing::error!(status = status.as_u16(), error = %cause, "request failed")
            }
            Self::Unhealthy(report) => {
                tracing::warn!(failing = ?report.failing, "health check failed")
            }
            Self::NotFound => {}
            e if status.is_server_error() => {
                tracing::warn!(status = status.as_u16(), reason = %e, "request refused")
            }
            e => tracing::info!(status = status.as_u16(), reason = %e, "request refused"),
        }
        let mut body = serde_json::json!({ "message": self.to_string() });
        if let Self::Unhealthy(report) = self {
            body["status"] = "unhealthy".into();
            body["failing"] = serde_json::json!(report.failing);
            body["checks"] = serde_json::json!(report.checks);
        }
        HttpResponse::build(status).json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body(e: HttpError) -> (u16, serde_json::Value) {
        let r = e.error_response();
        let status = r.status().as_u16();
        let bytes = r.into_body().try_into_bytes().unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn every_error_is_a_status_and_a_message() {
        let cases = [
            (
                HttpError::BadRequest("malformed webhook body"),
                400,
                "malformed webhook body",
            ),
            (
                HttpError::Unauthorized("invalid x-line-signature"),
                401,
                "invalid x-line-signature",
            ),
            (HttpError::PayloadTooLarge, 413, "request body over 1 MiB"),
            (
                HttpError::RequestTimeout(5),
                408,
                "the request body did not arrive within 5 s",
            ),
            (HttpError::NotFound, 404, "not found"),
            (
                HttpError::Unavailable("storage is busy; please redeliver"),
                503,
                "storage is busy; please redeliver",
            ),
            (
                HttpError::Store(StoreError::Closed),
                503,
                "temporarily unable to store events",
            ),
        ];
        for (error, status, message) in cases {
            assert_eq!(
                body(error),
                (status, serde_json::json!({ "message": message }))
            );
        }
    }

    #[test]
    fn unhealthy_names_each_failing_check() {
        let report = Report {
            checks: [
                ("database", "not writable".to_string()),
                ("line", "ok".to_string()),
            ]
            .into_iter()
            .collect(),
            failing: vec!["database"],
        };
        let (status, v) = body(HttpError::Unhealthy(report));
        assert_eq!(status, 503);
        assert_eq!(v["message"], "unhealthy: database");
        assert_eq!(v["failing"], serde_json::json!(["database"]));
        assert_eq!(v["checks"]["database"], "not writable");
    }
}
