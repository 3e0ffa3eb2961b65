//! Stickers flood: one reader sends 10,000 stickers within a minute; the per-reader reply limit
//! must keep what LINE is asked to deliver to at most `REPLIES_PER_MINUTE` answers and one
//! polite note, all as replies (no push, so nothing of the month's quota).
//!
//!     cargo build --release && cargo run --release --example bench_replies -- [EVENTS] [PER_REQUEST] [SECONDS]
//!
//! Starts the release `yorisoi serve` as its own process (fresh database, sample content) and a
//! LINE double in the benchmark process (it issues the reply tokens and records what the reader
//! received). The reader follows, then `EVENTS` sticker events (default 10,000) are sent as
//! signed webhook requests of `PER_REQUEST` events each (default 100), evenly spread over
//! `SECONDS` (default 50), each event with a fresh reply token. Reports the replies and pushes
//! the double delivered to the reader, the time until every event was processed
//! (`webhook_events.processed_at`) and the server's peak RSS.

#[path = "common/mod.rs"]
mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};
use yorisoi::line_double::{DoubleConfig, LineDouble, Via, user_id};
use yorisoi::processor::REPLIES_PER_MINUTE;

fn count(conn: &rusqlite::Connection, sql: &str) -> anyhow::Result<i64> {
    Ok(conn.query_row(sql, [], |r| r.get(0))?)
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    events: &[Value],
) -> anyhow::Result<reqwest::StatusCode> {
    let body = LineDouble::callback_body(events);
    let signature = yorisoi::webhook::sign(SECRET, body.as_bytes());
    Ok(http
        .post(url)
        .header("content-type", "application/json")
        .header("x-line-signature", signature)
        .body(body)
        .send()
        .await?
        .status())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let events: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let per_request: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        .max(1);
    let seconds: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(50.0);

    let double = LineDouble::start(
        DoubleConfig {
            access_token: TOKEN.into(),
            channel_secret: SECRET.into(),
            rate_limit: None,
            record: true,
            ..DoubleConfig::default()
        },
        "127.0.0.1:0",
    )?;
    let line_port: u16 = double.base_url().rsplit(':').next().unwrap().parse()?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let port = free_port();
    let mut cmd = Command::new(release_bin());
    cmd.arg("serve");
    yorisoi_env(&mut cmd, &db, line_port);
    cmd.env("YORISOI_LISTEN", format!("127.0.0.1:{port}"));
    cmd.env("YORISOI_ADMIN_LISTEN", format!("127.0.0.1:{}", free_port()));
    let server = Reaped(cmd.spawn()?);
    let url = format!("http://127.0.0.1:{port}/webhook");
    wait_ready(&url);
    let http = reqwest::Client::new();
    let reader = user_id(1);

    // The reader follows (its greeting counts towards the minute's answers too).
    let status = post(&http, &url, &[double.follow_event(&reader, false)]).await?;
    anyhow::ensure!(status == 200, "follow answered {status}");

    let requests = events.div_ceil(per_request);
    let interval = Duration::from_secs_f64(seconds / requests as f64);
    eprintln!(
        "sending {events} sticker events from one reader: {requests} signed requests of {per_request}, one every {:.1} ms…",
        interval.as_secs_f64() * 1000.0
    );
    let started = Instant::now();
    let mut sent = 0;
    let mut refused = 0;
    for r in 0..requests {
        // Paced from the start, so a slow answer does not stretch the minute.
        let due = started + interval * r as u32;
        tokio::time::sleep_until(due.into()).await;
        let n = per_request.min(events - sent);
        // Tokens are issued as the events are made: as fresh as LINE's would be.
        let batch: Vec<Value> = (0..n).map(|_| double.sticker_event(&reader)).collect();
        let status = post(&http, &url, &batch).await?;
        if status == 200 {
            sent += n;
        } else {
            refused += 1;
        }
    }
    let sending = started.elapsed();

    // Until every event is processed and no answer is pending.
    let conn = rusqlite::Connection::open(&db)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mut processed_after = None;
    loop {
        let pending = count(
            &conn,
            "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL",
        )?;
        if pending == 0 && processed_after.is_none() {
            processed_after = Some(started.elapsed());
        }
        let unsent = count(
            &conn,
            "SELECT count(*) FROM sends WHERE kind = 'reply' AND status = 'pending'",
        )?;
        if (pending == 0 && unsent == 0) || started.elapsed() > sending + Duration::from_secs(180) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let settled = started.elapsed();
    let rss = peak_rss_kib(server.0.id());
    let stored = count(&conn, "SELECT count(*) FROM webhook_events")?;
    let processed = count(
        &conn,
        "SELECT count(*) FROM webhook_events WHERE processed_at IS NOT NULL",
    )?;
    let withheld = count(
        &conn,
        "SELECT count(*) FROM webhook_events WHERE outcome LIKE '%reply withheld%'",
    )?;
    let queued = count(&conn, "SELECT count(*) FROM sends WHERE kind = 'reply'")?;
    let by_push = count(
        &conn,
        "SELECT count(*) FROM sends WHERE kind = 'reply' AND via = 'push'",
    )?;
    let first_to_last = conn.query_row(
        "SELECT min(created_at), max(created_at) FROM sends WHERE kind = 'reply'",
        [],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )?;
    drop(server);

    let delivered = double.delivered_to(&reader);
    let replies = delivered.iter().filter(|d| d.via == Via::Reply).count();
    let pushes = delivered.iter().filter(|d| d.via == Via::Push).count();
    let stats = double.stats();
    let limit = REPLIES_PER_MINUTE as usize + 1;

    println!(
        "stickers flood: {events} sticker events from one reader, {requests} requests of {per_request}, release build, loopback"
    );
    println!(
        "  sent in {:.1} s ({sent} events answered 200, {refused} requests refused)",
        sending.as_secs_f64()
    );
    println!(
        "  events stored {stored}, processed {processed}: all processed {:.1} s after the first request ({:.2} s after the last); answers settled at {:.1} s",
        processed_after.unwrap_or(settled).as_secs_f64(),
        processed_after
            .unwrap_or(settled)
            .saturating_sub(sending)
            .as_secs_f64(),
        settled.as_secs_f64()
    );
    println!(
        "  answers queued {queued} (first {}, last {}), {withheld} events answered nothing (per-reader limit)",
        first_to_last.0, first_to_last.1
    );
    println!(
        "  delivered to the reader: {} requests, {replies} replies, {pushes} pushes (replies sent by push: {by_push}); the double in all: {} replies, {} pushes, {} refused",
        delivered.len(),
        stats.replies,
        stats.pushes,
        stats.refused
    );
    println!(
        "  limit: {REPLIES_PER_MINUTE} answers a minute + 1 note = {limit} (the follow's greeting included)"
    );
    println!(
        "  server peak RSS: {:.1} MB",
        rss.unwrap_or(0) as f64 / 1024.0
    );
    if delivered.len() > limit || pushes > 0 || processed != stored {
        anyhow::bail!("the per-reader limit did not hold");
    }
    Ok(())
}
