//! Delivery benchmark, against `yorisoi line-double` on loopback, release build.
//!
//!     cargo build --release && cargo run --release --example bench_delivery -- [plan|throughput|crash|all]
//!
//! (a) plan: one day for 1,000,000 active registrations with spread-out dates (`yorisoi push
//!     --dry-run`): planning time and peak RSS of the process.
//! (b) throughput: 100,000 pushes with the double unthrottled, then with the double enforcing
//!     2,000 requests/s (pushes/s, and 429s seen by the double).
//! (c) crash: `kill -9` of `yorisoi push` at random moments during a 100,000-push day, then a
//!     rerun to completion: every reader must have exactly one push (zero duplicates, zero missing).

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
            "INSERT INTO registration_notices (registration_id, notice_id, delivery_id, taken_at, open_until)
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
    let out = cmd.stderr(Stdio::inherit()).output()?;
    Ok(serde_json::from_slice(&out.stdout)?)
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
        "(b) unthrottled double: {} pushes sent in {} ms = {:.0} pushes/s (failed {}, double accepted {})",
        s["sent"],
        s["send_ms"],
        s["sent"].as_f64().unwrap_or(0.0) / (s["send_ms"].as_f64().unwrap_or(1.0) / 1000.0),
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
        "(b) double enforcing 2,000 requests/s: {} pushes sent in {} ms = {:.0} pushes/s, 429s: {}, failed {}",
        s["sent"],
        s["send_ms"],
        s["sent"].as_f64().unwrap_or(0.0) / (s["send_ms"].as_f64().unwrap_or(1.0) / 1000.0),
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
    for _ in 0..6 {
        let mut cmd = Command::new(release_bin());
        cmd.args(["push", "--json"]);
        yorisoi_env(&mut cmd, &db, port);
        cmd.env("YORISOI_PUSH_RATE", "1000000")
            .env("YORISOI_PUSH_CONCURRENCY", "128");
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let wait = 300 + rng.next(2_500);
        std::thread::sleep(Duration::from_millis(wait));
        let _ = Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status();
        let _ = child.wait();
        let st = double_stats(port).await?;
        kills.push(format!("{wait} ms ({} delivered)", st["stats"]["pushes"]));
    }
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
    let recipients = st["recipients"].as_u64().unwrap_or(0);
    let more_than_one = st["recipients_with_more_than_one"].as_u64().unwrap_or(0);
    println!("(c) kill -9 after {}", kills.join(", "));
    println!(
        "(c) rerun: sent {}, already sent {}; double: {} readers reached of 100000, {} with more than one push, {} retried keys answered 409",
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
    Ok(())
}
