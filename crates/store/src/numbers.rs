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
    /// Held across a refill, so one tenant's block is taken once.
    blocks: tokio::sync::Mutex<HashMap<TenantId, (u64, u64)>>,
}

impl Numbers {
    pub(crate) fn new(block: u32) -> Numbers {
        Numbers {
            block: block.max(1),
            blocks: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's next reference; `take` takes a block of `n` numbers
    /// from the database and returns the last number of it.
    pub(crate) async fn next<F, Fut>(&self, tenant: TenantId, take: F) -> Result<OrderReference>
    where
        F: FnOnce(u32) -> Fut,
        Fut: Future<Output = Result<u64>>,
    {
        let mut blocks = self.blocks.lock().await;
        let n = match blocks.get_mut(&tenant) {
            Some((next, end)) if *next < *end => {
                *next += 1;
                *next - 1
            }
            _ => {
                let last = take(self.block).await?;
                let start = (last + 1).saturating_sub(u64::from(self.block)).max(1);
                blocks.insert(tenant, (start + 1, last + 1));
                start
            }
        };
        OrderReference::from_sequence(tenant, n).ok_or_else(|| {
            StoreError::Unavailable("the tenant has used every order reference".into())
        })
    }

    /// A reference turned out to be taken (an import wrote orders beside
    /// the counter): drop the block, so the next is taken past them.
    pub(crate) async fn forget_on_conflict<T>(&self, tenant: TenantId, result: &Result<T>) {
        if matches!(result, Err(StoreError::Conflict { field, .. }) if field == "reference") {
            self.blocks.lock().await.remove(&tenant);
        }
    }
}
