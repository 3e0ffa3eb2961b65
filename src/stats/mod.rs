//! Statistics for the staff console: the figures municipalities watch, per Asia/Tokyo day
//! series, rates, reach, the delivery's state, server-side SVG charts and CSV exports. A library
//! the console calls; no routes here.
//!
//! Where the figures come from:
//! - `daily_counts` (migration 0009, kept by triggers) for everything about registrations over
//!   time: the series, and how many registrations are in each status now. It is a few dozen rows
//!   a day, so three years of history are summed in milliseconds instead of counting a million
//!   registrations.
//! - `anonymised_counts` (migration 0005) for registrations whose personal data is gone
//!   (retention, erasure): they stay in the current figures and the rates with the status they
//!   had when their data went.
//! - `stats_totals` (migration 0010, kept by triggers) for followers and readers still
//!   registering.
//! - `sends` and `broadcasts` for the delivery, through their indexes.
//!
//! One gap: registrations anonymised before migration 0009 existed are in `anonymised_counts`
//! but in no daily counter (0009 could only count what the tables still held). They are in
//! [`current`] and [`rates`], not in [`series`] nor [`reach`].
//!
//! Nothing here reads the clock: `today` (Asia/Tokyo) is passed in. Nothing returns or logs a
//! LINE user id, a nickname or a message text, except [`registrations_csv`], the admins'
//! export of personal data (nicknames and dates, never a LINE user id).

mod charts;
mod export;
mod queries;
pub mod scale;
#[cfg(test)]
mod tests;

pub use charts::{reach_chart, readers_chart, stages_chart, week_chart};
pub use export::{registrations_csv, stats_csv, write_registrations_csv, write_stats_csv};
pub use queries::{current, delivery, rates, reach, series};

use chrono::{DateTime, FixedOffset, NaiveDate};
use rusqlite::Connection;
use serde::Serialize;

use crate::store::StoreError;

/// Days of history on the dashboard, today included.
pub const DASHBOARD_DAYS: u64 = 90;
/// Days of the week chart, today included.
pub const WEEK_DAYS: u64 = 7;
/// The longest series (and daily CSV) one call returns: ten years and a little.
pub const MAX_DAYS: i64 = 3700;
/// Registrations during pregnancy the municipalities aim for, as a share of annual births.
pub const REACH_TARGET: f64 = 0.20;
/// Fiscal years on the reach chart.
pub const REACH_CHART_YEARS: usize = 5;
/// Broadcasts listed on the dashboard.
pub const RECENT_BROADCASTS: usize = 5;
/// Days of failed sends on the dashboard, today included.
pub const FAILURE_DAYS: u64 = 7;

/// Why statistics could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A period longer than [`MAX_DAYS`].
    #[error("a period of {days} days is longer than the {MAX_DAYS} allowed")]
    TooLong {
        /// Days asked for.
        days: i64,
    },
    /// Writing an export failed (the client went away, the disk is full).
    #[error("writing the export: {0}")]
    Write(#[from] std::io::Error),
}

impl From<rusqlite::Error> for StatsError {
    fn from(e: rusqlite::Error) -> Self {
        StatsError::Store(e.into())
    }
}

impl From<csv::Error> for StatsError {
    fn from(e: csv::Error) -> Self {
        StatsError::Write(e.into())
    }
}

impl StatsError {
    /// What staff are told, in Japanese (the cause is for the logs).
    pub fn message_ja(&self) -> &'static str {
        match self {
            StatsError::Store(_) => {
                "データベースを読み込めませんでした。しばらくしてからもう一度お試しください。"
            }
            StatsError::TooLong { .. } => "期間が長すぎます。10年以内で指定してください。",
            StatsError::Write(_) => "ファイルを書き出せませんでした。もう一度お試しください。",
        }
    }
}

/// Registrations by status (配信中 / 完了 / 停止 / 解除).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    /// 配信中: receiving the messages.
    pub active: u64,
    /// 完了: the programme reached its end.
    pub completed: u64,
    /// 停止: stopped from the chat.
    pub stopped: u64,
    /// 解除: the reader blocked the account.
    pub blocked: u64,
}

impl StatusCounts {
    /// All four together.
    pub fn total(&self) -> u64 {
        self.active + self.completed + self.stopped + self.blocked
    }
}

/// Registrations by stage (妊娠中 / 子育て中).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StageCounts {
    /// 妊娠中: registered with a due date.
    pub pregnancy: u64,
    /// 子育て中: registered with the child's birthday.
    pub child: u64,
}

impl StageCounts {
    /// Both together.
    pub fn total(&self) -> u64 {
        self.pregnancy + self.child
    }
}

/// The figures now. As JSON:
/// `{"status": {"active": n, "completed": n, "stopped": n, "blocked": n},
///   "stage": {"pregnancy": n, "child": n}, "registering": n, "followers": n}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Current {
    /// Every registration ever made, each in exactly one status: its status now, or for one
    /// whose personal data is gone (retention, erasure) the status it had then. A registration
    /// erased on request while 配信中 therefore stays counted as 配信中 here, as its outcome;
    /// the daily series, which counts who is being delivered to, drops it on the day it went.
    pub status: StatusCounts,
    /// The 配信中 registrations by stage (`pregnancy + child == status.active`).
    pub stage: StageCounts,
    /// LINE users following the account who read no registration yet (登録途中): a family
    /// member reading someone's registration is not counted here.
    pub registering: u64,
    /// LINE users following the account now (友だち).
    pub followers: u64,
}

/// One Asia/Tokyo day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Day {
    /// The date.
    pub day: NaiveDate,
    /// LINE users who added the account that day (first follow or unblock: 友だち追加).
    pub follows: u64,
    /// LINE users who blocked the account that day (ブロック).
    pub blocks: u64,
    /// New registrations that day, by stage (新規登録).
    pub registered: StageCounts,
    /// Registrations stopped from the chat that day (配信停止), counted each time.
    pub stops: u64,
    /// Registrations that reached the programme's end that day (配信完了).
    pub completions: u64,
    /// Registrations in each status at the end of the day. 配信中 and 停止 count registrations
    /// that still exist (an erased one leaves them on the day it went); 完了 and 解除 keep
    /// those whose personal data went after the retention period, as [`Current`] does.
    pub readers: StatusCounts,
    /// The 配信中 registrations at the end of the day, by stage.
    pub active: StageCounts,
}

/// The rates municipalities report. Each is a share of every registration ever made
/// ([`Rates::registered`], the total of [`Current::status`]), personal data gone or not, and
/// `None` while there is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    /// Every registration ever made (登録累計).
    pub registered: u64,
    /// Registrations in 解除 now: the reader blocked the account and has not come back.
    pub blocked: u64,
    /// Registrations stopped from the chat at least once, whether resumed since or not, each
    /// counted once (as `ever_stopped` in `anonymised_counts`).
    pub ever_stopped: u64,
    /// Registrations in 配信中 or 完了: still reading, or read to the end.
    pub reading: u64,
    /// 解除率 (block rate) = `blocked / registered`.
    pub block_rate: Option<f64>,
    /// 停止率 (stop rate) = `ever_stopped / registered`.
    pub stop_rate: Option<f64>,
    /// 継続率 ("keeps reading") = `reading / registered` = (配信中 + 完了) / all who ever registered.
    pub keeps_reading_rate: Option<f64>,
    /// Births reported from the chat (a pregnancy registration became the child's).
    pub births_reported: u64,
    /// Registrations a family closed after a loss: counted apart, never in the stop rate, and
    /// never linked to anyone (the anonymous `daily_counts`).
    pub ended_by_loss: u64,
}

impl Rates {
    /// The definitions as staff read them beside the figures: (name, explanation).
    pub fn definitions() -> [(&'static str, &'static str); 3] {
        [
            (
                "解除率",
                "これまでに登録されたすべての登録のうち、公式アカウントをブロックして現在「解除」になっている登録の割合です。ブロックを解除して戻られた方は含みません。",
            ),
            (
                "停止率",
                "これまでに登録されたすべての登録のうち、チャットから配信を一度でも停止したことがある登録の割合です。その後再開された登録も含み、何度停止しても1件と数えます。流産・死産などでご家族が配信を終えた登録と、出産予定日を3週間過ぎてご報告がなく自動で止まった登録は含みません。",
            ),
            (
                "継続率",
                "これまでに登録されたすべての登録のうち、現在「配信中」の登録と、最後まで読み終えて「完了」になった登録を合わせた割合です。",
            ),
        ]
    }
}

/// Pregnancy registrations of one fiscal year (年度: April to March).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FiscalYear {
    /// The year it starts in: 2026 for 2026年度 (2026-04-01 to 2027-03-31).
    pub year: i32,
    /// `2026年度`.
    pub label: String,
    /// Its first day, April 1st.
    pub first_day: NaiveDate,
    /// Its last day, March 31st.
    pub last_day: NaiveDate,
    /// The last day counted: `last_day`, or today for the year in progress.
    pub through: NaiveDate,
    /// Registrations made during pregnancy in the year (erased ones included).
    pub pregnancy_registrations: u64,
    /// `pregnancy_registrations / annual_births`, when the births are configured.
    pub share: Option<f64>,
    /// Whether the target is reached (so far, for the year in progress).
    pub met: Option<bool>,
}

/// Reach: registrations during pregnancy per fiscal year against the annual births.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reach {
    /// The municipality's annual births, as configured.
    pub annual_births: Option<u32>,
    /// The target share ([`REACH_TARGET`]).
    pub target_share: f64,
    /// The target in registrations per year: `ceil(annual_births × target_share)`.
    pub target: Option<u64>,
    /// Every fiscal year from the first registration to today's, oldest first.
    pub years: Vec<FiscalYear>,
}

/// Today's daily delivery: its pushes (one per reader and 5 messages) by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DailyDelivery {
    /// The date delivered for.
    pub day: NaiveDate,
    /// Accepted by LINE.
    pub sent: u64,
    /// Recorded, not yet sent (the run is under way, or waiting for LINE).
    pub pending: u64,
    /// Refused by LINE or given up.
    pub failed: u64,
    /// Not sent on purpose (the reader stopped or blocked since it was planned, the month's
    /// limit).
    pub dropped: u64,
}

/// Failed sends of one day with one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureGroup {
    /// The Asia/Tokyo day the send was recorded.
    pub day: NaiveDate,
    /// What happened, in Japanese, for staff (one of a few kinds).
    pub summary: &'static str,
    /// The recorded reason (LINE's answer as classified, in English, for support), with
    /// anything that looks like a LINE user id masked.
    pub error: String,
    /// How many sends.
    pub count: u64,
}

/// A broadcast that was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BroadcastSummary {
    /// Its id.
    pub id: i64,
    /// When it went (or was due to go), Asia/Tokyo.
    pub send_at: Option<DateTime<FixedOffset>>,
    /// When its last batch was settled, Asia/Tokyo.
    pub finished_at: Option<DateTime<FixedOffset>>,
    /// Readers it was addressed to, counted when its batches were recorded.
    pub recipients: Option<u64>,
    /// Its multicast batches (up to 500 readers each).
    pub batches: u64,
    /// Batches LINE accepted.
    pub batches_sent: u64,
    /// Batches that failed.
    pub batches_failed: u64,
}

/// The state of the delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Today's daily pushes.
    pub today: DailyDelivery,
    /// Failed sends of every kind over the last [`FAILURE_DAYS`] days, by day (newest first)
    /// and reason (most frequent first).
    pub failures: Vec<FailureGroup>,
    /// Broadcasts sent (status `done`).
    pub broadcasts_done: u64,
    /// The last [`RECENT_BROADCASTS`] of them, newest first.
    pub recent_broadcasts: Vec<BroadcastSummary>,
}

/// The dashboard's charts, each a self-contained SVG document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Charts {
    /// Registrations by status over the last 90 days.
    pub readers: String,
    /// 配信中 registrations by stage over the last 90 days.
    pub stages: String,
    /// The last 7 days' follows, blocks, registrations and stops.
    pub week: String,
    /// Pregnancy registrations per fiscal year against the target.
    pub reach: String,
}

/// Everything the dashboard shows, read in one snapshot of the database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dashboard {
    /// The Asia/Tokyo date it is for.
    pub today: NaiveDate,
    /// The figures now.
    pub current: Current,
    /// 解除率, 停止率, 継続率.
    pub rates: Rates,
    /// The last [`DASHBOARD_DAYS`] days, oldest first, ending today.
    pub series: Vec<Day>,
    /// The last [`WEEK_DAYS`] days, oldest first, ending today (the end of `series`).
    pub week: Vec<Day>,
    /// Pregnancy registrations per fiscal year.
    pub reach: Reach,
    /// Today's delivery, recent failures, broadcasts.
    pub delivery: Delivery,
    /// The charts.
    pub charts: Charts,
}

/// Builds the dashboard for `today` (Asia/Tokyo): the current figures, the rates, the last 90
/// days and this week, reach against `annual_births`, the delivery, and the charts. Every query
/// reads the same snapshot, so the figures agree with each other.
pub fn dashboard(
    conn: &Connection,
    today: NaiveDate,
    annual_births: Option<u32>,
) -> Result<Dashboard, StatsError> {
    // A read transaction: one snapshot for every query (WAL lets writers go on meanwhile).
    // Inside the caller's own transaction, that one is the snapshot.
    let snapshot = if conn.is_autocommit() {
        Some(conn.unchecked_transaction()?)
    } else {
        None
    };
    let from = today
        .checked_sub_days(chrono::Days::new(DASHBOARD_DAYS - 1))
        .unwrap_or(today);
    let current = queries::current(conn)?;
    let rates = queries::rates_of(conn, &current)?;
    let series = queries::series(conn, from, today)?;
    let reach = queries::reach(conn, today, annual_births)?;
    let delivery = queries::delivery(conn, today)?;
    drop(snapshot);
    let week_len = series.len().min(WEEK_DAYS as usize);
    let week = series[series.len() - week_len..].to_vec();
    let charts = Charts {
        readers: readers_chart(&series),
        stages: stages_chart(&series),
        week: week_chart(&week),
        reach: reach_chart(&reach),
    };
    Ok(Dashboard {
        today,
        current,
        rates,
        series,
        week,
        reach,
        delivery,
        charts,
    })
}
