//! The layer's exported symbols and its `vkGet*ProcAddr` tables.
//!
//! Functions the layer does not intercept are returned straight from the
//! next layer, so they cost nothing. Every intercepted function runs its body
//! under [`guard`] so a panic never unwinds into the application.

use super::device;
use super::dispatch::fill_array;
use super::guard::guard;
use super::instance;
use super::loader_abi::{NegotiateLayerInterface, LAYER_NEGOTIATE_INTERFACE_STRUCT};
use super::wsi_entry;
use ash::vk;
use std::ffi::{c_char, CStr};

pub const LAYER_NAME: &CStr = c"VK_LAYER_SYNCBRIDGE_wsi";
pub const LAYER_DESCRIPTION: &str = "syncbridge: WSI with dma-buf sync_file bridging";

/// Instance extensions the layer implements.
pub const INSTANCE_EXTENSIONS: [(&CStr, u32); 7] = [
    (vk::KHR_SURFACE_NAME, 25),
    (vk::KHR_WAYLAND_SURFACE_NAME, 6),
    (vk::KHR_XCB_SURFACE_NAME, 6),
    (vk::KHR_XLIB_SURFACE_NAME, 6),
    (vk::KHR_GET_SURFACE_CAPABILITIES2_NAME, 1),
    (vk::EXT_SURFACE_MAINTENANCE1_NAME, 1),
    (vk::EXT_HEADLESS_SURFACE_NAME, 1),
];

/// Device extensions the layer implements.
pub const DEVICE_EXTENSIONS: [(&CStr, u32); 5] = [
    (vk::KHR_SWAPCHAIN_NAME, 70),
    (vk::KHR_PRESENT_ID_NAME, 1),
    (vk::KHR_PRESENT_WAIT_NAME, 1),
    (vk::EXT_SWAPCHAIN_MAINTENANCE1_NAME, 1),
    (crate::wsi::FIFO_LATEST_READY_NAME, 1),
];

fn ext_props(list: &[(&CStr, u32)]) -> Vec<vk::ExtensionProperties> {
    list.iter()
        .map(|(name, spec)| {
            let mut p = vk::ExtensionProperties {
                spec_version: *spec,
                ..Default::default()
            };
            copy_name(&mut p.extension_name, name);
            p
        })
        .collect()
}

fn layer_props() -> vk::LayerProperties {
    let mut p = vk::LayerProperties {
        spec_version: vk::make_api_version(0, 1, 3, 239),
        implementation_version: 1,
        ..Default::default()
    };
    copy_name(&mut p.layer_name, LAYER_NAME);
    copy_name(
        &mut p.description,
        &std::ffi::CString::new(LAYER_DESCRIPTION).expect("no nul"),
    );
    p
}

/// Copies a C string into a fixed Vulkan name array, always NUL-terminated.
fn copy_name(dst: &mut [c_char], src: &CStr) {
    let bytes = src.to_bytes();
    let n = bytes.len().min(dst.len() - 1);
    for (d, s) in dst.iter_mut().zip(&bytes[..n]) {
        *d = *s as c_char;
    }
    dst[n] = 0;
}

/// # Safety
/// Called by the Vulkan loader with a valid negotiation structure.
#[no_mangle]
pub unsafe extern "system" fn vkNegotiateLoaderLayerInterfaceVersion(
    negotiate: *mut NegotiateLayerInterface,
) -> vk::Result {
    guard(
        "vkNegotiateLoaderLayerInterfaceVersion",
        vk::Result::ERROR_INITIALIZATION_FAILED,
        || {
            crate::log::init();
            // SAFETY: null-checked; the loader owns the structure.
            let Some(n) = (unsafe { negotiate.as_mut() }) else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            if n.s_type != LAYER_NEGOTIATE_INTERFACE_STRUCT || n.loader_layer_interface_version < 2
            {
                log::error!(
                    "the loader offers layer interface {}, syncbridge needs 2",
                    n.loader_layer_interface_version
                );
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            }
            n.loader_layer_interface_version = 2;
            // Hand out the private functions, never the exported names:
            // inside a shared object a reference to an exported symbol binds
            // to the first definition in the process, which is the loader's
            // own vkGetInstanceProcAddr when the application links libvulkan.
            n.pfn_get_instance_proc_addr = Some(get_instance_proc_addr);
            n.pfn_get_device_proc_addr = Some(get_device_proc_addr);
            n.pfn_get_physical_device_proc_addr = None;
            vk::Result::SUCCESS
        },
    )
}

/// Exported for loaders older than layer interface 2.
///
/// # Safety
/// Called through the loader with a valid instance (or null) and name.
#[no_mangle]
pub unsafe extern "system" fn vkGetInstanceProcAddr(
    instance: vk::Instance,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: forwarded.
    unsafe { get_instance_proc_addr(instance, name) }
}

/// Exported for loaders older than layer interface 2.
///
/// # Safety
/// Called through the loader with a valid device and name.
#[no_mangle]
pub unsafe extern "system" fn vkGetDeviceProcAddr(
    device: vk::Device,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    // SAFETY: forwarded.
    unsafe { get_device_proc_addr(device, name) }
}

unsafe extern "system" fn get_instance_proc_addr(
    instance: vk::Instance,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    guard("vkGetInstanceProcAddr", None, || {
        if name.is_null() {
            return None;
        }
        // SAFETY: a valid C string from the caller.
        let name = unsafe { CStr::from_ptr(name) };
        if let Some(f) = global_function(name) {
            return Some(f);
        }
        // SAFETY: a valid instance handle from the caller.
        let data = unsafe { instance::get(instance) }?;
        if data.active {
            if let Some(f) =
                wsi_entry::instance_function(name).or_else(|| device_function(name, true, true))
            {
                return Some(f);
            }
        } else if let Some(f) = device_function(name, false, false) {
            return Some(f);
        }
        // SAFETY: passing the lookup down the chain.
        unsafe { (data.next_gipa)(instance, name.as_ptr()) }
    })
}

unsafe extern "system" fn get_device_proc_addr(
    device: vk::Device,
    name: *const c_char,
) -> vk::PFN_vkVoidFunction {
    guard("vkGetDeviceProcAddr", None, || {
        if name.is_null() {
            return None;
        }
        // SAFETY: a valid C string from the caller.
        let name = unsafe { CStr::from_ptr(name) };
        // SAFETY: a valid device handle from the caller.
        let data = unsafe { device::get(device) }?;
        let wsi = data.instance.active && data.swapchain_enabled;
        if let Some(f) = device_function(name, wsi, wsi && data.caps.needs_queue_lock()) {
            return Some(f);
        }
        // SAFETY: passing the lookup down the chain.
        unsafe { (data.next_gdpa)(device, name.as_ptr()) }
    })
}

macro_rules! pfn {
    ($f:expr, $t:ty) => {{
        let f: $t = $f;
        // SAFETY: a function pointer cast to the generic Vulkan pointer type,
        // which the loader casts back by name.
        Some(unsafe { std::mem::transmute::<$t, unsafe extern "system" fn()>(f) })
    }};
}

fn global_function(name: &CStr) -> vk::PFN_vkVoidFunction {
    match name.to_bytes() {
        b"vkGetInstanceProcAddr" => pfn!(get_instance_proc_addr, vk::PFN_vkGetInstanceProcAddr),
        b"vkCreateInstance" => pfn!(create_instance, vk::PFN_vkCreateInstance),
        b"vkDestroyInstance" => pfn!(destroy_instance, vk::PFN_vkDestroyInstance),
        b"vkCreateDevice" => pfn!(create_device, vk::PFN_vkCreateDevice),
        b"vkEnumerateInstanceExtensionProperties" => {
            pfn!(
                enumerate_instance_extension_properties,
                vk::PFN_vkEnumerateInstanceExtensionProperties
            )
        }
        b"vkEnumerateInstanceLayerProperties" => {
            pfn!(
                enumerate_instance_layer_properties,
                vk::PFN_vkEnumerateInstanceLayerProperties
            )
        }
        b"vkEnumerateDeviceLayerProperties" => {
            pfn!(
                enumerate_device_layer_properties,
                vk::PFN_vkEnumerateDeviceLayerProperties
            )
        }
        b"vkEnumerateDeviceExtensionProperties" => {
            pfn!(
                enumerate_device_extension_properties,
                vk::PFN_vkEnumerateDeviceExtensionProperties
            )
        }
        _ => None,
    }
}

/// Device-level functions the layer intercepts: always the device lifetime
/// ones; the swapchain ones where the layer implements WSI; the queue
/// submission ones where the layer has to share the application's queues.
fn device_function(name: &CStr, wsi: bool, queue_lock: bool) -> vk::PFN_vkVoidFunction {
    match name.to_bytes() {
        b"vkGetDeviceProcAddr" => return pfn!(get_device_proc_addr, vk::PFN_vkGetDeviceProcAddr),
        b"vkDestroyDevice" => return pfn!(destroy_device, vk::PFN_vkDestroyDevice),
        _ => {}
    }
    if wsi {
        if let Some(f) = wsi_entry::device_function(name) {
            return Some(f);
        }
    }
    if queue_lock {
        return super::queue_lock::function(name);
    }
    None
}

unsafe extern "system" fn create_instance(
    ci: *const vk::InstanceCreateInfo,
    alloc: *const vk::AllocationCallbacks,
    out: *mut vk::Instance,
) -> vk::Result {
    // SAFETY: forwarded loader arguments.
    guard(
        "vkCreateInstance",
        vk::Result::ERROR_INITIALIZATION_FAILED,
        || unsafe { instance::create(ci, alloc, out) },
    )
}

unsafe extern "system" fn destroy_instance(
    instance: vk::Instance,
    alloc: *const vk::AllocationCallbacks,
) {
    // SAFETY: forwarded application arguments.
    guard("vkDestroyInstance", (), || unsafe {
        instance::destroy(instance, alloc)
    })
}

unsafe extern "system" fn create_device(
    pd: vk::PhysicalDevice,
    ci: *const vk::DeviceCreateInfo,
    alloc: *const vk::AllocationCallbacks,
    out: *mut vk::Device,
) -> vk::Result {
    // SAFETY: forwarded loader arguments.
    guard(
        "vkCreateDevice",
        vk::Result::ERROR_INITIALIZATION_FAILED,
        || unsafe { device::create(pd, ci, alloc, out) },
    )
}

unsafe extern "system" fn destroy_device(
    device: vk::Device,
    alloc: *const vk::AllocationCallbacks,
) {
    // SAFETY: forwarded application arguments.
    guard("vkDestroyDevice", (), || unsafe {
        device::destroy(device, alloc)
    })
}

fn is_our_layer(name: *const c_char) -> bool {
    // SAFETY: a non-null layer name is a valid C string per the API.
    !name.is_null() && unsafe { CStr::from_ptr(name) } == LAYER_NAME
}

unsafe extern "system" fn enumerate_instance_extension_properties(
    layer: *const c_char,
    count: *mut u32,
    props: *mut vk::ExtensionProperties,
) -> vk::Result {
    guard(
        "vkEnumerateInstanceExtensionProperties",
        vk::Result::ERROR_INITIALIZATION_FAILED,
        || {
            if !is_our_layer(layer) {
                return vk::Result::ERROR_LAYER_NOT_PRESENT;
            }
            // SAFETY: the application's output arrays.
            unsafe { fill_array(&ext_props(&INSTANCE_EXTENSIONS), count, props) }
        },
    )
}

unsafe extern "system" fn enumerate_instance_layer_properties(
    count: *mut u32,
    props: *mut vk::LayerProperties,
) -> vk::Result {
    // SAFETY: the application's output arrays.
    guard(
        "vkEnumerateInstanceLayerProperties",
        vk::Result::ERROR_INITIALIZATION_FAILED,
        || unsafe { fill_array(&[layer_props()], count, props) },
    )
}

unsafe extern "system" fn enumerate_device_layer_properties(
    _pd: vk::PhysicalDevice,
    count: *mut u32,
    props: *mut vk::LayerProperties,
) -> vk::Result {
    // SAFETY: the application's output arrays.
    guard(
        "vkEnumerateDeviceLayerProperties",
        vk::Result::ERROR_INITIALIZATION_FAILED,
        || unsafe { fill_array(&[layer_props()], count, props) },
    )
}

unsafe extern "system" fn enumerate_device_extension_properties(
    pd: vk::PhysicalDevice,
    layer: *const c_char,
    count: *mut u32,
    props: *mut vk::ExtensionProperties,
) -> vk::Result {
    guard(
        "vkEnumerateDeviceExtensionProperties",
        vk::Result::ERROR_INITIALIZATION_FAILED,
        || {
            if is_our_layer(layer) {
                // SAFETY: the application's output arrays.
                return unsafe { fill_array(&ext_props(&DEVICE_EXTENSIONS), count, props) };
            }
            // SAFETY: a valid physical device from the application.
            let Some(inst) = (unsafe { instance::get(pd) }) else {
                return vk::Result::ERROR_INITIALIZATION_FAILED;
            };
            let next = inst.fns.fp_v1_0().enumerate_device_extension_properties;
            if !layer.is_null() || !inst.active {
                // SAFETY: forwarded as is.
                return unsafe { next(pd, layer, count, props) };
            }
            // The driver's list plus what the layer implements on top of it.
            // SAFETY: a valid physical device.
            let mut list = match unsafe { inst.fns.enumerate_device_extension_properties(pd) } {
                Ok(l) => l,
                Err(e) => return e,
            };
            for p in ext_props(&DEVICE_EXTENSIONS) {
                if !list
                    .iter()
                    .any(|e| e.extension_name_as_c_str() == p.extension_name_as_c_str())
                {
                    list.push(p);
                }
            }
            // SAFETY: the application's output arrays.
            unsafe { fill_array(&list, count, props) }
        },
    )
}
