//! Background work. Every node polls the store for due jobs, claims a few
//! for a lease, runs them and says how they ended; the store makes sure a
//! job is claimed by one node at a time and claimed again if its node dies.
//! Periodic work (forgetting old idempotency keys) is a job that schedules
//! itself again when it is done.

use std::time::Duration;

use ordo_domain::Timestamp;
use ordo_store::{Job, JobClaim, JobOutcome, NewJob};

use crate::app::AppState;

/// Forgets idempotency keys past their retention, hourly.
pub const PRUNE_IDEMPOTENCY_KEYS: &str = "prune-idempotency-keys";

/// How long a claim holds: a node that has not finished a job by then is
/// taken for dead, and another node runs the job.
const LEASE_MS: i64 = 5 * 60 * 1000;

/// Jobs claimed per poll.
const BATCH: u32 = 16;

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

/// Waits before retrying a failed job: 10 s, 20 s, 40 s, … up to an hour.
fn backoff(attempts: u32) -> i64 {
    10_000_i64
        .saturating_mul(1_i64 << attempts.min(20))
        .min(3_600_000)
}

/// Runs until the task is aborted.
pub async fn run(state: AppState, poll: Duration) {
    let node = node_name();
    let store = state.store();
    let first = NewJob {
        tenant_id: None,
        key: PRUNE_IDEMPOTENCY_KEYS.into(),
        kind: PRUNE_IDEMPOTENCY_KEYS.into(),
        payload: serde_json::json!({}),
        run_at: Timestamp::now(),
    };
    if let Err(e) = store.schedule_job(first).await {
        tracing::warn!(error = %e, "could not schedule the idempotency key sweep");
    }
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let claim = JobClaim {
            node: node.clone(),
            kinds: vec![PRUNE_IDEMPOTENCY_KEYS.into()],
            limit: BATCH,
            lease_ms: LEASE_MS,
            now: Timestamp::now(),
        };
        let jobs = match store.claim_jobs(claim).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim background jobs");
                continue;
            }
        };
        for job in jobs {
            let outcome = handle(&state, &job).await;
            match store.finish_job(&job, outcome).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(job = %job.key, "a job's claim ran out before it finished; another node has it")
                }
                Err(e) => {
                    tracing::warn!(job = %job.key, error = %e, "could not record how a job ended; it will run again")
                }
            }
        }
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
        match store.sequence_events(SEQUENCE_BATCH).await {
            Ok(n) if n > 0 => {
                state.feed_placed(n);
                if n == u64::from(SEQUENCE_BATCH) {
                    continue;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not place events in the feed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        tokio::time::sleep(SEQUENCE_IDLE).await;
    }
}

async fn handle(state: &AppState, job: &Job) -> JobOutcome {
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
        other => {
            return JobOutcome::Retry {
                at: now.plus_millis(3_600_000),
                error: format!("no handler for jobs of kind {other:?}"),
            }
        }
    };
    result.unwrap_or_else(|e| {
        tracing::warn!(job = %job.key, attempts = job.attempts + 1, error = %e, "a background job failed; it will be retried");
        JobOutcome::Retry {
            at: now.plus_millis(backoff(job.attempts)),
            error: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(backoff(0), 10_000);
        assert_eq!(backoff(1), 20_000);
        assert_eq!(backoff(8), 2_560_000);
        assert_eq!(backoff(9), 3_600_000);
        assert_eq!(backoff(u32::MAX), 3_600_000);
    }
}
