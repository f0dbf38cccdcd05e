//! Per-instance and per-device state, keyed by the loader's dispatch key.
//!
//! Every dispatchable handle (instance, physical device, device, queue,
//! command buffer) begins with a pointer to the loader's dispatch table; all
//! handles belonging to one instance (or one device) share it. That pointer
//! is the key under which the layer keeps its state.

use ash::vk;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, LazyLock, RwLock};

/// The loader dispatch key of a dispatchable handle.
///
/// # Safety
/// `handle` must be a valid dispatchable Vulkan handle created through the
/// loader.
pub unsafe fn key<H: vk::Handle + Copy>(handle: H) -> usize {
    // SAFETY: the caller promises a valid dispatchable handle; the loader
    // guarantees its first word is the dispatch table pointer.
    unsafe { *(handle.as_raw() as usize as *const usize) }
}

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

/// Copies `items` out through the Vulkan two-call idiom.
///
/// # Safety
/// `count` must be valid; `out`, when non-null, must have room for `*count`
/// elements.
pub unsafe fn fill_array<T: Copy>(items: &[T], count: *mut u32, out: *mut T) -> vk::Result {
    if count.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: count checked non-null; the caller promises it is valid.
    let cap = unsafe { *count } as usize;
    if out.is_null() {
        // SAFETY: as above.
        unsafe { *count = items.len() as u32 };
        return vk::Result::SUCCESS;
    }
    let n = cap.min(items.len());
    // SAFETY: the caller promises `out` has room for `cap >= n` elements.
    unsafe {
        std::ptr::copy_nonoverlapping(items.as_ptr(), out, n);
        *count = n as u32;
    }
    if n < items.len() {
        vk::Result::INCOMPLETE
    } else {
        vk::Result::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_array_two_call_idiom() {
        let items = [1u32, 2, 3];
        let mut count = 0u32;
        assert_eq!(
            unsafe { fill_array(&items, &mut count, std::ptr::null_mut()) },
            vk::Result::SUCCESS
        );
        assert_eq!(count, 3);
        let mut out = [0u32; 2];
        count = 2;
        assert_eq!(
            unsafe { fill_array(&items, &mut count, out.as_mut_ptr()) },
            vk::Result::INCOMPLETE
        );
        assert_eq!((count, out), (2, [1, 2]));
        let mut out = [0u32; 4];
        count = 4;
        assert_eq!(
            unsafe { fill_array(&items, &mut count, out.as_mut_ptr()) },
            vk::Result::SUCCESS
        );
        assert_eq!(count, 3);
    }

    #[test]
    fn registry_insert_get_remove() {
        let r: Registry<usize, u32> = Registry::new();
        r.insert(1, Arc::new(5));
        assert_eq!(r.get(1).as_deref(), Some(&5));
        assert!(r.remove(1).is_some());
        assert!(r.get(1).is_none() && r.is_empty());
    }
}
