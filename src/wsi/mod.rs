//! Surfaces, the platform-neutral swapchain core, and the platform
//! backends.
//!
//! Handles are numbers the layer hands out and looks up in a registry, so a
//! stale or foreign handle is an error, never a wild pointer. A handle the
//! layer does not know belongs to the driver below and is passed through.

pub mod image;
pub mod platform;
pub mod shm;
pub mod stats;
pub mod surface;
pub mod swapchain;
pub mod wayland;
pub mod x11;

use crate::layer::device::DeviceData;
use crate::layer::dispatch::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use surface::Surface;
use swapchain::Swapchain;

pub static SURFACES: Registry<u64, Surface> = Registry::new();
pub static SWAPCHAINS: Registry<u64, Swapchain> = Registry::new();

/// Handles start high so they are unlikely to collide with a driver's.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(0x5b5b_0000_0000_0001);

pub fn new_handle() -> u64 {
    NEXT_HANDLE.fetch_add(1, Ordering::Relaxed)
}

/// Called when a device is destroyed: tears down swapchains the
/// application left behind.
pub fn device_destroyed(device: &DeviceData) {
    let handle = device.fns.handle();
    let left = SWAPCHAINS.remove_where(|s| s.dev.fns.handle() == handle);
    if !left.is_empty() {
        log::warn!(
            "vkDestroyDevice: {} swapchain(s) still alive; destroying them",
            left.len()
        );
    }
}
