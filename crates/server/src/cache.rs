//! What a node remembers for a few seconds instead of reading it from the
//! database for every request: API keys, tenant settings, shops by slug.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Entries that count as fresh for `ttl` after they were put. Bounded: when
/// full, stale entries go, and if none are stale, all of them.
pub struct TtlMap<K, V> {
    entries: RwLock<HashMap<K, (V, Instant)>>,
    ttl: Duration,
    max_entries: usize,
}

impl<K: Eq + Hash, V: Clone> TtlMap<K, V> {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        TtlMap {
            entries: RwLock::new(HashMap::new()),
            ttl,
            max_entries,
        }
    }

    /// The value put under `key` less than `ttl` ago.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.read().ok()?;
        let (value, at) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    pub fn put(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= self.max_entries && !entries.contains_key(&key) {
                let ttl = self.ttl;
                entries.retain(|_, (_, at)| at.elapsed() < ttl);
                if entries.len() >= self.max_entries {
                    entries.clear();
                }
            }
            entries.insert(key, (value, Instant::now()));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let map = TtlMap::new(Duration::from_millis(30), 2);
        map.put("a", 1);
        assert_eq!(map.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(map.get(&"a"), None, "stale");
        map.put("b", 2);
        map.put("c", 3);
        assert_eq!(map.get(&"b"), Some(2));
        map.put("d", 4);
        assert_eq!(map.get(&"d"), Some(4));
        assert!(
            map.entries.read().map(|e| e.len()).unwrap_or(99) <= 2,
            "never more than the bound"
        );
        map.put("d", 5);
        assert_eq!(map.get(&"d"), Some(5), "replacing a key keeps it");
    }
}
