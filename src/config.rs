//! Settings: defaults in code, then an optional TOML file, then environment variables (which win).

use chrono::NaiveTime;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A secret string whose `Debug` and `Display` never show the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for the one place that needs it (signing, the Authorization header).
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// When the in-process daily delivery runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushTime {
    /// Every day at this Asia/Tokyo time.
    At(NaiveTime),
    /// No in-process schedule: cron runs `yorisoi push`.
    Off,
}

impl PushTime {
    /// Parses `HH:MM` or `off`.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        NaiveTime::parse_from_str(s, "%H:%M")
            .map(Self::At)
            .map_err(|_| ConfigError::Invalid {
                name: "YORISOI_PUSH_TIME",
                reason: "expected HH:MM (Asia/Tokyo) or `off`".into(),
            })
    }
}

/// Everything the service is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// LINE channel secret: the webhook signature key.
    pub channel_secret: Secret,
    /// LINE channel access token.
    pub channel_access_token: Secret,
    /// Base URL of the Messaging API.
    pub line_api_base: String,
    /// Base URL of the Messaging API's data host (content, rich menu images).
    pub line_data_api_base: String,
    /// Timeout of one request to LINE.
    pub line_timeout: Duration,
    /// SQLite database file.
    pub database: PathBuf,
    /// Public listener: webhook and health.
    pub listen: SocketAddr,
    /// Staff console listener.
    pub admin_listen: SocketAddr,
    /// Daily delivery time.
    pub push_time: PushTime,
    /// Content pack folder.
    pub content_dir: PathBuf,
    /// Rich menu folder.
    pub richmenu_dir: PathBuf,
    /// The account's basic ID (`@abc1234`), for invitation links (`LINE_BASIC_ID`).
    pub line_basic_id: Option<String>,
    /// Client-side ceiling on push requests per second.
    pub push_rate: u32,
    /// Client-side ceiling on multicast requests per second (each also counts in `push_rate`).
    pub multicast_rate: u32,
    /// Pushes in flight at once.
    pub push_concurrency: usize,
    /// How many days back a missed delivery is still caught up (0: only the same day).
    pub catch_up_days: u32,
    /// Pushes of the month's quota kept for the daily delivery: a chat answer whose reply token
    /// expired is not pushed once LINE's remaining quota is this low. `None`: worked out from
    /// the readers (each active reader × the days left in the month).
    pub quota_reserve: Option<u64>,
    /// Days after a reader's last registration ended (blocked or completed) before their
    /// personal data is anonymised.
    pub retention_days: u32,
    /// Limits of the public listener.
    pub limits: ListenerLimits,
    /// The staff console.
    pub console: ConsoleSettings,
}

/// The staff console's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// Session cookies marked `Secure` (behind HTTPS): `YORISOI_ADMIN_SECURE_COOKIES=on`.
    pub secure_cookies: bool,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// Broadcasts due inside these Asia/Tokyo hours wait for their end (`None`: off).
    pub quiet_hours: Option<crate::broadcast::QuietHours>,
}

/// Limits of the public listener, so slow or idle clients cannot hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Open connections at most, across all workers; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and then its whole body.
    pub request_timeout: Duration,
    /// How long an idle keep-alive connection is kept open.
    pub keep_alive: Duration,
}

impl Default for ListenerLimits {
    /// A small server behind a proxy: LINE sends one webhook request at a time per channel
    /// and well under a few hundred at once; the proxy reuses connections.
    fn default() -> Self {
        Self {
            max_connections: 1024,
            request_timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// A configuration problem, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required setting is absent.
    #[error("missing required setting(s): {0} (set them in the environment or in yorisoi.toml)")]
    Missing(String),
    /// A setting has a value that cannot be used.
    #[error("invalid {name}: {reason}")]
    Invalid {
        /// The setting's name.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The config file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The keys accepted in `yorisoi.toml`: the environment variable names, lower-cased.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    line_channel_secret: Option<String>,
    line_channel_access_token: Option<String>,
    line_api_base: Option<String>,
    line_data_api_base: Option<String>,
    line_basic_id: Option<String>,
    line_timeout_ms: Option<u64>,
    yorisoi_database: Option<String>,
    yorisoi_listen: Option<String>,
    yorisoi_admin_listen: Option<String>,
    yorisoi_push_time: Option<String>,
    yorisoi_content_dir: Option<String>,
    yorisoi_richmenu_dir: Option<String>,
    yorisoi_push_rate: Option<u32>,
    yorisoi_multicast_rate: Option<u32>,
    yorisoi_push_concurrency: Option<usize>,
    yorisoi_catch_up_days: Option<u32>,
    yorisoi_quota_reserve: Option<String>,
    yorisoi_retention_days: Option<u32>,
    yorisoi_max_connections: Option<usize>,
    yorisoi_request_timeout_ms: Option<u64>,
    yorisoi_keep_alive_s: Option<u64>,
    yorisoi_admin_secure_cookies: Option<String>,
    yorisoi_admin_session_idle_min: Option<u64>,
    yorisoi_quiet_hours: Option<String>,
}

impl FileSettings {
    fn into_map(self) -> HashMap<&'static str, String> {
        let mut m = HashMap::new();
        let mut put = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                m.insert(k, v);
            }
        };
        put("LINE_CHANNEL_SECRET", self.line_channel_secret);
        put("LINE_CHANNEL_ACCESS_TOKEN", self.line_channel_access_token);
        put("LINE_API_BASE", self.line_api_base);
        put("LINE_DATA_API_BASE", self.line_data_api_base);
        put("LINE_BASIC_ID", self.line_basic_id);
        put(
            "LINE_TIMEOUT_MS",
            self.line_timeout_ms.map(|v| v.to_string()),
        );
        put("YORISOI_DATABASE", self.yorisoi_database);
        put("YORISOI_LISTEN", self.yorisoi_listen);
        put("YORISOI_ADMIN_LISTEN", self.yorisoi_admin_listen);
        put("YORISOI_PUSH_TIME", self.yorisoi_push_time);
        put("YORISOI_CONTENT_DIR", self.yorisoi_content_dir);
        put("YORISOI_RICHMENU_DIR", self.yorisoi_richmenu_dir);
        put(
            "YORISOI_PUSH_RATE",
            self.yorisoi_push_rate.map(|v| v.to_string()),
        );
        put(
            "YORISOI_MULTICAST_RATE",
            self.yorisoi_multicast_rate.map(|v| v.to_string()),
        );
        put(
            "YORISOI_PUSH_CONCURRENCY",
            self.yorisoi_push_concurrency.map(|v| v.to_string()),
        );
        put(
            "YORISOI_CATCH_UP_DAYS",
            self.yorisoi_catch_up_days.map(|v| v.to_string()),
        );
        put("YORISOI_QUOTA_RESERVE", self.yorisoi_quota_reserve);
        put(
            "YORISOI_RETENTION_DAYS",
            self.yorisoi_retention_days.map(|v| v.to_string()),
        );
        put(
            "YORISOI_MAX_CONNECTIONS",
            self.yorisoi_max_connections.map(|v| v.to_string()),
        );
        put(
            "YORISOI_REQUEST_TIMEOUT_MS",
            self.yorisoi_request_timeout_ms.map(|v| v.to_string()),
        );
        put(
            "YORISOI_KEEP_ALIVE_S",
            self.yorisoi_keep_alive_s.map(|v| v.to_string()),
        );
        put(
            "YORISOI_ADMIN_SECURE_COOKIES",
            self.yorisoi_admin_secure_cookies,
        );
        put(
            "YORISOI_ADMIN_SESSION_IDLE_MIN",
            self.yorisoi_admin_session_idle_min.map(|v| v.to_string()),
        );
        put("YORISOI_QUIET_HOURS", self.yorisoi_quiet_hours);
        m
    }
}

const KEYS: &[&str] = &[
    "LINE_CHANNEL_SECRET",
    "LINE_CHANNEL_ACCESS_TOKEN",
    "LINE_API_BASE",
    "LINE_DATA_API_BASE",
    "LINE_BASIC_ID",
    "LINE_TIMEOUT_MS",
    "YORISOI_DATABASE",
    "YORISOI_LISTEN",
    "YORISOI_ADMIN_LISTEN",
    "YORISOI_PUSH_TIME",
    "YORISOI_CONTENT_DIR",
    "YORISOI_RICHMENU_DIR",
    "YORISOI_PUSH_RATE",
    "YORISOI_MULTICAST_RATE",
    "YORISOI_PUSH_CONCURRENCY",
    "YORISOI_CATCH_UP_DAYS",
    "YORISOI_QUOTA_RESERVE",
    "YORISOI_RETENTION_DAYS",
    "YORISOI_MAX_CONNECTIONS",
    "YORISOI_REQUEST_TIMEOUT_MS",
    "YORISOI_KEEP_ALIVE_S",
    "YORISOI_ADMIN_SECURE_COOKIES",
    "YORISOI_ADMIN_SESSION_IDLE_MIN",
    "YORISOI_QUIET_HOURS",
];

impl Settings {
    /// Loads settings from the optional file, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_sources(file, &env)
    }

    /// Loads settings for a command that never talks to LINE (`yorisoi staff …`): the channel's
    /// secret and token may be absent.
    pub fn load_without_line(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_sources_with(file, &env, false)
    }

    /// Loads settings from the optional file and the given environment (env wins).
    pub fn from_sources(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        Self::from_sources_with(file, env, true)
    }

    fn from_sources_with(
        file: Option<&Path>,
        env: &HashMap<String, String>,
        need_line: bool,
    ) -> Result<Self, ConfigError> {
        let mut values: HashMap<&'static str, String> = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
                toml::from_str::<FileSettings>(&text)
                    .map_err(|e| ConfigError::File {
                        path: path.to_owned(),
                        reason: toml_error(&text, &e),
                    })?
                    .into_map()
            }
            None => HashMap::new(),
        };
        for key in KEYS {
            if let Some(v) = env.get(*key) {
                values.insert(key, v.clone());
            }
        }
        let get = |k: &str| {
            values
                .get(k)
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };

        let missing: Vec<&str> = ["LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"]
            .into_iter()
            .filter(|k| get(k).is_none())
            .collect();
        if !missing.is_empty() && need_line {
            return Err(ConfigError::Missing(missing.join(", ")));
        }

        let addr = |name: &'static str, default: &str| -> Result<SocketAddr, ConfigError> {
            let v = get(name).unwrap_or_else(|| default.to_owned());
            v.parse().map_err(|_| ConfigError::Invalid {
                name,
                reason: "expected HOST:PORT such as 127.0.0.1:8080".into(),
            })
        };
        fn number<T: std::str::FromStr>(
            name: &'static str,
            v: Option<String>,
            default: T,
        ) -> Result<T, ConfigError> {
            match v {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                    name,
                    reason: "expected a whole number".into(),
                }),
            }
        }
        let url = |name: &'static str, default: &str| -> Result<String, ConfigError> {
            let v = get(name).unwrap_or_else(|| default.to_owned());
            if v.starts_with("http://") || v.starts_with("https://") {
                Ok(v.trim_end_matches('/').to_owned())
            } else {
                Err(ConfigError::Invalid {
                    name,
                    reason: "expected an http(s) URL".into(),
                })
            }
        };

        // LINE allows 2,000 push requests per second; the headroom absorbs scheduling jitter
        // between when a request leaves and when LINE counts it.
        let push_rate = number("YORISOI_PUSH_RATE", get("YORISOI_PUSH_RATE"), 1_920u32)?;
        // LINE allows 200 multicast requests per second per channel; headroom as for pushes.
        let multicast_rate = number(
            "YORISOI_MULTICAST_RATE",
            get("YORISOI_MULTICAST_RATE"),
            190u32,
        )?;
        for (name, rate) in [
            ("YORISOI_PUSH_RATE", push_rate),
            ("YORISOI_MULTICAST_RATE", multicast_rate),
        ] {
            if rate == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    reason: "must be at least 1".into(),
                });
            }
        }
        let push_concurrency = number(
            "YORISOI_PUSH_CONCURRENCY",
            get("YORISOI_PUSH_CONCURRENCY"),
            64usize,
        )?
        .max(1);

        let defaults = ListenerLimits::default();
        let max_connections = number(
            "YORISOI_MAX_CONNECTIONS",
            get("YORISOI_MAX_CONNECTIONS"),
            defaults.max_connections,
        )?;
        let request_timeout_ms = number(
            "YORISOI_REQUEST_TIMEOUT_MS",
            get("YORISOI_REQUEST_TIMEOUT_MS"),
            defaults.request_timeout.as_millis() as u64,
        )?;
        let keep_alive_s = number(
            "YORISOI_KEEP_ALIVE_S",
            get("YORISOI_KEEP_ALIVE_S"),
            defaults.keep_alive.as_secs(),
        )?;
        for (name, ok, why) in [
            (
                "YORISOI_MAX_CONNECTIONS",
                max_connections >= 1,
                "must be at least 1",
            ),
            (
                "YORISOI_REQUEST_TIMEOUT_MS",
                (100..=60_000).contains(&request_timeout_ms),
                "must be between 100 and 60000 (LINE waits at most a few seconds)",
            ),
            (
                "YORISOI_KEEP_ALIVE_S",
                keep_alive_s <= 3600,
                "must be at most 3600",
            ),
        ] {
            if !ok {
                return Err(ConfigError::Invalid {
                    name,
                    reason: why.into(),
                });
            }
        }
        let limits = ListenerLimits {
            max_connections,
            request_timeout: Duration::from_millis(request_timeout_ms),
            keep_alive: Duration::from_secs(keep_alive_s),
        };

        let console = ConsoleSettings {
            secure_cookies: match get("YORISOI_ADMIN_SECURE_COOKIES")
                .as_deref()
                .map(str::trim)
            {
                None | Some("off") => false,
                Some("on") => true,
                Some(_) => {
                    return Err(ConfigError::Invalid {
                        name: "YORISOI_ADMIN_SECURE_COOKIES",
                        reason: "expected `on` or `off`".into(),
                    });
                }
            },
            session_idle: match number(
                "YORISOI_ADMIN_SESSION_IDLE_MIN",
                get("YORISOI_ADMIN_SESSION_IDLE_MIN"),
                30u64,
            )? {
                n @ 1..=720 => Duration::from_secs(n * 60),
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "YORISOI_ADMIN_SESSION_IDLE_MIN",
                        reason: "expected 1 to 720 minutes".into(),
                    });
                }
            },
            quiet_hours: match get("YORISOI_QUIET_HOURS") {
                None => Some(crate::broadcast::QuietHours::default()),
                Some(v) => crate::broadcast::QuietHours::parse(&v).map_err(|reason| {
                    ConfigError::Invalid {
                        name: "YORISOI_QUIET_HOURS",
                        reason,
                    }
                })?,
            },
        };

        Ok(Settings {
            limits,
            console,
            channel_secret: Secret::new(get("LINE_CHANNEL_SECRET").unwrap_or_default()),
            channel_access_token: Secret::new(get("LINE_CHANNEL_ACCESS_TOKEN").unwrap_or_default()),
            line_api_base: url("LINE_API_BASE", "https://api.line.me")?,
            line_data_api_base: url("LINE_DATA_API_BASE", "https://api-data.line.me")?,
            line_timeout: Duration::from_millis(number(
                "LINE_TIMEOUT_MS",
                get("LINE_TIMEOUT_MS"),
                10_000u64,
            )?),
            database: PathBuf::from(
                get("YORISOI_DATABASE").unwrap_or_else(|| "data/yorisoi.db".into()),
            ),
            listen: addr("YORISOI_LISTEN", "127.0.0.1:8080")?,
            admin_listen: addr("YORISOI_ADMIN_LISTEN", "127.0.0.1:8081")?,
            push_time: PushTime::parse(
                &get("YORISOI_PUSH_TIME").unwrap_or_else(|| "09:00".into()),
            )?,
            content_dir: PathBuf::from(
                get("YORISOI_CONTENT_DIR").unwrap_or_else(|| "messages".into()),
            ),
            richmenu_dir: PathBuf::from(
                get("YORISOI_RICHMENU_DIR").unwrap_or_else(|| "richmenus".into()),
            ),
            line_basic_id: match get("LINE_BASIC_ID").filter(|v| !v.is_empty()) {
                None => None,
                Some(id)
                    if id.len() <= 20
                        && id.starts_with('@')
                        && id[1..]
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        && id.len() > 1 =>
                {
                    Some(id)
                }
                Some(_) => {
                    return Err(ConfigError::Invalid {
                        name: "LINE_BASIC_ID",
                        reason: "expected the account's basic ID, such as @abc1234".into(),
                    });
                }
            },
            push_rate,
            multicast_rate,
            push_concurrency,
            catch_up_days: match number(
                "YORISOI_CATCH_UP_DAYS",
                get("YORISOI_CATCH_UP_DAYS"),
                0u32,
            )? {
                n @ 0..=30 => n,
                n => {
                    return Err(ConfigError::Invalid {
                        name: "YORISOI_CATCH_UP_DAYS",
                        reason: format!(
                            "{n} is too many: at most 30 days of missed messages are caught up"
                        ),
                    });
                }
            },
            quota_reserve: match get("YORISOI_QUOTA_RESERVE").as_deref() {
                None | Some("auto") => None,
                Some(v) => Some(number("YORISOI_QUOTA_RESERVE", Some(v.to_owned()), 0u64)?),
            },
            retention_days: match number(
                "YORISOI_RETENTION_DAYS",
                get("YORISOI_RETENTION_DAYS"),
                180u32,
            )? {
                n @ 1..=3650 => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "YORISOI_RETENTION_DAYS",
                        reason: "expected 1 to 3650 days".into(),
                    });
                }
            },
        })
    }
}

/// A TOML error as its kind and position. The parser's own message quotes the offending line
/// (which can hold the channel secret), so only the setting's name is kept, and only when it is
/// one yorisoi knows.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message();
    let kind = if message.starts_with("unknown field") {
        "unknown setting"
    } else if message.starts_with("invalid type") {
        "a value of the wrong type"
    } else if message.starts_with("invalid value") || message.starts_with("invalid length") {
        "an invalid value"
    } else if message.starts_with("duplicate key") {
        "a setting given twice"
    } else {
        "not valid TOML"
    };
    let Some(span) = e.span() else {
        return kind.to_owned();
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text
        .get(line_start..start)
        .map_or(1, |s| s.chars().count() + 1);
    let key = text[line_start..]
        .split(['=', '\n'])
        .next()
        .map(|k| k.trim().trim_matches('"').to_ascii_uppercase())
        .filter(|k| KEYS.contains(&k.as_str()));
    match key {
        Some(k) => format!(
            "line {line}, column {column}: {kind} ({})",
            k.to_ascii_lowercase()
        ),
        None => format!("line {line}, column {column}: {kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn missing_secrets_are_named() {
        let err = Settings::from_sources(None, &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("LINE_CHANNEL_SECRET"), "{err}");
        assert!(err.contains("LINE_CHANNEL_ACCESS_TOKEN"), "{err}");
    }

    #[test]
    fn defaults_apply_and_secrets_are_redacted() {
        let s = Settings::from_sources(
            None,
            &env(&[
                ("LINE_CHANNEL_SECRET", "s3cr3t"),
                ("LINE_CHANNEL_ACCESS_TOKEN", "t0k3n"),
            ]),
        )
        .unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.limits, ListenerLimits::default());
        assert_eq!(
            s.push_time,
            PushTime::At(NaiveTime::from_hms_opt(9, 0, 0).unwrap())
        );
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("s3cr3t") && !debug.contains("t0k3n"),
            "{debug}"
        );
    }

    #[test]
    fn env_wins_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("yorisoi.toml");
        std::fs::write(
            &path,
            "line_channel_secret = \"file\"\nline_channel_access_token = \"file\"\nyorisoi_push_time = \"07:30\"\nyorisoi_listen = \"127.0.0.1:9000\"\n",
        )
        .unwrap();
        let s = Settings::from_sources(Some(&path), &env(&[("YORISOI_PUSH_TIME", "off")])).unwrap();
        assert_eq!(s.push_time, PushTime::Off);
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(s.channel_secret.expose(), "file");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let base = [
            ("LINE_CHANNEL_SECRET", "a"),
            ("LINE_CHANNEL_ACCESS_TOKEN", "b"),
        ];
        for (key, value) in [
            ("YORISOI_PUSH_TIME", "9am"),
            ("YORISOI_LISTEN", "localhost"),
            ("LINE_API_BASE", "ftp://x"),
            ("YORISOI_PUSH_RATE", "fast"),
            ("YORISOI_MULTICAST_RATE", "0"),
            ("YORISOI_MULTICAST_RATE", "slow"),
            ("YORISOI_MAX_CONNECTIONS", "0"),
            ("YORISOI_REQUEST_TIMEOUT_MS", "7"),
            ("YORISOI_KEEP_ALIVE_S", "forever"),
        ] {
            let mut e = env(&base);
            e.insert(key.into(), value.into());
            let err = Settings::from_sources(None, &e).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
            assert!(!err.contains(value), "the value is not echoed: {err}");
        }
    }

    #[test]
    fn multicast_rate_defaults_under_lines_200_and_is_set_by_file_or_env() {
        let base = [
            ("LINE_CHANNEL_SECRET", "a"),
            ("LINE_CHANNEL_ACCESS_TOKEN", "b"),
        ];
        assert_eq!(
            Settings::from_sources(None, &env(&base))
                .unwrap()
                .multicast_rate,
            190
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("yorisoi.toml");
        std::fs::write(&path, "yorisoi_multicast_rate = 50\n").unwrap();
        let s = Settings::from_sources(Some(&path), &env(&base)).unwrap();
        assert_eq!(s.multicast_rate, 50);
        let mut e = env(&base);
        e.insert("YORISOI_MULTICAST_RATE".into(), "20".into());
        let s = Settings::from_sources(Some(&path), &e).unwrap();
        assert_eq!(s.multicast_rate, 20);
    }

    #[test]
    fn retention_defaults_to_180_days_and_is_bounded() {
        let base = [
            ("LINE_CHANNEL_SECRET", "a"),
            ("LINE_CHANNEL_ACCESS_TOKEN", "b"),
        ];
        let s = Settings::from_sources(None, &env(&base)).unwrap();
        assert_eq!(s.retention_days, 180);
        assert!(format!("{s:?}").contains("retention_days: 180"));
        let mut e = env(&base);
        e.insert("YORISOI_RETENTION_DAYS".into(), "30".into());
        assert_eq!(Settings::from_sources(None, &e).unwrap().retention_days, 30);
        for bad in ["0", "-1", "half a year", "99999"] {
            e.insert("YORISOI_RETENTION_DAYS".into(), bad.into());
            let err = Settings::from_sources(None, &e).unwrap_err().to_string();
            assert!(err.contains("YORISOI_RETENTION_DAYS"), "{bad}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("yorisoi.toml");
        std::fs::write(&path, "yorisoi_retention_days = 365\n").unwrap();
        let s = Settings::from_sources(Some(&path), &env(&base)).unwrap();
        assert_eq!(s.retention_days, 365);
    }

    #[test]
    fn toml_errors_name_the_place_not_the_line() {
        let secret = "0123456789abcdefSECRET";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("yorisoi.toml");
        for (text, expect) in [
            (
                format!("yorisoi_push_time = \"09:00\"\nline_channel_secret = \"{secret}\n"),
                "line 2",
            ),
            (
                format!("line_channel_secret = {secret}\n"),
                "line 1, column",
            ),
            (
                format!("\n\nyorisoi_push_rate = \"{secret}\"\n"),
                "line 3, column 21: a value of the wrong type (yorisoi_push_rate)",
            ),
            (
                format!("{secret} = 1\n"),
                "line 1, column 1: unknown setting",
            ),
            (
                format!("line_channel_secret = \"{secret}\"\nline_channel_secret = \"{secret}\"\n"),
                "line 2",
            ),
        ] {
            std::fs::write(&path, &text).unwrap();
            let err = Settings::from_sources(Some(&path), &env(&[]))
                .unwrap_err()
                .to_string();
            assert!(!err.contains(secret), "{text:?}: {err}");
            assert!(!err.contains("SECRET"), "{text:?}: {err}");
            assert!(err.contains(expect), "{text:?}: {err}");
            assert!(err.contains("yorisoi.toml"), "{err}");
        }
    }
}
