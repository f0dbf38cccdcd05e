//! Reading the application's `pNext` chains: every Vulkan structure starts
//! with `sType` and `pNext`, so a chain can be walked without knowing the
//! structures in it.

use ash::vk;
use std::ffi::c_void;

/// The structures of the chain that starts at `p_next`, in order.
///
/// # Safety
/// `p_next` must be null or a valid chain that outlives the iterator.
pub unsafe fn structures<'a>(
    p_next: *const c_void,
) -> impl Iterator<Item = &'a vk::BaseInStructure<'a>> {
    // SAFETY: the caller's promise; each link is a Vulkan structure.
    let first = unsafe { p_next.cast::<vk::BaseInStructure<'a>>().as_ref() };
    // SAFETY: as above, for the next link.
    std::iter::successors(first, |s| unsafe { s.p_next.as_ref() })
}

/// The first structure of type `s_type` in the chain that starts at
/// `p_next`, as the `T` that type names.
///
/// # Safety
/// As [`structures`], and `T` must be the structure `s_type` identifies.
pub unsafe fn find<'a, T>(p_next: *const c_void, s_type: vk::StructureType) -> Option<&'a T> {
    // SAFETY: the caller's promise.
    unsafe { structures(p_next) }
        .find(|s| s.s_type == s_type)
        // SAFETY: the sType identifies the structure as a `T`.
        .map(|s| unsafe { &*(s as *const vk::BaseInStructure<'_>).cast::<T>() })
}
