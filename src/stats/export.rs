//! CSV exports for Excel in Japan: UTF-8 with a byte-order mark (without it Excel reads
//! Shift_JIS), CRLF line ends, a Japanese header row, quoting by the `csv` crate.

use super::{StatsError, series};
use crate::clock::jst;
use crate::domain::{RegistrationStatus, Stage};
use crate::store::read_date;
use chrono::{DateTime, NaiveDate};
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use std::borrow::Cow;
use std::io::Write;

/// UTF-8's byte-order mark: how Excel knows the file is UTF-8.
const BOM: &[u8] = b"\xEF\xBB\xBF";

fn writer<W: Write>(mut out: W) -> Result<csv::Writer<W>, StatsError> {
    out.write_all(BOM)?;
    Ok(csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out))
}

/// `2026/11/23`: how Excel in Japan shows a date, and reads it back as one.
fn date(d: NaiveDate) -> String {
    d.format("%Y/%m/%d").to_string()
}

/// The header of the daily statistics.
pub(super) const STATS_HEADER: [&str; 13] = [
    "日付",
    "友だち追加",
    "ブロック",
    "新規登録（妊娠中）",
    "新規登録（子育て中）",
    "配信停止",
    "配信完了",
    "配信中（日末時点）",
    "完了（日末時点）",
    "停止（日末時点）",
    "解除（日末時点）",
    "配信中・妊娠中（日末時点）",
    "配信中・子育て中（日末時点）",
];

/// Writes the daily statistics from `from` to `to` (both included) as CSV: one row per
/// Asia/Tokyo day with the figures of [`super::Day`].
pub fn write_stats_csv<W: Write>(
    conn: &Connection,
    from: NaiveDate,
    to: NaiveDate,
    out: W,
) -> Result<(), StatsError> {
    let days = series(conn, from, to)?;
    let mut w = writer(out)?;
    w.write_record(STATS_HEADER)?;
    for d in &days {
        let n = [
            d.follows,
            d.blocks,
            d.registered.pregnancy,
            d.registered.child,
            d.stops,
            d.completions,
            d.readers.active,
            d.readers.completed,
            d.readers.stopped,
            d.readers.blocked,
            d.active.pregnancy,
            d.active.child,
        ];
        let mut record = Vec::with_capacity(STATS_HEADER.len());
        record.push(date(d.day));
        record.extend(n.iter().map(u64::to_string));
        w.write_record(&record)?;
    }
    w.flush()?;
    Ok(())
}

/// The daily statistics from `from` to `to` as a CSV file's bytes (see [`write_stats_csv`]).
pub fn stats_csv(conn: &Connection, from: NaiveDate, to: NaiveDate) -> Result<Vec<u8>, StatsError> {
    let mut out = Vec::new();
    write_stats_csv(conn, from, to, &mut out)?;
    Ok(out)
}

/// The header of the registrations export.
pub(super) const REGISTRATIONS_HEADER: [&str; 7] = [
    "登録ID",
    "区分",
    "ニックネーム",
    "出産予定日・誕生日",
    "状態",
    "登録日時",
    "読者数",
];

/// A cell Excel would run as a formula (`=`, `+`, `-`, `@`, or a tab or carriage return first)
/// gets an apostrophe in front: a nickname is typed by anyone who adds the account, and the
/// file is opened by staff.
fn inert(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// A text column, read without failing on bytes that are not UTF-8.
fn text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<Cow<'r, str>>, StatsError> {
    Ok(match row.get_ref(i)? {
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b)),
        ValueRef::Integer(n) => Some(Cow::Owned(n.to_string())),
        ValueRef::Real(f) => Some(Cow::Owned(f.to_string())),
        ValueRef::Null => None,
    })
}

/// A stored timestamp in Asia/Tokyo to the minute (`2026/11/22 08:00`); as stored if unreadable.
fn tokyo_time(stored: &str) -> Cow<'_, str> {
    match DateTime::parse_from_rfc3339(stored) {
        Ok(t) => Cow::Owned(t.with_timezone(&jst()).format("%Y/%m/%d %H:%M").to_string()),
        Err(_) => Cow::Borrowed(stored),
    }
}

/// Writes every registration held, with personal data, for admins: internal registration id,
/// stage (妊娠中 / 子育て中), nickname, due date or birthday, status (配信中 / 完了 / 停止 /
/// 解除), when it was registered (Asia/Tokyo) and its number of readers. Never a LINE user id.
/// Rows are written as they are read, so a million registrations never sit in memory at once
/// (the CSV writer's buffer and `out` are all it holds). Returns the number of rows.
///
/// A nickname that Excel would take for a formula is written with an apostrophe in front; every
/// other value is written as stored.
pub fn write_registrations_csv<W: Write>(conn: &Connection, out: W) -> Result<u64, StatsError> {
    let mut w = writer(out)?;
    w.write_record(REGISTRATIONS_HEADER)?;
    let mut stmt = conn.prepare(
        "SELECT r.id, r.stage, r.nickname, r.due_date, r.birthday, r.status, r.created_at,
                (SELECT count(*) FROM registration_readers rr WHERE rr.registration_id = r.id)
         FROM registrations r ORDER BY r.id",
    )?;
    let mut rows = stmt.query([])?;
    let mut n = 0u64;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let stage = text(row, 1)?.unwrap_or_default();
        let nickname = text(row, 2)?.unwrap_or_default();
        let (due, birthday) = (text(row, 3)?, text(row, 4)?);
        let status = text(row, 5)?.unwrap_or_default();
        let created = text(row, 6)?.unwrap_or_default();
        let readers: i64 = row.get(7)?;

        let parsed_stage = Stage::from_db(&stage);
        let when = match parsed_stage {
            Some(Stage::Pregnancy) => due,
            Some(Stage::Child) => birthday,
            None => due.or(birthday),
        }
        .unwrap_or_default();
        let when = match read_date(&when) {
            Some(d) => Cow::Owned(date(d)),
            None => when,
        };
        let stage = match parsed_stage {
            Some(s) => Cow::Borrowed(s.label()),
            None => stage,
        };
        let status = match RegistrationStatus::from_db(&status) {
            Some(s) => Cow::Borrowed(s.label()),
            None => status,
        };
        w.write_record([
            id.to_string().as_str(),
            &*stage,
            &*inert(&nickname),
            &*when,
            &*status,
            &*tokyo_time(&created),
            readers.to_string().as_str(),
        ])?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

/// Every registration as a CSV file's bytes (see [`write_registrations_csv`]); a web handler
/// would rather stream [`write_registrations_csv`] into the response.
pub fn registrations_csv(conn: &Connection) -> Result<Vec<u8>, StatsError> {
    let mut out = Vec::new();
    write_registrations_csv(conn, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn formulas_are_made_inert_and_other_text_is_kept() {
        assert_eq!(inert("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(inert("+81"), "'+81");
        assert_eq!(inert("-1"), "'-1");
        assert_eq!(inert("@a"), "'@a");
        assert_eq!(inert("はなこ"), "はなこ");
        assert_eq!(inert("a=b"), "a=b");
        assert_eq!(inert(""), "");
    }

    #[test]
    fn times_are_asia_tokyo() {
        assert_eq!(tokyo_time("2026-11-21T23:00:00.000Z"), "2026/11/22 08:00");
        assert_eq!(tokyo_time("garbage"), "garbage");
    }
}
