//! The relinker: links each marked reader to their stage's menu (or unlinks them, for the
//! default), through the channel's rate limiter, recording what LINE has. It does nothing until
//! menus have been synced; a 5xx or 429 leaves the reader marked for a later try.

use super::stage::{MenuStage, stage};
use super::store::{self, Marked};
use crate::clock::SharedClock;
use crate::line::LineClient;
use crate::store::Db;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// Readers looked at in one pass.
const BATCH: usize = 200;
/// How long a reader waits after LINE failed.
const RETRY_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// How often the background task looks when there was nothing to do.
const IDLE: Duration = Duration::from_secs(2);

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Readers looked at.
    pub looked: usize,
    /// Linked to a stage's menu.
    pub linked: usize,
    /// Unlinked (the default menu).
    pub unlinked: usize,
    /// LINE refused for good (4xx): left as they are.
    pub refused: usize,
    /// LINE failed (5xx, 429, no answer): tried again later.
    pub later: usize,
    /// LINE refused the channel (401, 403): the pass stopped there.
    pub halted: bool,
}

impl Pass {
    fn add(&mut self, o: Pass) {
        self.looked += o.looked;
        self.linked += o.linked;
        self.unlinked += o.unlinked;
        self.refused += o.refused;
        self.later += o.later;
        self.halted |= o.halted;
    }
}

/// Links and unlinks marked readers.
#[derive(Clone)]
pub struct Relinker {
    db: Db,
    line: LineClient,
    clock: SharedClock,
}

enum Change {
    Nothing,
    Link(String),
    Unlink,
}

fn change(m: &Marked, menus: &BTreeMap<String, String>) -> Change {
    let want = match stage(m.reading) {
        // A reader who blocked the account: LINE shows them nothing.
        None => return Change::Nothing,
        Some(MenuStage::Registering) => None,
        Some(s) => match menus.get(s.menu_name()) {
            Some(id) => Some(id.clone()),
            // That stage's menu is not synced: leave them as they are.
            None => return Change::Nothing,
        },
    };
    match want {
        w if w == m.linked_menu => Change::Nothing,
        Some(id) => Change::Link(id),
        None => Change::Unlink,
    }
}

impl Relinker {
    /// A relinker on its own connection.
    pub fn new(db: Db, line: LineClient, clock: SharedClock) -> Self {
        Self { db, line, clock }
    }

    /// Looks at up to one batch of marked readers due now.
    pub async fn run_once(&self) -> anyhow::Result<Pass> {
        let now = self.clock.now();
        let (menus, marked) = self
            .db
            .run(move |c| Ok((store::current_menus(c)?, store::marked(c, now, BATCH)?)))
            .await?;
        let mut pass = Pass::default();
        if menus.is_empty() {
            return Ok(pass);
        }
        for m in marked {
            pass.looked += 1;
            let result = match change(&m, &menus) {
                Change::Nothing => Ok(None),
                Change::Link(id) => self
                    .line
                    .link_rich_menu(&m.line_user_id, &id)
                    .await
                    .map(|()| Some(Some(id))),
                Change::Unlink => self
                    .line
                    .unlink_rich_menu(&m.line_user_id)
                    .await
                    .map(|()| Some(None)),
            };
            let now = self.clock.now();
            let user = m.user_id;
            // A refused channel (revoked token) is no answer about this reader: they keep
            // their mark and the pass stops; the links are made once the token is right.
            let halted = matches!(&result, Err(e) if e.channel_refused());
            match &result {
                Ok(Some(Some(_))) => pass.linked += 1,
                Ok(Some(None)) => pass.unlinked += 1,
                Ok(None) => {}
                Err(e) if e.retryable() || halted => {
                    pass.later += 1;
                    tracing::warn!(user_id = user, error = %e, "rich menu link failed; will retry");
                }
                Err(e) => {
                    pass.refused += 1;
                    tracing::warn!(user_id = user, error = %e, "LINE refused a rich menu link");
                }
            }
            self.db
                .run(move |c| {
                    match result {
                        Ok(Some(linked)) => store::record_linked(c, user, linked.as_deref(), now)?,
                        Err(e) if e.retryable() || halted => {
                            store::retry_after(c, user, now + RETRY_AFTER)?
                        }
                        Ok(None) | Err(_) => store::clear_mark(c, user)?,
                    }
                    Ok(())
                })
                .await?;
            if halted {
                pass.halted = true;
                break;
            }
        }
        Ok(pass)
    }

    /// Passes until no marked reader is due now.
    pub async fn drain(&self) -> anyhow::Result<Pass> {
        let mut total = Pass::default();
        loop {
            let p = self.run_once().await?;
            total.add(p);
            if p.looked == 0 || p.halted {
                return Ok(total);
            }
        }
    }

    /// The background task: drains, then looks again every two seconds, until stopped.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                r = self.drain() => if let Err(e) = r {
                    tracing::error!(error = %e, "relinking rich menus failed; will retry");
                },
                _ = stop.changed() => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(IDLE) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
