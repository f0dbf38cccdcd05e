//! Entry points of the surface and swapchain functions the layer implements.

use ash::vk;
use std::ffi::CStr;

pub fn instance_function(_name: &CStr) -> vk::PFN_vkVoidFunction {
    None
}

pub fn device_function(_name: &CStr) -> vk::PFN_vkVoidFunction {
    None
}
