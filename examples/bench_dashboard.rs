//! Times the staff dashboard (`yorisoi::stats::dashboard`: every query and the four charts) on a
//! database made by `bench_fixture`, release build:
//!
//!     cargo run --release --example bench_dashboard -- --db PATH --today 2026-11-23 [--runs 21] [--births 300000] [--csv] [--charts DIR]
//!
//! The first run is on a fresh connection (SQLite's page cache empty; the operating system's may
//! be warm); the median, minimum and maximum are over every run. Then each part is timed alone
//! (median of the same number of runs) to show where the time goes. `--csv` also times the two
//! exports: every registration streamed to nowhere (with the process's peak memory before and
//! after, to show it is not held), and three years of daily rows.

use anyhow::Context;
use chrono::{Days, NaiveDate};
use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use yorisoi::stats;

#[derive(Parser)]
struct Args {
    /// The database (made by bench_fixture).
    #[arg(long)]
    db: PathBuf,
    /// The Asia/Tokyo date of the dashboard.
    #[arg(long)]
    today: NaiveDate,
    /// Timed runs.
    #[arg(long, default_value_t = 21)]
    runs: usize,
    /// Annual births for the reach target (the fixture's city registers about 100,000 to
    /// 170,000 pregnancies a year).
    #[arg(long, default_value_t = 300_000)]
    births: u32,
    /// Also time the CSV exports.
    #[arg(long)]
    csv: bool,
    /// Save the four charts as SVG files in this folder.
    #[arg(long)]
    charts: Option<PathBuf>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// (median, min, max) in ms.
fn spread(samples: &mut [Duration]) -> (f64, f64, f64) {
    samples.sort();
    let n = samples.len();
    let median = if n % 2 == 1 {
        ms(samples[n / 2])
    } else {
        (ms(samples[n / 2 - 1]) + ms(samples[n / 2])) / 2.0
    };
    (median, ms(samples[0]), ms(samples[n - 1]))
}

fn time<T>(
    runs: usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(f64, f64, f64)> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(f()?);
        samples.push(t.elapsed());
    }
    Ok(spread(&mut samples))
}

fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Counts what is written, keeps nothing.
struct Counter(u64);
impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    anyhow::ensure!(
        args.db.exists(),
        "{} not found: run bench_fixture first",
        args.db.display()
    );
    let conn = yorisoi::store::open_and_migrate(&args.db)?;
    let (today, births) = (args.today, Some(args.births));
    let registrations: i64 =
        conn.query_row("SELECT count(*) FROM registrations", [], |r| r.get(0))?;
    let days: i64 = conn.query_row("SELECT count(DISTINCT day) FROM daily_counts", [], |r| {
        r.get(0)
    })?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{}: {registrations} registrations held, {days} days of counters; load average {}",
        args.db.display(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    let t = Instant::now();
    let first = stats::dashboard(&conn, today, births)?;
    let cold = t.elapsed();
    let mut samples = vec![cold];
    for _ in 1..args.runs {
        let t = Instant::now();
        let d = stats::dashboard(&conn, today, births)?;
        samples.push(t.elapsed());
        anyhow::ensure!(d == first, "the same database gave another dashboard");
    }
    let (median, min, max) = spread(&mut samples);
    println!(
        "dashboard(): first {:.1} ms; over {} runs median {median:.1} ms, min {min:.1} ms, max {max:.1} ms",
        ms(cold),
        args.runs
    );
    let c = &first.current;
    println!(
        "  current: 配信中 {} 完了 {} 停止 {} 解除 {} | 妊娠中 {} 子育て中 {} | registering {} followers {}",
        c.status.active,
        c.status.completed,
        c.status.stopped,
        c.status.blocked,
        c.stage.pregnancy,
        c.stage.child,
        c.registering,
        c.followers
    );
    let r = &first.rates;
    println!(
        "  rates: 解除率 {} 停止率 {} 継続率 {} (of {})",
        stats::scale::percent(r.block_rate),
        stats::scale::percent(r.stop_rate),
        stats::scale::percent(r.keeps_reading_rate),
        r.registered
    );
    let dl = &first.delivery;
    println!(
        "  today's pushes: sent {} pending {} failed {} dropped {}; failure groups {}; broadcasts done {}",
        dl.today.sent,
        dl.today.pending,
        dl.today.failed,
        dl.today.dropped,
        dl.failures.len(),
        dl.broadcasts_done
    );
    let chart_bytes: usize = [
        &first.charts.readers,
        &first.charts.stages,
        &first.charts.week,
        &first.charts.reach,
    ]
    .iter()
    .map(|s| s.len())
    .sum();
    println!("  charts: {chart_bytes} bytes of SVG");
    if let Some(dir) = &args.charts {
        std::fs::create_dir_all(dir)?;
        for (name, svg) in [
            ("readers", &first.charts.readers),
            ("stages", &first.charts.stages),
            ("week", &first.charts.week),
            ("reach", &first.charts.reach),
        ] {
            std::fs::write(dir.join(format!("{name}.svg")), svg)?;
        }
        println!("  charts saved in {}", dir.display());
    }

    println!(
        "each part alone (median / min / max of {} runs, ms):",
        args.runs
    );
    let from = today
        .checked_sub_days(Days::new(stats::DASHBOARD_DAYS - 1))
        .context("date")?;
    let parts: Vec<(&str, (f64, f64, f64))> = vec![
        ("current", time(args.runs, || Ok(stats::current(&conn)?))?),
        (
            "rates (with current)",
            time(args.runs, || Ok(stats::rates(&conn)?))?,
        ),
        (
            "series, 90 days",
            time(args.runs, || Ok(stats::series(&conn, from, today)?))?,
        ),
        (
            "reach",
            time(args.runs, || Ok(stats::reach(&conn, today, births)?))?,
        ),
        (
            "delivery",
            time(args.runs, || Ok(stats::delivery(&conn, today)?))?,
        ),
        (
            "four charts",
            time(args.runs, || {
                Ok((
                    stats::readers_chart(&first.series),
                    stats::stages_chart(&first.series),
                    stats::week_chart(&first.week),
                    stats::reach_chart(&first.reach),
                ))
            })?,
        ),
    ];
    for (name, (median, min, max)) in parts {
        println!("  {name:22} {median:7.2} {min:7.2} {max:7.2}");
    }

    if args.csv {
        let before = peak_rss_mb();
        let t = Instant::now();
        let mut out = Counter(0);
        let rows = stats::write_registrations_csv(&conn, &mut out)?;
        println!(
            "registrations CSV streamed: {rows} rows, {:.1} MB in {:.2} s; peak RSS {:.0} MB before, {:.0} MB after",
            out.0 as f64 / 1e6,
            t.elapsed().as_secs_f64(),
            before.unwrap_or(0.0),
            peak_rss_mb().unwrap_or(0.0)
        );
        let first_day: String =
            conn.query_row("SELECT min(day) FROM daily_counts", [], |r| r.get(0))?;
        let first_day: NaiveDate = first_day.parse()?;
        let t = Instant::now();
        let bytes = stats::stats_csv(&conn, first_day, today)?;
        println!(
            "daily CSV from {first_day} to {today}: {} bytes in {:.1} ms",
            bytes.len(),
            ms(t.elapsed())
        );
    }
    Ok(())
}
