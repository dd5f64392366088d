//! Tenants and API keys on SQLite.

use ordo_domain::{ApiKeyId, Role, SecretHash, TenantId, Timestamp};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{corrupt, unavailable};
use crate::{ApiKey, NewApiKey, Result, StoreError, Tenant, TenantSettings};

fn tenant_from_row(row: &Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn tenant(raw: (String, String, String, i64)) -> Result<Tenant> {
    Ok(Tenant {
        id: raw.0.parse().map_err(corrupt)?,
        slug: raw.1,
        name: raw.2,
        created_at: Timestamp::from_unix_millis(raw.3),
    })
}

pub(super) fn create_tenant(conn: &Connection, slug: &str, name: &str) -> Result<Tenant> {
    let t = Tenant {
        id: TenantId::new(),
        slug: slug.to_string(),
        name: name.to_string(),
        created_at: Timestamp::now(),
    };
    let inserted = conn
        .prepare_cached("INSERT INTO tenants (id, slug, name, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (slug) DO NOTHING")
        .and_then(|mut s| s.execute(params![t.id.to_string(), t.slug, t.name, t.created_at.unix_millis()]))
        .map_err(unavailable)?;
    if inserted == 0 {
        return Err(StoreError::Conflict {
            field: "slug".into(),
            value: slug.to_string(),
        });
    }
    Ok(t)
}

pub(super) fn tenants(conn: &Connection) -> Result<Vec<Tenant>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, slug, name, created_at FROM tenants ORDER BY created_at, id")
        .map_err(unavailable)?;
    let rows = stmt
        .query_map([], tenant_from_row)
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?;
    rows.into_iter().map(tenant).collect()
}

pub(super) fn tenant_by_slug(conn: &Connection, slug: &str) -> Result<Option<Tenant>> {
    conn.prepare_cached("SELECT id, slug, name, created_at FROM tenants WHERE slug = ?1")
        .and_then(|mut s| s.query_row([slug], tenant_from_row).optional())
        .map_err(unavailable)?
        .map(tenant)
        .transpose()
}

pub(super) fn tenant_by_id(conn: &Connection, id: TenantId) -> Result<Option<Tenant>> {
    conn.prepare_cached("SELECT id, slug, name, created_at FROM tenants WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.to_string()], tenant_from_row).optional())
        .map_err(unavailable)?
        .map(tenant)
        .transpose()
}

pub(super) fn settings(conn: &Connection, tenant: TenantId) -> Result<TenantSettings> {
    let json: String = conn
        .prepare_cached("SELECT settings FROM tenants WHERE id = ?1")
        .and_then(|mut s| s.query_row([tenant.to_string()], |r| r.get(0)).optional())
        .map_err(unavailable)?
        .ok_or(StoreError::NotFound)?;
    serde_json::from_str(&json).map_err(corrupt)
}

pub(super) fn save_settings(conn: &Connection, tenant: TenantId, json: &str) -> Result<()> {
    let n = conn
        .prepare_cached("UPDATE tenants SET settings = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![tenant.to_string(), json]))
        .map_err(unavailable)?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

const KEY_COLUMNS: &str = "tenant_id, id, name, role, hint, created_at, revoked_at";

type KeyRow = (String, String, String, String, String, i64, Option<i64>);

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn api_key(raw: KeyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        tenant_id: raw.0.parse().map_err(corrupt)?,
        id: raw.1.parse().map_err(corrupt)?,
        name: raw.2,
        role: Role::parse(&raw.3).ok_or_else(|| corrupt(format!("unknown role {}", raw.3)))?,
        hint: raw.4,
        created_at: Timestamp::from_unix_millis(raw.5),
        revoked_at: raw.6.map(Timestamp::from_unix_millis),
    })
}

pub(super) fn create_api_key(conn: &Connection, key: &NewApiKey) -> Result<ApiKey> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)")
        .and_then(|mut s| s.query_row([key.tenant_id.to_string()], |r| r.get(0)))
        .map_err(unavailable)?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    let k = ApiKey {
        id: ApiKeyId::new(),
        tenant_id: key.tenant_id,
        name: key.name.clone(),
        role: key.role,
        hint: key.hint.clone(),
        created_at: Timestamp::now(),
        revoked_at: None,
    };
    conn.prepare_cached(
        "INSERT INTO api_keys (tenant_id, id, name, role, hint, secret_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            k.tenant_id.to_string(),
            k.id.to_string(),
            k.name,
            k.role.as_str(),
            k.hint,
            &key.secret_hash.0[..],
            k.created_at.unix_millis()
        ])
    })
    .map_err(unavailable)?;
    Ok(k)
}

pub(super) fn api_keys(conn: &Connection, tenant: TenantId) -> Result<Vec<ApiKey>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = ?1 ORDER BY id"
        ))
        .map_err(unavailable)?;
    let rows = stmt
        .query_map([tenant.to_string()], key_from_row)
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?;
    rows.into_iter().map(api_key).collect()
}

pub(super) fn revoke_api_key(conn: &Connection, tenant: TenantId, id: ApiKeyId) -> Result<ApiKey> {
    conn.prepare_cached(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?3) WHERE tenant_id = ?1 AND id = ?2",
    )
    .and_then(|mut s| s.execute(params![tenant.to_string(), id.to_string(), Timestamp::now().unix_millis()]))
    .map_err(unavailable)?;
    conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = ?1 AND id = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![tenant.to_string(), id.to_string()], key_from_row)
            .optional()
    })
    .map_err(unavailable)?
    .map(api_key)
    .transpose()?
    .ok_or(StoreError::NotFound)
}

pub(super) fn api_key_by_secret(
    conn: &Connection,
    tenant: TenantId,
    hash: SecretHash,
) -> Result<Option<ApiKey>> {
    conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = ?1 AND secret_hash = ?2 AND revoked_at IS NULL"
    ))
    .and_then(|mut s| s.query_row(params![tenant.to_string(), &hash.0[..]], key_from_row).optional())
    .map_err(unavailable)?
    .map(api_key)
    .transpose()
}

pub(super) fn conversation(
    conn: &Connection,
    tenant: TenantId,
    channel: &str,
) -> Result<Option<serde_json::Value>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT state FROM conversations WHERE tenant_id = ?1 AND channel_id = ?2")
        .and_then(|mut s| {
            s.query_row(params![tenant.to_string(), channel], |r| r.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    text.map(|t| serde_json::from_str(&t).map_err(corrupt))
        .transpose()
}

pub(super) fn save_conversation(
    conn: &Connection,
    tenant: TenantId,
    channel: &str,
    state: Option<&serde_json::Value>,
) -> Result<()> {
    let tenant = tenant.to_string();
    match state {
        Some(state) => conn
            .prepare_cached(
                "INSERT INTO conversations (tenant_id, channel_id, state, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant_id, channel_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            )
            .and_then(|mut s| {
                s.execute(params![tenant, channel, state.to_string(), Timestamp::now().unix_millis()])
            }),
        None => conn
            .prepare_cached("DELETE FROM conversations WHERE tenant_id = ?1 AND channel_id = ?2")
            .and_then(|mut s| s.execute(params![tenant, channel])),
    }
    .map_err(unavailable)?;
    Ok(())
}
