//! The `yorisoi` command line.

use crate::clock::{ManualClock, SharedClock, SystemClock};
use crate::config::Settings;
use crate::content::{self, ContentPack};
use crate::delivery::{RunError, Worker};
use crate::domain::{DateKind, Nickname, Stage, parse_date};
use crate::line::Message;
use crate::startup::{Application, line_client};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Writes a line to stdout. A reader that went away (`yorisoi push --json | head -c 100`) is not
/// an error of the command: the output stops there, quietly, instead of a panic.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// [`out!`] without the newline.
macro_rules! out_raw {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}

/// yorisoi: a LINE chatbot accompanying families from pregnancy to the child's 3rd birthday.
#[derive(Debug, Parser)]
#[command(name = "yorisoi", version)]
struct Cli {
    /// A yorisoi.toml with settings (environment variables win).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the service: webhook, health, event processing and the daily delivery.
    Serve {
        /// The whole service on this machine, with a simulated LINE (a chat page at /sandbox)
        /// and time travel; its own database; no LINE channel needed.
        #[arg(long)]
        sandbox: bool,
        /// With --sandbox: start afresh (delete the sandbox database first).
        #[arg(long, requires = "sandbox")]
        reset: bool,
        /// With --sandbox: the sandbox database.
        #[arg(long, requires = "sandbox", value_name = "PATH", default_value = crate::sandbox::DEFAULT_DB)]
        db: PathBuf,
    },
    /// Runs one day's delivery to completion and prints a summary.
    Push {
        /// The day to deliver (Asia/Tokyo; default today).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<NaiveDate>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Only plan: count what would be sent, record and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// If another process is delivering, wait this many seconds for it to finish (0: exit
        /// at once, naming who holds it).
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        wait: u64,
    },
    /// Content pack tools.
    #[command(subcommand)]
    Content(ContentCommand),
    /// Rich menus: check the definitions in richmenus/, bring LINE's menus to them.
    #[command(subcommand)]
    Richmenu(RichmenuCommand),
    /// Runs the LINE platform double on loopback (for trying the service and benchmarks).
    LineDouble(crate::line_double::DoubleArgs),
    /// Personal data: retention and erasure.
    #[command(subcommand)]
    Data(DataCommand),
    /// Staff accounts and API tokens of the console.
    #[command(subcommand)]
    Staff(StaffCommand),
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Creates an account and prints a generated password once, alone on the last line.
    Add {
        /// The login name (3–32 of a-z 0-9 . _ -).
        login: String,
        /// What it may do: admin (everything), sender (also broadcasts), viewer (statistics).
        #[arg(long, value_parser = ["admin", "sender", "viewer"])]
        role: String,
        /// Read the password from stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists the accounts.
    List,
    /// Disables an account: no login; its sessions end and its tokens stop working.
    Disable {
        /// The login name.
        login: String,
    },
    /// Enables a disabled account.
    Enable {
        /// The login name.
        login: String,
    },
    /// Unlocks an account locked after repeated failed logins.
    Unlock {
        /// The login name.
        login: String,
    },
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Creates a token with the account's role and prints it once, alone on the last line.
    Create {
        /// The login name.
        login: String,
    },
    /// Lists tokens (never the tokens themselves).
    List {
        /// Only this account's.
        login: Option<String>,
    },
    /// Revokes a token.
    Revoke {
        /// The token's id (from `staff token list`).
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Anonymises now the readers whose retention period has passed (as `serve` does daily)
    /// and prints what it did (counts only).
    #[command(alias = "anonymize")]
    Anonymise {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Erases one reader now (a request made to the municipality): every row holding their
    /// LINE user id, nickname, dates, conversation and messages. Anonymous counts stay.
    Erase {
        /// The reader's LINE user id (U followed by 32 hex digits).
        #[arg(long = "user", value_name = "LINE_USER_ID")]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
enum RichmenuCommand {
    /// Checks every definition without LINE: size, image (format, pixels, at most 1 MB),
    /// areas (inside, not overlapping, at most 20), actions and LINE's limits.
    Check {
        /// The folder (default: YORISOI_RICHMENU_DIR or `richmenus`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Validates and creates the menus on LINE, uploads their images, sets the aliases
    /// (yorisoi-<name>) and the default (registering), relinks readers, deletes menus no longer
    /// defined; a second run changes nothing. Uses the settings and database of `serve`.
    Sync {
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ContentCommand {
    /// Checks the pack: parse errors, placeholders, collisions, LINE limits, coverage; and the
    /// rich menus as `richmenu check` does.
    Check {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Count every warning (style guide, spelling, hand-written municipality) as an error.
        #[arg(long)]
        strict: bool,
        /// The pack folder (default: YORISOI_CONTENT_DIR or `messages`).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Prints exactly what a reader receives.
    Preview(PreviewArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["due", "birthday"])))]
struct PreviewArgs {
    /// A pregnancy with this due date.
    #[arg(long, value_name = "DATE")]
    due: Option<String>,
    /// A child born on this date.
    #[arg(long, value_name = "DATE")]
    birthday: Option<String>,
    /// The first day to show (default today, Asia/Tokyo).
    #[arg(long, value_name = "YYYY-MM-DD")]
    date: Option<NaiveDate>,
    /// How many days to show.
    #[arg(long, default_value_t = 1)]
    days: u32,
    /// The reader's nickname.
    #[arg(long, default_value = "はなこ")]
    nickname: String,
    /// The pack folder (default: YORISOI_CONTENT_DIR or `messages`).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn content_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.or_else(|| std::env::var_os("YORISOI_CONTENT_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("messages"))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The sandbox is for people at a browser: its page matters more than the service's log
    // (RUST_LOG still says otherwise when set).
    let sandbox = matches!(cli.command, Command::Serve { sandbox: true, .. });
    crate::telemetry::init_with_default(if sandbox { "warn" } else { "info" });
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            sandbox: true,
            reset,
            db,
        } => {
            let rt = runtime()?;
            let result = rt.block_on(crate::sandbox::run(
                cli.config.as_deref(),
                crate::sandbox::Options { db, reset },
            ));
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            result?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { .. } => {
            let settings = Settings::load(cli.config.as_deref())?;
            tracing::info!(?settings, "starting");
            let clock = clock();
            let rt = runtime()?;
            let result = rt.block_on(async move {
                let app = Application::build(settings, clock).await?;
                app.run_until_stopped().await
            });
            // Dropping a runtime waits for blocking database calls without bound; the shutdown
            // is bounded in `run_until_stopped`, and what is cut off here was not committed.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            result?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Push {
            date,
            json,
            dry_run,
            wait,
        } => {
            let settings = Settings::load(cli.config.as_deref())?;
            let clock = clock();
            let date = date.unwrap_or_else(|| clock.today());
            let pack = Arc::new(ContentPack::load(&settings.content_dir)?);
            crate::store::open_and_migrate(&settings.database)?;
            let line = line_client(&settings)?;
            let summary = runtime()?.block_on(async move {
                let worker = Worker::new(&settings, pack, line, clock)?
                    .with_lease_wait(std::time::Duration::from_secs(wait));
                if dry_run {
                    worker.dry_run(date).await
                } else {
                    worker.run_day(date).await
                }
            });
            let summary = match summary {
                Ok(s) => s,
                Err(RunError::DateOutOfWindow(why)) => {
                    eprintln!("error: {why}");
                    return Ok(ExitCode::from(2));
                }
                Err(e @ RunError::Busy(_)) => {
                    eprintln!("error: {e}; try again when it has finished");
                    return Ok(ExitCode::from(3));
                }
                Err(RunError::Other(e)) => return Err(e),
            };
            if json {
                let mut v = serde_json::to_value(&summary)?;
                v["dry_run"] = dry_run.into();
                v["peak_rss_kib"] = crate::delivery::peak_rss_kib().into();
                out!("{}", serde_json::to_string_pretty(&v)?);
            } else if dry_run {
                out!(
                    "{} (dry run): {} push(es) would be sent, {} registration(s) would complete; planned in {} ms",
                    summary.date,
                    summary.planned,
                    summary.completed,
                    summary.plan_ms
                );
            } else {
                out!(
                    "{}: planned {}, sent {}, already sent {}, failed {}, not sent (left for a rerun) {}, completed {}{}",
                    summary.date,
                    summary.planned,
                    summary.sent,
                    summary.already_sent,
                    summary.failed,
                    summary.not_sent,
                    summary.completed,
                    match &summary.halted {
                        Some(why) => format!(" (stopped: {why}; rerun once it is fixed)"),
                        None => String::new(),
                    }
                );
            }
            Ok(
                if summary.failed > 0 || summary.halted.is_some() || !summary.finished {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                },
            )
        }
        Command::Content(ContentCommand::Check { json, strict, dir }) => {
            let mut report = content::check::check(&content_dir(dir), strict);
            report.diagnostics.extend(richmenu_diagnostics());
            if json {
                out!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                out_raw!("{}", content::check::to_text(&report));
            }
            Ok(if report.has_errors() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Content(ContentCommand::Preview(args)) => preview(args),
        Command::Richmenu(command) => richmenu(command, cli.config.as_deref()),
        Command::Data(command) => data(command, cli.config.as_deref()),
        Command::Staff(command) => staff(command, cli.config.as_deref()),
        Command::LineDouble(args) => {
            runtime()?.block_on(crate::line_double::serve_forever(args))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn richmenu_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.or_else(|| std::env::var_os("YORISOI_RICHMENU_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("richmenus"))
}

/// The rich menu check's problems as `content check` errors (when there is a rich menu folder).
fn richmenu_diagnostics() -> Vec<content::check::DiagnosticOut> {
    let dir = richmenu_dir(None);
    if !dir.is_dir() {
        return Vec::new();
    }
    match crate::richmenu::load_dir(&dir) {
        Ok(_) => Vec::new(),
        Err(problems) => problems
            .into_iter()
            .map(|p| content::check::DiagnosticOut {
                level: "error",
                file: Some(p.file),
                line: None,
                message: p.message,
            })
            .collect(),
    }
}

fn richmenu(
    command: RichmenuCommand,
    config: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use crate::richmenu::{load_dir, sync};
    let problems = |list: Vec<crate::richmenu::Problem>| {
        for p in &list {
            eprintln!("error: {p}");
        }
        eprintln!("{} problem(s) in the rich menu definitions", list.len());
        ExitCode::from(1)
    };
    match command {
        RichmenuCommand::Check { dir } => match load_dir(&richmenu_dir(dir)) {
            Ok(menus) => {
                for m in &menus {
                    out!(
                        "{}: {} area(s), {}×{}, {} ({} bytes)",
                        m.path.display(),
                        m.menu.areas.len(),
                        m.menu.size.width,
                        m.menu.size.height,
                        m.image_path.display(),
                        m.image.len()
                    );
                }
                for name in crate::richmenu::MENU_NAMES {
                    if !menus.iter().any(|m| m.name == *name) {
                        out!("note: no {name} menu: readers of that stage keep the menu they have");
                    }
                }
                out!("{} rich menu(s), no problem", menus.len());
                Ok(ExitCode::SUCCESS)
            }
            Err(list) => Ok(problems(list)),
        },
        RichmenuCommand::Sync { dry_run } => {
            let settings = Settings::load(config)?;
            let menus = match load_dir(&settings.richmenu_dir) {
                Ok(m) => m,
                Err(list) => return Ok(problems(list)),
            };
            let db = crate::store::Db::new(crate::store::open_and_migrate(&settings.database)?);
            let line = line_client(&settings)?;
            let clock = clock();
            let report = runtime()?.block_on(sync::sync(&db, &line, &clock, &menus, dry_run))?;
            if report.steps.is_empty() {
                out!("LINE's rich menus match the definitions: nothing to do");
            }
            for step in &report.steps {
                out!("{}{step}", if dry_run { "would " } else { "" });
            }
            if !dry_run && report.relinked.looked > 0 {
                out!(
                    "readers: {} linked, {} unlinked, {} refused by LINE, {} left for serve to retry",
                    report.relinked.linked,
                    report.relinked.unlinked,
                    report.relinked.refused,
                    report.left
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn staff(command: StaffCommand, config: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    use crate::staff::{Role, commands};
    use crate::store::staff::Change;
    let settings = Settings::load_without_line(config)?;
    let mut conn = crate::store::open_and_migrate(&settings.database)?;
    let now = crate::store::ts(clock().now());
    let output = match command {
        StaffCommand::Add {
            login,
            role,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut p = String::new();
                std::io::stdin().read_line(&mut p)?;
                Some(p)
            } else {
                None
            };
            let role = Role::parse(&role).unwrap_or(Role::Viewer);
            commands::add(&mut conn, &login, role, password, &now)?
        }
        StaffCommand::List => commands::list(&conn)?,
        StaffCommand::Disable { login } => {
            commands::change(&mut conn, &login, Change::Disabled(true), &now)?
        }
        StaffCommand::Enable { login } => {
            commands::change(&mut conn, &login, Change::Disabled(false), &now)?
        }
        StaffCommand::Unlock { login } => {
            commands::change(&mut conn, &login, Change::Unlock, &now)?
        }
        StaffCommand::Token(TokenCommand::Create { login }) => {
            commands::token_create(&mut conn, &login, &now)?
        }
        StaffCommand::Token(TokenCommand::List { login }) => {
            commands::token_list(&conn, login.as_deref())?
        }
        StaffCommand::Token(TokenCommand::Revoke { id }) => {
            commands::token_revoke(&mut conn, id, &now)?
        }
    };
    for line in &output.lines {
        out!("{line}");
    }
    Ok(match output.error {
        Some(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    })
}

fn data(command: DataCommand, config: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    use crate::store::retention::{self, EraseError};
    let settings = Settings::load(config)?;
    // Pointed at the wrong path, these would otherwise create an empty database and report that
    // there was nothing to do.
    if !settings.database.exists() {
        eprintln!(
            "error: there is no database at {} (check YORISOI_DATABASE)",
            settings.database.display()
        );
        return Ok(ExitCode::from(2));
    }
    let now = clock().now();
    match command {
        DataCommand::Anonymise { json } => {
            let mut conn = crate::store::open_and_migrate(&settings.database)?;
            let r = retention::run(&mut conn, now, settings.retention_days)?;
            if json {
                let mut v = serde_json::to_value(&r)?;
                v["retention_days"] = settings.retention_days.into();
                out!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                out!(
                    "anonymised {} reader(s) ({} registration(s)) whose last registration ended more than {} days ago; deleted {} processed webhook event(s) and {} finished reply(ies) past their keeping time",
                    r.readers,
                    r.registrations,
                    settings.retention_days,
                    r.events,
                    r.replies
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        DataCommand::Erase { user } => {
            // The id is the operator's own input on their terminal: not repeated, not logged.
            let Some(user) = crate::domain::LineUserId::parse(user.trim()) else {
                eprintln!(
                    "error: --user is not a LINE user id: it is `U` followed by 32 lower-case hex digits"
                );
                return Ok(ExitCode::from(2));
            };
            let mut conn = crate::store::open_and_migrate(&settings.database)?;
            match retention::erase(&mut conn, &user, now) {
                Ok(r) => {
                    out!(
                        "erased the reader: {} registration(s) kept only as anonymous counts, {} webhook event(s) deleted",
                        r.registrations,
                        r.events
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(EraseError::Unknown) => {
                    eprintln!("error: no reader with this LINE user id is in the database");
                    Ok(ExitCode::from(1))
                }
                Err(EraseError::Store(e)) => Err(e.into()),
            }
        }
    }
}

fn preview(args: PreviewArgs) -> anyhow::Result<ExitCode> {
    let pack = ContentPack::load(&content_dir(args.dir))?;
    let today = clock().today();
    let start = args.date.unwrap_or(today);
    let (stage, raw, kind) = match (&args.due, &args.birthday) {
        (Some(d), _) => (Stage::Pregnancy, d, DateKind::DueDate),
        (_, Some(b)) => (Stage::Child, b, DateKind::Birthday),
        _ => unreachable!("clap requires one"),
    };
    let date = match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => d,
        Err(_) => parse_date(raw, kind, start)
            .map_err(|e| anyhow::anyhow!("cannot read the date {raw:?}: {e:?}"))?,
    };
    let nickname =
        Nickname::parse(&args.nickname).map_err(|e| anyhow::anyhow!("nickname: {e:?}"))?;
    for day in
        crate::content::preview::days(&pack, stage, date, start, args.days, nickname.as_str())
    {
        out!(
            "=== {} {} ===",
            crate::domain::format_date_ja(day.date),
            day.position
        );
        if day.messages.is_empty() {
            out!("(no message this day)\n");
        }
        for m in &day.messages {
            print_message(m);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_message(m: &Message) {
    match m {
        Message::Text { text, .. } => out!("--- text ---\n{text}\n"),
        Message::Flex {
            alt_text, contents, ..
        } => {
            let mut texts = Vec::new();
            crate::content::preview::flex_texts(contents, &mut texts);
            out!("--- flex (通知: {alt_text}) ---\n{}\n", texts.join("\n"));
        }
        Message::Image {
            original_content_url,
            ..
        } => out!("--- image ---\n{original_content_url}\n"),
    }
}

/// The variable a test sets to run the binary on its own clock: an RFC 3339 instant the clock
/// stands at (it does not move). Honoured only by debug builds, which are what `cargo test`
/// runs; a release build ignores it and says so.
const TEST_CLOCK: &str = "YORISOI_TEST_CLOCK";

/// The clock of this process: the system's, or in a debug build the test's (`YORISOI_TEST_CLOCK`).
fn clock() -> SharedClock {
    let Ok(value) = std::env::var(TEST_CLOCK) else {
        return Arc::new(SystemClock);
    };
    if !cfg!(debug_assertions) {
        tracing::warn!(
            "{TEST_CLOCK} is honoured by test builds only; this release build ignores it"
        );
        return Arc::new(SystemClock);
    }
    match chrono::DateTime::parse_from_rfc3339(value.trim()) {
        Ok(at) => Arc::new(ManualClock::new(at.with_timezone(&chrono::Utc))),
        Err(e) => {
            // A test that set it wants its clock: running on another would test the wrong day.
            eprintln!("error: {TEST_CLOCK} is not an RFC 3339 instant ({e})");
            std::process::exit(2);
        }
    }
}
