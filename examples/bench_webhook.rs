//! Webhook benchmark: a release `yorisoi serve` on loopback, driven with signed webhook
//! requests (follows, registration answers and redeliveries from many users).
//!
//!     cargo build --release && cargo run --release --example bench_webhook -- [SECONDS] [CONNECTIONS]
//!
//! After one second of warm-up (not counted), reports requests/s over the measured time,
//! p50/p99 latency, errors, the server's peak RSS, and checks that every event answered 200
//! (warm-up included) is committed in the database.

#[path = "common/mod.rs"]
mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use yorisoi::line_double::{DoubleConfig, LineDouble, user_id};

struct Req {
    /// The whole HTTP/1.1 request, serialized once up front.
    raw: Vec<u8>,
    event_id: String,
}

fn signed(port: u16, events: &[Value]) -> Req {
    let body = LineDouble::callback_body(events);
    let signature = yorisoi::webhook::sign(SECRET, body.as_bytes());
    let event_id = events[0]["webhookEventId"].as_str().unwrap().to_owned();
    let raw = format!(
        "POST /webhook HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\nx-line-signature: {signature}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();
    Req { raw, event_id }
}

/// Sends one request on a kept-alive connection and reads the status of its response.
async fn exchange(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    raw: &[u8],
) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(raw).await?;
    buf.clear();
    loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(status);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let connections: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);

    let double = LineDouble::start(
        DoubleConfig {
            access_token: TOKEN.into(),
            channel_secret: SECRET.into(),
            rate_limit: None,
            record: false,
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
    // Killed if the benchmark stops early; stopped with SIGTERM at the end.
    let mut server = Reaped(cmd.spawn()?);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base);

    // Enough requests for the run at the rate the edge alone reaches on two cores (26,000–30,000
    // requests/s): each user follows and answers four questions; one request in six is a
    // redelivery of an earlier one. Running dry is reported below.
    let warm_up = Duration::from_secs(1);
    let users = ((seconds + warm_up.as_secs()) as usize * 30_000 / 6).max(1_000);
    eprintln!("preparing requests for {users} users…");
    let mut reqs: Vec<Req> = Vec::with_capacity(users * 6);
    let steps = ["follow", "子育て中", "はなこ", "2026/8/1", "はい"];
    for (step, text) in steps.iter().enumerate() {
        for u in 0..users {
            let user = user_id(u as u64 + 1);
            let e = if step == 0 {
                double.follow_event(&user, false)
            } else {
                double.text_event(&user, text)
            };
            reqs.push(signed(port, std::slice::from_ref(&e)));
            if u % 5 == 0 {
                let mut again = e.clone();
                again["deliveryContext"] = json!({ "isRedelivery": true });
                reqs.push(signed(port, &[again]));
            }
        }
    }
    let reqs = Arc::new(reqs);
    let next = Arc::new(AtomicUsize::new(0));

    // Warm-up: the first second of load is sent and checked, but not counted.
    let started = Instant::now();
    let measured_from = started + warm_up;
    let deadline = measured_from + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (reqs, next) = (reqs.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut acked = Vec::new();
            let mut errors = 0u64;
            let mut buf = Vec::with_capacity(8192);
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            stream.set_nodelay(true).ok();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(r) = reqs.get(i) else { break };
                let t = Instant::now();
                let counted = t >= measured_from;
                let status = exchange(&mut stream, &mut buf, &r.raw).await;
                let us = t.elapsed().as_micros() as u64;
                match status {
                    Ok(200) => {
                        if counted {
                            lat.push(us);
                        }
                        acked.push(i);
                    }
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                            .await
                            .expect("reconnect");
                    }
                }
            }
            (lat, acked, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut acked = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, a, e) = t.await?;
        lat.extend(l);
        acked.extend(a);
        errors += e;
    }
    let elapsed = measured_from.elapsed().as_secs_f64();
    let ran_dry = next.load(Ordering::Relaxed) >= reqs.len();
    lat.sort_unstable();
    let rss = peak_rss_kib(server.0.id());

    // Every acknowledged event is committed.
    let ids: HashSet<&str> = acked.iter().map(|i| reqs[*i].event_id.as_str()).collect();
    let conn = rusqlite::Connection::open(&db)?;
    let mut stmt = conn.prepare("SELECT webhook_event_id FROM webhook_events")?;
    let stored: HashSet<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let missing = ids.iter().filter(|id| !stored.contains(**id)).count();

    // How long the processor takes to catch up with what was stored.
    let drain = Instant::now();
    loop {
        let pending: i64 = conn.query_row(
            "SELECT count(*) FROM webhook_events WHERE processed_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        if pending == 0 || drain.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let processed: i64 = conn.query_row(
        "SELECT count(*) FROM webhook_events WHERE processed_at IS NOT NULL",
        [],
        |r| r.get(0),
    )?;
    let rss_after = peak_rss_kib(server.0.id());
    let _ = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status();
    let _ = server.0.wait();

    println!(
        "webhook benchmark: {connections} connections, {seconds} s after {} s of warm-up, release build, loopback",
        warm_up.as_secs()
    );
    println!("  measured for:          {elapsed:.2} s");
    println!("  requests answered 200: {} (measured time)", lat.len());
    println!("  errors (not 200, or connection lost): {errors} (warm-up included)");
    if ran_dry {
        println!(
            "  the {} prepared requests ran out before the time was up: throughput is a lower bound",
            reqs.len()
        );
    }
    println!(
        "  throughput:            {:.0} requests/s",
        lat.len() as f64 / elapsed
    );
    println!(
        "  latency p50 / p99 / max: {:.2} / {:.2} / {:.2} ms",
        percentile(&lat, 50.0) as f64 / 1000.0,
        percentile(&lat, 99.0) as f64 / 1000.0,
        lat.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!(
        "  server peak RSS during load: {:.1} MB",
        rss.unwrap_or(0) as f64 / 1024.0
    );
    println!(
        "  events acknowledged: {}, committed: {}, missing: {missing}",
        ids.len(),
        stored.len()
    );
    println!(
        "  processor caught up in {:.1} s after the load ({processed} events processed); peak RSS then {:.1} MB",
        drain.elapsed().as_secs_f64(),
        rss_after.unwrap_or(0) as f64 / 1024.0
    );
    if missing > 0 {
        anyhow::bail!("{missing} acknowledged events are not in the database");
    }
    Ok(())
}
