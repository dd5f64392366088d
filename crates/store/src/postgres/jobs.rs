//! Background work on PostgreSQL: claimed with `FOR UPDATE SKIP LOCKED`, so
//! nodes polling at the same moment take different jobs without waiting for
//! each other, and a job whose claim has run out is claimed again.

use deadpool_postgres::GenericClient;
use ordo_domain::Timestamp;
use tokio_postgres::types::Json;

use super::{corrupt, db_error, Db};
use crate::{job_tenant, parse_job_tenant, Job, JobClaim, JobOutcome, NewJob, Result};

pub(super) async fn schedule<C: GenericClient>(db: &C, job: &NewJob) -> Result<bool> {
    let stmt = db
        .prepare_cached(
            "INSERT INTO jobs (tenant_id, key, kind, payload, run_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(db_error)?;
    let n = db
        .execute(
            &stmt,
            &[
                &job_tenant(job.tenant_id),
                &job.key,
                &job.kind,
                &Json(&job.payload),
                &job.run_at.unix_millis(),
                &Timestamp::now().unix_millis(),
            ],
        )
        .await
        .map_err(db_error)?;
    Ok(n == 1)
}

pub(super) async fn claim(db: &Db, c: &JobClaim) -> Result<Vec<Job>> {
    let stmt = db
        .prepare_cached(
            "UPDATE jobs j SET claimed_by = $1, claim = $2, claimed_until = $3
             FROM (SELECT tenant_id, key FROM jobs
                    WHERE status = 'queued' AND kind = ANY($4) AND run_at <= $5
                      AND (claimed_until IS NULL OR claimed_until <= $5)
                    ORDER BY run_at LIMIT $6
                    FOR UPDATE SKIP LOCKED) due
             WHERE j.tenant_id = due.tenant_id AND j.key = due.key
             RETURNING j.tenant_id, j.key, j.kind, j.payload, j.attempts, j.created_at",
        )
        .await
        .map_err(db_error)?;
    let token = ulid::Ulid::new().to_string();
    let until = c.now.plus_millis(c.lease_ms);
    let rows = db
        .query(
            &stmt,
            &[
                &c.node,
                &token,
                &until.unix_millis(),
                &c.kinds,
                &c.now.unix_millis(),
                &i64::from(c.limit),
            ],
        )
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|r| {
            Ok(Job {
                tenant_id: parse_job_tenant(r.get(0))?,
                key: r.get(1),
                kind: r.get(2),
                payload: r.get::<_, Json<serde_json::Value>>(3).0,
                attempts: u32::try_from(r.get::<_, i32>(4)).map_err(corrupt)?,
                created_at: Timestamp::from_unix_millis(r.get(5)),
                claim: token.clone(),
                claimed_until: until,
            })
        })
        .collect()
}

pub(super) async fn finish(db: &Db, job: &Job, outcome: &JobOutcome) -> Result<bool> {
    let tenant = job_tenant(job.tenant_id);
    let n = match outcome {
        JobOutcome::Done => {
            db.execute(
                "DELETE FROM jobs WHERE tenant_id = $1 AND key = $2 AND claim = $3",
                &[&tenant, &job.key, &job.claim],
            )
            .await
        }
        JobOutcome::Again(at) => {
            db.execute(
                "UPDATE jobs SET run_at = $4, attempts = 0, last_error = NULL,
                                 claimed_by = NULL, claim = NULL, claimed_until = NULL
                 WHERE tenant_id = $1 AND key = $2 AND claim = $3",
                &[&tenant, &job.key, &job.claim, &at.unix_millis()],
            )
            .await
        }
        JobOutcome::Dead { error } => {
            db.execute(
                "UPDATE jobs SET status = 'dead', attempts = attempts + 1, last_error = $4,
                                 claimed_by = NULL, claim = NULL, claimed_until = NULL
                 WHERE tenant_id = $1 AND key = $2 AND claim = $3",
                &[&tenant, &job.key, &job.claim, error],
            )
            .await
        }
        JobOutcome::Retry { at, error } => {
            db.execute(
                "UPDATE jobs SET run_at = $4, attempts = attempts + 1, last_error = $5,
                                 claimed_by = NULL, claim = NULL, claimed_until = NULL
                 WHERE tenant_id = $1 AND key = $2 AND claim = $3",
                &[&tenant, &job.key, &job.claim, &at.unix_millis(), error],
            )
            .await
        }
    }
    .map_err(db_error)?;
    Ok(n == 1)
}
