//! Background work on SQLite. Claims run in the writer, whose transactions
//! exclude every other process's, so a job is claimed once; a job whose
//! claim has run out is claimed again.

use rusqlite::{params, Connection};

use super::{corrupt, unavailable};
use crate::{job_tenant, parse_job_tenant, Job, JobClaim, JobOutcome, NewJob, Result};

pub(super) fn schedule(conn: &Connection, job: &NewJob) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO jobs (tenant_id, key, kind, payload, run_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                job_tenant(job.tenant_id),
                job.key,
                job.kind,
                job.payload.to_string(),
                job.run_at.unix_millis(),
                ordo_domain::Timestamp::now().unix_millis()
            ])
        })
        .map_err(unavailable)?;
    Ok(n == 1)
}

pub(super) fn claim(conn: &Connection, c: &JobClaim) -> Result<Vec<Job>> {
    let token = ulid::Ulid::new().to_string();
    let until = c.now.plus_millis(c.lease_ms);
    let kinds = serde_json::to_string(&c.kinds).map_err(corrupt)?;
    let mut stmt = conn
        .prepare_cached(
            "UPDATE jobs SET claimed_by = ?1, claim = ?2, claimed_until = ?3
             WHERE (tenant_id, key) IN
                   (SELECT tenant_id, key FROM jobs
                     WHERE status = 'queued' AND kind IN (SELECT value FROM json_each(?4)) AND run_at <= ?5
                       AND (claimed_until IS NULL OR claimed_until <= ?5)
                     ORDER BY run_at LIMIT ?6)
             RETURNING tenant_id, key, kind, payload, attempts, created_at",
        )
        .map_err(unavailable)?;
    let rows = stmt
        .query_map(
            params![
                c.node,
                token,
                until.unix_millis(),
                kinds,
                c.now.unix_millis(),
                c.limit
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|(tenant, key, kind, payload, attempts, created_at)| {
            Ok(Job {
                tenant_id: parse_job_tenant(&tenant)?,
                key,
                kind,
                payload: serde_json::from_str(&payload).map_err(corrupt)?,
                attempts: u32::try_from(attempts).map_err(corrupt)?,
                created_at: ordo_domain::Timestamp::from_unix_millis(created_at),
                claim: token.clone(),
                claimed_until: until,
            })
        })
        .collect()
}

pub(super) fn finish(conn: &Connection, job: &Job, outcome: &JobOutcome) -> Result<bool> {
    let tenant = job_tenant(job.tenant_id);
    let n = match outcome {
        JobOutcome::Done => conn.execute(
            "DELETE FROM jobs WHERE tenant_id = ?1 AND key = ?2 AND claim = ?3",
            params![tenant, job.key, job.claim],
        ),
        JobOutcome::Again(at) => conn.execute(
            "UPDATE jobs SET run_at = ?4, attempts = 0, last_error = NULL,
                             claimed_by = NULL, claim = NULL, claimed_until = NULL
             WHERE tenant_id = ?1 AND key = ?2 AND claim = ?3",
            params![tenant, job.key, job.claim, at.unix_millis()],
        ),
        JobOutcome::Dead { error } => conn.execute(
            "UPDATE jobs SET status = 'dead', attempts = attempts + 1, last_error = ?4,
                             claimed_by = NULL, claim = NULL, claimed_until = NULL
             WHERE tenant_id = ?1 AND key = ?2 AND claim = ?3",
            params![tenant, job.key, job.claim, error],
        ),
        JobOutcome::Retry { at, error } => conn.execute(
            "UPDATE jobs SET run_at = ?4, attempts = attempts + 1, last_error = ?5,
                             claimed_by = NULL, claim = NULL, claimed_until = NULL
             WHERE tenant_id = ?1 AND key = ?2 AND claim = ?3",
            params![tenant, job.key, job.claim, at.unix_millis(), error],
        ),
    }
    .map_err(unavailable)?;
    Ok(n == 1)
}
