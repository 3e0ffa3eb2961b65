//! Planning a day for every active registration: pure schedule per registration, grouped per
//! reader into pushes of at most five message objects.

use crate::content::{Body, ContentPack, DayKey, render};
use crate::domain::{Position, Stage};
use crate::line::Message;
use crate::schedule::{self, Item, RegistrationView};
use chrono::NaiveDate;
use rusqlite::Connection;

/// LINE's limit of message objects per push.
pub const MAX_OBJECTS: usize = 5;

/// A compact reference to content in the pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemRef {
    /// A day message.
    Day(DayKey),
    /// A notice, by index in the pack.
    Notice(u32),
}

impl ItemRef {
    fn of(pack: &ContentPack, item: &Item<'_>) -> Self {
        match item {
            Item::Day(m) => ItemRef::Day(m.key),
            Item::Notice(n) => ItemRef::Notice(
                pack.notices
                    .iter()
                    .position(|x| std::ptr::eq(x, *n))
                    .unwrap_or_default() as u32,
            ),
        }
    }

    fn resolve<'p>(&self, pack: &'p ContentPack) -> Option<(&'p str, &'p Body, bool)> {
        match self {
            ItemRef::Day(DayKey::Pregnancy(d)) => pack
                .pregnancy
                .get(d)
                .map(|m| (m.id.as_str(), &m.body, true)),
            ItemRef::Day(DayKey::Child(d)) => pack
                .child_days
                .get(d)
                .map(|m| (m.id.as_str(), &m.body, true)),
            ItemRef::Day(DayKey::Birthday(a)) => pack
                .birthdays
                .get(a)
                .map(|m| (m.id.as_str(), &m.body, true)),
            ItemRef::Notice(i) => pack
                .notices
                .get(*i as usize)
                .map(|n| (n.id.as_str(), &n.body, false)),
        }
    }

    /// The content id recorded in delivery records.
    pub fn content_id(&self, pack: &ContentPack) -> String {
        match (self, self.resolve(pack)) {
            (ItemRef::Notice(_), Some((id, _, _))) => format!("notice/{id}"),
            (_, Some((id, _, _))) => id.to_owned(),
            (_, None) => "missing".into(),
        }
    }
}

/// One message object of a push.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// Whose content it is.
    pub registration_id: i64,
    /// Which content.
    pub item: ItemRef,
    /// The registration's position that day.
    pub position: Position,
    /// 1-based number of the registration among the reader's, when they have several today.
    pub label: Option<u8>,
}

/// One push: up to five entries for one reader.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The registration.
    pub registration_id: i64,
    /// The push carrying its last message, if it has one today.
    pub push: Option<(i64, u32)>,
}

/// A day's plan.
#[derive(Debug, Default)]
pub struct Plan {
    /// Every push, grouped by reader.
    pub pushes: Vec<PlannedPush>,
    entries: Vec<Entry>,
    /// Registrations completing today.
    pub completions: Vec<Completion>,
}

impl Plan {
    /// The entries of a push.
    pub fn entries(&self, p: &PlannedPush) -> &[Entry] {
        &self.entries[p.start as usize..p.start as usize + p.len as usize]
    }

    /// The message objects of a push; `nickname` gives each registration's nickname.
    pub fn render<'a>(
        &self,
        pack: &ContentPack,
        p: &PlannedPush,
        nickname: impl Fn(i64) -> &'a str,
    ) -> Vec<Message> {
        let mut out = Vec::with_capacity(p.len as usize);
        let mut last_vars = None;
        for e in self.entries(p) {
            let Some((_, body, is_day)) = e.item.resolve(pack) else {
                continue;
            };
            let name = nickname(e.registration_id);
            let vars = render::vars(pack, name, e.position);
            let mut m = render::render(body, &vars);
            if let (true, Some(n)) = (is_day, e.label) {
                render::prepend_label(
                    &mut m,
                    &format!("【{n}人目：{name}さん・{}】", position_label(e.position)),
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
}

fn position_label(p: Position) -> String {
    match p {
        Position::Pregnancy(p) => p.label(),
        Position::Child(a) => format!("生まれて{}日目", a.days),
    }
}

/// Plans `date` for every active registration of every reader who follows the account.
pub fn plan_day_for_all(
    conn: &Connection,
    pack: &ContentPack,
    date: NaiveDate,
) -> anyhow::Result<Plan> {
    let mut stmt = conn.prepare(
        "SELECT rr.user_id, r.id, r.stage, COALESCE(r.due_date, r.birthday), r.started_on
         FROM registrations r
         JOIN registration_readers rr ON rr.registration_id = r.id
         JOIN line_users u ON u.id = rr.user_id
         WHERE r.status = 'active' AND u.following = 1",
    )?;
    let mut rows: Vec<(i64, RegistrationView)> = Vec::new();
    let mut q = stmt.query([])?;
    while let Some(r) = q.next()? {
        let stage = match r.get_ref(2)?.as_str()? {
            "pregnancy" => Stage::Pregnancy,
            _ => Stage::Child,
        };
        let parse = |i: usize| -> anyhow::Result<NaiveDate> {
            Ok(NaiveDate::parse_from_str(
                r.get_ref(i)?.as_str()?,
                "%Y-%m-%d",
            )?)
        };
        rows.push((
            r.get(0)?,
            RegistrationView {
                id: r.get(1)?,
                stage,
                date: parse(3)?,
                started_on: parse(4)?,
            },
        ));
    }
    rows.sort_unstable_by_key(|(user, reg)| (*user, reg.id));
    Ok(plan_rows(pack, &rows, date))
}

/// Plans already-read rows (sorted by reader, then registration).
pub fn plan_rows(pack: &ContentPack, rows: &[(i64, RegistrationView)], date: NaiveDate) -> Plan {
    let end_age = pack.last_birthday();
    let mut plan = Plan::default();
    let mut days: Vec<Entry> = Vec::new();
    let mut notices: Vec<Entry> = Vec::new();
    let mut completing: Vec<i64> = Vec::new();
    for group in rows.chunk_by(|a, b| a.0 == b.0) {
        let user_id = group[0].0;
        days.clear();
        notices.clear();
        completing.clear();
        for (_, reg) in group {
            let day = schedule::plan_day(pack, reg, date, end_age);
            if day.completes {
                completing.push(reg.id);
            }
            for item in &day.items {
                let entry = Entry {
                    registration_id: reg.id,
                    item: ItemRef::of(pack, item),
                    position: day.position,
                    label: None,
                };
                match item {
                    Item::Day(_) => days.push(entry),
                    // The same notice once per reader, even for twins.
                    Item::Notice(_) => {
                        if !notices.iter().any(|n| n.item == entry.item) {
                            notices.push(entry);
                        }
                    }
                }
            }
        }
        if days.len() > 1 {
            let mut regs: Vec<i64> = group.iter().map(|(_, r)| r.id).collect();
            regs.dedup();
            for d in days.iter_mut() {
                d.label = regs
                    .iter()
                    .position(|r| *r == d.registration_id)
                    .map(|i| (i + 1).min(255) as u8);
            }
        }
        let first_push = plan.pushes.len();
        let all: Vec<Entry> = days.iter().chain(notices.iter()).copied().collect();
        for (seq, chunk) in all.chunks(MAX_OBJECTS).enumerate() {
            plan.pushes.push(PlannedPush {
                user_id,
                seq: seq as u32,
                start: plan.entries.len() as u32,
                len: chunk.len() as u8,
            });
            plan.entries.extend_from_slice(chunk);
        }
        for &reg in &completing {
            let push = plan.pushes[first_push..]
                .iter()
                .find(|p| plan.entries(p).iter().any(|e| e.registration_id == reg))
                .map(|p| (p.user_id, p.seq));
            plan.completions.push(Completion {
                registration_id: reg,
                push,
            });
        }
    }
    plan
}
