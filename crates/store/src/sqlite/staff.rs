//! Admin users, their sessions and the tenants' signing keys on SQLite.

use ordo_domain::{Role, SecretHash, TenantId, Timestamp};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{corrupt, unavailable};
use crate::{AdminSession, NewUser, Result, StoreError, Tenant, User, UserChange};

const USER_COLUMNS: &str =
    "u.tenant_id, u.id, u.email, u.name, u.role, u.created_at, u.disabled_at, u.password_hash";

type UserRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    String,
);

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

fn user(raw: UserRow) -> Result<(User, String)> {
    let role = Role::parse(&raw.4).ok_or_else(|| corrupt(format!("unknown role {}", raw.4)))?;
    Ok((
        User {
            tenant_id: raw.0.parse().map_err(corrupt)?,
            id: raw.1.parse().map_err(corrupt)?,
            email: raw.2,
            name: raw.3,
            role,
            created_at: Timestamp::from_unix_millis(raw.5),
            disabled_at: raw.6.map(Timestamp::from_unix_millis),
        },
        raw.7,
    ))
}

pub(super) fn create_user(conn: &Connection, new: &NewUser) -> Result<User> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)")
        .and_then(|mut s| s.query_row([new.tenant_id.to_string()], |r| r.get(0)))
        .map_err(unavailable)?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    let u = User {
        id: ordo_domain::UserId::new(),
        tenant_id: new.tenant_id,
        email: new.email.clone(),
        name: new.name.clone(),
        role: new.role,
        created_at: Timestamp::now(),
        disabled_at: None,
    };
    let inserted = conn
        .prepare_cached(
            "INSERT INTO users (tenant_id, id, email, name, role, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (tenant_id, email) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                u.tenant_id.to_string(),
                u.id.to_string(),
                u.email,
                u.name,
                u.role.as_str(),
                new.password_hash,
                u.created_at.unix_millis()
            ])
        })
        .map_err(unavailable)?;
    if inserted == 0 {
        return Err(StoreError::Conflict {
            field: "email".into(),
            value: new.email.clone(),
        });
    }
    Ok(u)
}

pub(super) fn users(conn: &Connection, tenant: TenantId) -> Result<Vec<User>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = ?1 ORDER BY u.email"
        ))
        .map_err(unavailable)?;
    let rows = stmt
        .query_map([tenant.to_string()], user_from_row)
        .map_err(unavailable)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(unavailable)?;
    rows.into_iter().map(|r| Ok(user(r)?.0)).collect()
}

pub(super) fn user_by_email(
    conn: &Connection,
    tenant: TenantId,
    email: &str,
) -> Result<Option<(User, String)>> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = ?1 AND u.email = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![tenant.to_string(), email], user_from_row)
            .optional()
    })
    .map_err(unavailable)?
    .map(user)
    .transpose()
}

pub(super) fn change_user(
    conn: &Connection,
    tenant: TenantId,
    email: &str,
    change: &UserChange,
) -> Result<User> {
    let (mut u, mut hash) = user_by_email(conn, tenant, email)?.ok_or(StoreError::NotFound)?;
    let now = Timestamp::now();
    let mut end_sessions = false;
    if let Some(name) = &change.name {
        u.name = name.clone();
    }
    if let Some(role) = change.role {
        u.role = role;
    }
    if let Some(h) = &change.password_hash {
        hash = h.clone();
        end_sessions = true;
    }
    match change.disabled {
        Some(true) => {
            u.disabled_at = u.disabled_at.or(Some(now));
            end_sessions = true;
        }
        Some(false) => u.disabled_at = None,
        None => {}
    }
    conn.prepare_cached(
        "UPDATE users SET name = ?3, role = ?4, password_hash = ?5, disabled_at = ?6
         WHERE tenant_id = ?1 AND id = ?2",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant.to_string(),
            u.id.to_string(),
            u.name,
            u.role.as_str(),
            hash,
            u.disabled_at.map(Timestamp::unix_millis)
        ])
    })
    .map_err(unavailable)?;
    if end_sessions {
        conn.prepare_cached("DELETE FROM admin_sessions WHERE tenant_id = ?1 AND user_id = ?2")
            .and_then(|mut s| s.execute(params![tenant.to_string(), u.id.to_string()]))
            .map_err(unavailable)?;
    }
    Ok(u)
}

pub(super) fn create_session(conn: &Connection, s: &AdminSession) -> Result<()> {
    let tenant = s.tenant_id.to_string();
    conn.prepare_cached("DELETE FROM admin_sessions WHERE tenant_id = ?1 AND expires_at <= ?2")
        .and_then(|mut st| st.execute(params![tenant, s.created_at.unix_millis()]))
        .map_err(unavailable)?;
    conn.prepare_cached(
        "INSERT INTO admin_sessions (tenant_id, token_hash, user_id, csrf, created_at, seen_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut st| {
        st.execute(params![
            tenant,
            &s.token_hash.0[..],
            s.user.id.to_string(),
            s.csrf,
            s.created_at.unix_millis(),
            s.seen_at.unix_millis(),
            s.expires_at.unix_millis()
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

pub(super) fn admin_session(
    conn: &Connection,
    tenant: TenantId,
    hash: SecretHash,
    now: Timestamp,
) -> Result<Option<(AdminSession, Tenant)>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {USER_COLUMNS}, s.csrf, s.created_at, s.seen_at, s.expires_at,
                    t.slug, t.name, t.created_at
             FROM admin_sessions s JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
             JOIN tenants t ON t.id = s.tenant_id
             WHERE s.tenant_id = ?1 AND s.token_hash = ?2 AND s.expires_at > ?3
               AND u.disabled_at IS NULL"
        ))
        .and_then(|mut st| {
            st.query_row(
                params![tenant.to_string(), &hash.0[..], now.unix_millis()],
                |r| {
                    Ok((
                        user_from_row(r)?,
                        r.get::<_, String>(8)?,
                        r.get::<_, i64>(9)?,
                        r.get::<_, i64>(10)?,
                        r.get::<_, i64>(11)?,
                        (
                            r.get::<_, String>(12)?,
                            r.get::<_, String>(13)?,
                            r.get::<_, i64>(14)?,
                        ),
                    ))
                },
            )
            .optional()
        })
        .map_err(unavailable)?;
    let Some((u, csrf, created, seen, expires, (slug, name, since))) = row else {
        return Ok(None);
    };
    let session = AdminSession {
        tenant_id: tenant,
        token_hash: hash,
        user: user(u)?.0,
        csrf,
        created_at: Timestamp::from_unix_millis(created),
        seen_at: Timestamp::from_unix_millis(seen),
        expires_at: Timestamp::from_unix_millis(expires),
    };
    let shop = Tenant {
        id: tenant,
        slug,
        name,
        created_at: Timestamp::from_unix_millis(since),
    };
    Ok(Some((session, shop)))
}

pub(super) fn touch_session(
    conn: &Connection,
    tenant: TenantId,
    hash: SecretHash,
    seen_at: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE admin_sessions SET seen_at = ?3, expires_at = ?4 WHERE tenant_id = ?1 AND token_hash = ?2",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant.to_string(),
            &hash.0[..],
            seen_at.unix_millis(),
            expires_at.unix_millis()
        ])
    })
    .map_err(unavailable)?;
    Ok(())
}

pub(super) fn delete_session(conn: &Connection, tenant: TenantId, hash: SecretHash) -> Result<()> {
    conn.prepare_cached("DELETE FROM admin_sessions WHERE tenant_id = ?1 AND token_hash = ?2")
        .and_then(|mut s| s.execute(params![tenant.to_string(), &hash.0[..]]))
        .map_err(unavailable)?;
    Ok(())
}

pub(super) fn tenant_secret(conn: &Connection, tenant: TenantId, name: &str) -> Result<Vec<u8>> {
    let fresh: [u8; 32] = rand::random();
    conn.prepare_cached(
        "INSERT INTO tenant_secrets (tenant_id, name, value, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant_id, name) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant.to_string(),
            name,
            &fresh[..],
            Timestamp::now().unix_millis()
        ])
    })
    .map_err(unavailable)?;
    conn.prepare_cached("SELECT value FROM tenant_secrets WHERE tenant_id = ?1 AND name = ?2")
        .and_then(|mut s| s.query_row(params![tenant.to_string(), name], |r| r.get(0)))
        .map_err(unavailable)
}
