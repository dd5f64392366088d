//! Imports on SQLite. Claims and saves run in the single writer, so one
//! node at a time runs an import, and progress and the problems found
//! with it are saved together.

use ordo_domain::{ImportId, TenantId, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};

use super::unavailable;
use crate::imports::{self as shared, int, uint};
use crate::{ClaimedImport, Import, ImportClaim, ImportError, Result};

pub(super) fn insert(conn: &Connection, import: &Import) -> Result<()> {
    let body = shared::body(import)?;
    conn.prepare_cached(
        "INSERT INTO imports (tenant_id, id, state, body, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            import.tenant_id.to_string(),
            import.id.to_string(),
            import.state.as_str(),
            body,
            import.created_at.unix_millis(),
            import.updated_at.unix_millis()
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

pub(super) fn get(conn: &Connection, tenant: TenantId, id: ImportId) -> Result<Option<Import>> {
    conn.prepare_cached("SELECT id, body FROM imports WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut s| {
            s.query_row(params![tenant.to_string(), id.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()
        })
        .map_err(unavailable)?
        .map(|(id, body)| shared::from_body(&id, &body))
        .transpose()
}

pub(super) fn list(
    conn: &Connection,
    tenant: TenantId,
    before: Option<ImportId>,
    limit: u32,
) -> Result<Vec<Import>> {
    // Ids sort by creation: "~" sorts after every id.
    let before = before.map_or_else(|| "~".to_string(), |b| b.to_string());
    let rows = conn
        .prepare_cached(
            "SELECT id, body FROM imports WHERE tenant_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        )
        .and_then(|mut s| {
            s.query_map(params![tenant.to_string(), before, limit], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?;
    rows.iter()
        .map(|(id, body)| shared::from_body(id, body))
        .collect()
}

pub(super) fn claim(conn: &Connection, c: &ImportClaim) -> Result<Option<ClaimedImport>> {
    let token = format!("{} {}", c.node, ulid::Ulid::new());
    let now = c.now.unix_millis();
    conn.prepare_cached(
        "UPDATE imports SET claim = ?1, claimed_until = ?2, state = 'running', updated_at = ?3
         WHERE (tenant_id, id) IN
               (SELECT tenant_id, id FROM imports
                 WHERE state IN ('queued', 'running')
                   AND (claimed_until IS NULL OR claimed_until <= ?3)
                 ORDER BY created_at LIMIT 1)
         RETURNING id, body",
    )
    .and_then(|mut s| {
        s.query_row(params![token, now.saturating_add(c.lease_ms), now], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .optional()
    })
    .map_err(unavailable)?
    .map(|(id, body)| shared::claimed(&id, &body, token, c.now))
    .transpose()
}

pub(super) fn save(
    conn: &Connection,
    claimed: &ClaimedImport,
    errors: &[ImportError],
    until: Timestamp,
) -> Result<bool> {
    let import = &claimed.import;
    let finished = import.state.is_finished();
    let body = shared::body(import)?;
    let n = conn
        .prepare_cached(
            "UPDATE imports SET state = ?3, body = ?4, updated_at = ?5,
                    claim = CASE WHEN ?6 THEN NULL ELSE claim END,
                    claimed_until = CASE WHEN ?6 THEN NULL ELSE ?7 END
             WHERE tenant_id = ?1 AND id = ?2 AND claim = ?8",
        )
        .and_then(|mut s| {
            s.execute(params![
                import.tenant_id.to_string(),
                import.id.to_string(),
                import.state.as_str(),
                body,
                import.updated_at.unix_millis(),
                finished,
                until.unix_millis(),
                claimed.token
            ])
        })
        .map_err(unavailable)?;
    if n == 0 {
        return Ok(false);
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO import_errors (tenant_id, import_id, seq, line, order_key, field, value, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
        )
        .map_err(unavailable)?;
    for e in errors {
        insert
            .execute(params![
                import.tenant_id.to_string(),
                import.id.to_string(),
                int(e.seq)?,
                int(e.line)?,
                e.order_key,
                e.field,
                e.value,
                e.reason
            ])
            .map_err(unavailable)?;
    }
    Ok(true)
}

pub(super) fn errors(
    conn: &Connection,
    tenant: TenantId,
    id: ImportId,
    from_seq: u64,
    limit: u32,
) -> Result<Vec<ImportError>> {
    let from_seq = int(from_seq)?;
    let rows = conn
        .prepare_cached(
            "SELECT seq, line, order_key, field, value, reason FROM import_errors
             WHERE tenant_id = ?1 AND import_id = ?2 AND seq >= ?3 ORDER BY seq LIMIT ?4",
        )
        .and_then(|mut s| {
            s.query_map(
                params![tenant.to_string(), id.to_string(), from_seq, limit],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|(seq, line, order_key, field, value, reason)| {
            Ok(ImportError {
                seq: uint(seq)?,
                line: uint(line)?,
                order_key,
                field,
                value,
                reason,
            })
        })
        .collect()
}
