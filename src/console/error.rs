//! The console's one error type: JSON `{"message": reason}` for the API, a page for a browser.
//! Reasons are written for staff (Japanese); internals are logged, never shown.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// Why a console request was not served.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No valid session or token.
    #[error("ログインが必要です（セッションの期限切れ、またはトークンが無効です）。")]
    Unauthorized,
    /// The role may not do this.
    #[error("この操作の権限がありません（{0}以上が必要です）。")]
    Forbidden(&'static str),
    /// A form without the session's CSRF token.
    #[error("フォームの有効期限が切れました。ページを読み込み直して、もう一度お試しください。")]
    Csrf,
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed, but not acceptable.
    #[error("{0}")]
    Unprocessable(String),
    /// Not in this state (cancelling a broadcast that started).
    #[error("{0}")]
    Conflict(String),
    /// No such thing.
    #[error("見つかりません。")]
    NotFound,
    /// The server failed; the cause is logged.
    #[error("サーバーで問題が起きました。しばらくしてからもう一度お試しください。")]
    Internal(#[source] anyhow::Error),
}

impl From<anyhow::Error> for ConsoleError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl From<crate::store::StoreError> for ConsoleError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Csrf => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(e) = self {
            tracing::error!(error = %e, "console request failed");
        }
        let mut r = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unauthorized) {
            r.insert_header(("WWW-Authenticate", "Bearer"));
        }
        r.json(serde_json::json!({ "message": self.to_string() }))
    }
}
