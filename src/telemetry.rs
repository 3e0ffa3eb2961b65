//! Logging set-up. Logs carry internal ids only: never LINE user ids, nicknames, dates or
//! message text.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (`RUST_LOG` overrides the default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
