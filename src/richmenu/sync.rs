//! `yorisoi richmenu sync`: brings LINE's rich menus to the definitions, following the plan.

use super::definition::{MenuFile, alias_of};
use super::plan::{OnLine, Step, Target, Wanted, plan};
use super::relink::{Pass, Relinker};
use super::store;
use crate::clock::SharedClock;
use crate::line::LineClient;
use crate::store::Db;
use anyhow::{Context, bail};
use std::collections::BTreeMap;

/// LINE's limit on rich menu creations and deletions, per hour and channel.
pub const PER_HOUR: u32 = 100;

/// What a sync did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The plan, in order.
    pub steps: Vec<Step>,
    /// Readers relinked during the sync.
    pub relinked: Pass,
    /// Readers still to relink (by `serve`, after a failure of LINE).
    pub left: i64,
}

/// Reads what LINE holds (reads only).
async fn on_line(line: &LineClient) -> anyhow::Result<OnLine> {
    let menus = line
        .list_rich_menus()
        .await
        .context("reading LINE's rich menus")?;
    let aliases = line
        .list_rich_menu_aliases()
        .await
        .context("reading LINE's rich menu aliases")?;
    let default = line
        .default_rich_menu()
        .await
        .context("reading LINE's default rich menu")?;
    Ok(OnLine {
        menus: menus.into_iter().map(|m| m.rich_menu_id).collect(),
        aliases: aliases
            .into_iter()
            .map(|a| (a.rich_menu_alias_id, a.rich_menu_id))
            .collect(),
        default,
    })
}

/// Plans, and unless `dry_run`, carries the plan out. Stops before the first request if the
/// plan would pass LINE's 100 creations and deletions an hour.
pub async fn sync(
    db: &Db,
    line: &LineClient,
    clock: &SharedClock,
    menus: &[MenuFile],
    dry_run: bool,
) -> anyhow::Result<Report> {
    let state = on_line(line).await?;
    let recorded = db.run(|c| Ok(store::recorded(c)?)).await?;
    let wanted: Vec<Wanted> = menus
        .iter()
        .map(|m| Wanted {
            name: m.name.clone(),
            hash: m.hash(),
        })
        .collect();
    let steps = plan(&wanted, &recorded, &state);
    let mut report = Report {
        steps: steps.clone(),
        ..Report::default()
    };
    if dry_run || steps.is_empty() {
        return Ok(report);
    }
    let since = clock.now() - chrono::TimeDelta::hours(1);
    let made = db.run(move |c| Ok(store::changes_since(c, since)?)).await?;
    let needed = steps.iter().filter(|s| s.counted()).count() as u32;
    if made + needed > PER_HOUR {
        bail!(
            "LINE allows {PER_HOUR} rich menu creations and deletions an hour: {made} were made in \
             the last hour and this sync needs {needed}. Nothing was changed; run it again later."
        );
    }
    let mut created: BTreeMap<String, String> = BTreeMap::new();
    for step in &steps {
        run_step(db, line, clock, menus, &mut created, step, &mut report)
            .await
            .with_context(|| format!("{step}"))?;
    }
    Ok(report)
}

fn resolve(target: &Target, created: &BTreeMap<String, String>) -> anyhow::Result<String> {
    match target {
        Target::Existing(id) => Ok(id.clone()),
        Target::New(name) => created
            .get(name)
            .cloned()
            .with_context(|| format!("the {name} menu was not created")),
    }
}

async fn run_step(
    db: &Db,
    line: &LineClient,
    clock: &SharedClock,
    menus: &[MenuFile],
    created: &mut BTreeMap<String, String>,
    step: &Step,
    report: &mut Report,
) -> anyhow::Result<()> {
    match step {
        Step::Create { name } => {
            let m = menus
                .iter()
                .find(|m| &m.name == name)
                .with_context(|| format!("no definition of {name}"))?;
            let id = create(db, line, clock, m).await?;
            created.insert(name.clone(), id);
        }
        Step::Alias {
            name,
            exists,
            target,
        } => {
            let id = resolve(target, created)?;
            if *exists {
                line.update_rich_menu_alias(&alias_of(name), &id).await?;
            } else {
                line.create_rich_menu_alias(&alias_of(name), &id).await?;
            }
        }
        Step::Default { target } => {
            line.set_default_rich_menu(&resolve(target, created)?)
                .await?;
        }
        Step::Relink => {
            db.run(|c| Ok(store::mark_everyone(c)?)).await?;
            let relinker = Relinker::new(db.clone(), line.clone(), clock.clone());
            report.relinked = relinker.drain().await?;
            report.left = db.run(|c| Ok(store::marked_count(c)?)).await?;
        }
        Step::DeleteAlias { alias } => match line.delete_rich_menu_alias(alias).await {
            Err(e) if !e.not_found() => return Err(e.into()),
            _ => {}
        },
        Step::Delete {
            rich_menu_id,
            on_line,
            ..
        } => {
            if *on_line {
                match line.delete_rich_menu(rich_menu_id).await {
                    Err(e) if !e.not_found() => return Err(e.into()),
                    _ => {}
                }
            }
            let (id, on_line, now) = (rich_menu_id.clone(), *on_line, clock.now());
            db.run(move |c| Ok(store::record_deleted(c, &id, on_line, now)?))
                .await?;
        }
    }
    Ok(())
}

/// Validates, creates, uploads the image, records it and makes it the name's menu.
async fn create(
    db: &Db,
    line: &LineClient,
    clock: &SharedClock,
    m: &MenuFile,
) -> anyhow::Result<String> {
    let object = serde_json::to_value(&m.menu)?;
    line.validate_rich_menu(&object)
        .await
        .with_context(|| format!("LINE refuses {}", m.path.display()))?;
    let id = line.create_rich_menu(&object).await?;
    let (rid, name, hash, now) = (id.clone(), m.name.clone(), m.hash(), clock.now());
    db.run(move |c| Ok(store::record_created(c, &rid, &name, &hash, now)?))
        .await?;
    // A failure from here on leaves a recorded menu that is not current: the next sync deletes it.
    line.upload_rich_menu_image(&id, &m.image, m.content_type)
        .await
        .with_context(|| format!("uploading {}", m.image_path.display()))?;
    let (rid, name) = (id.clone(), m.name.clone());
    db.run(move |c| {
        store::record_uploaded(c, &rid)?;
        store::make_current(c, &name, &rid)?;
        Ok(())
    })
    .await?;
    Ok(id)
}
