//! The surface entry points: `vkCreate*SurfaceKHR` for Wayland, XCB,
//! Xlib and headless, presentation support, `vkDestroySurfaceKHR`, and the
//! surface queries (support, capabilities, formats, present modes, present
//! rectangles). Surfaces the layer did not make go to the driver.

use super::{foreign_surface, inst_of, surface};
use crate::device::InstanceData;
use crate::layer::dispatch::fill_array;
use crate::layer::guard::guard;
use crate::layer::instance;
use crate::pnext;
use crate::wsi::headless::HeadlessSurface;
use crate::wsi::surface::Surface;
use crate::wsi::wayland::WaylandSurface;
use crate::wsi::x11::X11Surface;
use crate::wsi::{new_handle, SURFACES};
use ash::vk::{self, Handle};
use std::ffi::c_void;
use std::sync::Arc;

pub(super) unsafe extern "system" fn create_wayland_surface(
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

pub(super) unsafe extern "system" fn create_headless_surface(
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

pub(super) unsafe extern "system" fn wayland_presentation_support(
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

pub(super) unsafe extern "system" fn create_xcb_surface(
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

pub(super) unsafe extern "system" fn create_xlib_surface(
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

pub(super) unsafe extern "system" fn xcb_presentation_support(
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

pub(super) unsafe extern "system" fn xlib_presentation_support(
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

pub(super) unsafe extern "system" fn destroy_surface(
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

pub(super) unsafe extern "system" fn surface_support(
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

pub(super) unsafe extern "system" fn surface_capabilities(
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

pub(super) unsafe extern "system" fn surface_capabilities2(
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

pub(super) unsafe extern "system" fn surface_formats(
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

pub(super) unsafe extern "system" fn surface_formats2(
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

pub(super) unsafe extern "system" fn surface_present_modes(
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

pub(super) unsafe extern "system" fn present_rectangles(
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
