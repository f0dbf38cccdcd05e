//! Surfaces, the platform-neutral swapchain core, and the platform
//! backends.
//!
//! Handles are numbers the layer hands out and looks up in a registry, so a
//! stale or foreign handle is an error, never a wild pointer. Swapchains the
//! driver below made (on surfaces the layer does not own) are remembered
//! when their creation passes through the layer, and only those are passed
//! through; any other swapchain handle is an error. A surface handle outside
//! the layer's range belongs to the loader or driver and is passed through;
//! one inside it that is not registered (destroyed, or never made) is an
//! error.

pub mod fallback;
pub mod frame_limit;
pub mod headless;
pub mod image;
pub mod platform;
pub mod shm;
pub mod stats;
pub mod surface;
pub mod swapchain;
pub mod wayland;
pub mod x11;

/// `VK_PRESENT_MODE_FIFO_LATEST_READY_EXT` (`VK_EXT_present_mode_fifo_latest_ready`,
/// newer than the headers the layer is built with): FIFO, where each
/// refresh shows the newest frame that is ready and drops the older ones.
pub const FIFO_LATEST_READY: ash::vk::PresentModeKHR =
    ash::vk::PresentModeKHR::from_raw(1_000_361_000);
/// The extension's name.
pub const FIFO_LATEST_READY_NAME: &std::ffi::CStr = c"VK_EXT_present_mode_fifo_latest_ready";
/// Every present mode the layer implements, for a surface that can honour
/// each (X11 and the headless clock; Wayland offers FIFO_RELAXED only with
/// tearing control).
pub const ALL_PRESENT_MODES: [ash::vk::PresentModeKHR; 5] = [
    ash::vk::PresentModeKHR::FIFO,
    ash::vk::PresentModeKHR::FIFO_RELAXED,
    ash::vk::PresentModeKHR::MAILBOX,
    ash::vk::PresentModeKHR::IMMEDIATE,
    FIFO_LATEST_READY,
];
/// `VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PRESENT_MODE_FIFO_LATEST_READY_FEATURES_EXT`.
pub const FIFO_LATEST_READY_FEATURES: ash::vk::StructureType =
    ash::vk::StructureType::from_raw(1_000_361_000);

use crate::device::DeviceData;
use crate::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use surface::Surface;
use swapchain::Swapchain;

pub static SURFACES: Registry<u64, Surface> = Registry::new();
pub static SWAPCHAINS: Registry<u64, Swapchain> = Registry::new();
/// Swapchains the driver below made through the layer, with the raw
/// `VkDevice` each belongs to.
pub static DRIVER_SWAPCHAINS: Registry<u64, u64> = Registry::new();

/// Handles start high so they are unlikely to collide with a driver's.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(0x5b5b_0000_0000_0001);

pub fn new_handle() -> u64 {
    NEXT_HANDLE.fetch_add(1, Ordering::Relaxed)
}

/// Whether `raw` lies in the range the layer's handles come from (no
/// pointer the loader or a driver hands out on a 64-bit system does).
pub fn is_layer_handle(raw: u64) -> bool {
    raw >> 48 == 0x5b5b
}

/// Called when a device is destroyed: tears down swapchains the
/// application left behind.
pub fn device_destroyed(device: &DeviceData) {
    let handle = device.fns.handle();
    let left = SWAPCHAINS.remove_where(|s| s.dev.fns.handle() == handle);
    DRIVER_SWAPCHAINS.remove_where(|d| *d == ash::vk::Handle::as_raw(handle));
    if !left.is_empty() {
        log::warn!(
            "vkDestroyDevice: {} swapchain(s) still alive; destroying them",
            left.len()
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn layer_handles_are_recognised() {
        let h = super::new_handle();
        assert!(super::is_layer_handle(h));
        assert!(!super::is_layer_handle(0));
        assert!(!super::is_layer_handle(0x5555_dead_beef));
        assert!(!super::is_layer_handle(u64::MAX));
    }
}
