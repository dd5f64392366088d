//! Tenant settings, remembered for a few seconds: they are read by every
//! order that may move stock, and change rarely.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use ordo_domain::{TenantId, TenantSettings};
use ordo_store::Store;

use crate::api::error::ApiError;

/// A change saved on one node is seen there at once and by the other nodes
/// within [`SettingsCache::TTL`].
pub struct SettingsCache {
    entries: RwLock<HashMap<TenantId, (TenantSettings, Instant)>>,
}

impl SettingsCache {
    pub const TTL: Duration = Duration::from_secs(5);

    pub fn new() -> Self {
        SettingsCache {
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub async fn get(
        &self,
        store: &dyn Store,
        tenant: TenantId,
    ) -> Result<TenantSettings, ApiError> {
        let cached = self.entries.read().ok().and_then(|entries| {
            let (settings, at) = entries.get(&tenant)?;
            (at.elapsed() < Self::TTL).then(|| settings.clone())
        });
        if let Some(settings) = cached {
            return Ok(settings);
        }
        let settings = store.tenant_settings(tenant).await?;
        self.put(tenant, settings.clone());
        Ok(settings)
    }

    pub fn put(&self, tenant: TenantId, settings: TenantSettings) {
        if let Ok(mut entries) = self.entries.write() {
            entries.insert(tenant, (settings, Instant::now()));
        }
    }
}

impl Default for SettingsCache {
    fn default() -> Self {
        Self::new()
    }
}
