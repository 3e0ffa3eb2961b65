//! The rich menu endpoints of the double: menus (validate, create, list, delete), images on the
//! data host, aliases, the default menu and per-user links, with LINE's contract and its limit
//! of 100 creations and deletions an hour. Every request is logged for tests.

use super::{Shared, authorized, error, validate};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// LINE's image limit.
const MAX_IMAGE: usize = 1024 * 1024;
/// LINE's limit on creations and deletions an hour.
const PER_HOUR: usize = 100;

/// One rich menu request the double received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RichMenuCall {
    /// `GET`, `POST`, `DELETE`.
    pub method: String,
    /// `api` or `data` (the host it came to).
    pub host: &'static str,
    /// The path.
    pub path: String,
    /// The status answered.
    pub status: u16,
}

impl RichMenuCall {
    /// Whether it could change something on LINE (anything but a read).
    pub fn changing(&self) -> bool {
        self.method != "GET"
    }
}

/// A menu LINE holds: its object and image.
#[derive(Debug, Clone)]
pub struct StoredMenu {
    /// The rich menu object as created (with `richMenuId`).
    pub object: Value,
    /// The image and its content type, once uploaded (shared: the sandbox reads it often).
    pub image: Option<(Arc<[u8]>, String)>,
}

#[derive(Default)]
pub(super) struct State {
    menus: BTreeMap<String, StoredMenu>,
    aliases: BTreeMap<String, String>,
    default: Option<String>,
    links: HashMap<String, String>,
    calls: Vec<RichMenuCall>,
    hour: VecDeque<Instant>,
    /// Statuses to answer the next rich menu requests with (injected failures).
    faults: VecDeque<u16>,
}

impl State {
    /// Takes one of the hour's creations and deletions, or says the limit is reached.
    fn take_hourly(&mut self) -> bool {
        let now = Instant::now();
        while self
            .hour
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(3600))
        {
            self.hour.pop_front();
        }
        if self.hour.len() >= PER_HOUR {
            return false;
        }
        self.hour.push_back(now);
        true
    }

    fn with_image(&self, id: &str) -> Result<(), Box<HttpResponse>> {
        match self.menus.get(id) {
            None => Err(Box::new(error(404, "Not found", vec![]))),
            Some(m) if m.image.is_none() => Err(Box::new(error(
                400,
                "An image must be uploaded to the rich menu first",
                vec![],
            ))),
            Some(_) => Ok(()),
        }
    }
}

fn user_id_ok(u: &str) -> bool {
    u.len() == 33
        && u.starts_with('U')
        && u[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn alias_ok(a: &str) -> bool {
    (1..=32).contains(&a.len())
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Runs one rich menu request: authorization, then `f` on the state; logs it.
fn handle(
    req: &HttpRequest,
    shared: &Shared,
    host: &'static str,
    f: impl FnOnce(&mut State) -> HttpResponse,
) -> HttpResponse {
    let resp = if authorized(req, shared) {
        let mut state = shared.richmenus.lock().unwrap_or_else(|e| e.into_inner());
        match state.faults.pop_front() {
            Some(status) => error(status, "Injected failure", vec![]),
            None => f(&mut state),
        }
    } else {
        error(401, "Authentication failed.", vec![])
    };
    let mut state = shared.richmenus.lock().unwrap_or_else(|e| e.into_inner());
    state.calls.push(RichMenuCall {
        method: req.method().to_string(),
        host,
        path: req.path().to_owned(),
        status: resp.status().as_u16(),
    });
    resp
}

fn parse_menu(body: &[u8]) -> Result<Value, Box<HttpResponse>> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| Box::new(error(400, "The request body is not valid JSON", vec![])))?;
    let mut problems = Vec::new();
    validate::rich_menu(&v, &mut problems);
    if problems.is_empty() {
        Ok(v)
    } else {
        Err(Box::new(error(
            400,
            &format!("The request body has {} error(s)", problems.len()),
            problems,
        )))
    }
}

fn ok() -> HttpResponse {
    HttpResponse::Ok().json(json!({}))
}

/// `POST /v2/bot/richmenu/validate`.
pub(super) async fn validate_menu(
    req: HttpRequest,
    shared: web::Data<Shared>,
    body: web::Bytes,
) -> HttpResponse {
    handle(&req, &shared, "api", |_| match parse_menu(&body) {
        Ok(_) => ok(),
        Err(e) => *e,
    })
}

/// `POST /v2/bot/richmenu`.
pub(super) async fn create(
    req: HttpRequest,
    shared: web::Data<Shared>,
    body: web::Bytes,
) -> HttpResponse {
    handle(&req, &shared, "api", |s| {
        let mut v = match parse_menu(&body) {
            Ok(v) => v,
            Err(e) => return *e,
        };
        if s.menus.len() >= 1000 {
            return error(
                400,
                "The maximum number of rich menus (1000) has been reached",
                vec![],
            );
        }
        if !s.take_hourly() {
            return error(
                429,
                "Rich menu creations and deletions are limited to 100 an hour",
                vec![],
            );
        }
        let id = format!("richmenu-{}", uuid::Uuid::new_v4().simple());
        v["richMenuId"] = json!(id);
        s.menus.insert(
            id.clone(),
            StoredMenu {
                object: v,
                image: None,
            },
        );
        HttpResponse::Ok().json(json!({ "richMenuId": id }))
    })
}

/// `GET /v2/bot/richmenu/list`.
pub(super) async fn list(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    handle(&req, &shared, "api", |s| {
        let menus: Vec<&Value> = s.menus.values().map(|m| &m.object).collect();
        HttpResponse::Ok().json(json!({ "richmenus": menus }))
    })
}

/// `DELETE /v2/bot/richmenu/{richMenuId}`: its links and the default go with it.
pub(super) async fn delete(
    req: HttpRequest,
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> HttpResponse {
    handle(&req, &shared, "api", |s| {
        if !s.menus.contains_key(id.as_str()) {
            return error(404, "Not found", vec![]);
        }
        if !s.take_hourly() {
            return error(
                429,
                "Rich menu creations and deletions are limited to 100 an hour",
                vec![],
            );
        }
        s.menus.remove(id.as_str());
        s.links.retain(|_, m| m != id.as_str());
        if s.default.as_deref() == Some(id.as_str()) {
            s.default = None;
        }
        ok()
    })
}

/// `POST /v2/bot/richmenu/{richMenuId}/content`, on the data host only.
pub(super) async fn upload(
    req: HttpRequest,
    shared: web::Data<Shared>,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    handle(&req, &shared, "data", |s| {
        let Some(menu) = s.menus.get_mut(id.as_str()) else {
            return error(404, "Not found", vec![]);
        };
        if menu.image.is_some() {
            return error(
                400,
                "An image has already been uploaded to the richmenu",
                vec![],
            );
        }
        let kind = match content_type.as_str() {
            "image/png" => imagesize::ImageType::Png,
            "image/jpeg" => imagesize::ImageType::Jpeg,
            _ => return error(415, "Content-Type must be image/png or image/jpeg", vec![]),
        };
        if body.len() > MAX_IMAGE {
            return error(400, "The image exceeds 1 MB", vec![]);
        }
        if imagesize::image_type(&body).ok() != Some(kind) {
            return error(400, "The image is not of its Content-Type", vec![]);
        }
        let want = (
            menu.object["size"]["width"].as_u64(),
            menu.object["size"]["height"].as_u64(),
        );
        match imagesize::blob_size(&body) {
            Ok(s) if (Some(s.width as u64), Some(s.height as u64)) == want => {}
            _ => {
                return error(
                    400,
                    "The image size does not match the rich menu's size",
                    vec![],
                );
            }
        }
        menu.image = Some((Arc::from(&body[..]), content_type.clone()));
        ok()
    })
}

/// `POST /v2/bot/richmenu/alias`.
pub(super) async fn alias_create(
    req: HttpRequest,
    shared: web::Data<Shared>,
    body: web::Bytes,
) -> HttpResponse {
    handle(&req, &shared, "api", |s| {
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        let (Some(alias), Some(id)) = (v["richMenuAliasId"].as_str(), v["richMenuId"].as_str())
        else {
            return error(400, "richMenuAliasId and richMenuId are required", vec![]);
        };
        if !alias_ok(alias) {
            return error(
                400,
                "richMenuAliasId must be 1 to 32 of a-z A-Z 0-9 - _",
                vec![],
            );
        }
        if s.aliases.contains_key(alias) {
            return error(400, "conflict richmenu alias id", vec![]);
        }
        if let Err(e) = s.with_image(id) {
            return *e;
        }
        s.aliases.insert(alias.to_owned(), id.to_owned());
        ok()
    })
}

/// `POST /v2/bot/richmenu/alias/{richMenuAliasId}`.
pub(super) async fn alias_update(
    req: HttpRequest,
    shared: web::Data<Shared>,
    alias: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    handle(&req, &shared, "api", |s| {
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        let Some(id) = v["richMenuId"].as_str() else {
            return error(400, "richMenuId is required", vec![]);
        };
        if !s.aliases.contains_key(alias.as_str()) {
            return error(400, "richmenu alias not found", vec![]);
        }
        if let Err(e) = s.with_image(id) {
            return *e;
        }
        s.aliases.insert(alias.to_string(), id.to_owned());
        ok()
    })
}

/// `DELETE /v2/bot/richmenu/alias/{richMenuAliasId}`.
pub(super) async fn alias_delete(
    req: HttpRequest,
    shared: web::Data<Shared>,
    alias: web::Path<String>,
) -> HttpResponse {
    handle(&req, &shared, "api", |s| {
        match s.aliases.remove(alias.as_str()) {
            Some(_) => ok(),
            None => error(400, "richmenu alias not found", vec![]),
        }
    })
}

/// `GET /v2/bot/richmenu/alias/list`.
pub(super) async fn alias_list(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    handle(&req, &shared, "api", |s| {
        let aliases: Vec<Value> = s
            .aliases
            .iter()
            .map(|(a, m)| json!({ "richMenuAliasId": a, "richMenuId": m }))
            .collect();
        HttpResponse::Ok().json(json!({ "aliases": aliases }))
    })
}

/// `POST /v2/bot/user/all/richmenu/{richMenuId}`.
pub(super) async fn default_set(
    req: HttpRequest,
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> HttpResponse {
    handle(&req, &shared, "api", |s| {
        if let Err(e) = s.with_image(&id) {
            return *e;
        }
        s.default = Some(id.to_string());
        ok()
    })
}

/// `GET /v2/bot/user/all/richmenu`.
pub(super) async fn default_get(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    handle(&req, &shared, "api", |s| match &s.default {
        Some(id) => HttpResponse::Ok().json(json!({ "richMenuId": id })),
        None => error(404, "no default richmenu", vec![]),
    })
}

/// `DELETE /v2/bot/user/all/richmenu`.
pub(super) async fn default_cancel(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    handle(&req, &shared, "api", |s| {
        s.default = None;
        ok()
    })
}

/// `POST /v2/bot/user/{userId}/richmenu/{richMenuId}`.
pub(super) async fn link(
    req: HttpRequest,
    shared: web::Data<Shared>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (user, id) = path.into_inner();
    handle(&req, &shared, "api", |s| {
        if !user_id_ok(&user) {
            return error(
                400,
                "The value for the 'userId' parameter is invalid",
                vec![],
            );
        }
        if let Err(e) = s.with_image(&id) {
            return *e;
        }
        s.links.insert(user, id);
        ok()
    })
}

/// `DELETE /v2/bot/user/{userId}/richmenu`.
pub(super) async fn unlink(
    req: HttpRequest,
    shared: web::Data<Shared>,
    user: web::Path<String>,
) -> HttpResponse {
    handle(&req, &shared, "api", |s| {
        if !user_id_ok(&user) {
            return error(
                400,
                "The value for the 'userId' parameter is invalid",
                vec![],
            );
        }
        s.links.remove(user.as_str());
        ok()
    })
}

/// `GET /v2/bot/user/{userId}/richmenu`: the per-user link only.
pub(super) async fn user_menu(
    req: HttpRequest,
    shared: web::Data<Shared>,
    user: web::Path<String>,
) -> HttpResponse {
    handle(&req, &shared, "api", |s| match s.links.get(user.as_str()) {
        Some(id) => HttpResponse::Ok().json(json!({ "richMenuId": id })),
        None => error(404, "the user has no richmenu", vec![]),
    })
}

/// Routes on the Messaging API host.
pub(super) fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v2/bot/richmenu", web::post().to(create))
        .route("/v2/bot/richmenu/validate", web::post().to(validate_menu))
        .route("/v2/bot/richmenu/list", web::get().to(list))
        .route("/v2/bot/richmenu/alias", web::post().to(alias_create))
        .route("/v2/bot/richmenu/alias/list", web::get().to(alias_list))
        .route(
            "/v2/bot/richmenu/alias/{alias}",
            web::post().to(alias_update),
        )
        .route(
            "/v2/bot/richmenu/alias/{alias}",
            web::delete().to(alias_delete),
        )
        .route("/v2/bot/richmenu/{id}", web::delete().to(delete))
        .route(
            "/v2/bot/user/all/richmenu/{id}",
            web::post().to(default_set),
        )
        .route("/v2/bot/user/all/richmenu", web::get().to(default_get))
        .route(
            "/v2/bot/user/all/richmenu",
            web::delete().to(default_cancel),
        )
        .route("/v2/bot/user/{user}/richmenu/{id}", web::post().to(link))
        .route("/v2/bot/user/{user}/richmenu", web::delete().to(unlink))
        .route("/v2/bot/user/{user}/richmenu", web::get().to(user_menu));
}

/// Routes on the data host.
pub(super) fn data_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v2/bot/richmenu/{id}/content", web::post().to(upload));
}

impl super::LineDouble {
    fn richmenus(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .richmenus
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Answers each of the next `n` rich menu requests with `status`, changing nothing.
    pub fn inject_rich_menu_failure(&self, status: u16, n: usize) {
        self.richmenus()
            .faults
            .extend(std::iter::repeat_n(status, n));
    }

    /// Every rich menu request received, in order.
    pub fn rich_menu_calls(&self) -> Vec<RichMenuCall> {
        self.richmenus().calls.clone()
    }

    /// The menus LINE holds, by id.
    pub fn rich_menus(&self) -> BTreeMap<String, StoredMenu> {
        self.richmenus().menus.clone()
    }

    /// The aliases: alias → menu id.
    pub fn rich_menu_aliases(&self) -> BTreeMap<String, String> {
        self.richmenus().aliases.clone()
    }

    /// The default menu's id.
    pub fn default_rich_menu(&self) -> Option<String> {
        self.richmenus().default.clone()
    }

    /// The menu linked to one user (not the default).
    pub fn rich_menu_linked(&self, user: &str) -> Option<String> {
        self.richmenus().links.get(user).cloned()
    }

    /// The menu a user sees: their own link, else the default.
    pub fn rich_menu_shown(&self, user: &str) -> Option<(String, StoredMenu)> {
        let s = self.richmenus();
        let id = s.links.get(user).or(s.default.as_ref())?;
        s.menus.get(id).map(|m| (id.clone(), m.clone()))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Secret;
    use crate::line::richmenu::ApiError;
    use crate::line::{LineClient, LineClientConfig, RetryPolicy};
    use crate::line_double::{DoubleConfig, LineDouble, user_id};
    use serde_json::{Value, json};
    use std::time::Duration;

    fn client(d: &LineDouble, data_base: String) -> LineClient {
        client_with(d, data_base, d.access_token())
    }

    fn client_with(d: &LineDouble, data_base: String, token: &str) -> LineClient {
        LineClient::new(LineClientConfig {
            api_base: d.base_url(),
            data_base,
            access_token: Secret::new(token),
            timeout: Duration::from_secs(2),
            retry: RetryPolicy::default(),
            pool_size: 2,
            rate: 100,
            multicast_rate: 10,
        })
        .unwrap()
    }

    fn menu(height: u32) -> Value {
        json!({
            "size": { "width": 2500, "height": height },
            "selected": false,
            "name": "test",
            "chatBarText": "メニュー",
            "areas": [{
                "bounds": { "x": 0, "y": 0, "width": 2500, "height": height },
                "action": { "type": "postback", "data": "menu:faq", "displayText": "よくある質問" }
            }]
        })
    }

    fn png(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/richmenus/{name}.png",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn status(r: Result<impl Sized, ApiError>) -> u16 {
        match r {
            Ok(_) => 200,
            Err(ApiError::Status { status, .. }) => status,
            Err(ApiError::Transport(_)) => 0,
        }
    }

    #[tokio::test]
    async fn the_rich_menu_contract() {
        let d = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").unwrap();
        let c = client(&d, d.data_base_url());
        let mut bad = menu(843);
        bad["chatBarText"] = json!("とても長いチャットバーのテキストです");
        bad["areas"][0]["bounds"]["width"] = json!(2600);
        assert_eq!(status(c.validate_rich_menu(&bad).await), 400);
        assert_eq!(status(c.create_rich_menu(&bad).await), 400);
        assert_eq!(status(c.validate_rich_menu(&menu(843)).await), 200);
        let id = c.create_rich_menu(&menu(843)).await.unwrap();

        // Aliases, the default and links need the image first.
        assert_eq!(
            status(c.create_rich_menu_alias("yorisoi-x", &id).await),
            400
        );
        assert_eq!(status(c.set_default_rich_menu(&id).await), 400);
        let user = user_id(1);
        assert_eq!(status(c.link_rich_menu(&user, &id).await), 400);

        // The image goes to the data host only, as PNG or JPEG of the menu's size, ≤ 1 MB, once.
        let on_api_host = client(&d, d.base_url());
        assert_eq!(
            status(
                on_api_host
                    .upload_rich_menu_image(&id, &png("stopped"), "image/png")
                    .await
            ),
            404
        );
        assert_eq!(
            status(
                c.upload_rich_menu_image(&id, &png("stopped"), "image/gif")
                    .await
            ),
            415
        );
        assert_eq!(
            status(
                c.upload_rich_menu_image(&id, &png("stopped"), "image/jpeg")
                    .await
            ),
            400
        );
        assert_eq!(
            status(
                c.upload_rich_menu_image(&id, &png("child"), "image/png")
                    .await
            ),
            400
        );
        let mut big = png("stopped");
        big.resize(1024 * 1024 + 1, 0);
        assert_eq!(
            status(c.upload_rich_menu_image(&id, &big, "image/png").await),
            400
        );
        assert_eq!(
            status(
                c.upload_rich_menu_image(&id, &png("stopped"), "image/png")
                    .await
            ),
            200
        );
        assert_eq!(
            status(
                c.upload_rich_menu_image(&id, &png("stopped"), "image/png")
                    .await
            ),
            400
        );

        assert_eq!(
            status(c.create_rich_menu_alias("bad alias!", &id).await),
            400
        );
        c.create_rich_menu_alias("yorisoi-x", &id).await.unwrap();
        assert_eq!(
            status(c.create_rich_menu_alias("yorisoi-x", &id).await),
            400
        );
        assert_eq!(
            status(c.update_rich_menu_alias("yorisoi-y", &id).await),
            400
        );
        assert_eq!(c.default_rich_menu().await.unwrap(), None);
        c.set_default_rich_menu(&id).await.unwrap();
        assert_eq!(c.default_rich_menu().await.unwrap(), Some(id.clone()));
        assert_eq!(status(c.link_rich_menu("someone", &id).await), 400);
        c.link_rich_menu(&user, &id).await.unwrap();
        assert_eq!(d.rich_menu_linked(&user), Some(id.clone()));
        c.unlink_rich_menu(&user).await.unwrap();
        assert_eq!(
            d.rich_menu_shown(&user).map(|(m, _)| m),
            Some(id.clone()),
            "the default"
        );

        // Deleting a menu takes its links and the default with it.
        c.link_rich_menu(&user, &id).await.unwrap();
        c.delete_rich_menu(&id).await.unwrap();
        assert_eq!(status(c.delete_rich_menu(&id).await), 404);
        assert_eq!(d.rich_menu_linked(&user), None);
        assert_eq!(c.default_rich_menu().await.unwrap(), None);
        assert!(c.list_rich_menus().await.unwrap().is_empty());
        c.delete_rich_menu_alias("yorisoi-x").await.unwrap();
        assert!(c.list_rich_menu_aliases().await.unwrap().is_empty());

        let wrong_token = client_with(&d, d.data_base_url(), "nope");
        assert_eq!(status(wrong_token.list_rich_menus().await), 401);
    }

    #[tokio::test]
    async fn creations_and_deletions_stop_at_100_an_hour() {
        let d = LineDouble::start(DoubleConfig::default(), "127.0.0.1:0").unwrap();
        let c = client(&d, d.data_base_url());
        for _ in 0..50 {
            let id = c.create_rich_menu(&menu(843)).await.unwrap();
            c.delete_rich_menu(&id).await.unwrap();
        }
        assert_eq!(status(c.create_rich_menu(&menu(843)).await), 429);
    }
}
