//! Shared by the benchmarks: the release binary, child processes, memory and percentiles.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const SECRET: &str = "bench-channel-secret";
pub const TOKEN: &str = "bench-access-token";

/// The release binary; the benchmark measures it, not a debug build. Found where cargo puts
/// it: `CARGO_TARGET_DIR` when set (at run time, else as it was at build time), else `target/`.
pub fn release_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let target = if target.is_relative() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(target)
    } else {
        target
    };
    let p = target.join("release/yorisoi");
    if !p.exists() {
        eprintln!(
            "build the release binary first (cargo build --release): {} not found",
            p.display()
        );
        std::process::exit(2);
    }
    p
}

pub fn content_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("messages")
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Peak resident memory of a running process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Waits until `url` answers 200.
pub fn wait_ready(url: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if std::net::TcpStream::connect(
            url.trim_start_matches("http://").split('/').next().unwrap(),
        )
        .is_ok()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} did not come up");
}

/// A child process that is killed and reaped when dropped.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `yorisoi line-double` as its own process.
pub fn start_double(port: u16, rate: Option<u32>) -> Reaped {
    let mut cmd = Command::new(release_bin());
    cmd.args([
        "line-double",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--token",
        TOKEN,
        "--secret",
        SECRET,
    ])
    .env("RUST_LOG", "warn");
    if let Some(r) = rate {
        cmd.args(["--rate", &r.to_string()]);
    }
    let child = Reaped(cmd.spawn().expect("line double starts"));
    wait_ready(&format!("http://127.0.0.1:{port}"));
    child
}

/// The environment every yorisoi process of a benchmark gets.
pub fn yorisoi_env(cmd: &mut Command, db: &Path, line_port: u16) {
    cmd.env_clear()
        .env("LINE_CHANNEL_SECRET", SECRET)
        .env("LINE_CHANNEL_ACCESS_TOKEN", TOKEN)
        .env("LINE_API_BASE", format!("http://127.0.0.1:{line_port}"))
        .env("YORISOI_DATABASE", db)
        .env("YORISOI_CONTENT_DIR", content_dir())
        .env("YORISOI_PUSH_TIME", "off")
        .env("RUST_LOG", "warn");
}

/// The value at percentile `p` (0–100) of sorted samples.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
