//! The swapchain core and its platform backends.

use crate::layer::device::DeviceData;

/// Called when a device is destroyed: tears down swapchains the
/// application left behind.
pub fn device_destroyed(_device: &DeviceData) {}
