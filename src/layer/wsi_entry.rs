//! Entry points of the surface and swapchain functions the layer
//! implements. Each finds the layer's state for its handles and calls into
//! [`crate::wsi`]; handles the layer does not own go to the driver.

use super::device;
use super::dispatch::fill_array;
use super::guard::guard;
use super::instance;
use crate::device::cpu_time::LayerTime;
use crate::device::{DeviceData, InstanceData};
use crate::pnext;
use crate::wsi::headless::HeadlessSurface;
use crate::wsi::surface::Surface;
use crate::wsi::swapchain::Swapchain;
use crate::wsi::wayland::WaylandSurface;
use crate::wsi::x11::X11Surface;
use crate::wsi::{is_layer_handle, new_handle, DRIVER_SWAPCHAINS, SURFACES, SWAPCHAINS};
use ash::vk::{self, Handle};
use std::ffi::{c_void, CStr};
use std::sync::Arc;

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

// ---- surfaces ----

unsafe extern "system" fn create_wayland_surface(
    instance: vk::Instance,
    ci: *const vk::WaylandSurfaceCreateInfoKHR<'_>,
    _alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::SurfaceKHR,
) -> vk::Result {
    guard(
        "vkCreateWaylandSurfaceKHR",
        vk::Result::ERROR_OUT_OF_HOST_MEMORY,
        || {
            // SAFETY: the application's create info.
            let Some(ci) = (unsafe { ci.as_ref() }) else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            if ci.display.is_null() || ci.surface.is_null() || out.is_null() {
                log::error!("vkCreateWaylandSurfaceKHR: null display or surface");
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            }
            let _ = instance;
            // SAFETY: the application's live display and surface, which the spec
            // requires to outlive the VkSurfaceKHR.
            let platform = unsafe { WaylandSurface::new(ci.display, ci.surface) };
            register_surface(Box::new(platform), out)
        },
    )
}

unsafe extern "system" fn create_headless_surface(
    _instance: vk::Instance,
    ci: *const vk::HeadlessSurfaceCreateInfoEXT<'_>,
    _alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::SurfaceKHR,
) -> vk::Result {
    guard(
        "vkCreateHeadlessSurfaceEXT",
        vk::Result::ERROR_OUT_OF_HOST_MEMORY,
        || {
            if ci.is_null() || out.is_null() {
                log::error!("vkCreateHeadlessSurfaceEXT: null create info or output");
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            }
            register_surface(Box::new(HeadlessSurface), out)
        },
    )
}

unsafe extern "system" fn wayland_presentation_support(
    _pd: vk::PhysicalDevice,
    _queue_family: u32,
    display: *mut c_void,
) -> vk::Bool32 {
    // Every queue can present: presentation needs only a queue submission.
    guard(
        "vkGetPhysicalDeviceWaylandPresentationSupportKHR",
        vk::FALSE,
        || (!display.is_null()).into(),
    )
}

/// Registers an X11 surface on the application's xcb connection.
///
/// # Safety
/// `connection` must be the application's live connection and `out` valid.
unsafe fn new_x11_surface(
    platform: &'static str,
    connection: *mut c_void,
    window: u32,
    out: *mut vk::SurfaceKHR,
) -> vk::Result {
    if window == 0 {
        log::error!("vkCreate{platform}SurfaceKHR: no window");
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: the application's live connection, which the spec requires to
    // outlive the VkSurfaceKHR.
    match unsafe { X11Surface::new(platform, connection, window) } {
        Ok(p) => register_surface(Box::new(p), out),
        Err(e) => e,
    }
}

/// Gives a new surface its handle and hands that to the application.
fn register_surface(
    platform: Box<dyn crate::wsi::platform::PlatformSurface>,
    out: *mut vk::SurfaceKHR,
) -> vk::Result {
    let handle = new_handle();
    SURFACES.insert(handle, Arc::new(Surface { platform }));
    write_out(out, vk::SurfaceKHR::from_raw(handle))
}

unsafe extern "system" fn create_xcb_surface(
    _instance: vk::Instance,
    ci: *const vk::XcbSurfaceCreateInfoKHR<'_>,
    _alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::SurfaceKHR,
) -> vk::Result {
    guard(
        "vkCreateXcbSurfaceKHR",
        vk::Result::ERROR_OUT_OF_HOST_MEMORY,
        || {
            // SAFETY: the application's create info.
            let Some(ci) = (unsafe { ci.as_ref() }) else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            if ci.connection.is_null() || out.is_null() {
                log::error!("vkCreateXcbSurfaceKHR: null connection");
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            }
            // SAFETY: the application's live connection; `out` checked.
            unsafe { new_x11_surface("xcb", ci.connection, ci.window, out) }
        },
    )
}

unsafe extern "system" fn create_xlib_surface(
    _instance: vk::Instance,
    ci: *const vk::XlibSurfaceCreateInfoKHR<'_>,
    _alloc: *const vk::AllocationCallbacks<'_>,
    out: *mut vk::SurfaceKHR,
) -> vk::Result {
    guard(
        "vkCreateXlibSurfaceKHR",
        vk::Result::ERROR_OUT_OF_HOST_MEMORY,
        || {
            // SAFETY: the application's create info.
            let Some(ci) = (unsafe { ci.as_ref() }) else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            if out.is_null() {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            }
            // SAFETY: the application's live display.
            let conn = match unsafe { crate::wsi::x11::xlib::xcb_connection(ci.dpy) } {
                Ok(c) => c,
                Err(e) => return e,
            };
            let Ok(window) = u32::try_from(ci.window) else {
                log::error!("vkCreateXlibSurfaceKHR: window {:#x} is no XID", ci.window);
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            // SAFETY: the display's connection lives as long as the display.
            unsafe { new_x11_surface("xlib", conn, window, out) }
        },
    )
}

unsafe extern "system" fn xcb_presentation_support(
    _pd: vk::PhysicalDevice,
    _queue_family: u32,
    connection: *mut c_void,
    _visual: u32,
) -> vk::Bool32 {
    // Every queue can present: presentation needs only a queue submission.
    guard(
        "vkGetPhysicalDeviceXcbPresentationSupportKHR",
        vk::FALSE,
        // SAFETY: null or the application's connection.
        || unsafe { crate::wsi::x11::conn::ptr_alive(connection) }.into(),
    )
}

unsafe extern "system" fn xlib_presentation_support(
    _pd: vk::PhysicalDevice,
    _queue_family: u32,
    dpy: *mut vk::Display,
    _visual: vk::VisualID,
) -> vk::Bool32 {
    guard(
        "vkGetPhysicalDeviceXlibPresentationSupportKHR",
        vk::FALSE,
        || {
            // SAFETY: the application's live display.
            match unsafe { crate::wsi::x11::xlib::xcb_connection(dpy.cast()) } {
                // SAFETY: the display's own connection.
                Ok(c) => unsafe { crate::wsi::x11::conn::ptr_alive(c) }.into(),
                Err(_) => vk::FALSE,
            }
        },
    )
}

unsafe extern "system" fn destroy_surface(
    instance: vk::Instance,
    handle: vk::SurfaceKHR,
    alloc: *const vk::AllocationCallbacks<'_>,
) {
    guard("vkDestroySurfaceKHR", (), || {
        if handle == vk::SurfaceKHR::null() {
            return;
        }
        if SURFACES.remove(handle.as_raw()).is_none() {
            if foreign_surface("vkDestroySurfaceKHR", handle).is_err() {
                return;
            }
            // SAFETY: a valid instance from the application.
            if let Some(inst) = unsafe { instance::get(instance) } {
                // SAFETY: the driver's own surface.
                unsafe { (inst.next_surface.destroy_surface_khr)(instance, handle, alloc) };
            }
        }
    })
}

/// The body of every physical-device surface query: `ours` for a surface
/// the layer made, `forward` (the driver's function) for one the loader
/// made, `VK_ERROR_SURFACE_LOST_KHR` for a destroyed or made-up one.
fn surface_query(
    entry: &'static str,
    pd: vk::PhysicalDevice,
    handle: Option<vk::SurfaceKHR>,
    forward: impl FnOnce(&InstanceData) -> vk::Result,
    ours: impl FnOnce(&InstanceData, &Surface) -> vk::Result,
) -> vk::Result {
    guard(entry, vk::Result::ERROR_SURFACE_LOST_KHR, || {
        let (Some(inst), Some(handle)) = (inst_of(pd), handle) else {
            return vk::Result::ERROR_INITIALIZATION_FAILED;
        };
        match surface(handle) {
            Some(s) => ours(&inst, &s),
            None => match foreign_surface(entry, handle) {
                Ok(()) => forward(&inst),
                Err(e) => e,
            },
        }
    })
}

/// Writes `value` to the application's `out`, if not null.
fn write_out<T>(out: *mut T, value: T) -> vk::Result {
    // SAFETY: the application's output pointer, null-checked.
    match unsafe { out.as_mut() } {
        Some(o) => {
            *o = value;
            vk::Result::SUCCESS
        }
        None => vk::Result::ERROR_INITIALIZATION_FAILED,
    }
}

unsafe extern "system" fn surface_support(
    pd: vk::PhysicalDevice,
    queue_family: u32,
    handle: vk::SurfaceKHR,
    out: *mut vk::Bool32,
) -> vk::Result {
    surface_query(
        "vkGetPhysicalDeviceSurfaceSupportKHR",
        pd,
        Some(handle),
        // SAFETY: the driver's surface, forwarded.
        |i| unsafe {
            (i.next_surface.get_physical_device_surface_support_khr)(pd, queue_family, handle, out)
        },
        // Every queue can present: presentation needs only a submission.
        |_, _| write_out(out, vk::TRUE),
    )
}

unsafe extern "system" fn surface_capabilities(
    pd: vk::PhysicalDevice,
    handle: vk::SurfaceKHR,
    out: *mut vk::SurfaceCapabilitiesKHR,
) -> vk::Result {
    surface_query(
        "vkGetPhysicalDeviceSurfaceCapabilitiesKHR",
        pd,
        Some(handle),
        // SAFETY: the driver's surface, forwarded.
        |i| unsafe {
            (i.next_surface.get_physical_device_surface_capabilities_khr)(pd, handle, out)
        },
        |i, s| {
            s.capabilities(i, pd)
                .map_or_else(|e| e, |c| write_out(out, c))
        },
    )
}

unsafe extern "system" fn surface_capabilities2(
    pd: vk::PhysicalDevice,
    info: *const vk::PhysicalDeviceSurfaceInfo2KHR<'_>,
    out: *mut vk::SurfaceCapabilities2KHR<'_>,
) -> vk::Result {
    // SAFETY: the application's structure (null-checked).
    let handle = unsafe { info.as_ref() }.map(|i| i.surface);
    surface_query(
        "vkGetPhysicalDeviceSurfaceCapabilities2KHR",
        pd,
        handle,
        // SAFETY: the driver's surface, forwarded.
        |i| unsafe {
            (i.next_surface_caps2
                .get_physical_device_surface_capabilities2_khr)(pd, info, out)
        },
        |i, s| match (s.capabilities(i, pd), unsafe { out.as_mut() }) {
            (Ok(mut c), Some(o)) => {
                // SAFETY: `info` is non-null here (it gave the surface) and
                // its chain is the application's, valid for the call.
                let mode = unsafe { queried_present_mode(info) };
                if let Some(mode) = mode {
                    c.min_image_count = crate::wsi::surface::min_image_count(mode);
                }
                o.surface_capabilities = c;
                // SAFETY: the application's output chain, valid for the call.
                unsafe { fill_maintenance1_outputs(o, mode, &c) };
                vk::Result::SUCCESS
            }
            (Err(e), _) => e,
            (_, None) => vk::Result::ERROR_INITIALIZATION_FAILED,
        },
    )
}

/// `VK_EXT_surface_maintenance1`: the present mode a capabilities query
/// asks about (`VkSurfacePresentModeEXT` in its chain), if any.
///
/// # Safety
/// `info` must be null or a valid structure with a valid `pNext` chain.
unsafe fn queried_present_mode(
    info: *const vk::PhysicalDeviceSurfaceInfo2KHR<'_>,
) -> Option<vk::PresentModeKHR> {
    // SAFETY: the caller's promise; the sType names the structure.
    unsafe {
        pnext::find::<vk::SurfacePresentModeEXT<'_>>(
            info.as_ref()?.p_next,
            vk::StructureType::SURFACE_PRESENT_MODE_EXT,
        )
    }
    .map(|s| s.present_mode)
}

/// Fills the `VK_EXT_surface_maintenance1` structures chained to a
/// capabilities query's output. The layer's swapchains keep the present
/// mode they were made with (its `VK_EXT_swapchain_maintenance1` switches
/// none), so each mode is only compatible with itself; the layer does no
/// scaling.
///
/// # Safety
/// `out`'s `pNext` chain must be valid and writable.
unsafe fn fill_maintenance1_outputs(
    out: &mut vk::SurfaceCapabilities2KHR<'_>,
    mode: Option<vk::PresentModeKHR>,
    caps: &vk::SurfaceCapabilitiesKHR,
) {
    // SAFETY: the caller's promise, as in `queried_present_mode`; the
    // structure types select the casts, and a non-null array holds at
    // least `present_mode_count` entries.
    unsafe {
        let mut p = out.p_next.cast::<vk::BaseOutStructure<'_>>();
        while let Some(s) = p.as_mut() {
            match s.s_type {
                vk::StructureType::SURFACE_PRESENT_MODE_COMPATIBILITY_EXT => {
                    let c = &mut *p.cast::<vk::SurfacePresentModeCompatibilityEXT<'_>>();
                    let modes: &[vk::PresentModeKHR] = mode.as_slice();
                    if c.p_present_modes.is_null() {
                        c.present_mode_count = modes.len() as u32;
                    } else {
                        let n = modes.len().min(c.present_mode_count as usize);
                        std::ptr::copy_nonoverlapping(modes.as_ptr(), c.p_present_modes, n);
                        c.present_mode_count = n as u32;
                    }
                }
                vk::StructureType::SURFACE_PRESENT_SCALING_CAPABILITIES_EXT => {
                    let c = &mut *p.cast::<vk::SurfacePresentScalingCapabilitiesEXT<'_>>();
                    c.supported_present_scaling = vk::PresentScalingFlagsEXT::empty();
                    c.supported_present_gravity_x = vk::PresentGravityFlagsEXT::empty();
                    c.supported_present_gravity_y = vk::PresentGravityFlagsEXT::empty();
                    c.min_scaled_image_extent = caps.min_image_extent;
                    c.max_scaled_image_extent = caps.max_image_extent;
                }
                _ => {}
            }
            p = s.p_next;
        }
    }
}

fn our_formats(
    s: &Surface,
    inst: &InstanceData,
    pd: vk::PhysicalDevice,
) -> Result<Vec<vk::SurfaceFormatKHR>, vk::Result> {
    Ok(s.formats(inst, pd)?
        .into_iter()
        .map(|(format, _)| vk::SurfaceFormatKHR {
            format,
            color_space: vk::ColorSpaceKHR::SRGB_NONLINEAR,
        })
        .collect())
}

unsafe extern "system" fn surface_formats(
    pd: vk::PhysicalDevice,
    handle: vk::SurfaceKHR,
    count: *mut u32,
    out: *mut vk::SurfaceFormatKHR,
) -> vk::Result {
    surface_query(
        "vkGetPhysicalDeviceSurfaceFormatsKHR",
        pd,
        Some(handle),
        // SAFETY: the driver's surface, forwarded.
        |i| unsafe {
            (i.next_surface.get_physical_device_surface_formats_khr)(pd, handle, count, out)
        },
        // SAFETY: the application's output arrays.
        |i, s| {
            our_formats(s, i, pd)
                .map_or_else(|e| e, |list| unsafe { fill_array(&list, count, out) })
        },
    )
}

unsafe extern "system" fn surface_formats2(
    pd: vk::PhysicalDevice,
    info: *const vk::PhysicalDeviceSurfaceInfo2KHR<'_>,
    count: *mut u32,
    out: *mut vk::SurfaceFormat2KHR<'_>,
) -> vk::Result {
    // SAFETY: the application's structure (null-checked).
    let handle = unsafe { info.as_ref() }.map(|i| i.surface);
    surface_query(
        "vkGetPhysicalDeviceSurfaceFormats2KHR",
        pd,
        handle,
        // SAFETY: the driver's surface, forwarded.
        |i| unsafe {
            (i.next_surface_caps2
                .get_physical_device_surface_formats2_khr)(pd, info, count, out)
        },
        |i, s| {
            let list = match our_formats(s, i, pd) {
                Ok(l) => l,
                Err(e) => return e,
            };
            // SAFETY: the application's count, null-checked.
            let Some(count) = (unsafe { count.as_mut() }) else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            if out.is_null() {
                *count = list.len() as u32;
                return vk::Result::SUCCESS;
            }
            let n = (*count as usize).min(list.len());
            for (i, f) in list.iter().take(n).enumerate() {
                // SAFETY: the application's array of *count elements; only
                // the surfaceFormat member is written, keeping sType/pNext.
                unsafe { (*out.add(i)).surface_format = *f };
            }
            *count = n as u32;
            if n < list.len() {
                vk::Result::INCOMPLETE
            } else {
                vk::Result::SUCCESS
            }
        },
    )
}

unsafe extern "system" fn surface_present_modes(
    pd: vk::PhysicalDevice,
    handle: vk::SurfaceKHR,
    count: *mut u32,
    out: *mut vk::PresentModeKHR,
) -> vk::Result {
    surface_query(
        "vkGetPhysicalDeviceSurfacePresentModesKHR",
        pd,
        Some(handle),
        // SAFETY: the driver's surface, forwarded.
        |i| unsafe {
            (i.next_surface.get_physical_device_surface_present_modes_khr)(pd, handle, count, out)
        },
        // SAFETY: the application's output arrays.
        |_, s| unsafe { fill_array(&s.platform.present_modes(), count, out) },
    )
}

unsafe extern "system" fn present_rectangles(
    pd: vk::PhysicalDevice,
    handle: vk::SurfaceKHR,
    count: *mut u32,
    out: *mut vk::Rect2D,
) -> vk::Result {
    surface_query(
        "vkGetPhysicalDevicePresentRectanglesKHR",
        pd,
        Some(handle),
        // SAFETY: the driver's surface, forwarded.
        |i| unsafe {
            (i.next_swapchain_instance
                .get_physical_device_present_rectangles_khr)(pd, handle, count, out)
        },
        |_, s| match s.platform.current_extent() {
            Ok(e) => {
                let extent = e.unwrap_or(vk::Extent2D {
                    width: u32::MAX,
                    height: u32::MAX,
                });
                let rect = vk::Rect2D {
                    offset: vk::Offset2D::default(),
                    extent,
                };
                // SAFETY: the application's output arrays.
                unsafe { fill_array(&[rect], count, out) }
            }
            Err(e) => e,
        },
    )
}

// ---- swapchains ----

unsafe extern "system" fn create_swapchain(
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

unsafe extern "system" fn destroy_swapchain(
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

unsafe extern "system" fn get_swapchain_images(
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

unsafe extern "system" fn acquire_next_image(
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

unsafe extern "system" fn acquire_next_image2(
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

unsafe extern "system" fn queue_present(
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

unsafe extern "system" fn device_group_present_capabilities(
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

unsafe extern "system" fn device_group_surface_present_modes(
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
unsafe extern "system" fn release_swapchain_images(
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

unsafe extern "system" fn wait_for_present(
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

/// Adds the features of the extensions the layer implements to what the
/// driver reports.
unsafe extern "system" fn physical_device_features2(
    pd: vk::PhysicalDevice,
    features: *mut vk::PhysicalDeviceFeatures2<'_>,
) {
    guard("vkGetPhysicalDeviceFeatures2", (), || {
        let Some(inst) = inst_of(pd) else { return };
        // SAFETY: forwarded; the instance is at least Vulkan 1.1 below the
        // layer, so the core function exists.
        unsafe { (inst.fns.fp_v1_1().get_physical_device_features2)(pd, features) };
        let mut p = features as *mut vk::BaseOutStructure<'_>;
        while !p.is_null() {
            // SAFETY: walking the application's valid output chain.
            let base = unsafe { &mut *p };
            match base.s_type {
                vk::StructureType::PHYSICAL_DEVICE_PRESENT_ID_FEATURES_KHR => {
                    // SAFETY: the sType identifies the structure.
                    unsafe {
                        (*(p as *mut vk::PhysicalDevicePresentIdFeaturesKHR<'_>)).present_id =
                            vk::TRUE
                    };
                }
                vk::StructureType::PHYSICAL_DEVICE_PRESENT_WAIT_FEATURES_KHR => {
                    // SAFETY: the sType identifies the structure.
                    unsafe {
                        (*(p as *mut vk::PhysicalDevicePresentWaitFeaturesKHR<'_>)).present_wait =
                            vk::TRUE
                    };
                }
                vk::StructureType::PHYSICAL_DEVICE_SWAPCHAIN_MAINTENANCE_1_FEATURES_EXT => {
                    // SAFETY: the sType identifies the structure.
                    unsafe {
                        (*(p as *mut vk::PhysicalDeviceSwapchainMaintenance1FeaturesEXT<'_>))
                            .swapchain_maintenance1 = vk::TRUE
                    };
                }
                crate::wsi::FIFO_LATEST_READY_FEATURES => {
                    // SAFETY: the sType identifies the structure:
                    // `VkPhysicalDevicePresentModeFifoLatestReadyFeaturesEXT`,
                    // one VkBool32 after the header.
                    unsafe {
                        (*(p as *mut FifoLatestReadyFeatures)).present_mode_fifo_latest_ready =
                            vk::TRUE
                    };
                }
                _ => {}
            }
            p = base.p_next;
        }
    })
}

/// `VkPhysicalDevicePresentModeFifoLatestReadyFeaturesEXT` (not in the
/// headers the layer is built with).
#[repr(C)]
struct FifoLatestReadyFeatures {
    s_type: vk::StructureType,
    p_next: *mut std::ffi::c_void,
    present_mode_fifo_latest_ready: vk::Bool32,
}
