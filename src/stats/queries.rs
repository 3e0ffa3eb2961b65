//! The queries behind the figures. Registrations over time and by status come from
//! `daily_counts` (a few dozen rows a day), never from counting the registrations themselves.

use super::{
    BroadcastSummary, Current, DailyDelivery, Day, Delivery, FAILURE_DAYS, FailureGroup,
    FiscalYear, MAX_DAYS, REACH_TARGET, RECENT_BROADCASTS, Rates, Reach, StageCounts, StatsError,
    StatusCounts,
};
use crate::clock::jst;
use crate::store::{read_date, ts};
use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Statuses in the order of [`StatusCounts`].
const STATUSES: [&str; 4] = ["active", "completed", "stopped", "blocked"];
/// Stages in the order of [`StageCounts`].
const STAGES: [&str; 2] = ["pregnancy", "child"];
const ACTIVE: usize = 0;
const COMPLETED: usize = 1;
const STOPPED: usize = 2;
const BLOCKED: usize = 3;

/// A `daily_counts` metric (migration 0009).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Follow,
    Block,
    Registered(usize),
    To(usize, usize),
    From(usize, usize),
    Gone(usize, usize),
}

fn parse_metric(s: &str) -> Option<Metric> {
    let stage = |g: &str| STAGES.iter().position(|x| *x == g);
    let status = |st: &str| STATUSES.iter().position(|x| *x == st);
    match s {
        "follow" => return Some(Metric::Follow),
        "block" => return Some(Metric::Block),
        _ => {}
    }
    let mut parts = s.split(':');
    let kind = parts.next()?;
    let a = parts.next()?;
    let b = parts.next();
    if parts.next().is_some() {
        return None;
    }
    match (kind, b) {
        ("registered", None) => Some(Metric::Registered(stage(a)?)),
        ("to", Some(g)) => Some(Metric::To(status(a)?, stage(g)?)),
        ("from", Some(g)) => Some(Metric::From(status(a)?, stage(g)?)),
        ("gone", Some(g)) => Some(Metric::Gone(status(a)?, stage(g)?)),
        _ => None,
    }
}

/// What a deleted registration does to the levels: the live count loses every one; the series
/// keeps 完了 and 解除 (an outcome, kept after retention) and loses 配信中 and 停止 (no longer
/// delivered to, nor able to resume).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoneRule {
    Live,
    Series,
}

/// Registrations per status and stage.
#[derive(Debug, Clone, Copy, Default)]
struct Levels([[i64; 2]; 4]);

impl Levels {
    fn apply(&mut self, metric: Metric, n: i64, rule: GoneRule) {
        match metric {
            Metric::To(s, g) => self.0[s][g] += n,
            Metric::From(s, g) => self.0[s][g] -= n,
            Metric::Gone(s, g) if rule == GoneRule::Live || s == ACTIVE || s == STOPPED => {
                self.0[s][g] -= n
            }
            _ => {}
        }
    }

    /// Never below zero, whatever the counters hold.
    fn get(&self, s: usize, g: usize) -> u64 {
        u64::try_from(self.0[s][g]).unwrap_or(0)
    }

    fn status(&self, s: usize) -> u64 {
        self.get(s, 0) + self.get(s, 1)
    }

    fn statuses(&self) -> StatusCounts {
        StatusCounts {
            active: self.status(ACTIVE),
            completed: self.status(COMPLETED),
            stopped: self.status(STOPPED),
            blocked: self.status(BLOCKED),
        }
    }

    fn active(&self) -> StageCounts {
        StageCounts {
            pregnancy: self.get(ACTIVE, 0),
            child: self.get(ACTIVE, 1),
        }
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Sums of every metric over the days before `before` (all days when `None`).
fn metric_sums(
    conn: &Connection,
    before: Option<NaiveDate>,
) -> Result<Vec<(Metric, i64)>, StatsError> {
    let mut stmt = match before {
        Some(_) => conn.prepare_cached(
            "SELECT metric, sum(count) FROM daily_counts WHERE day < ?1 GROUP BY metric",
        )?,
        None => {
            conn.prepare_cached("SELECT metric, sum(count) FROM daily_counts GROUP BY metric")?
        }
    };
    let params: Vec<String> = before.map(|d| d.to_string()).into_iter().collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let metric: String = r.get(0)?;
        if let Some(m) = parse_metric(&metric) {
            out.push((m, r.get::<_, i64>(1)?));
        }
    }
    Ok(out)
}

/// The figures now: registrations by status (those whose personal data is gone included, with
/// the status they had then), the 配信中 ones by stage, followers, and followers still
/// registering. See [`Current`].
pub fn current(conn: &Connection) -> Result<Current, StatsError> {
    let mut live = Levels::default();
    for (m, n) in metric_sums(conn, None)? {
        live.apply(m, n, GoneRule::Live);
    }
    let mut status = live.statuses();
    let mut stage = live.active();
    let mut stmt = conn.prepare_cached(
        "SELECT stage, final_status, sum(count) FROM anonymised_counts
         WHERE stage IN ('pregnancy', 'child') GROUP BY stage, final_status",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (g, s, n): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let n = count(n);
        match s.as_str() {
            "active" => {
                status.active += n;
                if g == "pregnancy" {
                    stage.pregnancy += n;
                } else {
                    stage.child += n;
                }
            }
            "completed" => status.completed += n,
            "stopped" => status.stopped += n,
            "blocked" => status.blocked += n,
            // 'registering' belongs to stage 'none' only.
            _ => {}
        }
    }
    let totals = |metric: &str| -> Result<u64, StatsError> {
        Ok(count(
            conn.prepare_cached("SELECT count FROM stats_totals WHERE metric = ?1")?
                .query_row([metric], |r| r.get(0))
                .optional()?
                .unwrap_or(0),
        ))
    };
    Ok(Current {
        status,
        stage,
        registering: totals("registering")?,
        followers: totals("followers")?,
    })
}

/// One entry per Asia/Tokyo day from `from` to `to` (both included), days with nothing
/// included as zeros. Empty when `to` is before `from`; refused beyond [`MAX_DAYS`]. See [`Day`]
/// for what each figure counts.
pub fn series(conn: &Connection, from: NaiveDate, to: NaiveDate) -> Result<Vec<Day>, StatsError> {
    if to < from {
        return Ok(Vec::new());
    }
    let len = (to - from).num_days() + 1;
    if len > MAX_DAYS {
        return Err(StatsError::TooLong { days: len });
    }
    let len = len as usize;
    let mut level = Levels::default();
    for (m, n) in metric_sums(conn, Some(from))? {
        level.apply(m, n, GoneRule::Series);
    }
    // Each day's changes, then a running total.
    let mut changes: Vec<Vec<(Metric, i64)>> = vec![Vec::new(); len];
    let mut stmt = conn.prepare_cached(
        "SELECT day, metric, count FROM daily_counts WHERE day >= ?1 AND day <= ?2",
    )?;
    let mut rows = stmt.query([from.to_string(), to.to_string()])?;
    while let Some(r) = rows.next()? {
        let (day, metric): (String, String) = (r.get(0)?, r.get(1)?);
        let (Some(day), Some(metric)) = (read_date(&day), parse_metric(&metric)) else {
            continue;
        };
        let Ok(i) = usize::try_from((day - from).num_days()) else {
            continue;
        };
        if let Some(c) = changes.get_mut(i) {
            c.push((metric, r.get(2)?));
        }
    }
    let mut days = Vec::with_capacity(len);
    for (i, changes) in changes.into_iter().enumerate() {
        let mut day = Day {
            day: from + Days::new(i as u64),
            follows: 0,
            blocks: 0,
            registered: StageCounts::default(),
            stops: 0,
            completions: 0,
            readers: StatusCounts::default(),
            active: StageCounts::default(),
        };
        for (m, n) in changes {
            level.apply(m, n, GoneRule::Series);
            let n = count(n);
            match m {
                Metric::Follow => day.follows += n,
                Metric::Block => day.blocks += n,
                Metric::Registered(0) => day.registered.pregnancy += n,
                Metric::Registered(_) => day.registered.child += n,
                Metric::To(STOPPED, _) => day.stops += n,
                Metric::To(COMPLETED, _) => day.completions += n,
                _ => {}
            }
        }
        day.readers = level.statuses();
        day.active = level.active();
        days.push(day);
    }
    Ok(days)
}

/// 解除率, 停止率 and 継続率 over every registration ever made. See [`Rates`].
pub fn rates(conn: &Connection) -> Result<Rates, StatsError> {
    let c = current(conn)?;
    rates_of(conn, &c)
}

/// The rates of figures already read (the dashboard reads them once).
pub(super) fn rates_of(conn: &Connection, c: &Current) -> Result<Rates, StatsError> {
    // Registrations still held that were ever stopped, once each (a partial index of the stops).
    let live: i64 = conn
        .prepare_cached(
            "SELECT count(DISTINCT registration_id) FROM registration_status_history
             WHERE to_status = 'stopped' AND reason NOT IN ('loss', 'birth_unreported')",
        )?
        .query_row([], |r| r.get(0))?;
    let anonymised: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(sum(count), 0) FROM anonymised_counts
             WHERE stage IN ('pregnancy', 'child') AND ever_stopped = 1",
        )?
        .query_row([], |r| r.get(0))?;
    let registered = c.status.total();
    let share = |n: u64| (registered > 0).then(|| n as f64 / registered as f64);
    let ever_stopped = count(live) + count(anonymised);
    let reading = c.status.active + c.status.completed;
    let counted = |pattern: &str| -> Result<u64, StatsError> {
        let n: i64 = conn
            .prepare_cached(
                "SELECT COALESCE(sum(count), 0) FROM daily_counts WHERE metric LIKE ?1",
            )?
            .query_row([pattern], |r| r.get(0))?;
        Ok(count(n))
    };
    Ok(Rates {
        births_reported: counted("born")?,
        ended_by_loss: counted("loss:%")?,
        registered,
        blocked: c.status.blocked,
        ever_stopped,
        reading,
        block_rate: share(c.status.blocked),
        stop_rate: share(ever_stopped),
        keeps_reading_rate: share(reading),
    })
}

/// The fiscal year (年度) a date falls in: 2027-03-31 is in 2026年度.
pub(super) fn fiscal_year(d: NaiveDate) -> i32 {
    if d.month() >= 4 {
        d.year()
    } else {
        d.year() - 1
    }
}

/// The oldest fiscal year reach reports: older counters (a clock once wrong) are left out.
const REACH_MAX_YEARS: i32 = 30;

/// Registrations made during pregnancy per fiscal year, from the first one to today's year,
/// against `annual_births` (target [`REACH_TARGET`]). See [`Reach`].
pub fn reach(
    conn: &Connection,
    today: NaiveDate,
    annual_births: Option<u32>,
) -> Result<Reach, StatsError> {
    let this_year = fiscal_year(today);
    let mut per_year: BTreeMap<i32, u64> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT day, count FROM daily_counts WHERE metric = 'registered:pregnancy' AND day <= ?1",
    )?;
    let mut rows = stmt.query([today.to_string()])?;
    while let Some(r) = rows.next()? {
        let day: String = r.get(0)?;
        if let Some(d) = read_date(&day) {
            *per_year.entry(fiscal_year(d)).or_default() += count(r.get(1)?);
        }
    }
    let first = per_year
        .keys()
        .next()
        .copied()
        .unwrap_or(this_year)
        .max(this_year - REACH_MAX_YEARS + 1);
    let target = annual_births.map(|b| (f64::from(b) * REACH_TARGET).ceil() as u64);
    let years = (first..=this_year)
        .filter_map(|year| {
            let first_day = NaiveDate::from_ymd_opt(year, 4, 1)?;
            let last_day = NaiveDate::from_ymd_opt(year + 1, 3, 31)?;
            let n = per_year.get(&year).copied().unwrap_or(0);
            Some(FiscalYear {
                year,
                label: format!("{year}年度"),
                first_day,
                last_day,
                through: last_day.min(today),
                pregnancy_registrations: n,
                share: annual_births
                    .filter(|b| *b > 0)
                    .map(|b| n as f64 / f64::from(b)),
                met: target.map(|t| n >= t),
            })
        })
        .collect();
    Ok(Reach {
        annual_births,
        target_share: REACH_TARGET,
        target,
        years,
    })
}

/// Midnight starting `d` in Asia/Tokyo, as stored timestamps are written.
fn jst_midnight(d: NaiveDate) -> Option<String> {
    let at = d.and_hms_opt(0, 0, 0)?.and_local_timezone(jst()).single()?;
    Some(ts(at.with_timezone(&Utc)))
}

fn jst_time(stored: Option<String>) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(stored.as_deref()?)
        .ok()
        .map(|t| t.with_timezone(&jst()))
}

/// The longest reason shown; LINE's answers are short, anything longer is cut.
const ERROR_CHARS: usize = 200;

/// A recorded reason as staff may see it: a LINE user id (U + 32 hex digits) LINE may have
/// echoed is masked, and it is cut to [`ERROR_CHARS`].
fn clean_error(e: Option<&str>) -> String {
    static USER_ID: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"U[0-9a-f]{32}").expect("a valid pattern"));
    let e = e.map(str::trim).filter(|e| !e.is_empty());
    let Some(e) = e else {
        return "（理由の記録なし）".to_owned();
    };
    let masked = USER_ID.replace_all(e, "U…");
    let mut out: String = masked.chars().take(ERROR_CHARS).collect();
    if masked.chars().nth(ERROR_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// What a recorded reason means, for staff. The reasons are written by `line::SendOutcome`,
/// `delivery/` and `send/replies.rs`; one not recognised is "another reason".
fn summarise(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    let answered = |code: &str| e.contains(&format!("line answered {code}"));
    if e.contains("monthly") {
        "今月送れるメッセージ数の上限に達していました"
    } else if answered("401") || answered("403") || e.contains("access token") {
        "LINEとの接続設定（アクセストークン）が無効でした"
    } else if answered("429") || e.contains("rate limit") {
        "LINEの送信回数の制限にかかりました"
    } else if e.contains("over 23 hours") {
        "最初の送信から時間がたちすぎたため、再送しませんでした"
    } else if e.contains("invalid reply token") {
        "返信の有効期限が切れていました"
    } else if answered("5") {
        "LINE側の障害で送れませんでした"
    } else if answered("4") {
        "LINEが受け付けませんでした"
    } else if e.contains("outcome unknown") || e.contains("given up") {
        "LINEからの応答を確認できず、送れませんでした"
    } else if e.starts_with("not sent") {
        "送信を見合わせました"
    } else {
        "その他の理由で送れませんでした"
    }
}

/// Today's daily pushes, failed sends of the last [`FAILURE_DAYS`] days, and broadcasts. See
/// [`Delivery`].
pub fn delivery(conn: &Connection, today: NaiveDate) -> Result<Delivery, StatsError> {
    let mut daily = DailyDelivery {
        day: today,
        sent: 0,
        pending: 0,
        failed: 0,
        dropped: 0,
    };
    {
        let mut stmt = conn.prepare_cached(
            "SELECT status, count(*) FROM sends WHERE kind = 'daily' AND day = ?1 GROUP BY status",
        )?;
        let mut rows = stmt.query([today.to_string()])?;
        while let Some(r) = rows.next()? {
            let (status, n): (String, i64) = (r.get(0)?, r.get(1)?);
            let slot = match status.as_str() {
                "sent" => &mut daily.sent,
                "pending" => &mut daily.pending,
                "failed" => &mut daily.failed,
                "dropped" => &mut daily.dropped,
                _ => continue,
            };
            *slot += count(n);
        }
    }

    let mut failures: BTreeMap<(NaiveDate, String), u64> = BTreeMap::new();
    let since = today.checked_sub_days(Days::new(FAILURE_DAYS - 1));
    let until = today.checked_add_days(Days::new(1));
    if let (Some(since), Some(until)) = (since.and_then(jst_midnight), until.and_then(jst_midnight))
    {
        let mut stmt = conn.prepare_cached(
            "SELECT date(created_at, '+9 hours'), error, count(*) FROM sends
             WHERE status = 'failed' AND created_at >= ?1 AND created_at < ?2
             GROUP BY 1, 2",
        )?;
        let mut rows = stmt.query([since, until])?;
        while let Some(r) = rows.next()? {
            let day: Option<String> = r.get(0)?;
            let Some(day) = day.as_deref().and_then(read_date) else {
                continue;
            };
            let error: Option<String> = r.get(1)?;
            *failures
                .entry((day, clean_error(error.as_deref())))
                .or_default() += count(r.get(2)?);
        }
    }
    let mut failures: Vec<FailureGroup> = failures
        .into_iter()
        .map(|((day, error), count)| FailureGroup {
            day,
            summary: summarise(&error),
            error,
            count,
        })
        .collect();
    failures.sort_by(|a, b| {
        b.day
            .cmp(&a.day)
            .then(b.count.cmp(&a.count))
            .then(a.error.cmp(&b.error))
    });

    let broadcasts_done: i64 = conn
        .prepare_cached("SELECT count(*) FROM broadcasts WHERE status = 'done'")?
        .query_row([], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(
        "SELECT b.id, b.send_at, b.finished_at, b.recipients,
                (SELECT count(*) FROM sends s WHERE s.broadcast_id = b.id),
                (SELECT count(*) FROM sends s WHERE s.broadcast_id = b.id AND s.status = 'sent'),
                (SELECT count(*) FROM sends s WHERE s.broadcast_id = b.id AND s.status = 'failed')
         FROM broadcasts b WHERE b.status = 'done'
         ORDER BY COALESCE(b.finished_at, b.send_at) DESC, b.id DESC LIMIT ?1",
    )?;
    let recent_broadcasts = stmt
        .query_map([RECENT_BROADCASTS as i64], |r| {
            Ok(BroadcastSummary {
                id: r.get(0)?,
                send_at: jst_time(r.get(1)?),
                finished_at: jst_time(r.get(2)?),
                recipients: r.get::<_, Option<i64>>(3)?.map(count),
                batches: count(r.get(4)?),
                batches_sent: count(r.get(5)?),
                batches_failed: count(r.get(6)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Delivery {
        today: daily,
        failures,
        broadcasts_done: count(broadcasts_done),
        recent_broadcasts,
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn metrics_are_read_and_unknown_ones_ignored() {
        assert_eq!(parse_metric("follow"), Some(Metric::Follow));
        assert_eq!(parse_metric("block"), Some(Metric::Block));
        assert_eq!(
            parse_metric("registered:child"),
            Some(Metric::Registered(1))
        );
        assert_eq!(
            parse_metric("to:stopped:pregnancy"),
            Some(Metric::To(STOPPED, 0))
        );
        assert_eq!(
            parse_metric("from:blocked:child"),
            Some(Metric::From(BLOCKED, 1))
        );
        assert_eq!(
            parse_metric("gone:completed:child"),
            Some(Metric::Gone(COMPLETED, 1))
        );
        for odd in [
            "",
            "to:active",
            "to:active:none",
            "to:paused:child",
            "x:active:child",
            "to:active:child:x",
            "registered:none",
        ] {
            assert_eq!(parse_metric(odd), None, "{odd}");
        }
    }

    #[test]
    fn fiscal_years_start_in_april() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(fiscal_year(d(2026, 4, 1)), 2026);
        assert_eq!(fiscal_year(d(2026, 3, 31)), 2025);
        assert_eq!(fiscal_year(d(2027, 1, 15)), 2026);
    }

    #[test]
    fn reasons_never_show_a_line_user_id_and_stay_short() {
        let id = format!("U{}", "0123456789abcdef".repeat(2));
        assert_eq!(
            clean_error(Some(&format!("LINE answered 400: bad to {id}"))),
            "LINE answered 400: bad to U…"
        );
        assert_eq!(clean_error(None), "（理由の記録なし）");
        assert_eq!(clean_error(Some("  ")), "（理由の記録なし）");
        let long = clean_error(Some(&"あ".repeat(500)));
        assert_eq!(long.chars().count(), ERROR_CHARS + 1);
    }

    #[test]
    fn reasons_are_summarised_in_japanese() {
        let cases = [
            (
                "LINE answered 400: Failed to send messages",
                "LINEが受け付けませんでした",
            ),
            (
                "LINE answered 500: Internal server error",
                "LINE側の障害で送れませんでした",
            ),
            (
                "LINE answered 429 (rate limit)",
                "LINEの送信回数の制限にかかりました",
            ),
            (
                "not sent: LINE's monthly message limit is reached",
                "今月送れるメッセージ数の上限に達していました",
            ),
            (
                "LINE answered 401: the channel access token is invalid, expired or revoked",
                "LINEとの接続設定（アクセストークン）が無効でした",
            ),
            (
                "outcome unknown: timeout",
                "LINEからの応答を確認できず、送れませんでした",
            ),
            (
                "given up after 5 tries: outcome unknown: timeout",
                "LINEからの応答を確認できず、送れませんでした",
            ),
            (
                "first tried over 23 hours ago: not resent, since LINE forgets retry keys after 24 hours",
                "最初の送信から時間がたちすぎたため、再送しませんでした",
            ),
            ("invalid reply token", "返信の有効期限が切れていました"),
            ("not sent: the run stopped", "送信を見合わせました"),
            ("（理由の記録なし）", "その他の理由で送れませんでした"),
        ];
        for (error, summary) in cases {
            assert_eq!(summarise(error), summary, "{error}");
        }
    }

    #[test]
    fn midnight_in_tokyo_is_15_00_utc_the_day_before() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(jst_midnight(d).unwrap(), "2026-11-22T15:00:00.000Z");
    }
}
