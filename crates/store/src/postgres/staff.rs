//! Admin users, their sessions and the tenants' signing keys on PostgreSQL.

use ordo_domain::{Role, SecretHash, TenantId, Timestamp};
use tokio_postgres::Row;

use super::{corrupt, db_error, Db};
use crate::{AdminSession, NewUser, Result, StoreError, Tenant, User, UserChange};

const USER_COLUMNS: &str =
    "u.tenant_id, u.id, u.email, u.name, u.role, u.created_at, u.disabled_at, u.password_hash";

fn user(row: &Row) -> Result<(User, String)> {
    let role: &str = row.get(4);
    Ok((
        User {
            tenant_id: row.get::<_, &str>(0).parse().map_err(corrupt)?,
            id: row.get::<_, &str>(1).parse().map_err(corrupt)?,
            email: row.get(2),
            name: row.get(3),
            role: Role::parse(role).ok_or_else(|| corrupt(format!("unknown role {role}")))?,
            created_at: Timestamp::from_unix_millis(row.get(5)),
            disabled_at: row
                .get::<_, Option<i64>>(6)
                .map(Timestamp::from_unix_millis),
        },
        row.get(7),
    ))
}

pub(super) async fn create_user(db: &Db, new: &NewUser) -> Result<User> {
    let u = User {
        id: ordo_domain::UserId::new(),
        tenant_id: new.tenant_id,
        email: new.email.clone(),
        name: new.name.clone(),
        role: new.role,
        created_at: Timestamp::now(),
        disabled_at: None,
    };
    let tenant = u.tenant_id.to_string();
    let stmt = db
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)")
        .await
        .map_err(db_error)?;
    let exists: bool = db
        .query_one(&stmt, &[&tenant])
        .await
        .map_err(db_error)?
        .get(0);
    if !exists {
        return Err(StoreError::NotFound);
    }
    let stmt = db
        .prepare_cached(
            "INSERT INTO users (tenant_id, id, email, name, role, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, email) DO NOTHING",
        )
        .await
        .map_err(db_error)?;
    let inserted = db
        .execute(
            &stmt,
            &[
                &tenant,
                &u.id.to_string(),
                &u.email,
                &u.name,
                &u.role.as_str(),
                &new.password_hash,
                &u.created_at.unix_millis(),
            ],
        )
        .await
        .map_err(db_error)?;
    if inserted == 0 {
        return Err(StoreError::Conflict {
            field: "email".into(),
            value: new.email.clone(),
        });
    }
    Ok(u)
}

pub(super) async fn users(db: &Db, tenant: TenantId) -> Result<Vec<User>> {
    let stmt = db
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = $1 ORDER BY u.email"
        ))
        .await
        .map_err(db_error)?;
    db.query(&stmt, &[&tenant.to_string()])
        .await
        .map_err(db_error)?
        .iter()
        .map(|r| Ok(user(r)?.0))
        .collect()
}

pub(super) async fn user_by_email(
    db: &Db,
    tenant: TenantId,
    email: &str,
) -> Result<Option<(User, String)>> {
    let stmt = db
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = $1 AND u.email = $2"
        ))
        .await
        .map_err(db_error)?;
    db.query_opt(&stmt, &[&tenant.to_string(), &email])
        .await
        .map_err(db_error)?
        .as_ref()
        .map(user)
        .transpose()
}

pub(super) async fn change_user(
    db: &Db,
    tenant: TenantId,
    email: &str,
    change: &UserChange,
) -> Result<User> {
    let stmt = db
        .prepare_cached(&format!(
            "UPDATE users u SET name = COALESCE($3, u.name), role = COALESCE($4, u.role),
                 password_hash = COALESCE($5, u.password_hash),
                 disabled_at = CASE WHEN $6::boolean IS NULL THEN u.disabled_at
                                    WHEN $6 THEN COALESCE(u.disabled_at, $7) ELSE NULL END
             WHERE u.tenant_id = $1 AND u.email = $2
             RETURNING {USER_COLUMNS}"
        ))
        .await
        .map_err(db_error)?;
    let row = db
        .query_opt(
            &stmt,
            &[
                &tenant.to_string(),
                &email,
                &change.name,
                &change.role.map(|r| r.as_str()),
                &change.password_hash,
                &change.disabled,
                &Timestamp::now().unix_millis(),
            ],
        )
        .await
        .map_err(db_error)?
        .ok_or(StoreError::NotFound)?;
    let (u, _) = user(&row)?;
    if change.password_hash.is_some() || change.disabled == Some(true) {
        let stmt = db
            .prepare_cached("DELETE FROM admin_sessions WHERE tenant_id = $1 AND user_id = $2")
            .await
            .map_err(db_error)?;
        db.execute(&stmt, &[&tenant.to_string(), &u.id.to_string()])
            .await
            .map_err(db_error)?;
    }
    Ok(u)
}

pub(super) async fn create_session(db: &Db, s: &AdminSession) -> Result<()> {
    let tenant = s.tenant_id.to_string();
    let stmt = db
        .prepare_cached("DELETE FROM admin_sessions WHERE tenant_id = $1 AND expires_at <= $2")
        .await
        .map_err(db_error)?;
    db.execute(&stmt, &[&tenant, &s.created_at.unix_millis()])
        .await
        .map_err(db_error)?;
    let stmt = db
        .prepare_cached(
            "INSERT INTO admin_sessions (tenant_id, token_hash, user_id, csrf, created_at, seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await
        .map_err(db_error)?;
    db.execute(
        &stmt,
        &[
            &tenant,
            &&s.token_hash.0[..],
            &s.user.id.to_string(),
            &s.csrf,
            &s.created_at.unix_millis(),
            &s.seen_at.unix_millis(),
            &s.expires_at.unix_millis(),
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn admin_session(
    db: &Db,
    tenant: TenantId,
    hash: SecretHash,
    now: Timestamp,
) -> Result<Option<(AdminSession, Tenant)>> {
    let stmt = db
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS}, s.csrf, s.created_at, s.seen_at, s.expires_at,
                    t.slug, t.name, t.created_at
             FROM admin_sessions s JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
             JOIN tenants t ON t.id = s.tenant_id
             WHERE s.tenant_id = $1 AND s.token_hash = $2 AND s.expires_at > $3
               AND u.disabled_at IS NULL"
        ))
        .await
        .map_err(db_error)?;
    let Some(row) = db
        .query_opt(
            &stmt,
            &[&tenant.to_string(), &&hash.0[..], &now.unix_millis()],
        )
        .await
        .map_err(db_error)?
    else {
        return Ok(None);
    };
    let session = AdminSession {
        tenant_id: tenant,
        token_hash: hash,
        user: user(&row)?.0,
        csrf: row.get(8),
        created_at: Timestamp::from_unix_millis(row.get(9)),
        seen_at: Timestamp::from_unix_millis(row.get(10)),
        expires_at: Timestamp::from_unix_millis(row.get(11)),
    };
    let shop = Tenant {
        id: tenant,
        slug: row.get(12),
        name: row.get(13),
        created_at: Timestamp::from_unix_millis(row.get(14)),
    };
    Ok(Some((session, shop)))
}

pub(super) async fn touch_session(
    db: &Db,
    tenant: TenantId,
    hash: SecretHash,
    seen_at: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
    let stmt = db
        .prepare_cached(
            "UPDATE admin_sessions SET seen_at = $3, expires_at = $4 WHERE tenant_id = $1 AND token_hash = $2",
        )
        .await
        .map_err(db_error)?;
    db.execute(
        &stmt,
        &[
            &tenant.to_string(),
            &&hash.0[..],
            &seen_at.unix_millis(),
            &expires_at.unix_millis(),
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn delete_session(db: &Db, tenant: TenantId, hash: SecretHash) -> Result<()> {
    let stmt = db
        .prepare_cached("DELETE FROM admin_sessions WHERE tenant_id = $1 AND token_hash = $2")
        .await
        .map_err(db_error)?;
    db.execute(&stmt, &[&tenant.to_string(), &&hash.0[..]])
        .await
        .map_err(db_error)?;
    Ok(())
}

pub(super) async fn tenant_secret(db: &Db, tenant: TenantId, name: &str) -> Result<Vec<u8>> {
    let fresh: [u8; 32] = rand::random();
    let stmt = db
        .prepare_cached(
            "INSERT INTO tenant_secrets (tenant_id, name, value, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, name) DO NOTHING",
        )
        .await
        .map_err(db_error)?;
    db.execute(
        &stmt,
        &[
            &tenant.to_string(),
            &name,
            &&fresh[..],
            &Timestamp::now().unix_millis(),
        ],
    )
    .await
    .map_err(db_error)?;
    let stmt = db
        .prepare_cached("SELECT value FROM tenant_secrets WHERE tenant_id = $1 AND name = $2")
        .await
        .map_err(db_error)?;
    Ok(db
        .query_one(&stmt, &[&tenant.to_string(), &name])
        .await
        .map_err(db_error)?
        .get(0))
}
