//! The rich menu definitions in `richmenus/`: `<name>.json` (LINE's rich menu object) and its
//! image `<name>.png` (or `.jpg`), loaded and checked offline against LINE's limits.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};

/// The menus yorisoi knows, one per stage (other code links them by these names).
pub const MENU_NAMES: &[&str] = &["registering", "pregnancy", "child", "stopped"];

/// The postback `data` the conversation answers.
pub const MENU_ACTIONS: &[&str] = &[
    "menu:register",
    "menu:faq",
    "menu:contact",
    "menu:show",
    "menu:born",
    "menu:pause",
    "menu:share",
    "menu:settings",
    "menu:add",
    "menu:resume",
];

/// LINE's limit on a rich menu image, in bytes.
pub const MAX_IMAGE_BYTES: usize = 1024 * 1024;

/// The alias every menu gets.
pub fn alias_of(name: &str) -> String {
    format!("yorisoi-{name}")
}

/// LINE's rich menu object (<https://developers.line.biz/en/reference/messaging-api/#rich-menu-object>).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RichMenu {
    /// Pixel size of the image.
    pub size: Size,
    /// Whether the menu opens by default.
    pub selected: bool,
    /// LINE's name of the menu (not shown to readers).
    pub name: String,
    /// The text of the chat bar.
    pub chat_bar_text: String,
    /// The tappable areas.
    pub areas: Vec<Area>,
}

/// Width and height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
}

/// One tappable area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    /// Where, in image pixels.
    pub bounds: Bounds,
    /// What a tap does.
    pub action: Action,
}

/// A rectangle in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Left.
    pub x: u32,
    /// Top.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Bounds {
    /// Right and bottom edges (in u64: an editor's huge number must not overflow).
    fn ends(&self) -> (u64, u64) {
        (
            u64::from(self.x) + u64::from(self.width),
            u64::from(self.y) + u64::from(self.height),
        )
    }

    fn overlaps(&self, o: &Bounds) -> bool {
        let ((right, bottom), (o_right, o_bottom)) = (self.ends(), o.ends());
        u64::from(self.x) < o_right
            && u64::from(o.x) < right
            && u64::from(self.y) < o_bottom
            && u64::from(o.y) < bottom
    }
}

/// An area's action: a postback, or a switch to another menu through its alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Action {
    /// `postback` or `richmenuswitch`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The label (accessibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The postback data.
    pub data: String,
    /// Shown as the reader's message when tapped (postback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_text: Option<String>,
    /// The alias to switch to (`richmenuswitch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rich_menu_alias_id: Option<String>,
}

/// A loaded definition: the menu and its image.
#[derive(Debug, Clone)]
pub struct MenuFile {
    /// The menu's name: the file name without `.json`.
    pub name: String,
    /// The definition file.
    pub path: PathBuf,
    /// The definition.
    pub menu: RichMenu,
    /// The image file.
    pub image_path: PathBuf,
    /// The image.
    pub image: Vec<u8>,
    /// `image/png` or `image/jpeg`.
    pub content_type: &'static str,
}

impl MenuFile {
    /// SHA-256 (hex) of the definition (as sent to LINE) and the image: what decides whether
    /// LINE's menu is still this one.
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&self.menu).unwrap_or_default());
        h.update([0u8]);
        h.update(&self.image);
        h.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    }
}

/// Something wrong with a definition, naming the file (and the area).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// The definitions of a folder, or every problem found in them.
pub fn load_dir(dir: &Path) -> Result<Vec<MenuFile>, Vec<Problem>> {
    let dir_problem = |message: String| {
        vec![Problem {
            file: dir.display().to_string(),
            message,
        }]
    };
    let entries = std::fs::read_dir(dir).map_err(|e| dir_problem(format!("cannot read: {e}")))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(dir_problem("no rich menu definitions (*.json)".into()));
    }
    let mut menus = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match load_one(&path) {
            Ok(m) => {
                let found = check(&m);
                if found.is_empty() {
                    menus.push(m);
                }
                problems.extend(found);
            }
            Err(p) => problems.push(p),
        }
    }
    problems.extend(check_switches(&menus));
    if problems.is_empty() {
        Ok(menus)
    } else {
        Err(problems)
    }
}

fn load_one(path: &Path) -> Result<MenuFile, Problem> {
    let file = path.display().to_string();
    let problem = |message: String| Problem {
        file: file.clone(),
        message,
    };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    if !MENU_NAMES.contains(&name.as_str()) {
        return Err(problem(format!(
            "unknown menu {name:?}: the menus are {}",
            MENU_NAMES.join(", ")
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| problem(format!("cannot read: {e}")))?;
    // serde's message can quote the file; that is the editor's own file, not personal data.
    let menu: RichMenu =
        serde_json::from_str(&text).map_err(|e| problem(format!("not a rich menu object: {e}")))?;
    let (image_path, content_type) = [
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
    ]
    .into_iter()
    .map(|(ext, ct)| (path.with_extension(ext), ct))
    .find(|(p, _)| p.exists())
    .ok_or_else(|| {
        problem(format!(
            "no image: expected {name}.png or {name}.jpg beside it"
        ))
    })?;
    let image = std::fs::read(&image_path)
        .map_err(|e| problem(format!("cannot read {}: {e}", image_path.display())))?;
    Ok(MenuFile {
        name,
        path: path.to_owned(),
        menu,
        image_path,
        image,
        content_type,
    })
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Every problem of one definition: LINE's limits and yorisoi's own rules.
pub fn check(m: &MenuFile) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut say = |message: String| {
        out.push(Problem {
            file: m.path.display().to_string(),
            message,
        })
    };
    let menu = &m.menu;
    let size = menu.size;
    if size.width != 2500 || ![1686, 843].contains(&size.height) {
        say(format!(
            "size {}×{}: must be 2500×1686 or 2500×843",
            size.width, size.height
        ));
    }
    if menu.name != m.name {
        say(format!(
            "name {:?} must be the file's name {:?}",
            menu.name, m.name
        ));
    }
    if menu.chat_bar_text.is_empty() || chars(&menu.chat_bar_text) > 14 {
        say(format!(
            "chatBarText must be 1 to 14 characters, is {}",
            chars(&menu.chat_bar_text)
        ));
    }
    for p in check_image(m) {
        say(p);
    }
    if menu.areas.is_empty() || menu.areas.len() > 20 {
        say(format!("must have 1 to 20 areas, has {}", menu.areas.len()));
    }
    for (i, area) in menu.areas.iter().enumerate() {
        let at = area_name(i, area);
        for p in check_area(area, size) {
            say(format!("{at}: {p}"));
        }
        for (j, other) in menu.areas.iter().enumerate().skip(i + 1) {
            if area.bounds.overlaps(&other.bounds) {
                say(format!("{at} overlaps {}", area_name(j, other)));
            }
        }
    }
    out
}

fn area_name(i: usize, area: &Area) -> String {
    match &area.action.label {
        Some(l) => format!("area {} ({l})", i + 1),
        None => format!("area {}", i + 1),
    }
}

fn check_image(m: &MenuFile) -> Vec<String> {
    let mut out = Vec::new();
    let file = m.image_path.display();
    if m.image.len() > MAX_IMAGE_BYTES {
        out.push(format!(
            "{file} is {} bytes: LINE takes at most {MAX_IMAGE_BYTES} (1 MB)",
            m.image.len()
        ));
    }
    let format_ok = match imagesize::image_type(&m.image) {
        Ok(imagesize::ImageType::Png) => m.content_type == "image/png",
        Ok(imagesize::ImageType::Jpeg) => m.content_type == "image/jpeg",
        _ => false,
    };
    if !format_ok {
        out.push(format!("{file} is not a {} image", m.content_type));
        return out;
    }
    match imagesize::blob_size(&m.image) {
        Ok(s) if s.width as u32 == m.menu.size.width && s.height as u32 == m.menu.size.height => {}
        Ok(s) => out.push(format!(
            "{file} is {}×{} pixels, the definition says {}×{}",
            s.width, s.height, m.menu.size.width, m.menu.size.height
        )),
        Err(_) => out.push(format!("{file}: its size cannot be read")),
    }
    out
}

fn check_area(area: &Area, size: Size) -> Vec<String> {
    let mut out = Vec::new();
    let b = area.bounds;
    if b.width == 0 || b.height == 0 {
        out.push("an area must have a width and a height".into());
    }
    let (right, bottom) = b.ends();
    if right > u64::from(size.width) || bottom > u64::from(size.height) {
        out.push(format!(
            "bounds x {} y {} width {} height {} go outside the image ({}×{})",
            b.x, b.y, b.width, b.height, size.width, size.height
        ));
    }
    let a = &area.action;
    if let Some(label) = &a.label
        && (label.is_empty() || chars(label) > 20)
    {
        out.push(format!(
            "label must be 1 to 20 characters, is {}",
            chars(label)
        ));
    }
    if chars(&a.data) > 300 {
        out.push(format!(
            "data is {} characters: at most 300",
            chars(&a.data)
        ));
    }
    match a.kind.as_str() {
        "postback" => {
            if !MENU_ACTIONS.contains(&a.data.as_str()) {
                out.push(format!(
                    "data {:?} is not one the conversation answers ({})",
                    a.data,
                    MENU_ACTIONS.join(", ")
                ));
            }
            match &a.display_text {
                None => out.push(
                    "a postback needs a displayText (the reader sees it as their message)".into(),
                ),
                Some(t) if t.is_empty() || chars(t) > 300 => out.push(format!(
                    "displayText must be 1 to 300 characters, is {}",
                    chars(t)
                )),
                Some(t) if a.label.as_ref().is_some_and(|l| l != t) => {
                    out.push(format!("displayText {t:?} should be the label"))
                }
                Some(_) => {}
            }
            if a.rich_menu_alias_id.is_some() {
                out.push("richMenuAliasId belongs to a richmenuswitch action".into());
            }
        }
        "richmenuswitch" => {
            if a.rich_menu_alias_id.is_none() {
                out.push("a richmenuswitch needs a richMenuAliasId".into());
            }
            if a.display_text.is_some() {
                out.push("displayText belongs to a postback action".into());
            }
        }
        other => out.push(format!(
            "action type {other:?}: use postback or richmenuswitch"
        )),
    }
    out
}

/// Every `richmenuswitch` names the alias of a defined menu.
fn check_switches(menus: &[MenuFile]) -> Vec<Problem> {
    let aliases: Vec<String> = menus.iter().map(|m| alias_of(&m.name)).collect();
    let mut out = Vec::new();
    for m in menus {
        for (i, area) in m.menu.areas.iter().enumerate() {
            if let Some(alias) = &area.action.rich_menu_alias_id
                && !aliases.contains(alias)
            {
                out.push(Problem {
                    file: m.path.display().to_string(),
                    message: format!(
                        "{}: richMenuAliasId {alias:?} is not the alias of a menu here ({})",
                        area_name(i, area),
                        aliases.join(", ")
                    ),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
