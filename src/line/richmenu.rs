//! The rich menu endpoints (<https://developers.line.biz/en/reference/messaging-api/#rich-menu>):
//! one method each, on the shared client. Rich menu calls are not retried here: `richmenu sync`
//! stops and is run again (it is idempotent), the relinker tries a reader again later.

use super::LineClient;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

/// What went wrong with a rich menu request. The message is LINE's, which names rules and
/// properties, never the values sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// LINE answered with an error status.
    #[error("LINE answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// LINE's `message` (and details).
        message: String,
    },
    /// No answer: connection failed, timeout.
    #[error("no answer from LINE ({0})")]
    Transport(&'static str),
}

impl ApiError {
    /// Worth trying again later: no answer, 5xx, or 429.
    pub fn retryable(&self) -> bool {
        match self {
            ApiError::Transport(_) => true,
            ApiError::Status { status, .. } => *status >= 500 || *status == 429,
        }
    }

    /// LINE refuses the channel itself (401, 403: a revoked or wrong token), not this request:
    /// nothing is worth trying until it is put right.
    pub fn channel_refused(&self) -> bool {
        matches!(
            self,
            ApiError::Status {
                status: 401 | 403,
                ..
            }
        )
    }

    /// LINE answered 404.
    pub fn not_found(&self) -> bool {
        matches!(self, ApiError::Status { status: 404, .. })
    }
}

/// A rich menu LINE holds (`GET /v2/bot/richmenu/list`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RichMenuSummary {
    /// LINE's id.
    pub rich_menu_id: String,
    /// The name it was created with.
    pub name: String,
}

/// An alias LINE holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RichMenuAlias {
    /// The alias.
    pub rich_menu_alias_id: String,
    /// The menu it names.
    pub rich_menu_id: String,
}

enum Body<'a> {
    None,
    Json(&'a Value),
    Bytes(&'a [u8], &'static str),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdResponse {
    rich_menu_id: String,
}

impl LineClient {
    async fn call(
        &self,
        method: Method,
        data_host: bool,
        path: &str,
        body: Body<'_>,
    ) -> Result<Vec<u8>, ApiError> {
        let config = self.config();
        let base = if data_host {
            &config.data_base
        } else {
            &config.api_base
        };
        let mut req = self
            .http()
            .request(method, format!("{base}{path}"))
            .bearer_auth(config.access_token.expose());
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Bytes(b, content_type) => {
                req.header("content-type", content_type).body(b.to_vec())
            }
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Err(ApiError::Transport("connection failed")),
            Err(e) if e.is_timeout() => return Err(ApiError::Transport("timeout")),
            Err(_) => return Err(ApiError::Transport("transport error")),
        };
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|_| ApiError::Transport("body cut off"))?
            .to_vec();
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| {
                let m = v.get("message")?.as_str()?.to_owned();
                let details: Vec<String> = v
                    .get("details")
                    .and_then(Value::as_array)
                    .map(|d| {
                        d.iter()
                            .map(|d| {
                                format!(
                                    "{}: {}",
                                    d["property"].as_str().unwrap_or_default(),
                                    d["message"].as_str().unwrap_or_default()
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Some(if details.is_empty() {
                    m
                } else {
                    format!("{m} ({})", details.join("; "))
                })
            })
            .unwrap_or_else(|| format!("unreadable error body ({} bytes)", bytes.len()));
        Err(ApiError::Status { status, message })
    }

    fn id_of(bytes: &[u8]) -> Result<String, ApiError> {
        serde_json::from_slice::<IdResponse>(bytes)
            .map(|r| r.rich_menu_id)
            .map_err(|_| ApiError::Status {
                status: 200,
                message: "an answer without richMenuId".into(),
            })
    }

    /// Validates a rich menu object (<https://developers.line.biz/en/reference/messaging-api/#validate-rich-menu-object>).
    pub async fn validate_rich_menu(&self, menu: &Value) -> Result<(), ApiError> {
        self.call(
            Method::POST,
            false,
            "/v2/bot/richmenu/validate",
            Body::Json(menu),
        )
        .await
        .map(drop)
    }

    /// Creates a rich menu and returns its id (<https://developers.line.biz/en/reference/messaging-api/#create-rich-menu>).
    pub async fn create_rich_menu(&self, menu: &Value) -> Result<String, ApiError> {
        let b = self
            .call(Method::POST, false, "/v2/bot/richmenu", Body::Json(menu))
            .await?;
        Self::id_of(&b)
    }

    /// Uploads a menu's image on the data host (<https://developers.line.biz/en/reference/messaging-api/#upload-rich-menu-image>).
    pub async fn upload_rich_menu_image(
        &self,
        rich_menu_id: &str,
        image: &[u8],
        content_type: &'static str,
    ) -> Result<(), ApiError> {
        let path = format!("/v2/bot/richmenu/{rich_menu_id}/content");
        self.call(Method::POST, true, &path, Body::Bytes(image, content_type))
            .await
            .map(drop)
    }

    /// The channel's rich menus (<https://developers.line.biz/en/reference/messaging-api/#get-rich-menu-list>).
    pub async fn list_rich_menus(&self) -> Result<Vec<RichMenuSummary>, ApiError> {
        #[derive(Deserialize)]
        struct List {
            richmenus: Vec<RichMenuSummary>,
        }
        let b = self
            .call(Method::GET, false, "/v2/bot/richmenu/list", Body::None)
            .await?;
        serde_json::from_slice::<List>(&b)
            .map(|l| l.richmenus)
            .map_err(|_| ApiError::Status {
                status: 200,
                message: "an unreadable rich menu list".into(),
            })
    }

    /// Deletes a rich menu (<https://developers.line.biz/en/reference/messaging-api/#delete-rich-menu>).
    pub async fn delete_rich_menu(&self, rich_menu_id: &str) -> Result<(), ApiError> {
        let path = format!("/v2/bot/richmenu/{rich_menu_id}");
        self.call(Method::DELETE, false, &path, Body::None)
            .await
            .map(drop)
    }

    /// The channel's aliases (<https://developers.line.biz/en/reference/messaging-api/#get-rich-menu-alias-list>).
    pub async fn list_rich_menu_aliases(&self) -> Result<Vec<RichMenuAlias>, ApiError> {
        #[derive(Deserialize)]
        struct List {
            aliases: Vec<RichMenuAlias>,
        }
        let b = self
            .call(
                Method::GET,
                false,
                "/v2/bot/richmenu/alias/list",
                Body::None,
            )
            .await?;
        serde_json::from_slice::<List>(&b)
            .map(|l| l.aliases)
            .map_err(|_| ApiError::Status {
                status: 200,
                message: "an unreadable alias list".into(),
            })
    }

    /// Creates an alias (<https://developers.line.biz/en/reference/messaging-api/#create-rich-menu-alias>).
    pub async fn create_rich_menu_alias(
        &self,
        alias: &str,
        rich_menu_id: &str,
    ) -> Result<(), ApiError> {
        let body = json!({ "richMenuAliasId": alias, "richMenuId": rich_menu_id });
        self.call(
            Method::POST,
            false,
            "/v2/bot/richmenu/alias",
            Body::Json(&body),
        )
        .await
        .map(drop)
    }

    /// Points an alias at another menu (<https://developers.line.biz/en/reference/messaging-api/#update-rich-menu-alias>).
    pub async fn update_rich_menu_alias(
        &self,
        alias: &str,
        rich_menu_id: &str,
    ) -> Result<(), ApiError> {
        let body = json!({ "richMenuId": rich_menu_id });
        let path = format!("/v2/bot/richmenu/alias/{alias}");
        self.call(Method::POST, false, &path, Body::Json(&body))
            .await
            .map(drop)
    }

    /// Deletes an alias (<https://developers.line.biz/en/reference/messaging-api/#delete-rich-menu-alias>).
    pub async fn delete_rich_menu_alias(&self, alias: &str) -> Result<(), ApiError> {
        let path = format!("/v2/bot/richmenu/alias/{alias}");
        self.call(Method::DELETE, false, &path, Body::None)
            .await
            .map(drop)
    }

    /// The default menu's id, if one is set (<https://developers.line.biz/en/reference/messaging-api/#get-default-rich-menu-id>).
    pub async fn default_rich_menu(&self) -> Result<Option<String>, ApiError> {
        match self
            .call(Method::GET, false, "/v2/bot/user/all/richmenu", Body::None)
            .await
        {
            Ok(b) => Self::id_of(&b).map(Some),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the default menu (<https://developers.line.biz/en/reference/messaging-api/#set-default-rich-menu>).
    pub async fn set_default_rich_menu(&self, rich_menu_id: &str) -> Result<(), ApiError> {
        let path = format!("/v2/bot/user/all/richmenu/{rich_menu_id}");
        self.call(Method::POST, false, &path, Body::None)
            .await
            .map(drop)
    }

    /// Links a menu to one user (<https://developers.line.biz/en/reference/messaging-api/#link-rich-menu-to-user>),
    /// paced by the channel's rate as pushes are.
    pub async fn link_rich_menu(&self, user: &str, rich_menu_id: &str) -> Result<(), ApiError> {
        self.paced().await;
        let path = format!("/v2/bot/user/{user}/richmenu/{rich_menu_id}");
        self.call(Method::POST, false, &path, Body::None)
            .await
            .map(drop)
    }

    /// Removes a user's own menu, so they see the default (<https://developers.line.biz/en/reference/messaging-api/#unlink-rich-menu-from-user>),
    /// paced by the channel's rate.
    pub async fn unlink_rich_menu(&self, user: &str) -> Result<(), ApiError> {
        self.paced().await;
        let path = format!("/v2/bot/user/{user}/richmenu");
        self.call(Method::DELETE, false, &path, Body::None)
            .await
            .map(drop)
    }
}
