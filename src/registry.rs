//! A map from a key to shared state, readable from many threads at once:
//! the layer's per-instance, per-device, per-surface and per-swapchain
//! tables.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, LazyLock, RwLock};

/// A map from a key to shared state, readable from many threads at once.
pub struct Registry<K, T> {
    map: LazyLock<RwLock<HashMap<K, Arc<T>>>>,
}

impl<K: Eq + Hash + Copy, T> Registry<K, T> {
    pub const fn new() -> Self {
        Self {
            map: LazyLock::new(|| RwLock::new(HashMap::new())),
        }
    }

    pub fn insert(&self, key: K, value: Arc<T>) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, value);
    }

    pub fn remove(&self, key: K) -> Option<Arc<T>> {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key)
    }

    pub fn get(&self, key: K) -> Option<Arc<T>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned()
    }

    /// Removes and returns every entry for which `pred` holds.
    pub fn remove_where(&self, mut pred: impl FnMut(&T) -> bool) -> Vec<Arc<T>> {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let keys: Vec<K> = map
            .iter()
            .filter(|(_, v)| pred(v))
            .map(|(k, _)| *k)
            .collect();
        keys.iter().filter_map(|k| map.remove(k)).collect()
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Eq + Hash + Copy, T> Default for Registry<K, T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_insert_get_remove() {
        let r: Registry<usize, u32> = Registry::new();
        r.insert(1, Arc::new(5));
        assert_eq!(r.get(1).as_deref(), Some(&5));
        assert!(r.remove(1).is_some());
        assert!(r.get(1).is_none() && r.is_empty());
    }
}
