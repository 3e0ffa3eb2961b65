//! Builds a realistic yorisoi database for the staff dashboard and broadcast benchmarks:
//!
//!     cargo run --release --example bench_fixture -- --db PATH --registrations 1000000 --today 2026-11-23
//!
//! Three years of a municipality's service up to `--today` (12:00 Asia/Tokyo), created through
//! the real migrations (`store::open_and_migrate`) and bulk-inserted with prepared statements in
//! large transactions; the migrations' triggers fill `daily_counts` and `stats_totals` from the
//! rows as they go in, exactly as in production. Families are drawn with a seeded generator (the
//! same arguments give the same database):
//!
//! - births spread from two years before the launch to ten months after `--today`, growing
//!   over time (the service gets known); about 55 % of families register during pregnancy (the
//!   pregnancy completes at 41週6日), most register the child soon after the birth, 1.2 % have
//!   twins (two child registrations of one LINE user), some register at launch for an older child;
//! - a cohort of families whose child is 4 or 5 months old at `--today` is over-represented
//!   (11 % of families, where a steady state would give about 6 %), so the broadcast benchmark
//!   has at least 100,000 active readers of children aged 4–6 months; the count is printed;
//! - each registration is stopped from the chat with 6 % probability (a quarter resume later);
//!   10.5 % of registered LINE users block the account at some point (8 % of them come back, their
//!   registrations restored); a child registration completes on the 3rd birthday; 4 % of LINE
//!   users never register (half of them block); 2 % of registrations have a second reader (a
//!   family member with their own LINE user);
//! - the daily pushes of the last `--send-days` days (one per following reader with a message
//!   that day, as the content's cadence gives it: 99.6 % sent, some failed or dropped, a few of
//!   today's still pending), a few failed replies, and twelve monthly broadcasts of the last year
//!   with their multicast batches and recipients (one batch of the latest failed);
//! - then retention runs at `--today` (180 days: finished readers become anonymous counts) and
//!   50 active readers are erased on request, through `store::retention`.
//!
//! Not generated (the statistics do not read them): webhook events, conversations, the items and
//! notices of each push, pushes older than `--send-days`.

use anyhow::{Context, bail};
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};
use clap::Parser;
use rusqlite::{Connection, params};
use std::path::PathBuf;
use std::time::Instant;
use yorisoi::clock::jst;
use yorisoi::domain::LineUserId;
use yorisoi::store;

#[derive(Parser)]
#[command(about = "Builds a realistic database for the dashboard and broadcast benchmarks")]
struct Args {
    /// The database file to create (refused if it exists, unless --force).
    #[arg(long)]
    db: PathBuf,
    /// Registrations to create (before retention and erasure).
    #[arg(long, default_value_t = 1_000_000)]
    registrations: u64,
    /// The Asia/Tokyo date the history ends (at noon).
    #[arg(long)]
    today: NaiveDate,
    /// Days of daily pushes to record, today included.
    #[arg(long, default_value_t = 8)]
    send_days: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

/// splitmix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f() < p
    }
    /// Uniform in [lo, hi] (lo when hi < lo).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next() % ((hi - lo) as u64 + 1)) as i64
    }
    /// Exponential with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f()).ln()
    }
}

const DAY: i64 = 86_400;

/// Seconds since the epoch of `hour`:00 Asia/Tokyo on `d`.
fn jst_at(d: NaiveDate, hour: u32) -> i64 {
    jst()
        .from_local_datetime(&d.and_hms_opt(hour, 0, 0).expect("valid hour"))
        .single()
        .expect("a fixed offset has one local time")
        .timestamp()
}

fn jst_day(t: i64) -> NaiveDate {
    DateTime::from_timestamp(t, 0)
        .expect("in range")
        .with_timezone(&jst())
        .date_naive()
}

fn stamp(t: i64) -> String {
    store::ts(DateTime::<Utc>::from_timestamp(t, 0).expect("in range"))
}

fn days_between(a: NaiveDate, b: NaiveDate) -> i64 {
    (b - a).num_days()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Active,
    Completed,
    Stopped,
    Blocked,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Completed => "completed",
            Status::Stopped => "stopped",
            Status::Blocked => "blocked",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
enum Ev {
    // Order within one second: the programme's end first.
    End,
    Stop,
    Resume,
    Block,
    Unblock,
}

struct Reg {
    pregnancy: bool,
    date: NaiveDate,
    created: i64,
    /// When the programme ends (the pregnancy after 41週6日, the child on the 3rd birthday).
    end: i64,
    stop: Option<i64>,
    resume: Option<i64>,
}

/// A history row to write.
struct Change {
    from: Option<Status>,
    to: Status,
    reason: &'static str,
    at: i64,
}

/// Plays a registration's life against the user's blocks; returns its history, final status,
/// the last change and the day its current delivery run began.
fn play(reg: &Reg, blocks: &[(i64, Ev)], now: i64) -> (Vec<Change>, Status, i64, NaiveDate) {
    let mut events: Vec<(i64, Ev)> = blocks
        .iter()
        .copied()
        .filter(|(t, _)| *t > reg.created)
        .collect();
    if reg.end <= now {
        events.push((reg.end, Ev::End));
    }
    if let Some(t) = reg.stop {
        events.push((t, Ev::Stop));
    }
    if let Some(t) = reg.resume {
        events.push((t, Ev::Resume));
    }
    events.sort();
    let mut status = Status::Active;
    let mut before_block = Status::Active;
    let mut started = jst_day(reg.created);
    let mut history = vec![Change {
        from: None,
        to: Status::Active,
        reason: "registered",
        at: reg.created,
    }];
    let mut i = 0;
    while i < events.len() {
        let (t, ev) = events[i];
        i += 1;
        let to = match (ev, status) {
            (Ev::End, Status::Active) => Some((Status::Completed, "programme end")),
            (Ev::Stop, Status::Active) => Some((Status::Stopped, "stopped from the chat")),
            (Ev::Resume, Status::Stopped) => Some((Status::Active, "resumed from the chat")),
            (Ev::Block, Status::Active | Status::Stopped) => {
                before_block = status;
                Some((Status::Blocked, "unfollow"))
            }
            (Ev::Unblock, Status::Blocked) => Some((before_block, "follow (unblocked)")),
            _ => None,
        };
        let Some((to, reason)) = to else { continue };
        history.push(Change {
            from: Some(status),
            to,
            reason,
            at: t,
        });
        status = to;
        if ev == Ev::Resume {
            started = jst_day(t);
        }
        // Back to 配信中 after the end passed: the next morning's run completes it.
        if to == Status::Active && reg.end < t {
            let next = jst_at(jst_day(t) + Days::new(1), 7);
            if next <= now && !events[i..].iter().any(|(_, e)| *e == Ev::End) {
                events.push((next, Ev::End));
                events[i..].sort();
            }
        }
    }
    let last = history.last().map_or(reg.created, |c| c.at);
    (history, status, last, started)
}

const NAMES: &[&str] = &[
    "はなこ",
    "さくら",
    "ゆい",
    "あおい",
    "ひなた",
    "めい",
    "ゆうと",
    "はると",
    "そうた",
    "みさき",
    "まま",
    "ぱぱ",
    "たろう",
    "けんた",
    "なつみ",
    "りこ",
    "あかり",
    "ゆうき",
    "ばあば",
    "じいじ",
    "Mika",
    "Ken",
    "はなママ",
    "たっくんパパ",
    "のぞみ",
    "ちひろ",
];

fn nickname(rng: &mut Rng) -> String {
    let base = NAMES[(rng.next() % NAMES.len() as u64) as usize];
    match rng.next() % 1000 {
        // A few that test an export: a comma, quotes, an emoji, a formula-like start.
        0 => format!("{base},{base}"),
        1 => format!("\"{base}\""),
        2 => format!("{base} 👶🏻"),
        3 => format!("={base}"),
        n if n < 200 => format!("{base}{}", n % 10),
        _ => base.to_owned(),
    }
}

/// Whether the content has a daily message for a registration that day (the sample pack's
/// cadence, closely enough for a fixture).
fn has_message(pregnancy: bool, date: NaiveDate, day: NaiveDate) -> bool {
    if pregnancy {
        let gd = 280 - days_between(day, date);
        (28..=293).contains(&gd)
    } else {
        let n = days_between(date, day);
        let birthday = n > 0 && day.month() == date.month() && day.day() == date.day();
        match n {
            0..=100 => true,
            101..=364 => n % 3 == 0 || birthday,
            365..=729 => n % 7 == 0 || birthday,
            730..=1095 => n % 14 == 0 || birthday,
            _ => false,
        }
    }
}

/// An active registration at the end, for the daily pushes and broadcasts.
struct Reader {
    user: i64,
    pregnancy: bool,
    date: NaiveDate,
    since: NaiveDate,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.db.exists() {
        if !args.force {
            bail!("{} exists (use --force to replace it)", args.db.display());
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut p = args.db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
    let started = Instant::now();
    let mut conn = store::open_and_migrate(&args.db)?;
    // A large cache for the bulk load: the indexes stay in memory while they grow.
    conn.pragma_update(None, "cache_size", -1_000_000)?;
    let today = args.today;
    let now = jst_at(today, 12);
    let launch_day = today
        .checked_sub_months(Months::new(36))
        .context("--today too early")?;
    let launch = jst_at(launch_day, 9);
    let mut rng = Rng(args.seed);

    // Births: from two years before the launch to ten months ahead, weighted up over time.
    let birth_lo = launch_day
        .checked_sub_months(Months::new(24))
        .context("date range")?;
    let birth_hi = today + Days::new(280);
    let birth_span = days_between(birth_lo, birth_hi);
    // The cohort aged 4 to 5 completed months at --today.
    let cohort_hi = today.checked_sub_months(Months::new(4)).context("date")?;
    let cohort_lo = today.checked_sub_months(Months::new(6)).context("date")? + Days::new(1);

    let mut readers: Vec<Reader> = Vec::new();
    let (mut next_user, mut next_reg) = (1i64, 1i64);
    let mut made = 0u64;
    println!(
        "building {} registrations up to {today} in {}",
        args.registrations,
        args.db.display()
    );
    while made < args.registrations {
        let tx = conn.transaction()?;
        {
            let mut user_ins = tx.prepare_cached(
                "INSERT INTO line_users (id, line_user_id, following, created_at, updated_at)
                 VALUES (?1, ?2, 1, ?3, ?3)",
            )?;
            let mut follow_upd = tx.prepare_cached(
                "UPDATE line_users SET following = ?2, updated_at = ?3 WHERE id = ?1",
            )?;
            let mut reg_ins = tx.prepare_cached(
                "INSERT INTO registrations (id, user_id, stage, nickname, due_date, birthday, status,
                                            started_on, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            let mut reader_ins = tx.prepare_cached(
                "INSERT INTO registration_readers (registration_id, user_id, role, added_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut hist_ins = tx.prepare_cached(
                "INSERT INTO registration_status_history
                   (registration_id, from_status, to_status, reason, changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut families = 0;
            while families < 50_000 && made < args.registrations {
                families += 1;
                let user = next_user;
                next_user += 1;
                let line_id = yorisoi::line_double::user_id(user as u64);

                // 4 % never register.
                if rng.chance(0.04) {
                    let followed = rng.range(launch, now);
                    user_ins.execute(params![user, line_id, stamp(followed)])?;
                    if rng.chance(0.5) {
                        let t = rng.range(followed + 60, now);
                        follow_upd.execute(params![user, false, stamp(t)])?;
                    }
                    continue;
                }

                let cohort = rng.chance(0.11);
                let birth = if cohort {
                    cohort_lo + Days::new(rng.range(0, days_between(cohort_lo, cohort_hi)) as u64)
                } else {
                    // Rejection sampling of a linear ramp: 0.25 at the start, 1.0 at the end.
                    loop {
                        let off = rng.range(0, birth_span);
                        if rng.f() < 0.25 + 0.75 * off as f64 / birth_span as f64 {
                            break birth_lo + Days::new(off as u64);
                        }
                    }
                };
                let born = jst_at(birth, 10);
                let mut regs: Vec<Reg> = Vec::new();
                // Pregnancy: registered 60 to 250 days before the due date (the maternal handbook).
                let mut had_pregnancy = false;
                let registered = born - rng.range(60, 250) * DAY + rng.range(0, 36_000);
                if rng.chance(0.55) && registered >= launch && registered <= now {
                    had_pregnancy = true;
                    regs.push(Reg {
                        pregnancy: true,
                        date: birth,
                        created: registered,
                        end: jst_at(birth + Days::new(14), 7),
                        stop: None,
                        resume: None,
                    });
                }
                // The child.
                if birth <= today {
                    let third = birth.checked_add_months(Months::new(36)).context("date")?;
                    let p = if cohort {
                        0.95
                    } else if had_pregnancy {
                        0.85
                    } else if birth >= launch_day {
                        0.8
                    } else {
                        0.35
                    };
                    let registered = if had_pregnancy {
                        born + rng.range(14, 45) * DAY + rng.range(0, 36_000)
                    } else if birth >= launch_day {
                        born + (rng.exp(40.0) * DAY as f64) as i64 + rng.range(3_600, 36_000)
                    } else {
                        launch + (rng.exp(120.0) * DAY as f64) as i64
                    };
                    // Cohort children are registered by today, at some point since the birth.
                    let registered = if cohort && registered > now {
                        rng.range(born + 3_600, now - 3_600)
                    } else {
                        registered
                    };
                    if rng.chance(p) && registered <= now && registered < jst_at(third, 0) {
                        let twins = if rng.chance(0.012) { 2 } else { 1 };
                        for k in 0..twins {
                            regs.push(Reg {
                                pregnancy: false,
                                date: birth,
                                created: registered + k * 40,
                                end: jst_at(third, 7),
                                stop: None,
                                resume: None,
                            });
                        }
                    }
                }
                if regs.is_empty() {
                    // Followed, then nothing came of it.
                    next_user -= 1;
                    continue;
                }
                for r in regs.iter_mut() {
                    if rng.chance(0.06) {
                        let until = r.end.min(now);
                        if until > r.created + DAY {
                            let stop = rng.range(r.created + DAY, until);
                            r.stop = Some(stop);
                            if rng.chance(0.25) {
                                r.resume = Some(rng.range(stop + 60, until.max(stop + 60)))
                                    .filter(|t| *t <= now);
                            }
                        }
                    }
                }
                let first = regs.iter().map(|r| r.created).min().unwrap_or(now);
                let followed = (first - rng.range(60, 2 * DAY)).max(launch - 30 * DAY);
                let mut user_events: Vec<(i64, Ev)> = Vec::new();
                // A block comes after the last registration (a blocked reader cannot register).
                let last_created = regs.iter().map(|r| r.created).max().unwrap_or(now);
                if rng.chance(0.105) && last_created + 3_600 < now {
                    let last_end = regs.iter().map(|r| r.end).max().unwrap_or(now).min(now);
                    let block = rng.range(last_created + 3_600, last_end.max(last_created + 3_600));
                    user_events.push((block.min(now), Ev::Block));
                    if rng.chance(0.08) && block + 60 < now {
                        user_events.push((rng.range(block + 60, now), Ev::Unblock));
                    }
                }
                user_ins.execute(params![user, line_id, stamp(followed)])?;
                for r in &regs {
                    // Exactly the number asked for (a twin may not fit).
                    if made == args.registrations {
                        break;
                    }
                    let id = next_reg;
                    next_reg += 1;
                    made += 1;
                    let (history, status, last, started_on) = play(r, &user_events, now);
                    let date = r.date.to_string();
                    let (due, birthday) = if r.pregnancy {
                        (Some(date), None)
                    } else {
                        (None, Some(date))
                    };
                    reg_ins.execute(params![
                        id,
                        user,
                        if r.pregnancy { "pregnancy" } else { "child" },
                        nickname(&mut rng),
                        due,
                        birthday,
                        status.as_str(),
                        started_on.to_string(),
                        stamp(r.created),
                        stamp(last),
                    ])?;
                    reader_ins.execute(params![id, user, "owner", stamp(r.created)])?;
                    for c in &history {
                        hist_ins.execute(params![
                            id,
                            c.from.map(Status::as_str),
                            c.to.as_str(),
                            c.reason,
                            stamp(c.at)
                        ])?;
                    }
                    // A family member reads along (their own LINE user, never registering).
                    if rng.chance(0.02) {
                        let member = next_user;
                        next_user += 1;
                        let joined = (r.created + rng.range(60, 10 * DAY)).min(now);
                        user_ins.execute(params![
                            member,
                            yorisoi::line_double::user_id(member as u64),
                            stamp(joined)
                        ])?;
                        reader_ins.execute(params![id, member, "family", stamp(joined)])?;
                    }
                    let following_at_end =
                        user_events.last().is_none_or(|(_, e)| *e == Ev::Unblock);
                    if status == Status::Active && following_at_end {
                        readers.push(Reader {
                            user,
                            pregnancy: r.pregnancy,
                            date: r.date,
                            since: jst_day(r.created),
                        });
                    }
                }
                for (t, ev) in &user_events {
                    follow_upd.execute(params![user, *ev == Ev::Unblock, stamp(*t)])?;
                }
            }
        }
        tx.commit()?;
        println!(
            "  {made} registrations, {} LINE users ({:.0} s)",
            next_user - 1,
            started.elapsed().as_secs_f64()
        );
    }

    write_sends(&mut conn, &mut rng, &readers, today, args.send_days)?;
    write_broadcasts(&mut conn, &mut rng, &readers, today)?;
    drop(readers);

    // Retention at --today, then erasures on request.
    let now_utc = DateTime::<Utc>::from_timestamp(now, 0).context("time")?;
    let t = Instant::now();
    let report = store::retention::run(&mut conn, now_utc, 180)?;
    println!(
        "retention: {} readers, {} registrations anonymised ({:.0} s)",
        report.readers,
        report.registrations,
        t.elapsed().as_secs_f64()
    );
    let to_erase: Vec<i64> = conn
        .prepare(
            "SELECT DISTINCT r.user_id FROM registrations r WHERE r.status = 'active'
             ORDER BY r.user_id LIMIT 50",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for user in to_erase {
        let id = LineUserId::parse(&yorisoi::line_double::user_id(user as u64))
            .context("a generated LINE user id")?;
        store::retention::erase(&mut conn, &id, now_utc)?;
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    summary(&conn, today)?;
    let size = std::fs::metadata(&args.db)?.len();
    println!(
        "done in {:.0} s: {} ({:.0} MB)",
        started.elapsed().as_secs_f64(),
        args.db.display(),
        size as f64 / 1e6
    );
    Ok(())
}

/// The daily pushes of the last `days` days, one per following reader with a message that day.
fn write_sends(
    conn: &mut Connection,
    rng: &mut Rng,
    readers: &[Reader],
    today: NaiveDate,
    days: u64,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut total = 0u64;
    for back in (0..days).rev() {
        let day = today - Days::new(back);
        let day_s = day.to_string();
        let morning = jst_at(day, 7);
        let tx = conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO sends (kind, user_id, day, seq, messages, retry_key, status, attempts,
                                    first_attempt_ms, via, line_request_id, error, created_at, sent_at)
                 VALUES ('daily', ?1, ?2, 0, '[]', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let mut last_user = 0;
            for r in readers {
                if r.user == last_user || r.since > day || !has_message(r.pregnancy, r.date, day) {
                    continue;
                }
                last_user = r.user;
                let sent_at = morning + rng.range(0, 1800);
                let roll = rng.f();
                let (status, error) = if back == 0 && roll > 0.9995 {
                    ("pending", Some("outcome unknown: timeout"))
                } else if roll < 0.996 {
                    ("sent", None)
                } else if roll < 0.997 {
                    ("failed", Some("LINE answered 400: Failed to send messages"))
                } else if roll < 0.998 {
                    ("failed", Some("outcome unknown: error sending request"))
                } else if roll < 0.9985 {
                    (
                        "failed",
                        Some(
                            "first tried over 23 hours ago: not resent, since LINE forgets retry keys after 24 hours",
                        ),
                    )
                } else {
                    (
                        "dropped",
                        Some("the reader stopped, blocked or completed since it was planned"),
                    )
                };
                let sent = status == "sent";
                ins.execute(params![
                    r.user,
                    day_s,
                    format!("{:016x}{:016x}", rng.next(), rng.next()),
                    status,
                    1,
                    sent_at * 1000,
                    sent.then_some("push"),
                    sent.then(|| format!("{:016x}-{:08x}", rng.next(), rng.next() as u32)),
                    error,
                    stamp(morning),
                    sent.then(|| stamp(sent_at)),
                ])?;
                total += 1;
            }
            // A few replies that failed.
            let mut reply = tx.prepare_cached(
                "INSERT INTO sends (kind, user_id, messages, retry_key, status, attempts, error, created_at)
                 VALUES ('reply', ?1, '[]', ?2, 'failed', 3, ?3, ?4)",
            )?;
            for _ in 0..rng.range(0, 6).min(readers.len() as i64) {
                let r = &readers[(rng.next() % readers.len().max(1) as u64) as usize];
                reply.execute(params![
                    r.user,
                    format!("{:016x}{:016x}", rng.next(), rng.next()),
                    "given up after 5 tries: outcome unknown: timeout",
                    stamp(morning + rng.range(3_600, 12 * 3_600)),
                ])?;
            }
        }
        tx.commit()?;
    }
    println!(
        "daily pushes: {total} over {days} days ({:.0} s)",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Twelve monthly broadcasts of the last year with their batches and recipients; one scheduled.
fn write_broadcasts(
    conn: &mut Connection,
    rng: &mut Rng,
    readers: &[Reader],
    today: NaiveDate,
) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    let created = stamp(jst_at(today, 9) - 400 * DAY);
    tx.execute(
        "INSERT INTO staff (id, login, role, password_hash, created_at, updated_at)
         VALUES (1, 'bench-admin', 'admin', '$argon2id$v=19$m=19456,t=2,p=1$bench$bench', ?1, ?1)",
        [&created],
    )?;
    let mut users: Vec<i64> = readers.iter().map(|r| r.user).collect();
    users.dedup();
    let mut recipients_total = 0;
    for k in (0..12).rev() {
        let id = 12 - k;
        let day = today - Days::new(3 + 30 * k as u64);
        let at = jst_at(day, 10);
        let n = (rng.range(20_000, 150_000) as usize).min(users.len());
        let from = rng.range(0, (users.len() - n) as i64) as usize;
        let to = &users[from..from + n];
        let batches = to.len().div_ceil(500);
        tx.execute(
            "INSERT INTO broadcasts (id, created_by, created_at, text, audience, send_at, status,
                                     recipients, started_at, finished_at, key)
             VALUES (?1, 1, ?2, ?3, '{\"stage\":\"all\"}', ?4, 'done', ?5, ?4, ?6, lower(hex(randomblob(16))))",
            params![
                id,
                stamp(at - 2 * DAY),
                format!("{}月のお知らせ：子育てひろばの予定です。", day.month()),
                stamp(at),
                to.len() as i64,
                stamp(at + 60 + batches as i64 / 200),
            ],
        )?;
        let mut send = tx.prepare_cached(
            "INSERT INTO sends (kind, messages, retry_key, status, attempts, via, error, created_at,
                                sent_at, broadcast_id)
             VALUES ('broadcast', '[]', ?1, ?2, 1, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut recipient =
            tx.prepare_cached("INSERT INTO send_recipients (send_id, user_id) VALUES (?1, ?2)")?;
        for (b, chunk) in to.chunks(500).enumerate() {
            let failed = k == 0 && b == 3;
            send.execute(params![
                format!("{:016x}{:016x}", rng.next(), rng.next()),
                if failed { "failed" } else { "sent" },
                (!failed).then_some("multicast"),
                failed.then_some("LINE answered 500: Internal server error"),
                stamp(at),
                (!failed).then(|| stamp(at + 30)),
                id,
            ])?;
            let send_id = tx.last_insert_rowid();
            for u in chunk {
                recipient.execute(params![send_id, u])?;
            }
        }
        recipients_total += to.len();
    }
    tx.execute(
        "INSERT INTO broadcasts (id, created_by, created_at, text, audience, send_at, key)
         VALUES (13, 1, ?1, '年末年始の休日診療のご案内', '{\"stage\":\"all\"}', ?2, lower(hex(randomblob(16))))",
        params![
            stamp(jst_at(today, 9)),
            stamp(jst_at(today + Days::new(20), 10))
        ],
    )?;
    tx.commit()?;
    println!("broadcasts: 12 sent to {recipients_total} readers in all, 1 scheduled");
    Ok(())
}

/// What was built, counted the slow way, and whether the counters agree.
fn summary(conn: &Connection, today: NaiveDate) -> anyhow::Result<()> {
    let n = |sql: &str| -> anyhow::Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    let total = n("SELECT count(*) FROM registrations")?;
    println!("registrations held: {total}");
    let mut stmt = conn.prepare(
        "SELECT status, stage, count(*) FROM registrations GROUP BY status, stage ORDER BY 1, 2",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (status, stage, c) = row?;
        println!(
            "  {status:9} {stage:9} {c:>9} ({:.1} %)",
            100.0 * c as f64 / total.max(1) as f64
        );
    }
    let anonymised =
        n("SELECT COALESCE(sum(count), 0) FROM anonymised_counts WHERE stage != 'none'")?;
    println!("anonymised registrations: {anonymised}");
    let ever = total + anonymised;
    let blocked = n("SELECT count(*) FROM registrations WHERE status = 'blocked'")?
        + n(
            "SELECT COALESCE(sum(count), 0) FROM anonymised_counts WHERE stage != 'none' AND final_status = 'blocked'",
        )?;
    let stopped = n("SELECT count(*) FROM registrations WHERE status = 'stopped'")?;
    println!(
        "of all ever registered ({ever}): 解除 {:.1} %, 停止 now {:.1} %",
        100.0 * blocked as f64 / ever.max(1) as f64,
        100.0 * stopped as f64 / ever.max(1) as f64
    );
    let users = n("SELECT count(*) FROM line_users")?;
    let following = n("SELECT count(*) FROM line_users WHERE following = 1")?;
    let registering = n("SELECT count(*) FROM line_users u WHERE following = 1
                         AND NOT EXISTS (SELECT 1 FROM registration_readers rr WHERE rr.user_id = u.id)")?;
    let twins = n(
        "SELECT count(*) FROM (SELECT user_id FROM registrations GROUP BY user_id HAVING count(*) > 1)",
    )?;
    println!(
        "LINE users: {users}, following {following}, registering {registering}, holding two or more registrations {twins}"
    );
    let totals = (
        n("SELECT count FROM stats_totals WHERE metric = 'followers'")?,
        n("SELECT count FROM stats_totals WHERE metric = 'registering'")?,
    );
    println!(
        "stats_totals agree with the rows: {}",
        totals == (following, registering)
    );
    let c = yorisoi::stats::current(conn)?;
    let live_active = n("SELECT count(*) FROM registrations WHERE status = 'active'")?
        + n(
            "SELECT COALESCE(sum(count), 0) FROM anonymised_counts WHERE stage != 'none' AND final_status = 'active'",
        )?;
    println!(
        "daily_counts agree with the rows: {}",
        c.status.total() as i64 == ever && c.status.active as i64 == live_active
    );
    // Active readers of children aged 4–6 months (4, 5 or 6 completed months) who follow.
    let months_ago = |m: u32| {
        today
            .checked_sub_months(Months::new(m))
            .map(|d| d.to_string())
    };
    let (Some(m4), Some(m5), Some(m7)) = (months_ago(4), months_ago(6), months_ago(7)) else {
        bail!("date range");
    };
    let aged = |older_than: &str| -> anyhow::Result<i64> {
        Ok(conn.query_row(
            "SELECT count(*) FROM registrations r JOIN line_users u ON u.id = r.user_id
             WHERE r.status = 'active' AND r.stage = 'child' AND u.following = 1
               AND r.birthday <= ?1 AND r.birthday > ?2",
            [&m4, older_than],
            |r| r.get(0),
        )?)
    };
    println!(
        "active child registrations of following readers aged 4–6 months at {today}: {} (4 or 5 completed months: {})",
        aged(&m7)?,
        aged(&m5)?
    );
    println!(
        "daily pushes today: {}, failed sends recorded: {}",
        n(&format!(
            "SELECT count(*) FROM sends WHERE kind = 'daily' AND day = '{today}'"
        ))?,
        n("SELECT count(*) FROM sends WHERE status = 'failed'")?
    );
    Ok(())
}
