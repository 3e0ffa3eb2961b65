//! Planning a day for every active registration: the pure schedule per registration, grouped
//! per reader into pushes of at most five message objects; and rendering a push from its
//! recorded items (the one way a push is turned into messages, first send or resend).

use crate::content::NoticeWhen;
use crate::content::{ContentPack, render};
use crate::domain::{Position, Stage};
use crate::line::Message;
use crate::schedule::{self, Item, RegistrationView, TakenNotices};
use crate::store::{self, deliveries::RecordedItem};
use chrono::NaiveDate;
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::Arc;

/// LINE's limit of message objects per push.
pub const MAX_OBJECTS: usize = 5;

/// One message object of a push.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// The registration it speaks to.
    registration_id: i64,
    /// Twins a shared notice also counts for (rare: kept out of line).
    also: Option<Box<[i64]>>,
    /// Interned: the same few hundred ids are shared by every push.
    content_id: Arc<str>,
}

/// One push: up to five message objects for one reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedPush {
    /// Recipient (internal id).
    pub user_id: i64,
    /// Push number of the day for this reader.
    pub seq: u32,
    start: u32,
    len: u8,
}

/// A registration that reaches the end of the programme today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The registration.
    pub registration_id: i64,
    /// Its last message, if it has one today (it completes once that is delivered).
    pub last_content: Option<String>,
}

/// A day's plan.
#[derive(Debug, Default)]
pub struct Plan {
    /// Every push, grouped by reader.
    pub pushes: Vec<PlannedPush>,
    entries: Vec<Entry>,
    /// The age-window notices of the pack, with the last track day of their window: recording
    /// one takes it.
    windows: Vec<(Arc<str>, i64)>,
    /// Registrations completing today.
    pub completions: Vec<Completion>,
}

impl Plan {
    /// The items to record for a push: one per message object and registration.
    pub fn items(&self, p: &PlannedPush) -> Vec<RecordedItem> {
        let entries = &self.entries[p.start as usize..p.start as usize + p.len as usize];
        let mut out = Vec::with_capacity(entries.len());
        for (pos, e) in entries.iter().enumerate() {
            for r in std::iter::once(&e.registration_id).chain(e.also.iter().flat_map(|a| a.iter()))
            {
                out.push(RecordedItem {
                    position: pos as u32,
                    registration_id: *r,
                    content_id: e.content_id.to_string(),
                    window_end: self
                        .windows
                        .iter()
                        .find(|(id, _)| *id == e.content_id)
                        .map(|(_, end)| *end),
                });
            }
        }
        out
    }
}

/// What rendering needs of a registration.
#[derive(Debug, Clone)]
pub struct RegInfo {
    /// Nickname.
    pub nickname: String,
    /// Stage.
    pub stage: Stage,
    /// Due date or birthday.
    pub date: NaiveDate,
}

fn position_label(p: Position) -> String {
    match p {
        Position::Pregnancy(p) => p.label(),
        Position::Child(a) => a.day_label(),
    }
}

/// Renders a push for `date` from its items. Items whose content is no longer in the pack, or
/// whose registration is unknown, are left out.
pub fn render_items(
    pack: &ContentPack,
    date: NaiveDate,
    items: &[RecordedItem],
    regs: &HashMap<i64, RegInfo>,
) -> Vec<Message> {
    // The first registration of each position is the one the message speaks to.
    let mut firsts: Vec<&RecordedItem> = Vec::new();
    for it in items {
        if firsts.last().is_none_or(|f| f.position != it.position) {
            firsts.push(it);
        }
    }
    let mut day_regs: Vec<i64> = firsts
        .iter()
        .filter(|it| pack.lookup(&it.content_id).is_some_and(|(_, day)| day))
        .map(|it| it.registration_id)
        .collect();
    day_regs.sort_unstable();
    day_regs.dedup();
    let label_twins = day_regs.len() > 1;

    let mut out = Vec::with_capacity(firsts.len());
    let mut last_vars = None;
    for it in firsts {
        let (Some((body, is_day)), Some(reg)) =
            (pack.lookup(&it.content_id), regs.get(&it.registration_id))
        else {
            continue;
        };
        let view = RegistrationView {
            id: it.registration_id,
            stage: reg.stage,
            date: reg.date,
            started_on: date,
            notices_taken: TakenNotices::default(),
        };
        let pos = schedule::position(&view, date);
        let vars = render::vars(pack, &reg.nickname, pos);
        let mut m = render::render(body, &vars);
        if is_day && label_twins {
            let n = day_regs
                .iter()
                .position(|r| *r == it.registration_id)
                .unwrap_or(0)
                + 1;
            render::prepend_label(
                &mut m,
                &format!("【{n}人目：{}さん・{}】", reg.nickname, position_label(pos)),
            );
        }
        out.push(m);
        last_vars = Some(vars);
    }
    if let (Some(last), Some(vars)) = (out.last_mut(), last_vars) {
        render::append_footer(last, &render::footer(pack, &vars));
    }
    out
}

/// Plans `date` for every active registration of every reader who follows the account.
pub fn plan_day_for_all(
    conn: &Connection,
    pack: &ContentPack,
    date: NaiveDate,
) -> anyhow::Result<Plan> {
    // In registration order, so the taken notices are handed out alongside in one pass.
    let mut taken = OpenTaken::read(conn, pack, date)?;
    let mut rows: Vec<(i64, RegistrationView)> = Vec::new();
    store::planning::active_registrations(conn, |r| {
        rows.push((
            r.user_id,
            RegistrationView {
                id: r.registration_id,
                stage: r.stage,
                date: r.date,
                started_on: r.started_on,
                notices_taken: taken.of(r.registration_id),
            },
        ));
    })?;
    rows.sort_unstable_by_key(|(user, reg)| (*user, reg.id));
    Ok(plan_rows(pack, &rows, date))
}

/// The taken notices whose window is still open on the date (the only ones the schedule can
/// ask about: a registration keeps every notice it has received, but only those of its current
/// age matter), sorted by registration and handed out in that order. Identical sets (readers of
/// the same age have the same) share one allocation.
struct OpenTaken {
    /// (registration, index of the notice in the pack), sorted.
    rows: Vec<(i64, u32)>,
    at: usize,
    words: Vec<u64>,
    interned: HashMap<Box<[u64]>, TakenNotices>,
    last: Option<(i64, TakenNotices)>,
}

impl OpenTaken {
    fn read(conn: &Connection, pack: &ContentPack, date: NaiveDate) -> anyhow::Result<Self> {
        let index: HashMap<&str, u32> = pack
            .notices
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i as u32))
            .collect();
        let mut rows = Vec::new();
        // A notice no longer in the pack is never offered: nothing to remember.
        store::planning::open_taken_notices(conn, date, |registration, notice| {
            if let Some(i) = index.get(notice) {
                rows.push((registration, *i));
            }
        })?;
        rows.sort_unstable();
        Ok(Self {
            rows,
            at: 0,
            words: Vec::new(),
            interned: HashMap::new(),
            last: None,
        })
    }

    /// The open notices `registration_id` has taken; asked in ascending order of registration.
    fn of(&mut self, registration_id: i64) -> TakenNotices {
        if let Some((id, set)) = &self.last
            && *id == registration_id
        {
            return set.clone(); // a second reader of the same registration
        }
        self.words.clear();
        while let Some(&(id, notice)) = self.rows.get(self.at) {
            if id > registration_id {
                break;
            }
            if id == registration_id {
                schedule::set_bit(&mut self.words, notice as usize);
            }
            self.at += 1;
        }
        let set = match self.interned.get(self.words.as_slice()) {
            Some(set) => set.clone(),
            None => {
                let set = TakenNotices::from_words(&self.words);
                self.interned
                    .insert(self.words.clone().into_boxed_slice(), set.clone());
                set
            }
        };
        self.last = Some((registration_id, set.clone()));
        set
    }
}

/// One shared copy of each content id.
fn intern<'p>(map: &mut HashMap<&'p str, Arc<str>>, id: &'p str) -> Arc<str> {
    map.entry(id).or_insert_with(|| Arc::from(id)).clone()
}

/// Plans already-read rows (sorted by reader, then registration).
pub fn plan_rows(pack: &ContentPack, rows: &[(i64, RegistrationView)], date: NaiveDate) -> Plan {
    let end_age = pack.last_birthday();
    let mut plan = Plan {
        windows: pack
            .notices
            .iter()
            .filter(|n| n.when == NoticeWhen::Window)
            .filter_map(|n| Some((Arc::from(n.content_id.as_str()), n.range?.1)))
            .collect(),
        ..Plan::default()
    };
    let mut interned: HashMap<&str, Arc<str>> = HashMap::new();
    let mut days: Vec<Entry> = Vec::new();
    let mut notices: Vec<(Entry, Vec<i64>)> = Vec::new();
    for group in rows.chunk_by(|a, b| a.0 == b.0) {
        let user_id = group[0].0;
        days.clear();
        notices.clear();
        for (_, reg) in group {
            let day = schedule::plan_day(pack, reg, date, end_age);
            let mut last_content = None;
            for item in &day.items {
                let content_id = intern(&mut interned, item.content_id());
                match item {
                    Item::Day(_) => {
                        last_content = Some(content_id.to_string());
                        days.push(Entry {
                            registration_id: reg.id,
                            also: None,
                            content_id,
                        });
                    }
                    // The same notice once per reader, even for twins; it counts for each.
                    Item::Notice(_) => {
                        match notices.iter_mut().find(|(n, _)| n.content_id == content_id) {
                            Some((_, also)) => also.push(reg.id),
                            None => notices.push((
                                Entry {
                                    registration_id: reg.id,
                                    also: None,
                                    content_id,
                                },
                                Vec::new(),
                            )),
                        }
                    }
                }
            }
            if day.completes {
                plan.completions.push(Completion {
                    registration_id: reg.id,
                    last_content,
                });
            }
        }
        let first = plan.entries.len();
        plan.entries.append(&mut days);
        plan.entries.extend(notices.drain(..).map(|(mut e, also)| {
            if !also.is_empty() {
                e.also = Some(also.into_boxed_slice());
            }
            e
        }));
        let end = plan.entries.len();
        for (seq, start) in (first..end).step_by(MAX_OBJECTS).enumerate() {
            let len = (end - start).min(MAX_OBJECTS) as u8;
            plan.pushes.push(PlannedPush {
                user_id,
                seq: seq as u32,
                start: start as u32,
                len,
            });
        }
    }
    plan
}
