//! The statistics against a small database built through the migrations and the store's own
//! functions, checked figure by figure.

use super::*;
use crate::clock::jst;
use crate::domain::{LineUserId, Nickname, RegistrationId, RegistrationStatus, Subject, UserId};
use crate::store::{self, registrations, retention, users};
use chrono::{NaiveDate, TimeZone, Utc};

fn db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = store::open_and_migrate(&dir.path().join("stats.db")).unwrap();
    (dir, conn)
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// A stored timestamp for `hour`:00 Asia/Tokyo on a day.
fn at(day: NaiveDate, hour: u32) -> String {
    let local = day.and_hms_opt(hour, 0, 0).unwrap();
    store::ts(
        jst()
            .from_local_datetime(&local)
            .unwrap()
            .with_timezone(&Utc),
    )
}

fn line_id(n: u64) -> LineUserId {
    LineUserId::parse(&format!("U{n:032x}")).unwrap()
}

/// A LINE user following the account since `when`.
fn follow(conn: &Connection, n: u64, when: &str) -> UserId {
    users::upsert(conn, &line_id(n), when).unwrap()
}

fn register(
    conn: &Connection,
    user: UserId,
    subject: Subject,
    nickname: &str,
    day: NaiveDate,
    hour: u32,
) -> RegistrationId {
    registrations::create(
        conn,
        user,
        subject,
        &Nickname::from_trusted(nickname.into()),
        None,
        day,
        &at(day, hour),
    )
    .unwrap()
}

fn set(conn: &Connection, id: RegistrationId, to: RegistrationStatus, day: NaiveDate, hour: u32) {
    registrations::set_status(conn, id, to, "test", &at(day, hour)).unwrap();
}

/// Blocking as the processor does it: the user, then their active and stopped registrations.
fn block(conn: &Connection, user: UserId, regs: &[RegistrationId], day: NaiveDate, hour: u32) {
    users::set_following(conn, user, false, &at(day, hour)).unwrap();
    for id in regs {
        set(conn, *id, RegistrationStatus::Blocked, day, hour);
    }
}

fn child(y: i32, m: u32, day: u32) -> Subject {
    Subject::Child {
        birthday: d(y, m, day),
    }
}

fn pregnancy(y: i32, m: u32, day: u32) -> Subject {
    Subject::Pregnancy {
        due_date: d(y, m, day),
    }
}

/// What the counters stand for, counted the slow way.
fn counted(conn: &Connection) -> (StatusCounts, StageCounts, u64, u64) {
    let n = |sql: &str| -> u64 { conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64 };
    let status = |s: &str| {
        n(&format!(
            "SELECT count(*) FROM registrations WHERE status = '{s}'"
        ))
    };
    let stage = |g: &str| {
        n(&format!(
            "SELECT count(*) FROM registrations WHERE status = 'active' AND stage = '{g}'"
        ))
    };
    (
        StatusCounts {
            active: status("active"),
            completed: status("completed"),
            stopped: status("stopped"),
            blocked: status("blocked"),
        },
        StageCounts {
            pregnancy: stage("pregnancy"),
            child: stage("child"),
        },
        n("SELECT count(*) FROM line_users u WHERE following = 1
           AND NOT EXISTS (SELECT 1 FROM registration_readers rr WHERE rr.user_id = u.id)"),
        n("SELECT count(*) FROM line_users WHERE following = 1"),
    )
}

/// The week of 2026-11-16 (a Monday) to 2026-11-22, as in the module's story:
/// - 16th: A follows and registers a child; B follows and registers a pregnancy.
/// - 17th: A stops; 18th: A resumes. C follows and never registers.
/// - 19th: D follows and registers a child; 20th: D blocks the account.
/// - 21st: E follows and registers a pregnancy; 22nd: E is erased on request.
/// - 22nd: F follows and registers twins; one completes the same day.
struct Story {
    a: (UserId, RegistrationId),
    d: (UserId, RegistrationId),
    c: UserId,
}

fn story(conn: &mut Connection) -> Story {
    let day = |n: u32| d(2026, 11, n);
    let a = follow(conn, 1, &at(day(16), 9));
    let ra = register(conn, a, child(2026, 8, 1), "あ", day(16), 9);
    let b = follow(conn, 2, &at(day(16), 10));
    register(conn, b, pregnancy(2027, 3, 1), "い", day(16), 10);
    set(conn, ra, RegistrationStatus::Stopped, day(17), 12);
    set(conn, ra, RegistrationStatus::Active, day(18), 12);
    let c = follow(conn, 3, &at(day(18), 13));
    let du = follow(conn, 4, &at(day(19), 8));
    let rd = register(conn, du, child(2025, 1, 10), "う", day(19), 8);
    block(conn, du, &[rd], day(20), 21);
    let e = follow(conn, 5, &at(day(21), 7));
    register(conn, e, pregnancy(2027, 5, 5), "え", day(21), 7);
    // Late on the 22nd in Tokyo is still the 22nd (13:30 UTC).
    let erased_at = Utc.with_ymd_and_hms(2026, 11, 22, 13, 30, 0).unwrap();
    retention::erase(conn, &line_id(5), erased_at).unwrap();
    let f = follow(conn, 6, &at(day(22), 9));
    let f1 = register(conn, f, child(2023, 11, 22), "お", day(22), 9);
    register(conn, f, child(2023, 11, 22), "か", day(22), 9);
    set(conn, f1, RegistrationStatus::Completed, day(22), 23);
    Story {
        a: (a, ra),
        d: (du, rd),
        c,
    }
}

#[test]
fn an_empty_database_has_zeros_everywhere() {
    let (_dir, conn) = db();
    assert_eq!(current(&conn).unwrap(), Current::default());
    let days = series(&conn, d(2026, 11, 1), d(2026, 11, 3)).unwrap();
    assert_eq!(days.len(), 3);
    assert!(
        days.iter()
            .all(|x| x.readers.total() == 0 && x.follows == 0)
    );
    let r = rates(&conn).unwrap();
    assert_eq!((r.registered, r.block_rate, r.stop_rate), (0, None, None));
    let dash = dashboard(&conn, d(2026, 11, 22), None).unwrap();
    assert_eq!(dash.series.len(), 90);
    assert_eq!(dash.week.len(), 7);
    assert!(dash.charts.readers.contains("<svg"));
}

#[test]
fn current_figures_count_each_registration_once_in_its_status() {
    let (_dir, mut conn) = db();
    story(&mut conn);
    let c = current(&conn).unwrap();
    assert_eq!(
        c.status,
        StatusCounts {
            // A (stopped then resumed: once), B, F's other twin, and E: erased while 配信中,
            // E stays in the status it had (anonymised_counts).
            active: 4,
            completed: 1,
            stopped: 0,
            blocked: 1,
        }
    );
    assert_eq!(
        c.stage,
        StageCounts {
            pregnancy: 2,
            child: 2
        }
    );
    assert_eq!(c.registering, 1, "C follows without registering");
    assert_eq!(c.followers, 4, "A, B, C, F: D blocked, E erased");
    let json = serde_json::to_value(c).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "status": {"active": 4, "completed": 1, "stopped": 0, "blocked": 1},
            "stage": {"pregnancy": 2, "child": 2},
            "registering": 1,
            "followers": 4
        })
    );
    // The counters agree with the rows still held (E is anonymised).
    let (status, stage, registering, followers) = counted(&conn);
    assert_eq!(
        (status.active + 1, status.completed, status.blocked),
        (4, 1, 1)
    );
    assert_eq!(stage.pregnancy + 1, 2);
    assert_eq!((registering, followers), (1, 4));
}

#[test]
fn the_series_follows_the_story_day_by_day() {
    let (_dir, mut conn) = db();
    story(&mut conn);
    let days = series(&conn, d(2026, 11, 15), d(2026, 11, 23)).unwrap();
    let row = |n: u32| *days.iter().find(|x| x.day == d(2026, 11, n)).unwrap();
    assert_eq!(days.len(), 9);
    assert_eq!(row(15).readers.total() + row(15).follows, 0);

    let r16 = row(16);
    assert_eq!((r16.follows, r16.blocks), (2, 0));
    assert_eq!(
        r16.registered,
        StageCounts {
            pregnancy: 1,
            child: 1
        }
    );
    assert_eq!(r16.readers.active, 2);

    let r17 = row(17);
    assert_eq!(r17.stops, 1, "A's stop shows on the day it happened");
    assert_eq!((r17.readers.active, r17.readers.stopped), (1, 1));

    let r18 = row(18);
    assert_eq!(r18.stops, 0);
    assert_eq!(
        (r18.readers.active, r18.readers.stopped),
        (2, 0),
        "A resumed"
    );
    assert_eq!(r18.follows, 1, "C");

    let r20 = row(20);
    assert_eq!(r20.blocks, 1, "D blocked the account");
    assert_eq!((r20.readers.active, r20.readers.blocked), (2, 1));

    let r21 = row(21);
    assert_eq!(r21.readers.active, 3);
    assert_eq!(
        r21.active,
        StageCounts {
            pregnancy: 2,
            child: 1
        }
    );

    let r22 = row(22);
    assert_eq!(r22.follows, 1);
    assert_eq!(r22.registered.child, 2, "twins are two registrations");
    assert_eq!(r22.completions, 1);
    assert_eq!(
        r22.readers,
        StatusCounts {
            // E, erased while 配信中, is no longer delivered to.
            active: 3,
            completed: 1,
            stopped: 0,
            blocked: 1
        }
    );
    assert_eq!(
        r22.active,
        StageCounts {
            pregnancy: 1,
            child: 2
        }
    );
    assert_eq!(row(23).readers, r22.readers, "a quiet day keeps the levels");
    assert_eq!(row(23).follows + row(23).stops, 0);

    // A series starting later begins from the same levels.
    let later = series(&conn, d(2026, 11, 21), d(2026, 11, 22)).unwrap();
    assert_eq!(later[0], r21);
    assert_eq!(later[1], r22);
}

#[test]
fn retention_keeps_completed_and_blocked_counted() {
    let (_dir, mut conn) = db();
    let s = story(&mut conn);
    let before = current(&conn).unwrap();
    let week = series(&conn, d(2026, 11, 16), d(2026, 11, 22)).unwrap();
    // Half a year later D (blocked on the 20th) is anonymised.
    let later = Utc.with_ymd_and_hms(2027, 6, 1, 0, 0, 0).unwrap();
    let report = retention::run(&mut conn, later, 180).unwrap();
    assert_eq!(report.registrations, 1);
    assert!(
        registrations::get(&conn, s.d.1).unwrap().is_none(),
        "D's rows are gone"
    );
    assert_eq!(current(&conn).unwrap(), before);
    assert_eq!(
        series(&conn, d(2026, 11, 16), d(2026, 11, 22)).unwrap(),
        week
    );
    let june = series(&conn, d(2027, 6, 1), d(2027, 6, 1)).unwrap();
    assert_eq!(june[0].readers.blocked, 1);
}

#[test]
fn followers_and_registering_follow_blocks_unblocks_and_erasure() {
    let (_dir, mut conn) = db();
    let s = story(&mut conn);
    let check = |conn: &Connection| {
        let c = current(conn).unwrap();
        let (_, _, registering, followers) = counted(conn);
        assert_eq!((c.registering, c.followers), (registering, followers));
        c
    };
    let day = d(2026, 11, 23);
    // C, registering, blocks and comes back.
    users::set_following(&conn, s.c, false, &at(day, 9)).unwrap();
    assert_eq!(check(&conn).registering, 0);
    users::set_following(&conn, s.c, true, &at(day, 10)).unwrap();
    assert_eq!(check(&conn).registering, 1);
    // D unblocks: the registration is restored, D follows again.
    users::set_following(&conn, s.d.0, true, &at(day, 11)).unwrap();
    set(&conn, s.d.1, RegistrationStatus::Active, day, 11);
    let c = check(&conn);
    assert_eq!((c.followers, c.status.blocked, c.status.active), (5, 0, 5));
    // C registers; then C is erased, registered.
    register(&conn, s.c, child(2026, 10, 1), "き", day, 12);
    assert_eq!(check(&conn).registering, 0);
    retention::erase(
        &mut conn,
        &line_id(3),
        Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 0).unwrap(),
    )
    .unwrap();
    let c = check(&conn);
    assert_eq!((c.followers, c.registering), (4, 0));
    // A registering follower erased.
    follow(&conn, 7, &at(day, 13));
    assert_eq!(check(&conn).registering, 1);
    retention::erase(
        &mut conn,
        &line_id(7),
        Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0).unwrap(),
    )
    .unwrap();
    assert_eq!(check(&conn).registering, 0);
    let series = series(&conn, day, day).unwrap();
    assert_eq!((series[0].follows, series[0].blocks), (3, 1));
}

#[test]
fn live_counts_from_the_counters_match_the_rows() {
    let (_dir, mut conn) = db();
    let s = story(&mut conn);
    set(
        &conn,
        s.a.1,
        RegistrationStatus::Stopped,
        d(2026, 11, 24),
        8,
    );
    // Only rows still held: E's erasure is anonymised and out of `counted`.
    let (status, stage, _, _) = counted(&conn);
    let c = current(&conn).unwrap();
    assert_eq!(c.status.active, status.active + 1);
    assert_eq!(
        (c.status.completed, c.status.stopped, c.status.blocked),
        (status.completed, status.stopped, status.blocked)
    );
    assert_eq!(c.stage.child, stage.child);
    assert_eq!(c.stage.pregnancy, stage.pregnancy + 1);
}

#[test]
fn rates_are_shares_of_every_registration_ever_made() {
    let (_dir, mut conn) = db();
    let s = story(&mut conn);
    // A stops a second time: still one registration ever stopped.
    set(
        &conn,
        s.a.1,
        RegistrationStatus::Stopped,
        d(2026, 11, 23),
        8,
    );
    set(&conn, s.a.1, RegistrationStatus::Active, d(2026, 11, 23), 9);
    let r = rates(&conn).unwrap();
    assert_eq!(r.registered, 6, "A, B, D, E, the twins");
    assert_eq!((r.blocked, r.ever_stopped, r.reading), (1, 1, 5));
    assert_eq!(r.block_rate, Some(1.0 / 6.0));
    assert_eq!(r.stop_rate, Some(1.0 / 6.0));
    assert_eq!(r.keeps_reading_rate, Some(5.0 / 6.0));
    // A erased: its stop stays counted, as `ever_stopped` in anonymised_counts.
    retention::erase(
        &mut conn,
        &line_id(1),
        Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap(),
    )
    .unwrap();
    let r = rates(&conn).unwrap();
    assert_eq!((r.registered, r.ever_stopped), (6, 1));
    assert_eq!(Rates::definitions().len(), 3);
}

#[test]
fn a_loss_is_counted_apart_from_stops_and_a_birth_moves_the_counters() {
    let (_dir, mut conn) = db();
    let u = follow(&conn, 1, &at(d(2026, 6, 1), 9));
    let p = register(
        &conn,
        u,
        Subject::Pregnancy {
            due_date: d(2027, 1, 10),
        },
        "a",
        d(2026, 6, 1),
        9,
    );
    let q = register(
        &conn,
        u,
        Subject::Pregnancy {
            due_date: d(2026, 12, 1),
        },
        "b",
        d(2026, 6, 1),
        9,
    );
    assert!(registrations::close_for_loss(&conn, p, &at(d(2026, 7, 1), 9)).unwrap());
    assert!(
        !registrations::close_for_loss(&conn, p, &at(d(2026, 7, 2), 9)).unwrap(),
        "once"
    );
    assert!(
        registrations::born(
            &conn,
            q,
            d(2026, 11, 28),
            d(2026, 11, 29),
            &at(d(2026, 11, 29), 9)
        )
        .unwrap()
    );
    let r = rates(&conn).unwrap();
    assert_eq!((r.ended_by_loss, r.births_reported), (1, 1));
    assert_eq!(r.ever_stopped, 0, "a loss is not a stop");
    let c = current(&conn).unwrap();
    assert_eq!(
        (c.stage.pregnancy, c.stage.child),
        (0, 1),
        "the birth moved it"
    );
    // A closed registration is never made active again, whoever asks.
    set(&conn, p, RegistrationStatus::Active, d(2026, 11, 29), 10);
    let closed = registrations::get(&conn, p).unwrap().unwrap();
    assert_eq!(
        (closed.status, closed.closed),
        (RegistrationStatus::Stopped, true)
    );
    // Neither figure names anyone, and both survive erasure.
    retention::erase(
        &mut conn,
        &line_id(1),
        Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
    )
    .unwrap();
    let r = rates(&conn).unwrap();
    assert_eq!(
        (r.ended_by_loss, r.births_reported, r.ever_stopped),
        (1, 1, 0)
    );
    // A closed registration is never made active again.
}

#[test]
fn reach_counts_pregnancy_registrations_per_fiscal_year() {
    let (_dir, conn) = db();
    let u = follow(&conn, 1, &at(d(2025, 3, 1), 9));
    // The last day of 2024年度 and the first of 2025年度, in Tokyo time.
    register(&conn, u, pregnancy(2025, 9, 1), "あ", d(2025, 3, 31), 23);
    register(&conn, u, pregnancy(2025, 10, 1), "い", d(2025, 4, 1), 0);
    register(&conn, u, child(2025, 3, 1), "う", d(2025, 4, 2), 9);
    let today = d(2026, 11, 22);
    let r = reach(&conn, today, Some(10)).unwrap();
    assert_eq!(r.target, Some(2));
    let years: Vec<(i32, u64, Option<bool>)> = r
        .years
        .iter()
        .map(|y| (y.year, y.pregnancy_registrations, y.met))
        .collect();
    assert_eq!(
        years,
        vec![
            (2024, 1, Some(false)),
            (2025, 1, Some(false)),
            (2026, 0, Some(false))
        ]
    );
    assert_eq!(r.years[0].label, "2024年度");
    assert_eq!(r.years[1].share, Some(0.1));
    assert_eq!(r.years[1].through, d(2026, 3, 31));
    assert_eq!(r.years[2].through, today);
    let none = reach(&conn, today, None).unwrap();
    assert_eq!(
        (none.target, none.years[1].share, none.years[1].met),
        (None, None, None)
    );
    // Nothing yet: this year only.
    let (_dir2, empty) = db();
    assert_eq!(reach(&empty, today, Some(100)).unwrap().years.len(), 1);
}

/// A send as the engine records it.
#[derive(Default)]
struct NewSend<'a> {
    kind: &'a str,
    user: Option<UserId>,
    day: Option<&'a str>,
    status: &'a str,
    error: Option<&'a str>,
    created: String,
    broadcast: Option<i64>,
}

fn send(conn: &Connection, s: NewSend<'_>) {
    static SEQ: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    conn.execute(
        "INSERT INTO sends (kind, user_id, day, seq, messages, retry_key, status, error, created_at, broadcast_id)
         VALUES (?1, ?2, ?3, ?4, '[]', ?5, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            s.kind,
            s.user,
            s.day,
            s.day.map(|_| n),
            format!("key-{n}"),
            s.status,
            s.error,
            s.created,
            s.broadcast
        ],
    )
    .unwrap();
}

#[test]
fn delivery_shows_today_recent_failures_and_broadcasts_without_personal_data() {
    let (_dir, conn) = db();
    let today = d(2026, 11, 22);
    let users: Vec<UserId> = (1..=8).map(|n| follow(&conn, n, &at(today, 1))).collect();
    let t = "2026-11-22";
    let daily =
        |user: UserId, day: &'static str, status: &'static str, error, created: String| NewSend {
            kind: "daily",
            user: Some(user),
            day: Some(day),
            status,
            error,
            created,
            ..Default::default()
        };
    let odd = "LINE answered 400: The user U0123456789abcdef0123456789abcdef is odd";
    for (i, status) in [
        "sent", "sent", "sent", "pending", "failed", "failed", "dropped",
    ]
    .into_iter()
    .enumerate()
    {
        let error = (status == "failed").then_some(odd);
        send(&conn, daily(users[i], t, status, error, at(today, 7)));
    }
    // Yesterday's push and a reply that failed; one from before the week does not count.
    let timeout = Some("outcome unknown: timeout");
    let yesterday = d(2026, 11, 21);
    send(
        &conn,
        daily(users[7], "2026-11-21", "failed", timeout, at(yesterday, 7)),
    );
    let reply = |error, created: String| NewSend {
        kind: "reply",
        user: Some(users[7]),
        status: "failed",
        error,
        created,
        ..Default::default()
    };
    send(&conn, reply(timeout, at(yesterday, 23)));
    let old = at(d(2026, 11, 15), 7);
    send(
        &conn,
        daily(users[7], "2026-11-15", "failed", Some("old"), old),
    );
    // Just after midnight in Tokyo on the 16th is inside the week (15:30 UTC on the 15th).
    send(&conn, reply(None, "2026-11-15T15:30:00.000Z".into()));

    conn.execute(
        "INSERT INTO staff (id, login, role, password_hash, created_at, updated_at)
         VALUES (1, 'admin', 'admin', 'x', 'now', 'now')",
        [],
    )
    .unwrap();
    let broadcast = |id: i64, status: &str, recipients: Option<i64>, finished: Option<&str>| {
        conn.execute(
            "INSERT INTO broadcasts (id, created_by, created_at, text, audience, send_at, status, recipients, finished_at, key)
             VALUES (?1, 1, 'now', '秘密の本文', '{\"stage\":\"all\"}', ?2, ?3, ?4, ?5, 'key-' || ?1)",
            rusqlite::params![id, at(d(2026, 11, id as u32), 10), status, recipients, finished],
        )
        .unwrap();
    };
    broadcast(1, "done", Some(700), Some("2026-11-01T01:05:00.000Z"));
    broadcast(2, "done", Some(3), Some("2026-11-02T01:05:00.000Z"));
    broadcast(3, "scheduled", None, None);
    let batch = |id: i64, status, error, created: String| NewSend {
        kind: "broadcast",
        status,
        error,
        created,
        broadcast: Some(id),
        ..Default::default()
    };
    send(&conn, batch(1, "sent", None, at(d(2026, 11, 1), 10)));
    let oops = Some("LINE answered 500: oops");
    send(&conn, batch(1, "failed", oops, at(today, 10)));
    send(&conn, batch(2, "sent", None, at(d(2026, 11, 2), 10)));

    let del = delivery(&conn, today).unwrap();
    assert_eq!(
        del.today,
        DailyDelivery {
            day: today,
            sent: 3,
            pending: 1,
            failed: 2,
            dropped: 1
        }
    );
    let failures: Vec<(NaiveDate, &str, u64)> = del
        .failures
        .iter()
        .map(|f| (f.day, f.error.as_str(), f.count))
        .collect();
    assert_eq!(
        failures,
        vec![
            (today, "LINE answered 400: The user U… is odd", 2),
            (today, "LINE answered 500: oops", 1),
            (d(2026, 11, 21), "outcome unknown: timeout", 2),
            (d(2026, 11, 16), "（理由の記録なし）", 1),
        ]
    );
    assert_eq!(del.failures[0].summary, "LINEが受け付けませんでした");
    assert_eq!(del.broadcasts_done, 2);
    let recent: Vec<(i64, Option<u64>, u64, u64, u64)> = del
        .recent_broadcasts
        .iter()
        .map(|b| {
            (
                b.id,
                b.recipients,
                b.batches,
                b.batches_sent,
                b.batches_failed,
            )
        })
        .collect();
    assert_eq!(recent, vec![(2, Some(3), 1, 1, 0), (1, Some(700), 2, 1, 1)]);
    assert_eq!(
        del.recent_broadcasts[0].finished_at.unwrap().to_rfc3339(),
        "2026-11-02T10:05:00+09:00"
    );
    let json = serde_json::to_string(&del).unwrap();
    assert!(!json.contains("U0123456789abcdef"), "{json}");
    assert!(!json.contains("秘密"), "no message text: {json}");
}

#[test]
fn series_periods_are_checked() {
    let (_dir, conn) = db();
    assert!(
        series(&conn, d(2026, 11, 2), d(2026, 11, 1))
            .unwrap()
            .is_empty()
    );
    let e = series(&conn, d(2000, 1, 1), d(2026, 1, 1)).unwrap_err();
    assert!(matches!(e, StatsError::TooLong { .. }), "{e}");
    assert!(e.message_ja().contains("期間"));
    assert_eq!(
        series(
            &conn,
            d(2026, 1, 1),
            d(2026, 1, 1) + chrono::Days::new(MAX_DAYS as u64 - 1)
        )
        .unwrap()
        .len(),
        MAX_DAYS as usize
    );
}

fn without_bom(bytes: &[u8]) -> &[u8] {
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with a BOM");
    &bytes[3..]
}

#[test]
fn the_registrations_export_round_trips_awkward_nicknames() {
    let (_dir, conn) = db();
    let u = follow(&conn, 1, &at(d(2026, 11, 1), 9));
    let nicknames = [
        "はな,こ",
        "\"ママ\"さん",
        "一行目\n二行目",
        "ゆい 👶🏻",
        "=HYPERLINK(\"http://example\")",
    ];
    let mut ids = Vec::new();
    for (i, n) in nicknames.iter().enumerate() {
        let subject = if i % 2 == 0 {
            child(2026, 10, 1)
        } else {
            pregnancy(2027, 4, 1)
        };
        ids.push(register(&conn, u, subject, n, d(2026, 11, 21), 23));
    }
    set(
        &conn,
        ids[1],
        RegistrationStatus::Stopped,
        d(2026, 11, 22),
        9,
    );
    set(
        &conn,
        ids[2],
        RegistrationStatus::Completed,
        d(2026, 11, 22),
        9,
    );
    set(
        &conn,
        ids[3],
        RegistrationStatus::Blocked,
        d(2026, 11, 22),
        9,
    );
    // A family member reads the first one too.
    let family = follow(&conn, 2, &at(d(2026, 11, 2), 9));
    conn.execute(
        "INSERT INTO registration_readers (registration_id, user_id, role, added_at) VALUES (?1, ?2, 'family', 'now')",
        rusqlite::params![ids[0], family],
    )
    .unwrap();

    let bytes = registrations_csv(&conn).unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(!text.contains(&format!("U{:032x}", 1)), "no LINE user id");
    assert!(text.contains("\r\n"), "CRLF for Excel");
    let mut reader = csv::Reader::from_reader(without_bom(&bytes));
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, export::REGISTRATIONS_HEADER);
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 5);
    let expect = [
        ("子育て中", "2026/10/01", "配信中", "2"),
        ("妊娠中", "2027/04/01", "停止", "1"),
        ("子育て中", "2026/10/01", "完了", "1"),
        ("妊娠中", "2027/04/01", "解除", "1"),
        ("子育て中", "2026/10/01", "配信中", "1"),
    ];
    for (i, row) in rows.iter().enumerate() {
        let (stage, date, status, readers) = expect[i];
        assert_eq!(row[0], ids[i].to_string());
        assert_eq!(row[1], stage);
        let nickname = if i == 4 {
            format!("'{}", nicknames[4])
        } else {
            nicknames[i].to_owned()
        };
        assert_eq!(row[2], nickname, "nickname {i} round-trips");
        assert_eq!(row[3], date);
        assert_eq!(row[4], status);
        // 23:00 on the 21st in Tokyo.
        assert_eq!(row[5], "2026/11/21 23:00");
        assert_eq!(row[6], readers);
    }
    // Streaming writes the same bytes, and counts the rows.
    let mut streamed = Vec::new();
    assert_eq!(write_registrations_csv(&conn, &mut streamed).unwrap(), 5);
    assert_eq!(streamed, bytes);
}

#[test]
fn the_daily_export_has_one_row_per_day() {
    let (_dir, mut conn) = db();
    story(&mut conn);
    let bytes = stats_csv(&conn, d(2026, 11, 16), d(2026, 11, 22)).unwrap();
    let mut reader = csv::Reader::from_reader(without_bom(&bytes));
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, export::STATS_HEADER);
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 7);
    assert_eq!(
        rows[0],
        [
            "2026/11/16",
            "2",
            "0",
            "1",
            "1",
            "0",
            "0",
            "2",
            "0",
            "0",
            "0",
            "1",
            "1"
        ]
    );
    assert_eq!(
        rows[6],
        [
            "2026/11/22",
            "1",
            "0",
            "0",
            "2",
            "0",
            "1",
            "3",
            "1",
            "0",
            "1",
            "1",
            "2"
        ]
    );
    assert!(stats_csv(&conn, d(2000, 1, 1), d(2026, 1, 1)).is_err());
}

/// Checks what every chart must be: an image with a title and a description, sized by its
/// viewBox, with nothing fetched.
fn assert_self_contained(svg: &str, id: &str) {
    assert!(svg.starts_with("<svg"), "{svg}");
    for needle in [
        "role=\"img\"",
        "viewBox=\"0 0 ",
        &format!("aria-labelledby=\"{id}-title {id}-desc\""),
        &format!("<title id=\"{id}-title\">"),
        &format!("<desc id=\"{id}-desc\">"),
    ] {
        assert!(svg.contains(needle), "{id}: {needle}");
    }
    for banned in [
        "href",
        "<script",
        "<image",
        "url(",
        "@import",
        "<foreignObject",
        "<style",
    ] {
        assert!(!svg.contains(banned), "{id}: {banned}");
    }
    assert!(
        !svg.contains(" width=\"100%\""),
        "no fixed size: the viewBox scales it"
    );
}

#[test]
fn the_dashboard_gathers_everything_and_its_charts_show_the_figures() {
    let (_dir, mut conn) = db();
    story(&mut conn);
    let today = d(2026, 11, 22);
    let dash = dashboard(&conn, today, Some(10)).unwrap();
    assert_eq!(dash.current, current(&conn).unwrap());
    assert_eq!(dash.rates, rates(&conn).unwrap());
    assert_eq!(dash.series.len(), 90);
    assert_eq!(dash.series[0].day, d(2026, 8, 25));
    assert_eq!(dash.series.last().unwrap().day, today);
    assert_eq!(dash.week, dash.series[83..].to_vec());
    assert_eq!(dash.week[0].day, d(2026, 11, 16));
    assert_eq!(dash.delivery.today.day, today);
    assert_eq!(dash.reach.years.last().unwrap().pregnancy_registrations, 2);

    let charts = &dash.charts;
    if let Ok(dir) = std::env::var("STATS_CHARTS_DIR") {
        for (name, svg) in [
            ("readers", &charts.readers),
            ("stages", &charts.stages),
            ("week", &charts.week),
            ("reach", &charts.reach),
        ] {
            std::fs::write(format!("{dir}/{name}.svg"), svg).unwrap();
        }
    }
    assert_self_contained(&charts.readers, "stats-readers");
    assert_self_contained(&charts.stages, "stats-stages");
    assert_self_contained(&charts.week, "stats-week");
    assert_self_contained(&charts.reach, "stats-reach");

    // (a) the four statuses with the last day's figures, in the legend and the description.
    for label in ["配信中 3", "完了 1", "停止 0", "解除 1"] {
        assert!(
            charts.readers.contains(&format!(">{label}</text>")),
            "{label}"
        );
    }
    assert!(
        charts
            .readers
            .contains("2026年11月22日時点では配信中 3件、完了 1件、停止 0件、解除 1件。")
    );
    assert_eq!(charts.readers.matches("<polyline").count(), 4);
    assert!(charts.readers.contains(">11/9</text>"), "a Monday tick");
    assert!(charts.readers.contains(">11/22</text>"), "the last day");
    // (b) by stage.
    assert!(charts.stages.contains(">妊娠中 1</text>"));
    assert!(charts.stages.contains(">子育て中 2</text>"));
    assert!(charts.stages.contains("妊娠中 1件、子育て中 2件"));
    // (c) every day of the week with its numbers written on the bars.
    for (day, numbers) in [
        ("11/16(月)", [2, 0, 2, 0]),
        ("11/17(火)", [0, 0, 0, 1]),
        ("11/20(金)", [0, 1, 0, 0]),
        ("11/22(日)", [1, 0, 2, 0]),
    ] {
        assert!(charts.week.contains(&format!(">{day}</text>")), "{day}");
        let names = ["友だち追加", "ブロック", "新規登録", "配信停止"];
        for (name, n) in names.iter().zip(numbers) {
            assert!(
                charts
                    .week
                    .contains(&format!("<title>{day} {name} {n}件</title>")),
                "{day} {name} {n}"
            );
        }
        assert!(charts.week.contains(&format!(
            "{day}は友だち追加 {}件、ブロック {}件、新規登録 {}件、配信停止 {}件",
            numbers[0], numbers[1], numbers[2], numbers[3]
        )));
    }
    assert_eq!(charts.week.matches("class=\"value\"").count(), 28);
    assert!(
        charts
            .week
            .contains("友だち追加 6件、ブロック 1件、新規登録 6件、配信停止 1件")
    );
    // (d) reach against the target of 20 % of 10 births: 2.
    assert!(charts.reach.contains(">目標 2件</text>"));
    assert!(charts.reach.contains(">2件（20.0%）</text>"));
    assert!(
        charts
            .reach
            .contains("2026年度（2026年11月22日まで）は2件、出生数の20.0%で目標に達しています")
    );
    // The same figures give the same bytes.
    assert_eq!(dashboard(&conn, today, Some(10)).unwrap(), dash);
}

#[test]
fn charts_escape_text_and_survive_nothing() {
    assert_self_contained(&readers_chart(&[]), "stats-readers");
    assert!(week_chart(&[]).contains("データがありません"));
    let reach = Reach {
        annual_births: None,
        target_share: REACH_TARGET,
        target: None,
        years: vec![FiscalYear {
            year: 2026,
            label: "<2026年度>".into(),
            first_day: d(2026, 4, 1),
            last_day: d(2027, 3, 31),
            through: d(2027, 3, 31),
            pregnancy_registrations: 5,
            share: None,
            met: None,
        }],
    };
    let svg = reach_chart(&reach);
    assert!(svg.contains("&lt;2026年度&gt;") && !svg.contains("<2026年度>"));
    assert!(svg.contains("目標は表示していません"));
    // One day is drawn as a point.
    let one = series(&db().1, d(2026, 11, 22), d(2026, 11, 22)).unwrap();
    assert!(readers_chart(&one).contains("stroke-linecap=\"round\""));
}
