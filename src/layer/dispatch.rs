//! The loader's dispatch key, and the Vulkan two-call array idiom.
//!
//! Every dispatchable handle (instance, physical device, device, queue,
//! command buffer) begins with a pointer to the loader's dispatch table; all
//! handles belonging to one instance (or one device) share it. That pointer
//! is the key under which the layer keeps its per-instance and per-device
//! state (in a [`crate::registry::Registry`]).

use ash::vk;

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
}
