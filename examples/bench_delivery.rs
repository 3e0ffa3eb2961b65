//! Delivery benchmark, against `yorisoi line-double` on loopback, release build.
//!
//!     cargo build --release && cargo run --release --example bench_delivery -- [plan|throughput|crash|crash2|all]
//!
//! (a) plan: one day for 1,000,000 active registrations with spread-out dates (`yorisoi push
//!     --dry-run`): planning time and peak RSS of the process.
//! (b) throughput: 100,000 pushes with the double unthrottled, then with the double enforcing
//!     2,000 requests/s (pushes/s, and 429s seen by the double).
//! (c) crash: `kill -9` of `yorisoi push` at random moments during a 100,000-push day, then a
//!     rerun to completion: every reader must have exactly one push (zero duplicates, zero missing).
//! (d) crash2: two installations on one channel the same day: two fresh databases with the same
//!     readers (the same LINE users, internal ids and dates: a staging copy, a reinstall), one
//!     double; `kill -9` of `yorisoi push` three times on each, interleaved (A, B, A, B, A, B),
//!     then a rerun of each: every reader must have exactly one push from each installation (the
//!     double's per-user counters show two). Without the installation id in the retry keys, the
//!     two would share keys and one of each pair be answered 409: half the pushes missing.

#[path = "common/mod.rs"]
mod common;

use chrono::{Days, NaiveDate};
use common::*;
use rusqlite::params;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn today() -> NaiveDate {
    use yorisoi::clock::Clock;
    yorisoi::clock::SystemClock.today()
}

/// A small deterministic generator: spreads dates without a dependency.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Creates `n` readers, each with one active registration. `every_day_has_message`: pregnancy
/// positions between 4週0日 and 41週6日 only, so each reader gets exactly one push.
fn make_db(path: &Path, n: u64, every_day_has_message: bool) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut conn = yorisoi::store::open_and_migrate(path)?;
    let pack = yorisoi::content::ContentPack::load(&content_dir())?;
    let today = today();
    let mut rng = Lcg(42);
    let tx = conn.transaction()?;
    {
        let mut user = tx.prepare("INSERT INTO line_users (id, line_user_id, following, created_at, updated_at) VALUES (?1, ?2, 1, 'now', 'now')")?;
        let mut reg = tx.prepare(
            "INSERT INTO registrations (id, user_id, stage, nickname, due_date, birthday, status, started_on, created_at, updated_at)
             VALUES (?1, ?1, ?2, 'はなこ', ?3, ?4, 'active', '2020-01-01', 'now', 'now')",
        )?;
        // As a push records them: with the push that took each, when, and the window's end.
        let mut taken = tx.prepare(
            "INSERT INTO registration_notices (registration_id, notice_id, send_id, taken_at, open_until)
             VALUES (?1, ?2, ?3, '2026-11-01T22:00:00.000Z', ?4)",
        )?;
        let mut reader = tx.prepare("INSERT INTO registration_readers (registration_id, user_id, role, added_at) VALUES (?1, ?1, 'owner', 'now')")?;
        for i in 1..=n as i64 {
            user.execute(params![i, yorisoi::line_double::user_id(i as u64)])?;
            let pregnancy = every_day_has_message || rng.next(10) < 4;
            if pregnancy {
                let gd = if every_day_has_message {
                    28 + rng.next(266)
                } else {
                    rng.next(294)
                };
                let due = today + Days::new(280) - Days::new(gd);
                reg.execute(params![
                    i,
                    "pregnancy",
                    due.to_string(),
                    Option::<String>::None
                ])?;
                for (n, to) in received(&pack, "pregnancy", gd as i64) {
                    let until = due + chrono::Duration::days(to - 280);
                    taken.execute(params![i, n, i * 20, until.to_string()])?;
                }
            } else {
                let days = rng.next(1097);
                let birthday = today - Days::new(days);
                reg.execute(params![
                    i,
                    "child",
                    Option::<String>::None,
                    birthday.to_string()
                ])?;
                for (n, to) in received(&pack, "child", days as i64) {
                    let until = birthday + chrono::Duration::days(to);
                    taken.execute(params![i, n, i * 20, until.to_string()])?;
                }
            }
            reader.execute(params![i])?;
        }
    }
    tx.commit()?;
    // As a long-running service would have it: the WAL folded into the database file.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}

/// Steady state: a registration has received every window notice whose window began before
/// today (it was registered long ago); each with the last track day of its window.
fn received<'p>(
    pack: &'p yorisoi::content::ContentPack,
    track: &str,
    day: i64,
) -> Vec<(&'p str, i64)> {
    pack.notices
        .iter()
        .filter(|n| n.when == yorisoi::content::NoticeWhen::Window)
        .filter(|n| {
            n.track.is_some_and(|t| t.as_str() == track)
                && n.range.is_some_and(|(from, _)| from < day)
        })
        .filter_map(|n| Some((n.id.as_str(), n.range?.1)))
        .collect()
}

fn push(db: &Path, line_port: u16, extra: &[(&str, &str)], args: &[&str]) -> anyhow::Result<Value> {
    let mut cmd = Command::new(release_bin());
    cmd.arg("push").arg("--json").args(args);
    yorisoi_env(&mut cmd, db, line_port);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let started = std::time::Instant::now();
    let out = cmd.stderr(Stdio::inherit()).output()?;
    let mut summary: Value = serde_json::from_slice(&out.stdout)?;
    // The whole process, start to exit: opening the database, planning, sending, finishing.
    summary["wall_ms"] = (started.elapsed().as_millis() as u64).into();
    Ok(summary)
}

/// Pushes per second over the send phase, over planning and sending, and over the whole
/// process, as one line.
fn rates(s: &Value) -> String {
    let sent = s["sent"].as_f64().unwrap_or(0.0);
    let ms = |k: &str| s[k].as_f64().unwrap_or(0.0);
    let per_s = |ms: f64| if ms > 0.0 { sent / (ms / 1000.0) } else { 0.0 };
    format!(
        "{sent} pushes; sending {} ms = {:.0} pushes/s; planning {} ms + sending = {:.0} pushes/s; whole process {} ms = {:.0} pushes/s",
        ms("send_ms"),
        per_s(ms("send_ms")),
        ms("plan_ms"),
        per_s(ms("plan_ms") + ms("send_ms")),
        ms("wall_ms"),
        per_s(ms("wall_ms"))
    )
}

/// Settings of the kill tests: the double unthrottled, many pushes in flight at a kill.
const FAST: [(&str, &str); 2] = [
    ("YORISOI_PUSH_RATE", "1000000"),
    ("YORISOI_PUSH_CONCURRENCY", "128"),
];

/// Like `make_db(path, n, true)` (every reader gets exactly one push), but reader `i`'s LINE user
/// id is `user_id(line_offset + i)`: another installation with the same internal ids and dates,
/// whose readers are other people.
fn make_db_line_offset(path: &Path, n: u64, line_offset: u64) -> anyhow::Result<()> {
    make_db(path, n, true)?;
    if line_offset == 0 {
        return Ok(());
    }
    let mut conn = rusqlite::Connection::open(path)?;
    let tx = conn.transaction()?;
    {
        let mut set = tx.prepare("UPDATE line_users SET line_user_id = ?2 WHERE id = ?1")?;
        for i in 1..=n {
            set.execute(params![
                i as i64,
                yorisoi::line_double::user_id(line_offset + i)
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}

/// The pid holding the database's delivery lease, if any.
fn lease_pid(conn: &rusqlite::Connection) -> Option<i64> {
    conn.query_row(
        "SELECT pid FROM process_leases WHERE name = 'delivery'",
        [],
        |r| r.get(0),
    )
    .ok()
}

/// One `yorisoi push` killed with `kill -9`.
struct Killed {
    /// From its start until it held the delivery lease (after a kill, the killed run's lease
    /// is still in the database).
    lease_wait_ms: u64,
    /// From holding the lease to the kill.
    after_ms: u64,
    /// Pushes the double accepted from this run (counted after the kill: requests in flight at
    /// the kill included).
    delivered: u64,
    /// It had finished (or exited) before the kill came.
    exited_first: Option<i32>,
}

/// Pushes the double has accepted so far.
async fn accepted(port: u16) -> anyhow::Result<u64> {
    Ok(double_stats(port).await?["stats"]["pushes"]
        .as_u64()
        .unwrap_or(0))
}

/// Starts `yorisoi push --wait 120` (unthrottled), waits until it holds the delivery lease,
/// and `kill -9`s it once the double has accepted `more` of its pushes: a random moment in the
/// middle of sending, whatever the speed of the machine (a kill timed in milliseconds lands
/// after the end of a day that a fast run finishes in three).
async fn run_and_kill(db: &Path, port: u16, more: u64) -> anyhow::Result<Killed> {
    let base = accepted(port).await?;
    let mut cmd = Command::new(release_bin());
    cmd.args(["push", "--json", "--wait", "120"]);
    yorisoi_env(&mut cmd, db, port);
    for (k, v) in FAST {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    let pid = i64::from(child.id());
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(1))?;
    let mut exited_first = None;
    loop {
        if let Some(status) = child.try_wait()? {
            exited_first = Some(status.code().unwrap_or(-1));
            break;
        }
        if lease_pid(&conn) == Some(pid) {
            break;
        }
        if started.elapsed() > Duration::from_secs(150) {
            anyhow::bail!("yorisoi push never took the delivery lease");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lease_wait_ms = started.elapsed().as_millis() as u64;
    let leased = Instant::now();
    if exited_first.is_none() {
        // The double's counters are read every 20 ms: often enough to land mid-send, rarely
        // enough not to slow it (each read walks its per-user table).
        while accepted(port).await? < base + more && leased.elapsed() < Duration::from_secs(60) {
            if let Some(status) = child.try_wait()? {
                exited_first = Some(status.code().unwrap_or(-1));
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
    }
    let after_ms = leased.elapsed().as_millis() as u64;
    let _ = child.wait();
    // Let requests that were in flight at the kill land before counting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(Killed {
        lease_wait_ms,
        after_ms,
        delivered: accepted(port).await? - base,
        exited_first,
    })
}

/// How many of the `remaining` pushes a run is let send before its kill: 5–45 %.
fn kill_point(rng: &mut Lcg, remaining: u64) -> u64 {
    (remaining * (5 + rng.next(41)) / 100).max(1)
}

/// The rerun after the kills (`--wait 120`), to completion: its summary, how long it took
/// beyond planning and sending (start, waiting for the killed run's lease, completion), and its
/// log lines, and how many pushes LINE answered 409 (from its summary).
fn rerun(db: &Path, port: u16) -> anyhow::Result<(Value, u64, Log)> {
    let mut cmd = Command::new(release_bin());
    cmd.args(["push", "--json", "--wait", "120"]);
    yorisoi_env(&mut cmd, db, port);
    for (k, v) in FAST {
        cmd.env(k, v);
    }
    let t = Instant::now();
    let out = cmd.output()?;
    let wall = t.elapsed().as_millis() as u64;
    let s: Value = serde_json::from_slice(&out.stdout)?;
    let busy = s["plan_ms"].as_u64().unwrap_or(0) + s["send_ms"].as_u64().unwrap_or(0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = Log {
        lines: stderr.lines().count(),
        conflicts: s["answered_409"].as_u64().unwrap_or(0) as usize,
        other: stderr
            .lines()
            .map(|l| l.split_once("  ").map_or(l, |(_, rest)| rest).to_owned())
            .collect(),
    };
    Ok((s, wall.saturating_sub(busy), log))
}

/// What a rerun logged.
struct Log {
    lines: usize,
    /// Pushes answered 409 (delivered by a killed run, unrecorded).
    conflicts: usize,
    /// The other lines, without their timestamps.
    other: Vec<String>,
}

impl std::fmt::Display for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} log lines; {} push(es) answered 409",
            self.lines, self.conflicts
        )?;
        for l in &self.other {
            write!(f, "\n      {l}")?;
        }
        Ok(())
    }
}

fn describe(k: &Killed, total: u64) -> String {
    match k.exited_first {
        Some(code) => format!(
            "lease after {} ms, finished (exit code {code}) {} ms later, before the kill: {} delivered ({total} in all)",
            k.lease_wait_ms, k.after_ms, k.delivered
        ),
        None => format!(
            "lease after {} ms, killed {} ms later: {} delivered ({total} in all)",
            k.lease_wait_ms, k.after_ms, k.delivered
        ),
    }
}

async fn double_per_user(port: u16) -> anyhow::Result<std::collections::HashMap<String, u64>> {
    Ok(
        reqwest::get(format!("http://127.0.0.1:{port}/__double/per-user"))
            .await?
            .json()
            .await?,
    )
}

async fn double_stats(port: u16) -> anyhow::Result<Value> {
    Ok(
        reqwest::get(format!("http://127.0.0.1:{port}/__double/stats"))
            .await?
            .json()
            .await?,
    )
}

fn plan(dir: &Path) -> anyhow::Result<()> {
    let db = dir.join("plan.db");
    let t = Instant::now();
    make_db(&db, 1_000_000, false)?;
    eprintln!(
        "(a) 1,000,000 registrations created in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Three runs: the first also meets the kernel still writing the freshly built file.
    let mut runs = Vec::new();
    let mut s = Value::Null;
    for _ in 0..3 {
        s = push(&db, free_port(), &[], &["--dry-run"])?;
        runs.push(s["plan_ms"].as_u64().unwrap_or(0));
    }
    let mut sorted = runs.clone();
    sorted.sort_unstable();
    println!(
        "(a) plan one day for 1,000,000 active registrations: {:?} ms (median {} ms), {} pushes, peak RSS {:.1} MB",
        runs,
        sorted[1],
        s["planned"],
        s["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0
    );
    Ok(())
}

async fn throughput(dir: &Path) -> anyhow::Result<()> {
    let db = dir.join("throughput.db");
    make_db(&db, 100_000, true)?;
    let port = free_port();
    let double = start_double(port, None);
    let s = push(
        &db,
        port,
        &[
            ("YORISOI_PUSH_RATE", "1000000"),
            ("YORISOI_PUSH_CONCURRENCY", "128"),
        ],
        &[],
    )?;
    let st = double_stats(port).await?;
    drop(double);
    println!(
        "(b) unthrottled double: {} (failed {}, double accepted {})",
        rates(&s),
        s["failed"],
        st["stats"]["pushes"]
    );

    make_db(&db, 100_000, true)?;
    let port = free_port();
    let double = start_double(port, Some(2_000));
    let s = push(&db, port, &[], &[])?;
    let st = double_stats(port).await?;
    drop(double);
    println!(
        "(b) double enforcing 2,000 requests/s: {}, 429s: {}, failed {}",
        rates(&s),
        st["stats"]["rate_limited"],
        s["failed"]
    );
    Ok(())
}

async fn crash(dir: &Path) -> anyhow::Result<()> {
    let db = dir.join("crash.db");
    make_db(&db, 100_000, true)?;
    let port = free_port();
    let double = start_double(port, None);
    let mut rng = Lcg(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64);
    let mut kills = Vec::new();
    let mut delivered = 0;
    for _ in 0..6 {
        let k = run_and_kill(&db, port, kill_point(&mut rng, 100_000 - delivered)).await?;
        delivered += k.delivered;
        kills.push(describe(&k, delivered));
    }
    let (s, rerun_wait, log) = rerun(&db, port)?;
    let st = double_stats(port).await?;
    drop(double);
    let recipients = st["recipients"].as_u64().unwrap_or(0);
    let more_than_one = st["recipients_with_more_than_one"].as_u64().unwrap_or(0);
    for (i, k) in kills.iter().enumerate() {
        println!("(c) run {}: {k}", i + 1);
    }
    println!(
        "(c) rerun: sent {}, already sent {}, {rerun_wait} ms beyond planning and sending (start, lease); {log}\n(c) double: {} readers reached of 100000, {} with more than one push, {} retried keys answered 409",
        s["sent"], s["already_sent"], recipients, more_than_one, st["stats"]["duplicates"]
    );
    println!(
        "(c) duplicates: {more_than_one}, missing: {}",
        100_000 - recipients.min(100_000)
    );
    if more_than_one > 0 || recipients != 100_000 {
        anyhow::bail!("exactly-once violated");
    }
    Ok(())
}

/// Two installations on one channel, the same day, each killed three times (interleaved), then
/// rerun: every reader of both gets exactly one push.
async fn crash2(dir: &Path) -> anyhow::Result<()> {
    const N: u64 = 50_000;
    // The same readers in both: a staging copy or a reinstall on the same channel.
    let dbs = [
        ("A", dir.join("crash2-a.db"), 0),
        ("B", dir.join("crash2-b.db"), 0),
    ];
    for (_, db, offset) in &dbs {
        make_db_line_offset(db, N, *offset)?;
    }
    let port = free_port();
    let double = start_double(port, None);
    let mut rng = Lcg(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64);
    let mut delivered = [0u64; 2];
    for round in 1..=3 {
        for (i, (name, db, _)) in dbs.iter().enumerate() {
            let more = kill_point(&mut rng, N - delivered[i].min(N));
            let k = run_and_kill(db, port, more).await?;
            delivered[i] += k.delivered;
            println!("(d) {name} run {round}: {}", describe(&k, delivered[i]));
        }
    }
    for (name, db, _) in &dbs {
        let (s, wait, log) = rerun(db, port)?;
        println!(
            "(d) {name} rerun: sent {}, already sent {}, failed {}, finished {}, {wait} ms beyond planning and sending (start, lease); {log}",
            s["sent"], s["already_sent"], s["failed"], s["finished"]
        );
    }
    let st = double_stats(port).await?;
    let per_user = double_per_user(port).await?;
    drop(double);
    // Each reader: one push from each installation.
    let counts: Vec<u64> = (1..=N)
        .map(|i| {
            per_user
                .get(&yorisoi::line_double::user_id(i))
                .copied()
                .unwrap_or(0)
        })
        .collect();
    let missing: u64 = counts.iter().map(|c| 2u64.saturating_sub(*c)).sum();
    let doubled: u64 = counts.iter().map(|c| c.saturating_sub(2)).sum();
    println!("(d) A and B: {N} readers each, duplicates: {doubled}, missing: {missing}");
    let bad = missing > 0 || doubled > 0;
    println!(
        "(d) double: {} pushes accepted, {} retried keys answered 409, {} recipients in all",
        st["stats"]["pushes"],
        st["stats"]["duplicates"],
        per_user.len()
    );
    if bad || per_user.len() as u64 != N {
        anyhow::bail!("exactly-once violated across two installations");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    // BENCH_DIR keeps the databases for a closer look; by default they go with a temporary folder.
    let tmp = tempfile::tempdir()?;
    let dir = std::env::var_os("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    if which == "plan" || which == "all" {
        plan(&dir)?;
    }
    if which == "throughput" || which == "all" {
        throughput(&dir).await?;
    }
    if which == "crash" || which == "all" {
        crash(&dir).await?;
    }
    if which == "crash2" || which == "all" {
        crash2(&dir).await?;
    }
    Ok(())
}
