//! Tenant settings, remembered for a few seconds: they are read by every
//! order that may move stock, and change rarely.

use std::time::Duration;

use ordo_domain::{TenantId, TenantSettings};
use ordo_store::Store;

use crate::api::error::ApiError;
use crate::cache::TtlMap;

/// A change saved on one node is seen there at once and by the other nodes
/// within [`SettingsCache::TTL`].
pub struct SettingsCache {
    entries: TtlMap<TenantId, TenantSettings>,
}

impl SettingsCache {
    pub const TTL: Duration = Duration::from_secs(5);
    const MAX_ENTRIES: usize = 100_000;

    pub fn new() -> Self {
        SettingsCache {
            entries: TtlMap::new(Self::TTL, Self::MAX_ENTRIES),
        }
    }

    pub async fn get(
        &self,
        store: &dyn Store,
        tenant: TenantId,
    ) -> Result<TenantSettings, ApiError> {
        if let Some(settings) = self.entries.get(&tenant) {
            return Ok(settings);
        }
        let settings = store.tenant_settings(tenant).await?;
        self.put(tenant, settings.clone());
        Ok(settings)
    }

    pub fn put(&self, tenant: TenantId, settings: TenantSettings) {
        self.entries.put(tenant, settings);
    }
}

impl Default for SettingsCache {
    fn default() -> Self {
        Self::new()
    }
}
