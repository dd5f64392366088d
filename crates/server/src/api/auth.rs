//! API-key authentication and role checks. A signed-in admin user is a
//! principal too: the admin pages call the API in-process as that user.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use ordo_domain::{Actor, ApiKeyId, ApiKeySecret, Permission, Role, SecretHash, TenantId, UserId};
use ordo_store::{Scope, Store};

use super::error::ApiError;
use crate::app::AppState;
use crate::cache::TtlMap;

/// Who is calling, established from the API key (or the admin session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub id: PrincipalId,
    pub role: Role,
}

/// An API key or a user; a vendor's orders are those its id created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalId {
    Key(ApiKeyId),
    User(UserId),
}

impl std::fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrincipalId::Key(id) => id.fmt(f),
            PrincipalId::User(id) => id.fmt(f),
        }
    }
}

impl Principal {
    pub fn require(&self, permission: Permission, what: &'static str) -> Result<(), ApiError> {
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                role: self.role.to_string(),
                what,
            })
        }
    }

    /// The orders this principal may see: its tenant's, and for a vendor
    /// only its own.
    pub fn scope(&self) -> Scope {
        Scope {
            tenant_id: self.tenant_id,
            creator: self
                .role
                .sees_only_own_orders()
                .then(|| self.id.to_string()),
        }
    }

    pub fn actor(&self) -> Actor {
        match self.id {
            PrincipalId::Key(id) => Actor::api_key(id.to_string(), self.role.as_str()),
            PrincipalId::User(id) => Actor::user(id.to_string(), self.role.as_str()),
        }
    }
}

/// Remembers keys that authenticated, for a few seconds, so authentication
/// is not a database read per request. A revoked key stops working within
/// [`KeyCache::TTL`]. Keys that fail are not remembered: nobody can fill the
/// cache with made-up keys.
pub struct KeyCache {
    entries: TtlMap<(TenantId, SecretHash), Principal>,
}

impl KeyCache {
    pub const TTL: Duration = Duration::from_secs(5);
    const MAX_ENTRIES: usize = 10_000;

    pub fn new() -> Self {
        KeyCache {
            entries: TtlMap::new(Self::TTL, Self::MAX_ENTRIES),
        }
    }

    pub fn forget_all(&self) {
        self.entries.clear();
    }

    pub async fn authenticate(
        &self,
        store: &dyn Store,
        header_value: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let value = header_value.ok_or(ApiError::Unauthenticated(
            "no API key: send Authorization: Bearer <key>",
        ))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(ApiError::Unauthenticated(
                "the Authorization header must be: Bearer <key>",
            ))?
            .trim();
        let secret = ApiKeySecret::parse(token)
            .ok_or(ApiError::Unauthenticated("the API key is not valid"))?;
        let key = (secret.tenant_id, secret.hash());
        if let Some(principal) = self.entries.get(&key) {
            return Ok(principal);
        }
        let principal = store
            .api_key_by_secret(key.0, key.1)
            .await?
            .map(|k| Principal {
                tenant_id: k.tenant_id,
                id: PrincipalId::Key(k.id),
                role: k.role,
            })
            .ok_or(ApiError::Unauthenticated(
                "the API key is not valid or was revoked",
            ))?;
        self.entries.put(key, principal.clone());
        Ok(principal)
    }
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new()
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The admin pages' in-process calls carry their user here; a
        // request from outside cannot set an extension.
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let header_value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = state
            .keys()
            .authenticate(state.store(), header_value)
            .await?;
        tracing::Span::current().record("tenant", tracing::field::display(principal.tenant_id));
        Ok(principal)
    }
}
