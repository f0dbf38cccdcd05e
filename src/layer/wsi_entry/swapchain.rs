//! The swapchain entry points: create and destroy, images, acquire,
//! present (split per swapchain, results written back per swapchain),
//! `vkReleaseSwapchainImagesEXT`, `vkWaitForPresentKHR` and the device
//! group queries. Swapchains the driver made go to the driver.

use super::{dev_of, foreign_surface, foreign_swapchain, surface, swapchain};
use crate::device::cpu_time::LayerTime;
use crate::device::DeviceData;
use crate::layer::dispatch::fill_array;
use crate::layer::guard::guard;
use crate::pnext;
use crate::wsi::swapchain::Swapchain;
use crate::wsi::{new_handle, DRIVER_SWAPCHAINS, SWAPCHAINS};
use ash::vk::{self, Handle};
use std::sync::Arc;

pub(super) unsafe extern "system" fn create_swapchain(
    device: vk::Device,
    ci: *const vk::SwapchainCreateInfoKHR<'_>,
    alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::SwapchainKHR,
) -> vk::Result {
    guard(
        "vkCreateSwapchainKHR",
        vk::Result::ERROR_INITIALIZATION_FAILED,
        || {
            let Some(dev) = dev_of(device) else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            // SAFETY: the application's create info.
            let (Some(ci_ref), false) = (unsafe { ci.as_ref() }, out.is_null()) else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            let Some(s) = surface(ci_ref.surface) else {
                if let Err(e) = foreign_surface("vkCreateSwapchainKHR", ci_ref.surface) {
                    return e;
                }
                // SAFETY: the driver's surface, forwarded.
                let r = unsafe {
                    (dev.ext.next_swapchain.create_swapchain_khr)(device, ci, alloc, out)
                };
                if r == vk::Result::SUCCESS {
                    // SAFETY: checked non-null; the driver wrote it.
                    let made = unsafe { *out };
                    DRIVER_SWAPCHAINS.insert(made.as_raw(), Arc::new(device.as_raw()));
                }
                return r;
            };
            let old = swapchain(ci_ref.old_swapchain);
            match Swapchain::create(dev, s, ci_ref, old.as_deref()) {
                Ok(sc) => {
                    let handle = new_handle();
                    SWAPCHAINS.insert(handle, Arc::new(sc));
                    // SAFETY: checked non-null.
                    unsafe { *out = vk::SwapchainKHR::from_raw(handle) };
                    vk::Result::SUCCESS
                }
                Err(e) => e,
            }
        },
    )
}

pub(super) unsafe extern "system" fn destroy_swapchain(
    device: vk::Device,
    handle: vk::SwapchainKHR,
    alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard("vkDestroySwapchainKHR", (), || {
        if handle == vk::SwapchainKHR::null() {
            return;
        }
        if SWAPCHAINS.remove(handle.as_raw()).is_none() {
            if foreign_swapchain("vkDestroySwapchainKHR", handle).is_err() {
                return;
            }
            DRIVER_SWAPCHAINS.remove(handle.as_raw());
            if let Some(dev) = dev_of(device) {
                // SAFETY: the driver's swapchain, forwarded.
                unsafe { (dev.ext.next_swapchain.destroy_swapchain_khr)(device, handle, alloc) };
            }
        }
    })
}

/// The body of every call on a swapchain: `ours` for a swapchain the layer
/// made, `forward` (the driver's function) for one the driver made through
/// the layer, `VK_ERROR_SURFACE_LOST_KHR` for anything else (null,
/// destroyed, made up: the driver would crash on it). `err` answers a panic
/// or an unknown device.
fn swapchain_call(
    entry: &'static str,
    device: vk::Device,
    handle: vk::SwapchainKHR,
    err: vk::Result,
    forward: impl FnOnce(&DeviceData) -> vk::Result,
    ours: impl FnOnce(&Swapchain) -> vk::Result,
) -> vk::Result {
    guard(entry, err, || match swapchain(handle) {
        Some(sc) => ours(&sc),
        None => match (foreign_swapchain(entry, handle), dev_of(device)) {
            (Err(e), _) => e,
            (Ok(()), None) => err,
            (Ok(()), Some(dev)) => forward(&dev),
        },
    })
}

pub(super) unsafe extern "system" fn get_swapchain_images(
    device: vk::Device,
    handle: vk::SwapchainKHR,
    count: *mut u32,
    out: *mut vk::Image,
) -> vk::Result {
    swapchain_call(
        "vkGetSwapchainImagesKHR",
        device,
        handle,
        vk::Result::ERROR_INITIALIZATION_FAILED,
        // SAFETY: the driver's swapchain, forwarded.
        |d| unsafe { (d.ext.next_swapchain.get_swapchain_images_khr)(device, handle, count, out) },
        |sc| {
            let images: Vec<vk::Image> = sc.images.iter().map(|i| i.image).collect();
            // SAFETY: the application's output arrays.
            unsafe { fill_array(&images, count, out) }
        },
    )
}

/// Acquires from the layer's swapchain into the application's `index`.
fn acquire_into(
    sc: &Swapchain,
    timeout: u64,
    semaphore: vk::Semaphore,
    fence: vk::Fence,
    index: *mut u32,
) -> vk::Result {
    let cpu = LayerTime::begin();
    // SAFETY: the application's output, null-checked.
    let Some(index) = (unsafe { index.as_mut() }) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    let r = sc.acquire(timeout, semaphore, fence, index);
    let acquired = matches!(r, vk::Result::SUCCESS | vk::Result::SUBOPTIMAL_KHR);
    if let (Some(cpu), true) = (cpu, acquired) {
        sc.note_acquire_cpu(*index, cpu.elapsed());
    }
    r
}

pub(super) unsafe extern "system" fn acquire_next_image(
    device: vk::Device,
    handle: vk::SwapchainKHR,
    timeout: u64,
    semaphore: vk::Semaphore,
    fence: vk::Fence,
    index: *mut u32,
) -> vk::Result {
    swapchain_call(
        "vkAcquireNextImageKHR",
        device,
        handle,
        vk::Result::ERROR_DEVICE_LOST,
        // SAFETY: the driver's swapchain, forwarded.
        |d| unsafe {
            (d.ext.next_swapchain.acquire_next_image_khr)(
                device, handle, timeout, semaphore, fence, index,
            )
        },
        |sc| acquire_into(sc, timeout, semaphore, fence, index),
    )
}

pub(super) unsafe extern "system" fn acquire_next_image2(
    device: vk::Device,
    info: *const vk::AcquireNextImageInfoKHR<'_>,
    index: *mut u32,
) -> vk::Result {
    // SAFETY: the application's structure (null-checked).
    let Some(i) = (unsafe { info.as_ref() }) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    swapchain_call(
        "vkAcquireNextImage2KHR",
        device,
        i.swapchain,
        vk::Result::ERROR_DEVICE_LOST,
        // SAFETY: the driver's swapchain, forwarded.
        |d| unsafe { (d.ext.next_swapchain.acquire_next_image2_khr)(device, info, index) },
        |sc| acquire_into(sc, i.timeout, i.semaphore, i.fence, index),
    )
}

pub(super) unsafe extern "system" fn queue_present(
    queue: vk::Queue,
    info: *const vk::PresentInfoKHR<'_>,
) -> vk::Result {
    guard("vkQueuePresentKHR", vk::Result::ERROR_DEVICE_LOST, || {
        let cpu = LayerTime::begin();
        let Some(dev) = dev_of(queue) else {
            return vk::Result::ERROR_DEVICE_LOST;
        };
        // SAFETY: the application's structure.
        let Some(pi) = (unsafe { info.as_ref() }) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        let n = pi.swapchain_count as usize;
        // SAFETY: the application's arrays of the given lengths.
        let (handles, indices) = unsafe {
            (
                std::slice::from_raw_parts(pi.p_swapchains, n),
                std::slice::from_raw_parts(pi.p_image_indices, n),
            )
        };
        let ours: Vec<Option<Arc<Swapchain>>> = handles.iter().map(|h| swapchain(*h)).collect();
        for (h, _) in handles.iter().zip(&ours).filter(|(_, o)| o.is_none()) {
            if let Err(e) = foreign_swapchain("vkQueuePresentKHR", *h) {
                return e;
            }
        }
        if ours.iter().all(Option::is_none) {
            // SAFETY: the driver's swapchains, forwarded.
            return unsafe { (dev.ext.next_swapchain.queue_present_khr)(queue, info) };
        }
        if ours.iter().any(Option::is_none) {
            log::error!(
                "vkQueuePresentKHR: mixing the layer's swapchains with the driver's in one call is not supported"
            );
            return vk::Result::ERROR_SURFACE_LOST_KHR;
        }
        let waits: &[vk::Semaphore] = if pi.wait_semaphore_count == 0
            || pi.p_wait_semaphores.is_null()
        {
            &[]
        } else {
            // SAFETY: the application's array of the given length.
            unsafe {
                std::slice::from_raw_parts(pi.p_wait_semaphores, pi.wait_semaphore_count as usize)
            }
        };
        let present_ids = present_ids_of(pi);
        let present_fences = present_fences_of(pi);
        let present_modes = present_modes_of(pi);
        let mut worst = vk::Result::SUCCESS;
        for (i, (sc, index)) in ours.iter().zip(indices).enumerate() {
            let sc = sc.as_ref().expect("all ours");
            if let Some(&mode) = present_modes.get(i).filter(|&&m| m != sc.present_mode) {
                // Every mode is compatible only with itself, so a valid
                // application never asks for another one.
                crate::warn_once!(
                    "vkQueuePresentKHR: VkSwapchainPresentModeInfoEXT asks for {mode:?}; \
                     the swapchain presents in {:?}, the only mode compatible with it",
                    sc.present_mode
                );
            }
            // The application's semaphores are waited on once, by the first
            // swapchain's submission; later ones follow it on the queue.
            let r = sc.present(
                queue,
                *index,
                if i == 0 { waits } else { &[] },
                present_ids.get(i).copied().unwrap_or(0),
            );
            if !pi.p_results.is_null() {
                // SAFETY: the application's results array of length n.
                unsafe { *pi.p_results.add(i) = r };
            }
            if r.as_raw() < 0 && (worst.as_raw() >= 0)
                || (r == vk::Result::SUBOPTIMAL_KHR && worst == vk::Result::SUCCESS)
            {
                worst = r;
            }
        }
        // VK_EXT_swapchain_maintenance1 present fences: each signals once
        // the present no longer uses the wait semaphores. An empty
        // submission after the presents' own follows them on the queue.
        for fence in present_fences
            .into_iter()
            .filter(|f| *f != vk::Fence::null())
        {
            let _held = dev
                .queue(queue)
                .map(|q| q.lock.lock().unwrap_or_else(|e| e.into_inner()));
            // SAFETY: the application's unsignalled fence (its promise); the
            // queue is externally synchronized by the application and the
            // shared lock.
            if let Err(e) = crate::device::cpu_time::driver(|| unsafe {
                dev.fns.queue_submit(queue, &[], fence)
            }) {
                log::error!("vkQueuePresentKHR: signalling a present fence: {e:?}");
                if worst.as_raw() >= 0 {
                    worst = e;
                }
            }
        }
        if let (Some(cpu), Some(Some(sc)), Some(index)) = (cpu, ours.first(), indices.first()) {
            sc.record_frame_cpu(*index, cpu.elapsed());
        }
        worst
    })
}

pub(super) unsafe extern "system" fn device_group_present_capabilities(
    _device: vk::Device,
    out: *mut vk::DeviceGroupPresentCapabilitiesKHR<'_>,
) -> vk::Result {
    guard(
        "vkGetDeviceGroupPresentCapabilitiesKHR",
        vk::Result::ERROR_INITIALIZATION_FAILED,
        || {
            // SAFETY: the application's structure.
            let Some(out) = (unsafe { out.as_mut() }) else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            out.present_mask = [0; vk::MAX_DEVICE_GROUP_SIZE];
            out.present_mask[0] = 1;
            out.modes = vk::DeviceGroupPresentModeFlagsKHR::LOCAL;
            vk::Result::SUCCESS
        },
    )
}

pub(super) unsafe extern "system" fn device_group_surface_present_modes(
    device: vk::Device,
    handle: vk::SurfaceKHR,
    out: *mut vk::DeviceGroupPresentModeFlagsKHR,
) -> vk::Result {
    guard(
        "vkGetDeviceGroupSurfacePresentModesKHR",
        vk::Result::ERROR_SURFACE_LOST_KHR,
        || {
            if surface(handle).is_none() {
                let Some(dev) = dev_of(device) else {
                    return vk::Result::ERROR_INITIALIZATION_FAILED;
                };
                if let Err(e) = foreign_surface("vkGetDeviceGroupSurfacePresentModesKHR", handle) {
                    return e;
                }
                // SAFETY: the driver's surface, forwarded.
                return unsafe {
                    (dev.ext
                        .next_swapchain
                        .get_device_group_surface_present_modes_khr)(
                        device, handle, out
                    )
                };
            }
            // SAFETY: the application's output.
            let Some(out) = (unsafe { out.as_mut() }) else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            *out = vk::DeviceGroupPresentModeFlagsKHR::LOCAL;
            vk::Result::SUCCESS
        },
    )
}

/// The structure of type `s_type` in a present call's chain, if any.
fn in_present_chain<'a, T>(
    pi: &'a vk::PresentInfoKHR<'_>,
    s_type: vk::StructureType,
) -> Option<&'a T> {
    // SAFETY: the application's valid chain; the callers pair `T` with the
    // sType that names it.
    unsafe { pnext::find(pi.p_next, s_type) }
}

/// A per-swapchain array of a present call's extension structure (empty
/// when null).
fn per_swapchain<T: Copy>(values: *const T, count: u32) -> Vec<T> {
    if values.is_null() {
        return Vec::new();
    }
    // SAFETY: the application's array of one value per swapchain.
    unsafe { std::slice::from_raw_parts(values, count as usize) }.to_vec()
}

/// The `VkPresentIdKHR` ids of a present call (empty without one).
fn present_ids_of(pi: &vk::PresentInfoKHR<'_>) -> Vec<u64> {
    in_present_chain::<vk::PresentIdKHR<'_>>(pi, vk::StructureType::PRESENT_ID_KHR)
        .map_or_else(Vec::new, |s| {
            per_swapchain(s.p_present_ids, s.swapchain_count)
        })
}

/// The `VkSwapchainPresentFenceInfoEXT` fences of a present call, one per
/// swapchain (empty without one).
fn present_fences_of(pi: &vk::PresentInfoKHR<'_>) -> Vec<vk::Fence> {
    in_present_chain::<vk::SwapchainPresentFenceInfoEXT<'_>>(
        pi,
        vk::StructureType::SWAPCHAIN_PRESENT_FENCE_INFO_EXT,
    )
    .map_or_else(Vec::new, |s| per_swapchain(s.p_fences, s.swapchain_count))
}

/// The `VkSwapchainPresentModeInfoEXT` modes of a present call, one per
/// swapchain (empty without one).
fn present_modes_of(pi: &vk::PresentInfoKHR<'_>) -> Vec<vk::PresentModeKHR> {
    in_present_chain::<vk::SwapchainPresentModeInfoEXT<'_>>(
        pi,
        vk::StructureType::SWAPCHAIN_PRESENT_MODE_INFO_EXT,
    )
    .map_or_else(Vec::new, |s| {
        per_swapchain(s.p_present_modes, s.swapchain_count)
    })
}

/// `vkReleaseSwapchainImagesEXT`: acquired images given back unpresented.
pub(super) unsafe extern "system" fn release_swapchain_images(
    device: vk::Device,
    info: *const vk::ReleaseSwapchainImagesInfoEXT<'_>,
) -> vk::Result {
    // SAFETY: the application's structure.
    let Some(ri) = (unsafe { info.as_ref() }) else {
        return vk::Result::ERROR_UNKNOWN;
    };
    let indices: &[u32] = if ri.p_image_indices.is_null() {
        &[]
    } else {
        // SAFETY: the application's array of the given length.
        unsafe { std::slice::from_raw_parts(ri.p_image_indices, ri.image_index_count as usize) }
    };
    swapchain_call(
        "vkReleaseSwapchainImagesEXT",
        device,
        ri.swapchain,
        vk::Result::ERROR_SURFACE_LOST_KHR,
        |d| match d.ext.next_release_images {
            // SAFETY: the driver's swapchain, forwarded.
            Some(f) => unsafe { f(device, info) },
            None => vk::Result::ERROR_SURFACE_LOST_KHR,
        },
        |sc| sc.release_images(indices),
    )
}

pub(super) unsafe extern "system" fn wait_for_present(
    device: vk::Device,
    handle: vk::SwapchainKHR,
    present_id: u64,
    timeout: u64,
) -> vk::Result {
    swapchain_call(
        "vkWaitForPresentKHR",
        device,
        handle,
        vk::Result::ERROR_DEVICE_LOST,
        |d| match d.ext.next_present_wait {
            // SAFETY: the driver's swapchain, forwarded.
            Some(f) => unsafe { f(device, handle, present_id, timeout) },
            None => vk::Result::ERROR_SURFACE_LOST_KHR,
        },
        |sc| sc.wait_for_present(present_id, timeout),
    )
}
