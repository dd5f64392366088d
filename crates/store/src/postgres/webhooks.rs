//! Webhook endpoints on PostgreSQL.

use ordo_domain::{
    EventType, TenantId, Timestamp, WebhookEndpoint, WebhookEndpointId, WebhookSecret, WebhookUrl,
};
use tokio_postgres::Row;

use super::{corrupt, db_error, Db};
use crate::{Result, StoreError};

const COLUMNS: &str =
    "tenant_id, id, url, description, event_types, active, secret, previous_secret,
    previous_secret_expires_at, created_at, updated_at, disabled_at, disabled_reason";

pub(super) async fn save(db: &Db, e: &WebhookEndpoint, new: bool) -> Result<()> {
    let sql = if new {
        format!("INSERT INTO webhook_endpoints ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
    } else {
        "UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5, active = $6, secret = $7,
             previous_secret = $8, previous_secret_expires_at = $9, created_at = $10, updated_at = $11,
             disabled_at = $12, disabled_reason = $13
         WHERE tenant_id = $1 AND id = $2"
            .to_string()
    };
    let stmt = db.prepare_cached(&sql).await.map_err(db_error)?;
    let types: Vec<&str> = e.event_types.iter().map(|t| t.as_str()).collect();
    let changed = db
        .execute(
            &stmt,
            &[
                &e.tenant_id.to_string(),
                &e.id.to_string(),
                &e.url.as_str(),
                &e.description,
                &types,
                &e.active,
                &e.secret.expose(),
                &e.previous_secret.as_ref().map(|(s, _)| s.expose()),
                &e.previous_secret.as_ref().map(|(_, t)| t.unix_millis()),
                &e.created_at.unix_millis(),
                &e.updated_at.unix_millis(),
                &e.disabled.as_ref().map(|(t, _)| t.unix_millis()),
                &e.disabled.as_ref().map(|(_, r)| r.as_str()),
            ],
        )
        .await
        .map_err(db_error)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn endpoint(r: &Row) -> Result<WebhookEndpoint> {
    let types: Vec<&str> = r.get(4);
    let previous: Option<String> = r.get(7);
    let previous_until: Option<i64> = r.get(8);
    let disabled_at: Option<i64> = r.get(11);
    let disabled_reason: Option<String> = r.get(12);
    Ok(WebhookEndpoint {
        tenant_id: r.get::<_, &str>(0).parse().map_err(corrupt)?,
        id: r.get::<_, &str>(1).parse().map_err(corrupt)?,
        url: WebhookUrl::from_stored(r.get(2)),
        description: r.get(3),
        event_types: types
            .iter()
            .map(|t| EventType::parse(t).ok_or_else(|| corrupt(format!("unknown event type {t}"))))
            .collect::<Result<_>>()?,
        active: r.get(5),
        secret: WebhookSecret::from_stored(r.get(6)),
        previous_secret: previous.zip(previous_until).map(|(s, t)| {
            (
                WebhookSecret::from_stored(s),
                Timestamp::from_unix_millis(t),
            )
        }),
        created_at: Timestamp::from_unix_millis(r.get(9)),
        updated_at: Timestamp::from_unix_millis(r.get(10)),
        disabled: disabled_at
            .zip(disabled_reason)
            .map(|(t, why)| (Timestamp::from_unix_millis(t), why)),
    })
}

/// The tenant's endpoints, or the one with `id`.
pub(super) async fn list(
    db: &Db,
    tenant: TenantId,
    id: Option<WebhookEndpointId>,
) -> Result<Vec<WebhookEndpoint>> {
    let rows = match id {
        Some(id) => {
            let stmt = db
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2"
                ))
                .await
                .map_err(db_error)?;
            db.query(&stmt, &[&tenant.to_string(), &id.to_string()])
                .await
        }
        None => {
            let stmt = db
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 ORDER BY id"
                ))
                .await
                .map_err(db_error)?;
            db.query(&stmt, &[&tenant.to_string()]).await
        }
    }
    .map_err(db_error)?;
    rows.iter().map(endpoint).collect()
}

pub(super) async fn delete(db: &Db, tenant: TenantId, id: WebhookEndpointId) -> Result<bool> {
    let stmt = db
        .prepare_cached("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
        .await
        .map_err(db_error)?;
    db.execute(&stmt, &[&tenant.to_string(), &id.to_string()])
        .await
        .map(|n| n == 1)
        .map_err(db_error)
}
