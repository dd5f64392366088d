//! Signed, expiring links to a buyer's order page (`/o/{token}`): what
//! buyer messages carry, so a buyer sees and acts on their order without
//! an account.
//!
//! A token is `base64url(tenant ‖ order ‖ expiry ‖ mac)`: the tenant's and
//! the order's ULIDs (16 bytes each), the expiry in Unix seconds (5 bytes),
//! and the first 16 bytes of HMAC-SHA256 of what precedes it under the
//! tenant's own random key (`tenant_secrets`, made on first use). 71
//! characters; changing any of it breaks the MAC.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use ordo_domain::{OrderId, TenantId, Timestamp};
use ordo_store::StoreError;
use sha2::Sha256;

use crate::app::AppState;

/// The name of the tenants' link keys in `tenant_secrets`.
const KEY_NAME: &str = "order_links";
const PAYLOAD: usize = 16 + 16 + 5;
const MAC: usize = 16;

/// What a valid token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub tenant: TenantId,
    pub order: OrderId,
    /// Unix seconds.
    pub expires: u64,
}

impl Link {
    pub fn expired(&self, now: Timestamp) -> bool {
        i64::try_from(self.expires).unwrap_or(i64::MAX) <= now.unix_millis() / 1000
    }
}

/// Why a token was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a token (wrong length or alphabet) or not signed by its tenant.
    Invalid,
    /// Signed, but past its expiry; which order it named is known.
    Expired(Link),
}

async fn key(state: &AppState, tenant: TenantId) -> Result<std::sync::Arc<[u8]>, StoreError> {
    if let Some(key) = state.link_keys().get(&tenant) {
        return Ok(key);
    }
    let key: std::sync::Arc<[u8]> = state.store().tenant_secret(tenant, KEY_NAME).await?.into();
    state.link_keys().put(tenant, key.clone());
    Ok(key)
}

fn mac(key: &[u8], payload: &[u8]) -> [u8; MAC] {
    let mut out = [0u8; MAC];
    if let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) {
        m.update(payload);
        out.copy_from_slice(&m.finalize().into_bytes()[..MAC]);
    }
    out
}

fn payload(link: &Link) -> [u8; PAYLOAD] {
    let mut p = [0u8; PAYLOAD];
    p[..16].copy_from_slice(&link.tenant.ulid().to_bytes());
    p[16..32].copy_from_slice(&link.order.ulid().to_bytes());
    p[32..].copy_from_slice(&link.expires.to_be_bytes()[3..]);
    p
}

/// A token for `order` of `tenant`, valid for `days` from now.
pub async fn token(
    state: &AppState,
    tenant: TenantId,
    order: OrderId,
    days: u32,
) -> Result<String, StoreError> {
    let now = u64::try_from(Timestamp::now().unix_millis() / 1000).unwrap_or(0);
    let link = Link {
        tenant,
        order,
        expires: (now + u64::from(days) * 86_400).min((1 << 40) - 1),
    };
    let key = key(state, tenant).await?;
    let mut bytes = payload(&link).to_vec();
    bytes.extend_from_slice(&mac(&key, &bytes));
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The full URL of `order`'s page for its buyer, valid for the configured
/// number of days (`buyer_page.link_days`).
pub async fn url(state: &AppState, tenant: TenantId, order: OrderId) -> Result<String, StoreError> {
    let days = state.config().buyer_page.link_days;
    let token = token(state, tenant, order, days).await?;
    Ok(format!("{}/o/{token}", state.config().public_url()))
}

/// What `text` names, if it is a token its tenant signed and not expired.
pub async fn read(state: &AppState, text: &str) -> Result<Result<Link, Refused>, StoreError> {
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text) else {
        return Ok(Err(Refused::Invalid));
    };
    if bytes.len() != PAYLOAD + MAC {
        return Ok(Err(Refused::Invalid));
    }
    let (p, given) = bytes.split_at(PAYLOAD);
    let ulid = |b: &[u8]| {
        let mut raw = [0u8; 16];
        raw.copy_from_slice(b);
        ulid::Ulid::from_bytes(raw)
    };
    let mut expiry = [0u8; 8];
    expiry[3..].copy_from_slice(&p[32..]);
    let link = Link {
        tenant: TenantId::from_ulid(ulid(&p[..16])),
        order: OrderId::from_ulid(ulid(&p[16..32])),
        expires: u64::from_be_bytes(expiry),
    };
    // An unknown tenant has no key to check against: the token is not one
    // (a key in the cache is a tenant that is known; a point read else,
    // before `key` would make one).
    let known = state.link_keys().get(&link.tenant).is_some()
        || state.store().tenant(link.tenant).await?.is_some();
    if !known {
        return Ok(Err(Refused::Invalid));
    }
    let key = key(state, link.tenant).await?;
    let signed = Hmac::<Sha256>::new_from_slice(&key).is_ok_and(|mut m| {
        m.update(p);
        m.verify_truncated_left(given).is_ok()
    });
    if !signed {
        return Ok(Err(Refused::Invalid));
    }
    if link.expired(Timestamp::now()) {
        return Ok(Err(Refused::Expired(link)));
    }
    Ok(Ok(link))
}
