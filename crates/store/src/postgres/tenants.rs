//! Tenants and API keys on PostgreSQL.

use ordo_domain::{ApiKeyId, Role, SecretHash, TenantId, Timestamp};
use tokio_postgres::Row;

use super::{corrupt, db_error, Db};
use crate::{ApiKey, NewApiKey, Result, StoreError, Tenant, TenantSettings};

fn tenant(row: &Row) -> Result<Tenant> {
    Ok(Tenant {
        id: row.get::<_, &str>(0).parse().map_err(corrupt)?,
        slug: row.get(1),
        name: row.get(2),
        created_at: Timestamp::from_unix_millis(row.get(3)),
    })
}

pub(super) async fn create_tenant(db: &Db, slug: &str, name: &str) -> Result<Tenant> {
    let t = Tenant {
        id: TenantId::new(),
        slug: slug.to_string(),
        name: name.to_string(),
        created_at: Timestamp::now(),
    };
    let stmt = db
        .prepare_cached(
            "INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (slug) DO NOTHING",
        )
        .await
        .map_err(db_error)?;
    let inserted = db
        .execute(
            &stmt,
            &[
                &t.id.to_string(),
                &t.slug,
                &t.name,
                &t.created_at.unix_millis(),
            ],
        )
        .await
        .map_err(db_error)?;
    if inserted == 0 {
        return Err(StoreError::Conflict {
            field: "slug".into(),
            value: slug.to_string(),
        });
    }
    Ok(t)
}

pub(super) async fn tenants(db: &Db) -> Result<Vec<Tenant>> {
    let stmt = db
        .prepare_cached("SELECT id, slug, name, created_at FROM tenants ORDER BY created_at, id")
        .await
        .map_err(db_error)?;
    db.query(&stmt, &[])
        .await
        .map_err(db_error)?
        .iter()
        .map(tenant)
        .collect()
}

pub(super) async fn tenant_by_slug(db: &Db, slug: &str) -> Result<Option<Tenant>> {
    let stmt = db
        .prepare_cached("SELECT id, slug, name, created_at FROM tenants WHERE slug = $1")
        .await
        .map_err(db_error)?;
    db.query_opt(&stmt, &[&slug])
        .await
        .map_err(db_error)?
        .as_ref()
        .map(tenant)
        .transpose()
}

pub(super) async fn tenant_by_id(db: &Db, id: TenantId) -> Result<Option<Tenant>> {
    let stmt = db
        .prepare_cached("SELECT id, slug, name, created_at FROM tenants WHERE id = $1")
        .await
        .map_err(db_error)?;
    db.query_opt(&stmt, &[&id.to_string()])
        .await
        .map_err(db_error)?
        .as_ref()
        .map(tenant)
        .transpose()
}

pub(super) async fn settings(db: &Db, tenant: TenantId) -> Result<TenantSettings> {
    let stmt = db
        .prepare_cached("SELECT settings FROM tenants WHERE id = $1")
        .await
        .map_err(db_error)?;
    let row = db
        .query_opt(&stmt, &[&tenant.to_string()])
        .await
        .map_err(db_error)?
        .ok_or(StoreError::NotFound)?;
    serde_json::from_str(row.get::<_, &str>(0)).map_err(corrupt)
}

pub(super) async fn save_settings(db: &Db, tenant: TenantId, json: &str) -> Result<()> {
    let stmt = db
        .prepare_cached("UPDATE tenants SET settings = $2 WHERE id = $1")
        .await
        .map_err(db_error)?;
    match db.execute(&stmt, &[&tenant.to_string(), &json]).await {
        Ok(1) => Ok(()),
        Ok(_) => Err(StoreError::NotFound),
        Err(e) => Err(db_error(e)),
    }
}

const KEY_COLUMNS: &str = "tenant_id, id, name, role, hint, created_at, revoked_at";

fn api_key(row: &Row) -> Result<ApiKey> {
    let role: &str = row.get(3);
    Ok(ApiKey {
        tenant_id: row.get::<_, &str>(0).parse().map_err(corrupt)?,
        id: row.get::<_, &str>(1).parse().map_err(corrupt)?,
        name: row.get(2),
        role: Role::parse(role).ok_or_else(|| corrupt(format!("unknown role {role}")))?,
        hint: row.get(4),
        created_at: Timestamp::from_unix_millis(row.get(5)),
        revoked_at: row
            .get::<_, Option<i64>>(6)
            .map(Timestamp::from_unix_millis),
    })
}

pub(super) async fn create_api_key(db: &Db, key: &NewApiKey) -> Result<ApiKey> {
    let k = ApiKey {
        id: ApiKeyId::new(),
        tenant_id: key.tenant_id,
        name: key.name.clone(),
        role: key.role,
        hint: key.hint.clone(),
        created_at: Timestamp::now(),
        revoked_at: None,
    };
    // Inserted only if the tenant exists, so a missing tenant is NotFound.
    let stmt = db
        .prepare_cached(
            "INSERT INTO api_keys (tenant_id, id, name, role, hint, secret_hash, created_at)
             SELECT id, $2, $3, $4, $5, $6, $7 FROM tenants WHERE id = $1",
        )
        .await
        .map_err(db_error)?;
    let inserted = db
        .execute(
            &stmt,
            &[
                &k.tenant_id.to_string(),
                &k.id.to_string(),
                &k.name,
                &k.role.as_str(),
                &k.hint,
                &&key.secret_hash.0[..],
                &k.created_at.unix_millis(),
            ],
        )
        .await
        .map_err(db_error)?;
    if inserted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(k)
}

pub(super) async fn api_keys(db: &Db, tenant: TenantId) -> Result<Vec<ApiKey>> {
    let stmt = db
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY id"
        ))
        .await
        .map_err(db_error)?;
    db.query(&stmt, &[&tenant.to_string()])
        .await
        .map_err(db_error)?
        .iter()
        .map(api_key)
        .collect()
}

pub(super) async fn revoke_api_key(db: &Db, tenant: TenantId, id: ApiKeyId) -> Result<ApiKey> {
    let stmt = db
        .prepare_cached(&format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant_id = $1 AND id = $2
             RETURNING {KEY_COLUMNS}"
        ))
        .await
        .map_err(db_error)?;
    db.query_opt(
        &stmt,
        &[
            &tenant.to_string(),
            &id.to_string(),
            &Timestamp::now().unix_millis(),
        ],
    )
    .await
    .map_err(db_error)?
    .as_ref()
    .map(api_key)
    .transpose()?
    .ok_or(StoreError::NotFound)
}

pub(super) async fn api_key_by_secret(
    db: &Db,
    tenant: TenantId,
    hash: SecretHash,
) -> Result<Option<ApiKey>> {
    let stmt = db
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND secret_hash = $2 AND revoked_at IS NULL"
        ))
        .await
        .map_err(db_error)?;
    db.query_opt(&stmt, &[&tenant.to_string(), &&hash.0[..]])
        .await
        .map_err(db_error)?
        .as_ref()
        .map(api_key)
        .transpose()
}

pub(super) async fn conversation(
    db: &Db,
    tenant: TenantId,
    channel: &str,
) -> Result<Option<serde_json::Value>> {
    let stmt = db
        .prepare_cached("SELECT state FROM conversations WHERE tenant_id = $1 AND channel_id = $2")
        .await
        .map_err(db_error)?;
    let row = db
        .query_opt(&stmt, &[&tenant.to_string(), &channel])
        .await
        .map_err(db_error)?;
    row.map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(corrupt))
        .transpose()
}

pub(super) async fn save_conversation(
    db: &Db,
    tenant: TenantId,
    channel: &str,
    state: Option<&serde_json::Value>,
) -> Result<()> {
    let tenant = tenant.to_string();
    match state {
        Some(state) => {
            let stmt = db
                .prepare_cached(
                    "INSERT INTO conversations (tenant_id, channel_id, state, updated_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (tenant_id, channel_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                )
                .await
                .map_err(db_error)?;
            let text = state.to_string();
            db.execute(&stmt, &[&tenant, &channel, &text, &Timestamp::now().unix_millis()])
                .await
        }
        None => {
            let stmt = db
                .prepare_cached("DELETE FROM conversations WHERE tenant_id = $1 AND channel_id = $2")
                .await
                .map_err(db_error)?;
            db.execute(&stmt, &[&tenant, &channel]).await
        }
    }
    .map_err(db_error)?;
    Ok(())
}
