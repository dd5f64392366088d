//! Background work. Every node polls the store for due jobs, claims a few
//! for a lease, runs them and says how they ended; the store makes sure a
//! job is claimed by one node at a time and claimed again if its node dies.
//! Periodic work (forgetting old idempotency keys) is a job that schedules
//! itself again when it is done.

use std::time::Duration;

use ordo_domain::Timestamp;
use ordo_store::{Job, JobClaim, JobOutcome, NewJob, Store};
use rand::Rng;

use crate::app::AppState;

/// Forgets idempotency keys past their retention, hourly.
pub const PRUNE_IDEMPOTENCY_KEYS: &str = "prune-idempotency-keys";

/// Lets lapsed stock reservations go (releasing the stock and cancelling
/// the order), every poll interval.
pub const EXPIRE_RESERVATIONS: &str = "expire-reservations";

/// Orders expired per run of [`EXPIRE_RESERVATIONS`] (the next run takes the rest).
const EXPIRE_BATCH: u32 = 500;

/// Jobs claimed per poll (and run at once).
const BATCH: u32 = 256;

/// This process, as the jobs it claims name it.
pub fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ordo".into());
    format!("{host}:{}", std::process::id())
}

/// When failed jobs are tried again, and when they are given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles with each one.
    pub initial_ms: i64,
    /// The longest wait between two attempts.
    pub max_ms: i64,
    /// A job still failing this long after it was scheduled is dead.
    pub max_age_ms: i64,
}

impl RetryPolicy {
    pub fn from_config(config: &crate::config::JobsConfig) -> Self {
        RetryPolicy {
            initial_ms: i64::try_from(config.retry_initial_ms.max(1)).unwrap_or(i64::MAX),
            max_ms: i64::try_from(config.retry_max_ms.max(1)).unwrap_or(i64::MAX),
            max_age_ms: i64::try_from(config.max_age_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000),
        }
    }

    /// The longest wait before attempt `attempts + 1`: initial × 2^attempts,
    /// at most `max_ms`.
    fn ceiling(&self, attempts: u32) -> i64 {
        self.initial_ms
            .saturating_mul(1_i64 << attempts.min(40))
            .min(self.max_ms)
    }

    /// How a job that failed with `error` goes on: again after a random
    /// wait between half the ceiling and the ceiling (so jobs that failed
    /// together do not all come back together), or dead once it is older
    /// than the maximum age.
    pub fn after_failure(&self, job: &Job, now: Timestamp, error: String) -> JobOutcome {
        let age = now.unix_millis() - job.created_at.unix_millis();
        if age >= self.max_age_ms {
            return JobOutcome::Dead { error };
        }
        let ceiling = self.ceiling(job.attempts);
        let wait = rand::thread_rng().gen_range(ceiling / 2..=ceiling);
        JobOutcome::Retry {
            at: now.plus_millis(wait),
            error,
        }
    }
}

/// Runs until `stop` turns true; a job under way is finished first.
pub async fn run(state: AppState, poll: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let policy = RetryPolicy::from_config(&state.config().jobs);
    // How long a claim holds: a node that has not finished a job by then is
    // taken for dead, and another node (or this one, restarted) runs it.
    let lease_ms = i64::try_from(state.config().jobs.lease_secs.max(1))
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let endpoints = crate::webhooks::Endpoints::default();
    let client = crate::webhooks::client(
        std::time::Duration::from_secs(state.config().webhooks.timeout_secs.max(1)),
        state.config().webhooks.allow_private_urls,
    );
    let channels = crate::channels::Channels::new(
        &state.config().messaging,
        state.config().webhooks.allow_private_urls,
    );
    let node = node_name();
    let store = state.store();
    for kind in [PRUNE_IDEMPOTENCY_KEYS, EXPIRE_RESERVATIONS] {
        let first = NewJob {
            tenant_id: None,
            key: kind.into(),
            kind: kind.into(),
            payload: serde_json::json!({}),
            run_at: Timestamp::now(),
        };
        if let Err(e) = store.schedule_job(first).await {
            tracing::warn!(error = %e, job = kind, "could not schedule a periodic job");
        }
    }
    let mut tick = tokio::time::interval(poll);
    let mut measured = std::time::Instant::now() - Duration::from_secs(60);
    let mut busy = false;
    let mut jobs_claimed: Option<std::time::Instant> = None;
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // A full batch means more is due: look again at once.
        if !busy {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {}
            }
        }
        if *stop.borrow() {
            return;
        }
        if measured.elapsed() >= Duration::from_secs(5) {
            measured = std::time::Instant::now();
            report_backlog(&state).await;
        }
        let now = Timestamp::now();
        let claim = |kinds: Vec<String>| JobClaim {
            node: node.clone(),
            kinds,
            limit: BATCH,
            lease_ms,
            now,
        };
        // Deliveries are claimed as often as a batch comes back full; other
        // work once a poll interval.
        let jobs = if jobs_claimed.is_none_or(|at| at.elapsed() >= poll) {
            jobs_claimed = Some(std::time::Instant::now());
            store
                .claim_jobs(claim(vec![
                    PRUNE_IDEMPOTENCY_KEYS.into(),
                    EXPIRE_RESERVATIONS.into(),
                    ordo_store::CHARGE_JOB.into(),
                    ordo_store::REFUND_JOB.into(),
                    ordo_store::MESSAGE_JOB.into(),
                    crate::chatbot::INBOUND_JOB.into(),
                    crate::api::channels::STATUS_JOB.into(),
                ]))
                .await
        } else {
            Ok(Vec::new())
        };
        let deliveries = store.claim_deliveries(claim(Vec::new())).await;
        let (jobs, deliveries) = match (jobs, deliveries) {
            (Ok(jobs), Ok(deliveries)) => (jobs, deliveries),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "could not claim background work");
                busy = false;
                continue;
            }
        };
        busy = deliveries.len() == BATCH as usize;
        let runs = jobs.into_iter().map(|job| {
            let (state, policy, channels) = (&state, &policy, &channels);
            async move {
                let outcome = handle(state, channels, &job, policy).await;
                end(state, &job, outcome).await;
            }
        });
        futures_util::future::join(
            futures_util::future::join_all(runs),
            crate::webhooks::deliver_all(&state, &client, &endpoints, deliveries, &policy),
        )
        .await;
    }
}

/// Events placed in the feed per round.
const SEQUENCE_BATCH: u32 = 1000;

/// How often an idle node looks for committed events to place in the feed:
/// the most an event waits before the feed shows it.
const SEQUENCE_IDLE: Duration = Duration::from_millis(20);

/// Places committed events in the feed, for as long as the task runs. Every
/// node runs this; the store lets one at a time do it.
pub async fn sequence_events(state: AppState) {
    let store = state.store_handle();
    loop {
        let placed = match store.sequence_events(SEQUENCE_BATCH).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "could not place events in the feed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if placed > 0 {
            state.feed_placed(placed);
        }
        // Events in the feed become deliveries for the endpoints that want them.
        if let Err(e) = store.fan_out_events(SEQUENCE_BATCH).await {
            tracing::warn!(error = %e, "could not fan events out to webhook endpoints; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if placed < u64::from(SEQUENCE_BATCH) {
            tokio::time::sleep(SEQUENCE_IDLE).await;
        }
    }
}

/// Deliveries waiting and the age of the oldest, as gauges.
async fn report_backlog(state: &AppState) {
    match state.store().delivery_backlog().await {
        Ok((depth, oldest)) => {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("ordo_webhook_queue_depth").set(depth as f64);
            let age_ms = oldest.map_or(0, |t| Timestamp::now().unix_millis() - t.unix_millis());
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("ordo_webhook_oldest_undelivered_seconds")
                .set(age_ms.max(0) as f64 / 1000.0);
        }
        Err(e) => tracing::warn!(error = %e, "could not measure the webhook backlog"),
    }
}

/// Cancels the pending orders whose reservation lapsed by `now`, releasing
/// their stock, each in its own write (an order confirmed meanwhile is left
/// alone); returns how many it cancelled. At most a batch at a time.
pub async fn expire_reservations(store: &dyn Store, now: Timestamp) -> ordo_store::Result<usize> {
    let due = store.lapsed_reservations(now, EXPIRE_BATCH).await?;
    let mut expired = 0;
    for (tenant, id) in due {
        // The buyer is told of the cancel when the shop reaches its buyers.
        let notify = store
            .tenant_settings(tenant)
            .await
            .is_ok_and(|s| s.messaging.reaches_buyers());
        let change = ordo_store::OrderChange::new(move |o, book| o.expire_reservation(now, book))
            .notifying(notify);
        let changed = store
            .change_order(
                ordo_store::Scope::tenant(tenant),
                ordo_store::OrderLookup::Id(id),
                None,
                ordo_domain::Actor::system(),
                change,
            )
            .await?;
        if changed.event.is_some() {
            expired += 1;
        }
    }
    if expired > 0 {
        tracing::info!(expired, "cancelled orders whose stock reservation lapsed");
    }
    Ok(expired)
}

/// Ends a claimed job (a delivery with no attempt to record, too).
pub(crate) async fn end(state: &AppState, job: &Job, outcome: JobOutcome) {
    match state.store().finish_job(job, outcome).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(job = %job.key, "a job's claim ran out before it finished; another node has it")
        }
        Err(e) => {
            tracing::warn!(job = %job.key, error = %e, "could not record how a job ended; it will run again")
        }
    }
}

async fn handle(
    state: &AppState,
    channels: &crate::channels::Channels,
    job: &Job,
    policy: &RetryPolicy,
) -> JobOutcome {
    let now = Timestamp::now();
    let result = match job.kind.as_str() {
        PRUNE_IDEMPOTENCY_KEYS => {
            let hours = i64::from(state.config().idempotency_key_hours.max(24));
            let before = now.plus_millis(-hours * 3_600_000);
            state.store().prune_idempotency_keys(before).await.map(|n| {
                if n > 0 {
                    tracing::info!(removed = n, "forgot old idempotency keys");
                }
                JobOutcome::Again(now.plus_millis(3_600_000))
            })
        }
        EXPIRE_RESERVATIONS => {
            let every =
                i64::try_from(state.config().jobs.poll_interval_ms.max(100)).unwrap_or(1000);
            expire_reservations(state.store(), now)
                .await
                .map(|_| JobOutcome::Again(now.plus_millis(every)))
        }
        ordo_store::CHARGE_JOB | ordo_store::REFUND_JOB => {
            crate::charging::run(state, job, policy).await
        }
        ordo_store::MESSAGE_JOB => crate::messages::run(state, channels, job, policy).await,
        crate::chatbot::INBOUND_JOB => crate::chatbot::run(state, channels, job).await,
        crate::api::channels::STATUS_JOB => crate::messages::status(state, job).await,
        other => {
            let error = format!("no handler for jobs of kind {other:?}");
            return JobOutcome::Retry {
                at: now.plus_millis(3_600_000),
                error,
            };
        }
    };
    result.unwrap_or_else(|e| {
        let outcome = policy.after_failure(job, now, e.to_string());
        match &outcome {
            JobOutcome::Dead { .. } => tracing::error!(job = %job.key, attempts = job.attempts + 1, error = %e, "a background job failed for too long; it is dead"),
            _ => tracing::warn!(job = %job.key, attempts = job.attempts + 1, error = %e, "a background job failed; it will be retried"),
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(attempts: u32, created_at: Timestamp) -> Job {
        Job {
            tenant_id: None,
            key: "k".into(),
            kind: "deliver".into(),
            payload: serde_json::json!({}),
            created_at,
            attempts,
            claim: "c".into(),
            claimed_until: created_at,
        }
    }

    const POLICY: RetryPolicy = RetryPolicy {
        initial_ms: 10_000,
        max_ms: 3_600_000,
        max_age_ms: 3 * 86_400_000,
    };

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_the_cap() {
        let now = Timestamp::now();
        for (attempts, ceiling) in [
            (0, 10_000),
            (1, 20_000),
            (8, 2_560_000),
            (9, 3_600_000),
            (u32::MAX, 3_600_000),
        ] {
            let mut waits = std::collections::BTreeSet::new();
            for _ in 0..50 {
                let JobOutcome::Retry { at, error } =
                    POLICY.after_failure(&job(attempts, now), now, "503".into())
                else {
                    panic!("retried")
                };
                assert_eq!(error, "503");
                let wait = at.unix_millis() - now.unix_millis();
                assert!(
                    (ceiling / 2..=ceiling).contains(&wait),
                    "{attempts}: {wait}"
                );
                waits.insert(wait);
            }
            assert!(waits.len() > 1, "the waits are spread");
        }
    }

    #[test]
    fn a_job_failing_past_its_maximum_age_is_dead() {
        let now = Timestamp::now();
        let old = now.plus_millis(-3 * 86_400_000);
        assert_eq!(
            POLICY.after_failure(&job(40, old), now, "410".into()),
            JobOutcome::Dead {
                error: "410".into()
            }
        );
        let young = now.plus_millis(-3 * 86_400_000 + 1);
        assert!(matches!(
            POLICY.after_failure(&job(40, young), now, "410".into()),
            JobOutcome::Retry { .. }
        ));
    }
}
