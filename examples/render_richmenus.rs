//! Renders each rich menu's SVG source to the PNG LINE receives:
//!
//!     cargo run --example render_richmenus [-- DIR]
//!
//! For every `richmenus/<name>.svg` (or `DIR/<name>.svg`), `{municipality}` in the SVG is
//! replaced by `name` from `messages/municipality.toml`, the SVG is rendered with resvg at its own
//! pixel size using the system fonts (Noto Sans CJK JP from Debian's `fonts-noto-cjk`), and
//! `<name>.png` is written beside it. Same sources, same fonts: same PNG.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("richmenus"));
    let municipality = municipality_name(Path::new("messages/municipality.toml"))?;
    let mut options = resvg::usvg::Options {
        font_family: "Noto Sans CJK JP".into(),
        ..Default::default()
    };
    options.fontdb_mut().load_system_fonts();
    if options.fontdb_mut().faces().all(|f| {
        f.families
            .iter()
            .all(|(name, _)| !name.contains("Noto Sans CJK JP"))
    }) {
        bail!(
            "the font Noto Sans CJK JP is not installed (Debian: apt-get install fonts-noto-cjk)"
        );
    }
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    sources.sort();
    if sources.is_empty() {
        bail!("no .svg files in {}", dir.display());
    }
    for svg in sources {
        let png = svg.with_extension("png");
        let bytes = render(&svg, &municipality, &options)?;
        std::fs::write(&png, &bytes).with_context(|| format!("writing {}", png.display()))?;
        println!(
            "{} → {} ({} bytes)",
            svg.display(),
            png.display(),
            bytes.len()
        );
    }
    Ok(())
}

fn municipality_name(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|_| anyhow::anyhow!("{}: not valid TOML", path.display()))?;
    match table.get("name").and_then(|v| v.as_str()) {
        Some(name) => Ok(name.to_owned()),
        None => bail!("{}: no `name`", path.display()),
    }
}

fn render(
    svg: &Path,
    municipality: &str,
    options: &resvg::usvg::Options,
) -> anyhow::Result<Vec<u8>> {
    let source =
        std::fs::read_to_string(svg).with_context(|| format!("reading {}", svg.display()))?;
    let source = source.replace("{municipality}", &xml_escape(municipality));
    let tree = resvg::usvg::Tree::from_str(&source, options)
        .with_context(|| format!("{}: not a valid SVG", svg.display()))?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .with_context(|| format!("{}: empty size", svg.display()))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .with_context(|| format!("{}: encoding the PNG", svg.display()))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
