//! Planning a day for every active registration: the pure schedule per registration, grouped
//! per reader into pushes of at most five message objects; and rendering a push from its
//! recorded items (the one way a push is turned into messages, first send or resend).

use crate::content::NoticeWhen;
use crate::content::{ContentPack, render};
use crate::domain::{Position, Stage};
use crate::line::{Action, Message, QuickReply};
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

/// A registration whose delivery ends today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The registration.
    pub registration_id: i64,
    /// Its last message, if it has one today (it ends once that is delivered).
    pub last_content: Option<String>,
    /// How it ends.
    pub end: End,
}

/// How a registration's delivery ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The programme reached its end (the last birthday): 完了.
    Completed,
    /// A pregnancy past its last birth reminder with no birth reported: 停止.
    BirthUnreported,
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

/// What rendering needs of a registration, as one reader reads it.
#[derive(Debug, Clone)]
pub struct RegInfo {
    /// How the messages address this reader (a family reader's own name, else the owner's).
    pub nickname: String,
    /// Stage.
    pub stage: Stage,
    /// Due date or birthday.
    pub date: NaiveDate,
    /// The family's name for the child (「はるちゃん」), when given.
    pub child_name: Option<String>,
    /// The reader owns the registration (only the owner reports the birth).
    pub owner: bool,
}

fn position_label(p: Position) -> String {
    match p {
        Position::Pregnancy(p) => p.label(),
        Position::Child(a) => a.day_label(),
    }
}

/// The label of a day message in a push that groups several registrations: the child's name
/// as the family gave it (「【はるちゃん・生後3日目】」), else its number and the reader's name.
fn group_label(n: usize, reg: &RegInfo, pos: Position) -> String {
    match &reg.child_name {
        Some(name) => format!("【{name}・{}】", position_label(pos)),
        None => format!("【{n}人目：{}さん・{}】", reg.nickname, position_label(pos)),
    }
}

/// Whether a day content id belongs to the pregnancy (its day messages and the birth reminders).
fn pregnancy_content(content_id: &str) -> bool {
    content_id.starts_with("pregnancy/") || content_id.starts_with("birth/")
}

/// LINE's limit on a quick reply button's label, in UTF-16 units.
const LABEL_MAX_UTF16: usize = 20;
/// LINE's limit on quick reply buttons in one message.
const QUICK_REPLY_MAX: usize = 13;
/// The earliest birthday the birth button offers: 154 days (22 weeks) before the due date.
const BIRTH_PICKER_DAYS_BEFORE_DUE: u64 = 154;

/// `s` in at most `max` UTF-16 units, never cut inside a character; a cut name ends with 「…」.
fn truncate_utf16(s: &str, max: usize) -> String {
    if s.encode_utf16().count() <= max {
        return s.to_owned();
    }
    let mut used = 1; // the 「…」
    let mut out = String::new();
    for c in s.chars() {
        used += c.len_utf16();
        if used > max {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// The 「赤ちゃんが生まれたら」 date picker for registration `id` on `date`: the chosen birthday
/// comes back as a postback `born:<id>` (between the due date minus 22 weeks and today).
fn birth_button(id: i64, reg: &RegInfo, date: NaiveDate, several: Option<usize>) -> Action {
    const SUFFIX: &str = "が生まれたら";
    let label = match (&reg.child_name, several) {
        (Some(name), _) => {
            let room = LABEL_MAX_UTF16 - SUFFIX.encode_utf16().count();
            format!("{}{SUFFIX}", truncate_utf16(name, room))
        }
        (None, Some(n)) => format!("{n}人目の赤ちゃん{SUFFIX}"),
        (None, None) => format!("赤ちゃん{SUFFIX}"),
    };
    let min = reg
        .date
        .checked_sub_days(chrono::Days::new(BIRTH_PICKER_DAYS_BEFORE_DUE))
        .unwrap_or(reg.date);
    Action::Datetimepicker {
        label,
        data: format!("born:{id}"),
        mode: "date".into(),
        initial: Some(date.to_string()),
        max: Some(date.to_string()),
        min: Some(min.to_string()),
    }
}

/// Renders a push for `date` from its items. Items whose content is no longer in the pack, or
/// whose registration is unknown, are left out. A pregnancy day message from 37週0日 ends with
/// the birth prompt; from the due date, the push offers the owner a date picker per pregnancy
/// (on its last message object: LINE shows only that one's quick reply).
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
    let mut births: Vec<(i64, usize)> = Vec::new();
    let mut only_reminders = true;
    for it in firsts {
        let (Some((body, is_day)), Some(reg)) =
            (pack.lookup(&it.content_id), regs.get(&it.registration_id))
        else {
            continue;
        };
        // A birth reported between the plan and this render: no pregnancy message after it.
        if is_day && pregnancy_content(&it.content_id) != (reg.stage == Stage::Pregnancy) {
            continue;
        }
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
        let reminder = it.content_id.starts_with("birth/");
        only_reminders &= reminder;
        let n = day_regs
            .iter()
            .position(|r| *r == it.registration_id)
            .unwrap_or(0)
            + 1;
        if let (true, Position::Pregnancy(p)) = (is_day, pos) {
            if !reminder && schedule::carries_birth_prompt(p.gestational_day) {
                render::append_paragraph(&mut m, &pack.municipality.birth.prompt.render(&vars));
            }
            if reg.owner && schedule::offers_birth_button(p.gestational_day) {
                births.push((it.registration_id, n));
            }
        }
        if is_day && label_twins {
            render::prepend_label(&mut m, &group_label(n, reg, pos));
        }
        out.push(m);
        last_vars = Some(vars);
    }
    // A reminder says where to ask and how to stop itself: no footer repeating it.
    if let (Some(last), Some(vars), false) = (out.last_mut(), last_vars, only_reminders) {
        render::append_footer(last, &render::footer(pack, &vars));
    }
    if let Some(last) = out.last_mut() {
        set_quick_reply(last, birth_buttons(&births, regs, date));
    }
    out
}

/// One birth button per pregnancy `(registration, its number in the push)`, numbered or named
/// when there are several.
fn birth_buttons(
    births: &[(i64, usize)],
    regs: &HashMap<i64, RegInfo>,
    date: NaiveDate,
) -> Vec<Action> {
    let several = births.len() > 1;
    births
        .iter()
        .take(QUICK_REPLY_MAX)
        .filter_map(|(id, n)| {
            Some(birth_button(
                *id,
                regs.get(id)?,
                date,
                several.then_some(*n),
            ))
        })
        .collect()
}

/// Puts quick reply buttons on a message (none: it keeps what it has).
fn set_quick_reply(msg: &mut Message, actions: Vec<Action>) {
    if actions.is_empty() {
        return;
    }
    match msg {
        Message::Text { quick_reply, .. } | Message::Flex { quick_reply, .. } => {
            *quick_reply = Some(QuickReply::of(actions));
        }
        // Content packs hold text and Flex only.
        Message::Image { .. } => {}
    }
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
            if day.completes || day.birth_unreported {
                plan.completions.push(Completion {
                    registration_id: reg.id,
                    last_content,
                    end: if day.completes {
                        End::Completed
                    } else {
                        End::BirthUnreported
                    },
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn pack() -> ContentPack {
        ContentPack::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("messages"))
            .expect("the shipped pack loads")
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn info(stage: Stage, date: NaiveDate, child_name: Option<&str>, owner: bool) -> RegInfo {
        RegInfo {
            nickname: "はなこ".into(),
            stage,
            date,
            child_name: child_name.map(str::to_owned),
            owner,
        }
    }

    /// The push a reader of `regs` receives on `date`, as planned and rendered.
    fn push(pack: &ContentPack, date: NaiveDate, regs: &HashMap<i64, RegInfo>) -> Vec<Message> {
        let mut rows: Vec<(i64, RegistrationView)> = regs
            .iter()
            .map(|(id, r)| {
                (
                    1,
                    RegistrationView {
                        id: *id,
                        stage: r.stage,
                        date: r.date,
                        started_on: date - chrono::Days::new(400),
                        notices_taken: TakenNotices::default(),
                    },
                )
            })
            .collect();
        rows.sort_unstable_by_key(|(_, r)| r.id);
        let plan = plan_rows(pack, &rows, date);
        let items: Vec<RecordedItem> = plan.pushes.iter().flat_map(|p| plan.items(p)).collect();
        render_items(pack, date, &items, regs)
    }

    fn buttons(m: &[Message]) -> Vec<serde_json::Value> {
        let quick = |m: &Message| match m {
            Message::Text { quick_reply, .. } | Message::Flex { quick_reply, .. } => {
                quick_reply.clone()
            }
            Message::Image { .. } => None,
        };
        assert!(
            m.iter().rev().skip(1).all(|m| quick(m).is_none()),
            "only the last message carries buttons"
        );
        m.last()
            .and_then(quick)
            .map(|q| {
                q.items
                    .iter()
                    .map(|i| serde_json::to_value(&i.action).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn all_text(m: &[Message]) -> String {
        m.iter()
            .map(|m| serde_json::to_string(m).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_birth_prompt_from_37w0d_and_the_owner_button_from_the_due_date() {
        let pack = pack();
        let due = d(2027, 3, 15);
        let prompt = pack.municipality.birth.prompt.source();
        let owner = HashMap::from([(7, info(Stage::Pregnancy, due, None, true))]);
        let on = |gd: i64| due + chrono::Duration::days(gd - 280);
        assert!(
            !all_text(&push(&pack, on(258), &owner)).contains(&prompt),
            "36週6日"
        );
        assert!(
            all_text(&push(&pack, on(259), &owner)).contains(&prompt),
            "37週0日"
        );
        assert!(buttons(&push(&pack, on(279), &owner)).is_empty(), "39週6日");
        for gd in [280, 293, 294, 308] {
            let date = on(gd);
            assert_eq!(
                buttons(&push(&pack, date, &owner)),
                vec![
                    serde_json::json!({"type": "datetimepicker", "label": "赤ちゃんが生まれたら",
                    "data": "born:7", "mode": "date", "initial": date.to_string(),
                    "max": date.to_string(), "min": "2026-10-12"})
                ],
                "gestational day {gd}"
            );
        }
        let reminder = push(&pack, on(294), &owner);
        assert_eq!(reminder.len(), 1);
        assert!(
            !all_text(&reminder).contains("――――"),
            "no footer on a reminder"
        );
        assert!(
            push(&pack, on(295), &owner).is_empty(),
            "nothing between reminders"
        );
        let family = HashMap::from([(7, info(Stage::Pregnancy, due, None, false))]);
        let to_family = push(&pack, on(285), &family);
        assert!(
            buttons(&to_family).is_empty(),
            "no button for a family reader"
        );
        assert!(all_text(&to_family).contains(&prompt));
    }

    #[test]
    fn a_pregnancy_item_of_a_registration_born_since_the_plan_is_not_rendered() {
        let pack = pack();
        let due = d(2027, 3, 15);
        let date = d(2027, 3, 10);
        let planned = HashMap::from([(7, info(Stage::Pregnancy, due, None, true))]);
        let mut rows = vec![(
            1,
            RegistrationView {
                id: 7,
                stage: Stage::Pregnancy,
                date: due,
                started_on: date - chrono::Days::new(400),
                notices_taken: TakenNotices::default(),
            },
        )];
        rows.sort_unstable_by_key(|(_, r)| r.id);
        let plan = plan_rows(&pack, &rows, date);
        let items: Vec<RecordedItem> = plan.pushes.iter().flat_map(|p| plan.items(p)).collect();
        assert!(!render_items(&pack, date, &items, &planned).is_empty());
        // Born yesterday, reported after the plan was made.
        let born = HashMap::from([(7, info(Stage::Child, d(2027, 3, 9), None, true))]);
        let text = all_text(&render_items(&pack, date, &items, &born));
        assert!(!text.contains("妊娠"), "{text}");
    }

    #[test]
    fn grouped_pushes_name_the_children_and_give_each_pregnancy_its_button() {
        let pack = pack();
        let date = d(2027, 3, 20);
        let regs = HashMap::from([
            (
                1,
                info(Stage::Child, d(2027, 3, 17), Some("はるちゃん"), true),
            ),
            (2, info(Stage::Pregnancy, d(2027, 3, 15), None, true)),
            (
                3,
                info(
                    Stage::Pregnancy,
                    d(2027, 3, 16),
                    Some("とても長いおなまえのあかちゃん"),
                    true,
                ),
            ),
        ]);
        let m = push(&pack, date, &regs);
        let text = all_text(&m);
        assert!(text.contains("【はるちゃん・生まれて3日目】"), "{text}");
        assert!(
            text.contains("【2人目：はなこさん・妊娠40週5日】"),
            "{text}"
        );
        let labels: Vec<String> = buttons(&m)
            .iter()
            .map(|b| b["label"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            labels,
            [
                "2人目の赤ちゃんが生まれたら",
                "とても長いおなまえのあかち…が生まれたら"
            ]
        );
        assert!(labels.iter().all(|l| l.encode_utf16().count() <= 20));
    }
}
