//! Imports on PostgreSQL. A claim takes the oldest waiting import with
//! `FOR UPDATE SKIP LOCKED`, so nodes claiming at once take different
//! ones; a save checks the claim and writes progress and problems in one
//! transaction.

use deadpool_postgres::GenericClient;
use ordo_domain::{ImportId, TenantId, Timestamp};

use super::db_error;
use crate::imports::{self as shared, int, uint};
use crate::{ClaimedImport, Import, ImportClaim, ImportError, Result};

pub(super) async fn insert<C: GenericClient>(db: &C, import: &Import) -> Result<()> {
    let stmt = db
        .prepare_cached(
            "INSERT INTO imports (tenant_id, id, state, body, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await
        .map_err(db_error)?;
    db.execute(
        &stmt,
        &[
            &import.tenant_id.to_string(),
            &import.id.to_string(),
            &import.state.as_str(),
            &shared::body(import)?,
            &import.created_at.unix_millis(),
            &import.updated_at.unix_millis(),
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn get<C: GenericClient>(
    db: &C,
    tenant: TenantId,
    id: ImportId,
) -> Result<Option<Import>> {
    let stmt = db
        .prepare_cached("SELECT id, body FROM imports WHERE tenant_id = $1 AND id = $2")
        .await
        .map_err(db_error)?;
    db.query_opt(&stmt, &[&tenant.to_string(), &id.to_string()])
        .await
        .map_err(db_error)?
        .map(|r| shared::from_body(r.get(0), r.get(1)))
        .transpose()
}

pub(super) async fn list<C: GenericClient>(
    db: &C,
    tenant: TenantId,
    before: Option<ImportId>,
    limit: u32,
) -> Result<Vec<Import>> {
    // Ids sort by creation: "~" sorts after every id.
    let before = before.map_or_else(|| "~".to_string(), |b| b.to_string());
    let stmt = db
        .prepare_cached(
            "SELECT id, body FROM imports WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .await
        .map_err(db_error)?;
    db.query(&stmt, &[&tenant.to_string(), &before, &i64::from(limit)])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| shared::from_body(r.get(0), r.get(1)))
        .collect()
}

pub(super) async fn claim<C: GenericClient>(
    db: &C,
    c: &ImportClaim,
) -> Result<Option<ClaimedImport>> {
    let token = format!("{} {}", c.node, ulid::Ulid::new());
    let now = c.now.unix_millis();
    let stmt = db
        .prepare_cached(
            "UPDATE imports SET claim = $1, claimed_until = $2, state = 'running', updated_at = $3
             WHERE (tenant_id, id) IN
                   (SELECT tenant_id, id FROM imports
                     WHERE state IN ('queued', 'running')
                       AND (claimed_until IS NULL OR claimed_until <= $3)
                     ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING id, body",
        )
        .await
        .map_err(db_error)?;
    db.query_opt(&stmt, &[&token, &now.saturating_add(c.lease_ms), &now])
        .await
        .map_err(db_error)?
        .map(|r| shared::claimed(r.get(0), r.get(1), token.clone(), c.now))
        .transpose()
}

pub(super) async fn save(
    db: &mut deadpool_postgres::Object,
    claimed: &ClaimedImport,
    errors: &[ImportError],
    until: Timestamp,
) -> Result<bool> {
    let import = &claimed.import;
    let finished = import.state.is_finished();
    let tenant = import.tenant_id.to_string();
    let id = import.id.to_string();
    let tx = db.transaction().await.map_err(db_error)?;
    let stmt = tx
        .prepare_cached(
            "UPDATE imports SET state = $3, body = $4, updated_at = $5,
                    claim = CASE WHEN $6 THEN NULL ELSE claim END,
                    claimed_until = CASE WHEN $6 THEN NULL ELSE $7::bigint END
             WHERE tenant_id = $1 AND id = $2 AND claim = $8",
        )
        .await
        .map_err(db_error)?;
    let n = tx
        .execute(
            &stmt,
            &[
                &tenant,
                &id,
                &import.state.as_str(),
                &shared::body(import)?,
                &import.updated_at.unix_millis(),
                &finished,
                &until.unix_millis(),
                &claimed.token,
            ],
        )
        .await
        .map_err(db_error)?;
    if n == 0 {
        return Ok(false);
    }
    if !errors.is_empty() {
        let mut seqs = Vec::with_capacity(errors.len());
        let mut lines = Vec::with_capacity(errors.len());
        for e in errors {
            seqs.push(int(e.seq)?);
            lines.push(int(e.line)?);
        }
        let keys: Vec<Option<&str>> = errors.iter().map(|e| e.order_key.as_deref()).collect();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        let values: Vec<Option<&str>> = errors.iter().map(|e| e.value.as_deref()).collect();
        let reasons: Vec<&str> = errors.iter().map(|e| e.reason.as_str()).collect();
        let insert = tx
            .prepare_cached(
                "INSERT INTO import_errors (tenant_id, import_id, seq, line, order_key, field, value, reason)
                 SELECT $1, $2, * FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[])
                 ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(db_error)?;
        tx.execute(
            &insert,
            &[
                &tenant, &id, &seqs, &lines, &keys, &fields, &values, &reasons,
            ],
        )
        .await
        .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(true)
}

pub(super) async fn errors<C: GenericClient>(
    db: &C,
    tenant: TenantId,
    id: ImportId,
    from_seq: u64,
    limit: u32,
) -> Result<Vec<ImportError>> {
    let stmt = db
        .prepare_cached(
            "SELECT seq, line, order_key, field, value, reason FROM import_errors
             WHERE tenant_id = $1 AND import_id = $2 AND seq >= $3 ORDER BY seq LIMIT $4",
        )
        .await
        .map_err(db_error)?;
    db.query(
        &stmt,
        &[
            &tenant.to_string(),
            &id.to_string(),
            &int(from_seq)?,
            &i64::from(limit),
        ],
    )
    .await
    .map_err(db_error)?
    .iter()
    .map(|r| {
        Ok(ImportError {
            seq: uint(r.get(0))?,
            line: uint(r.get(1))?,
            order_key: r.get(2),
            field: r.get(3),
            value: r.get(4),
            reason: r.get(5),
        })
    })
    .collect()
}
