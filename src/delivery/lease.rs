//! The delivery lease: one process delivers at a time, so this process's rate limiter is the
//! channel's, and claims left on pushes by a process that stopped mid-send can be voided. A
//! holder whose process no longer exists on this host (`kill -9`, a crash) is taken over at
//! once; one on another host, or alive, is waited for until its lease expires.

use super::{DELIVERY_LEASE, DELIVERY_LEASE_TTL, RunError, Worker};
use crate::store::leases::{self, AcquireError};
use crate::store::sends;
use std::time::Duration;

impl Worker {
    /// Takes the delivery lease, waiting for another holder up to `lease_wait`.
    pub(super) async fn take_lease(&self) -> Result<(), RunError> {
        let deadline = std::time::Instant::now() + self.lease_wait;
        let mut told = false;
        loop {
            let holder = self.holder.clone();
            let taken = self
                .db.run(move |conn| {
                    match leases::acquire(conn, DELIVERY_LEASE, &holder, DELIVERY_LEASE_TTL) {
                        Ok(a) => {
                            // This process alone delivers now: claims left on pushes by a
                            // process that stopped mid-send are void.
                            let freed = sends::release_claims(conn, sends::Kind::Daily)?;
                            // A holder that expired or whose process is gone (kill -9, a crash
                            // on this host) is taken over at once by `acquire`.
                            if let Some(prev) = a.took_over {
                                tracing::warn!(previous = %prev, freed, "took over the delivery lease of a process that stopped or is gone");
                            }
                            Ok(Ok(()))
                        }
                        Err(AcquireError::Held(h)) => Ok(Err(h)),
                        Err(AcquireError::Store(e)) => Err(e.into()),
                    }
                })
                .await?;
            match taken {
                Ok(()) => return Ok(()),
                Err(held) if std::time::Instant::now() < deadline => {
                    if !told {
                        tracing::info!(holder = %held, "another delivery run is in progress; waiting for it");
                        told = true;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(held) => return Err(RunError::Busy(held)),
            }
        }
    }

    pub(super) async fn release_lease(&self) {
        let holder = self.holder.clone();
        let released = self
            .db
            .run(move |conn| Ok(leases::release(conn, DELIVERY_LEASE, &holder)?))
            .await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not release the delivery lease; it expires by itself");
        }
    }

    /// Keeps the lease while a run goes on (every third of its life); abort the task to stop.
    pub(super) fn keep_lease(&self) -> tokio::task::JoinHandle<()> {
        let (db, holder) = (self.db.clone(), self.holder.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(DELIVERY_LEASE_TTL / 3).await;
                let (db, holder) = (db.clone(), holder.clone());
                let kept = tokio::task::spawn_blocking(move || {
                    let conn = db.blocking();
                    leases::renew(&conn, DELIVERY_LEASE, &holder, DELIVERY_LEASE_TTL)
                })
                .await;
                if !matches!(kept, Ok(Ok(true))) {
                    tracing::error!(
                        "the delivery lease could not be renewed; push claims still keep each push to one run"
                    );
                }
            }
        })
    }
}
