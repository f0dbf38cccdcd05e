//! Queue submissions under a shared lock.
//!
//! Where the driver cannot import a sync_file into a semaphore or fence, the
//! only way for the layer to signal an application's acquire semaphore is an
//! empty `vkQueueSubmit` of its own. Vulkan requires queues to be externally
//! synchronized, so on such devices (and only there: `vkGetDeviceProcAddr`
//! decides per device) the layer takes the same per-queue lock around the
//! application's submissions as around its own.

use super::device;
use super::guard::guard;
use ash::vk;
use std::ffi::CStr;

pub fn function(name: &CStr) -> vk::PFN_vkVoidFunction {
    macro_rules! f {
        ($f:expr, $t:ty) => {{
            let f: $t = $f;
            // SAFETY: cast to the generic pointer type, cast back by name.
            Some(unsafe { std::mem::transmute::<$t, unsafe extern "system" fn()>(f) })
        }};
    }
    match name.to_bytes() {
        b"vkQueueSubmit" => f!(queue_submit, vk::PFN_vkQueueSubmit),
        b"vkQueueSubmit2" => f!(queue_submit2, vk::PFN_vkQueueSubmit2),
        b"vkQueueSubmit2KHR" => f!(queue_submit2_khr, vk::PFN_vkQueueSubmit2),
        b"vkQueueBindSparse" => f!(queue_bind_sparse, vk::PFN_vkQueueBindSparse),
        b"vkQueueWaitIdle" => f!(queue_wait_idle, vk::PFN_vkQueueWaitIdle),
        b"vkDeviceWaitIdle" => f!(device_wait_idle, vk::PFN_vkDeviceWaitIdle),
        _ => None,
    }
}

/// Runs `f` holding `queue`'s lock (or without one for a queue the layer
/// does not know, such as one from `vkGetDeviceQueue2` with flags).
fn locked(
    queue: vk::Queue,
    f: impl FnOnce(&crate::device::DeviceData) -> vk::Result,
) -> vk::Result {
    // SAFETY: a valid queue handle from the application.
    let Some(dev) = (unsafe { device::get(queue) }) else {
        return vk::Result::ERROR_DEVICE_LOST;
    };
    match dev.queue(queue) {
        Some(q) => {
            let _held = q.lock.lock().unwrap_or_else(|e| e.into_inner());
            f(&dev)
        }
        None => f(&dev),
    }
}

unsafe extern "system" fn queue_submit(
    queue: vk::Queue,
    count: u32,
    submits: *const vk::SubmitInfo,
    fence: vk::Fence,
) -> vk::Result {
    guard("vkQueueSubmit", vk::Result::ERROR_DEVICE_LOST, || {
        // SAFETY: forwarded application arguments.
        locked(queue, |d| unsafe {
            (d.fns.fp_v1_0().queue_submit)(queue, count, submits, fence)
        })
    })
}

unsafe extern "system" fn queue_submit2(
    queue: vk::Queue,
    count: u32,
    submits: *const vk::SubmitInfo2,
    fence: vk::Fence,
) -> vk::Result {
    guard("vkQueueSubmit2", vk::Result::ERROR_DEVICE_LOST, || {
        // SAFETY: forwarded application arguments.
        locked(queue, |d| unsafe {
            (d.fns.fp_v1_3().queue_submit2)(queue, count, submits, fence)
        })
    })
}

/// `VK_KHR_synchronization2` on devices below Vulkan 1.3: the driver's
/// function of that name, not the core one (which may not exist).
unsafe extern "system" fn queue_submit2_khr(
    queue: vk::Queue,
    count: u32,
    submits: *const vk::SubmitInfo2,
    fence: vk::Fence,
) -> vk::Result {
    guard("vkQueueSubmit2KHR", vk::Result::ERROR_DEVICE_LOST, || {
        locked(queue, |d| match d.ext.next_queue_submit2_khr {
            // SAFETY: forwarded application arguments.
            Some(f) => unsafe { f(queue, count, submits, fence) },
            None => vk::Result::ERROR_EXTENSION_NOT_PRESENT,
        })
    })
}

unsafe extern "system" fn queue_bind_sparse(
    queue: vk::Queue,
    count: u32,
    binds: *const vk::BindSparseInfo,
    fence: vk::Fence,
) -> vk::Result {
    guard("vkQueueBindSparse", vk::Result::ERROR_DEVICE_LOST, || {
        // SAFETY: forwarded application arguments.
        locked(queue, |d| unsafe {
            (d.fns.fp_v1_0().queue_bind_sparse)(queue, count, binds, fence)
        })
    })
}

unsafe extern "system" fn queue_wait_idle(queue: vk::Queue) -> vk::Result {
    guard("vkQueueWaitIdle", vk::Result::ERROR_DEVICE_LOST, || {
        // SAFETY: forwarded application arguments.
        locked(queue, |d| unsafe {
            (d.fns.fp_v1_0().queue_wait_idle)(queue)
        })
    })
}

unsafe extern "system" fn device_wait_idle(device: vk::Device) -> vk::Result {
    guard("vkDeviceWaitIdle", vk::Result::ERROR_DEVICE_LOST, || {
        // SAFETY: a valid device from the application.
        let Some(dev) = (unsafe { device::get(device) }) else {
            return vk::Result::ERROR_DEVICE_LOST;
        };
        // vkDeviceWaitIdle needs every queue externally synchronized.
        let _held: Vec<_> = dev
            .queues
            .iter()
            .map(|q| q.lock.lock().unwrap_or_else(|e| e.into_inner()))
            .collect();
        // SAFETY: forwarded application arguments.
        unsafe { (dev.fns.fp_v1_0().device_wait_idle)(device) }
    })
}
