//! Webhook endpoints on SQLite.

use ordo_domain::{
    EventType, TenantId, Timestamp, WebhookEndpoint, WebhookEndpointId, WebhookSecret, WebhookUrl,
};
use rusqlite::{params, Connection, Row};

use super::{corrupt, unavailable};
use crate::{Result, StoreError};

const COLUMNS: &str =
    "tenant_id, id, url, description, event_types, active, secret, previous_secret,
    previous_secret_expires_at, created_at, updated_at, disabled_at, disabled_reason";

pub(super) fn save(conn: &Connection, e: &WebhookEndpoint, new: bool) -> Result<()> {
    let types =
        serde_json::to_string(&e.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>())
            .map_err(corrupt)?;
    let sql = if new {
        format!("INSERT INTO webhook_endpoints ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)")
    } else {
        "UPDATE webhook_endpoints SET url = ?3, description = ?4, event_types = ?5, active = ?6, secret = ?7,
             previous_secret = ?8, previous_secret_expires_at = ?9, created_at = ?10, updated_at = ?11,
             disabled_at = ?12, disabled_reason = ?13
         WHERE tenant_id = ?1 AND id = ?2"
            .to_string()
    };
    let changed = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.execute(params![
                e.tenant_id.to_string(),
                e.id.to_string(),
                e.url.as_str(),
                e.description,
                types,
                e.active,
                e.secret.expose(),
                e.previous_secret
                    .as_ref()
                    .map(|(s, _)| s.expose().to_string()),
                e.previous_secret.as_ref().map(|(_, t)| t.unix_millis()),
                e.created_at.unix_millis(),
                e.updated_at.unix_millis(),
                e.disabled.as_ref().map(|(t, _)| t.unix_millis()),
                e.disabled.as_ref().map(|(_, r)| r.clone()),
            ])
        })
        .map_err(unavailable)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

type EndpointRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    bool,
    String,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn row(r: &Row<'_>) -> rusqlite::Result<EndpointRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    ))
}

fn endpoint(r: EndpointRow) -> Result<WebhookEndpoint> {
    let types: Vec<String> = serde_json::from_str(&r.4).map_err(corrupt)?;
    Ok(WebhookEndpoint {
        tenant_id: r.0.parse().map_err(corrupt)?,
        id: r.1.parse().map_err(corrupt)?,
        url: WebhookUrl::from_stored(r.2),
        description: r.3,
        event_types: types
            .iter()
            .map(|t| EventType::parse(t).ok_or_else(|| corrupt(format!("unknown event type {t}"))))
            .collect::<Result<_>>()?,
        active: r.5,
        secret: WebhookSecret::from_stored(r.6),
        previous_secret: r.7.zip(r.8).map(|(s, t)| {
            (
                WebhookSecret::from_stored(s),
                Timestamp::from_unix_millis(t),
            )
        }),
        created_at: Timestamp::from_unix_millis(r.9),
        updated_at: Timestamp::from_unix_millis(r.10),
        disabled: r
            .11
            .zip(r.12)
            .map(|(t, why)| (Timestamp::from_unix_millis(t), why)),
    })
}

/// The tenant's endpoints, or the one with `id`.
pub(super) fn list(
    conn: &Connection,
    tenant: TenantId,
    id: Option<WebhookEndpointId>,
) -> Result<Vec<WebhookEndpoint>> {
    let rows = match id {
        Some(id) => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = ?1 AND id = ?2"
            ))
            .and_then(|mut s| {
                s.query_map(params![tenant.to_string(), id.to_string()], row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            }),
        None => conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = ?1 ORDER BY id"
            ))
            .and_then(|mut s| {
                s.query_map(params![tenant.to_string()], row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            }),
    }
    .map_err(unavailable)?;
    rows.into_iter().map(endpoint).collect()
}

pub(super) fn delete(conn: &Connection, tenant: TenantId, id: WebhookEndpointId) -> Result<bool> {
    conn.prepare_cached("DELETE FROM webhook_endpoints WHERE tenant_id = ?1 AND id = ?2")
        .and_then(|mut s| s.execute(params![tenant.to_string(), id.to_string()]))
        .map(|n| n == 1)
        .map_err(unavailable)
}
