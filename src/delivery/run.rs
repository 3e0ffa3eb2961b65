//! One day's run: plan every reader, deliver, then complete the registrations whose programme
//! ended once their last message is delivered.

use super::plan::{End, plan_day_for_all};
use super::{RunError, RunSummary, Worker};
use crate::domain::{RegistrationId, RegistrationStatus, Stage};
use crate::store::{self, deliveries};
use chrono::NaiveDate;
use std::sync::Arc;

impl Worker {
    /// Runs one day's delivery to completion, holding the delivery lease (renewed while it
    /// runs, released at the end).
    pub async fn run_day(&self, date: NaiveDate) -> Result<RunSummary, RunError> {
        self.check_date(date)?;
        self.take_lease().await?;
        let renewing = self.keep_lease();
        let result = self.run_day_leased(date).await;
        renewing.abort();
        self.release_lease().await;
        result
    }

    async fn run_day_leased(&self, date: NaiveDate) -> Result<RunSummary, RunError> {
        let date_s = date.to_string();
        let pack = self.pack.clone();
        let now = store::ts(self.clock.now());
        let d = date_s.clone();
        let started = std::time::Instant::now();
        let plan = self
            .db
            .run(move |conn| {
                deliveries::run_started(conn, &d, &now)?;
                plan_day_for_all(conn, &pack, date)
            })
            .await?;
        let plan_ms = started.elapsed().as_millis() as u64;
        let sending = std::time::Instant::now();
        let plan = Arc::new(plan);
        let mut summary = RunSummary {
            date: date_s.clone(),
            planned: plan.pushes.len(),
            plan_ms,
            ..Default::default()
        };
        tracing::info!(date = %date_s, pushes = plan.pushes.len(), "delivery planned");

        self.deliver(plan.clone(), date, &mut summary).await?;
        summary.send_ms = sending.elapsed().as_millis() as u64;

        // Registrations that reached the end: once their last message is delivered.
        let now = store::ts(self.clock.now());
        let d = date_s.clone();
        let (failed, planned, sent) = (summary.failed, summary.planned, summary.sent);
        let (completed, birth_unreported, finished, sent_total) = self
            .db
            .run(move |conn| {
                let tx = store::write_tx(conn)?;
                let (mut n, mut stopped) = (0, 0);
                for c in &plan.completions {
                    let done = match &c.last_content {
                        None => true,
                        Some(content) => {
                            deliveries::delivered(&tx, c.registration_id, &d, content)?
                        }
                    };
                    let id = RegistrationId::new(c.registration_id);
                    // Still as planned: active, and for a pregnancy past its reminders, no
                    // birth reported since.
                    let current = store::registrations::get(&tx, id)?.filter(|r| {
                        r.status == RegistrationStatus::Active
                            && (c.end == End::Completed || r.subject.stage() == Stage::Pregnancy)
                    });
                    if done && current.is_some() {
                        let (to, reason) = match c.end {
                            End::Completed => (RegistrationStatus::Completed, "programme end"),
                            End::BirthUnreported => {
                                (RegistrationStatus::Stopped, "birth_unreported")
                            }
                        };
                        store::registrations::set_status(&tx, id, to, reason, &now)?;
                        match c.end {
                            End::Completed => n += 1,
                            End::BirthUnreported => stopped += 1,
                        }
                    }
                }
                let finished = deliveries::run_done(&tx, &d, planned, sent, failed, &now)?;
                let sent_total = deliveries::sent_count(&tx, &d)?;
                tx.commit()?;
                Ok((n, stopped, finished, sent_total))
            })
            .await?;
        summary.completed = completed;
        summary.birth_unreported = birth_unreported;
        summary.finished = finished;
        summary.already_sent = sent_total.saturating_sub(summary.sent);
        tracing::info!(date = %date_s, sent = summary.sent, already_sent = summary.already_sent, failed = summary.failed, skipped = summary.skipped, completed = summary.completed, birth_unreported = summary.birth_unreported, finished, "delivery run ended");
        Ok(summary)
    }

    /// Plans `date` without recording or sending anything (`yorisoi push --dry-run`).
    pub async fn dry_run(&self, date: NaiveDate) -> Result<RunSummary, RunError> {
        let pack = self.pack.clone();
        let started = std::time::Instant::now();
        let plan = self
            .db
            .run(move |conn| plan_day_for_all(conn, &pack, date))
            .await?;
        Ok(RunSummary {
            date: date.to_string(),
            planned: plan.pushes.len(),
            completed: plan
                .completions
                .iter()
                .filter(|c| c.end == End::Completed)
                .count(),
            birth_unreported: plan
                .completions
                .iter()
                .filter(|c| c.end == End::BirthUnreported)
                .count(),
            plan_ms: started.elapsed().as_millis() as u64,
            ..Default::default()
        })
    }
}
