//! Entry points of the surface and swapchain functions the layer
//! implements. Each finds the layer's state for its handles and calls into
//! [`crate::wsi`]; handles the layer does not own go to the driver.
//!
//! Here: the tables `vkGet*ProcAddr` answers from, and the lookups every
//! entry point starts with; `surface`, `swapchain` and `features` the entry
//! points.

use super::device;
use super::instance;
use crate::device::{DeviceData, InstanceData};
use crate::wsi::surface::Surface;
use crate::wsi::swapchain::Swapchain;
use crate::wsi::{is_layer_handle, DRIVER_SWAPCHAINS, SURFACES, SWAPCHAINS};
use ash::vk::{self, Handle};
use std::ffi::CStr;
use std::sync::Arc;

mod features;
mod surface;
mod swapchain;

use features::physical_device_features2;
use surface::*;
use swapchain::*;

macro_rules! pfn {
    ($f:expr, $t:ty) => {{
        let f: $t = $f;
        // SAFETY: cast to the generic pointer type, cast back by name.
        Some(unsafe { std::mem::transmute::<$t, unsafe extern "system" fn()>(f) })
    }};
}

pub fn instance_function(name: &CStr) -> vk::PFN_vkVoidFunction {
    match name.to_bytes() {
        b"vkDestroySurfaceKHR" => pfn!(destroy_surface, vk::PFN_vkDestroySurfaceKHR),
        b"vkCreateHeadlessSurfaceEXT" => {
            pfn!(create_headless_surface, vk::PFN_vkCreateHeadlessSurfaceEXT)
        }
        b"vkGetPhysicalDeviceFeatures2" | b"vkGetPhysicalDeviceFeatures2KHR" => {
            pfn!(
                physical_device_features2,
                vk::PFN_vkGetPhysicalDeviceFeatures2
            )
        }
        b"vkGetPhysicalDeviceSurfaceSupportKHR" => pfn!(
            surface_support,
            vk::PFN_vkGetPhysicalDeviceSurfaceSupportKHR
        ),
        b"vkGetPhysicalDeviceSurfaceCapabilitiesKHR" => {
            pfn!(
                surface_capabilities,
                vk::PFN_vkGetPhysicalDeviceSurfaceCapabilitiesKHR
            )
        }
        b"vkGetPhysicalDeviceSurfaceCapabilities2KHR" => {
            pfn!(
                surface_capabilities2,
                vk::PFN_vkGetPhysicalDeviceSurfaceCapabilities2KHR
            )
        }
        b"vkGetPhysicalDeviceSurfaceFormatsKHR" => pfn!(
            surface_formats,
            vk::PFN_vkGetPhysicalDeviceSurfaceFormatsKHR
        ),
        b"vkGetPhysicalDeviceSurfaceFormats2KHR" => {
            pfn!(
                surface_formats2,
                vk::PFN_vkGetPhysicalDeviceSurfaceFormats2KHR
            )
        }
        b"vkGetPhysicalDeviceSurfacePresentModesKHR" => {
            pfn!(
                surface_present_modes,
                vk::PFN_vkGetPhysicalDeviceSurfacePresentModesKHR
            )
        }
        b"vkGetPhysicalDevicePresentRectanglesKHR" => {
            pfn!(
                present_rectangles,
                vk::PFN_vkGetPhysicalDevicePresentRectanglesKHR
            )
        }
        b"vkCreateWaylandSurfaceKHR" => {
            pfn!(create_wayland_surface, vk::PFN_vkCreateWaylandSurfaceKHR)
        }
        b"vkGetPhysicalDeviceWaylandPresentationSupportKHR" => {
            pfn!(
                wayland_presentation_support,
                vk::PFN_vkGetPhysicalDeviceWaylandPresentationSupportKHR
            )
        }
        b"vkCreateXcbSurfaceKHR" => pfn!(create_xcb_surface, vk::PFN_vkCreateXcbSurfaceKHR),
        b"vkGetPhysicalDeviceXcbPresentationSupportKHR" => {
            pfn!(
                xcb_presentation_support,
                vk::PFN_vkGetPhysicalDeviceXcbPresentationSupportKHR
            )
        }
        b"vkCreateXlibSurfaceKHR" => pfn!(create_xlib_surface, vk::PFN_vkCreateXlibSurfaceKHR),
        b"vkGetPhysicalDeviceXlibPresentationSupportKHR" => {
            pfn!(
                xlib_presentation_support,
                vk::PFN_vkGetPhysicalDeviceXlibPresentationSupportKHR
            )
        }
        _ => None,
    }
}

pub fn device_function(name: &CStr) -> vk::PFN_vkVoidFunction {
    match name.to_bytes() {
        b"vkCreateSwapchainKHR" => pfn!(create_swapchain, vk::PFN_vkCreateSwapchainKHR),
        b"vkDestroySwapchainKHR" => pfn!(destroy_swapchain, vk::PFN_vkDestroySwapchainKHR),
        b"vkGetSwapchainImagesKHR" => pfn!(get_swapchain_images, vk::PFN_vkGetSwapchainImagesKHR),
        b"vkAcquireNextImageKHR" => pfn!(acquire_next_image, vk::PFN_vkAcquireNextImageKHR),
        b"vkAcquireNextImage2KHR" => pfn!(acquire_next_image2, vk::PFN_vkAcquireNextImage2KHR),
        b"vkQueuePresentKHR" => pfn!(queue_present, vk::PFN_vkQueuePresentKHR),
        b"vkWaitForPresentKHR" => pfn!(wait_for_present, vk::PFN_vkWaitForPresentKHR),
        b"vkReleaseSwapchainImagesEXT" => {
            pfn!(
                release_swapchain_images,
                vk::PFN_vkReleaseSwapchainImagesEXT
            )
        }
        b"vkGetDeviceGroupPresentCapabilitiesKHR" => {
            pfn!(
                device_group_present_capabilities,
                vk::PFN_vkGetDeviceGroupPresentCapabilitiesKHR
            )
        }
        b"vkGetDeviceGroupSurfacePresentModesKHR" => {
            pfn!(
                device_group_surface_present_modes,
                vk::PFN_vkGetDeviceGroupSurfacePresentModesKHR
            )
        }
        _ => None,
    }
}

fn surface(handle: vk::SurfaceKHR) -> Option<Arc<Surface>> {
    SURFACES.get(handle.as_raw())
}

fn swapchain(handle: vk::SwapchainKHR) -> Option<Arc<Swapchain>> {
    SWAPCHAINS.get(handle.as_raw())
}

/// A surface handle the layer does not own may go to the driver only if it
/// can be the loader's: not null, and not from the layer's own range (a
/// destroyed or made-up layer surface).
fn foreign_surface(entry: &str, handle: vk::SurfaceKHR) -> Result<(), vk::Result> {
    let raw = handle.as_raw();
    if raw == 0 || is_layer_handle(raw) {
        log::error!("{entry}: unknown or destroyed VkSurfaceKHR {raw:#x}");
        return Err(vk::Result::ERROR_SURFACE_LOST_KHR);
    }
    Ok(())
}

/// A swapchain handle the layer does not own goes to the driver only if the
/// driver made it; anything else (null, destroyed, made up) would crash the
/// driver.
fn foreign_swapchain(entry: &str, handle: vk::SwapchainKHR) -> Result<(), vk::Result> {
    let raw = handle.as_raw();
    if DRIVER_SWAPCHAINS.get(raw).is_none() {
        log::error!("{entry}: unknown or destroyed VkSwapchainKHR {raw:#x}");
        return Err(vk::Result::ERROR_SURFACE_LOST_KHR);
    }
    Ok(())
}

fn inst_of(pd: vk::PhysicalDevice) -> Option<Arc<InstanceData>> {
    // SAFETY: a valid physical device from the application.
    unsafe { instance::get(pd) }
}

fn dev_of<H: Handle + Copy>(h: H) -> Option<Arc<DeviceData>> {
    // SAFETY: a valid device or queue from the application.
    unsafe { device::get(h) }
}
