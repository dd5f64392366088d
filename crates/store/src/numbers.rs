//! Each tenant's order numbers, handed out a block at a time.
//!
//! A tenant's counter in the database says how many numbers have been
//! handed out; a store takes a block from it in one short write (on
//! PostgreSQL, one row update; on SQLite, one write of the writer), then
//! hands the block out from memory. Every process or node has blocks of its
//! own, so no number is ever handed out twice, and a store that stops
//! leaves the rest of its block unused: a gap, never a duplicate. (The
//! reference a number becomes is a permutation, so gaps show nowhere.)

use std::collections::HashMap;
use std::future::Future;

use ordo_domain::{OrderReference, TenantId};

use crate::{Result, StoreError};

pub(crate) struct Numbers {
    block: u32,
    /// Per tenant, the next number of the block and its end (exclusive).
    blocks: std::sync::Mutex<HashMap<TenantId, (u64, u64)>>,
    /// Held while a block is taken from the database, so concurrent
    /// requests wait for one refill rather than each taking a block.
    refill: tokio::sync::Mutex<()>,
}

impl Numbers {
    pub(crate) fn new(block: u32) -> Numbers {
        Numbers {
            block: block.max(1),
            blocks: std::sync::Mutex::new(HashMap::new()),
            refill: tokio::sync::Mutex::new(()),
        }
    }

    /// The tenant's next reference; `take` takes a block of `n` numbers
    /// from the database and returns the last number of it.
    pub(crate) async fn next<F, Fut>(&self, tenant: TenantId, take: F) -> Result<OrderReference>
    where
        F: FnOnce(u32) -> Fut,
        Fut: Future<Output = Result<u64>>,
    {
        let n = match self.cached(tenant)? {
            Some(n) => n,
            None => {
                let _refilling = self.refill.lock().await;
                match self.cached(tenant)? {
                    // Another request refilled while this one waited.
                    Some(n) => n,
                    None => {
                        let last = take(self.block).await?;
                        let start = (last + 1).saturating_sub(u64::from(self.block)).max(1);
                        self.lock()?.insert(tenant, (start + 1, last + 1));
                        start
                    }
                }
            }
        };
        OrderReference::from_sequence(tenant, n).ok_or_else(|| {
            StoreError::Unavailable("the tenant has used every order reference".into())
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<TenantId, (u64, u64)>>> {
        self.blocks
            .lock()
            .map_err(|_| StoreError::Unavailable("the order numbers are poisoned".into()))
    }

    /// The next number of the tenant's block, if it has one left.
    fn cached(&self, tenant: TenantId) -> Result<Option<u64>> {
        let mut blocks = self.lock()?;
        Ok(match blocks.get_mut(&tenant) {
            Some((next, end)) if *next < *end => {
                *next += 1;
                Some(*next - 1)
            }
            _ => None,
        })
    }

    /// A reference turned out to be taken (an import wrote orders beside
    /// the counter): drop the block, so the next is taken past them.
    pub(crate) async fn forget_on_conflict<T>(&self, tenant: TenantId, result: &Result<T>) {
        if matches!(result, Err(StoreError::Conflict { field, .. }) if field == "reference") {
            if let Ok(mut blocks) = self.blocks.lock() {
                blocks.remove(&tenant);
            }
        }
    }
}
