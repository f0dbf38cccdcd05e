//! Instance chaining: `vkCreateInstance` / `vkDestroyInstance`, and the
//! table of [`InstanceData`] by dispatch key.

use super::dispatch::key;
use super::loader_abi::{
    find_loader_info, LayerFunction, LayerInstanceCreateInfo, LOADER_INSTANCE_CREATE_INFO,
};
use crate::device::InstanceData;
use crate::registry::Registry;
use ash::vk;
use std::ffi::CStr;
use std::sync::Arc;

pub static INSTANCES: Registry<usize, InstanceData> = Registry::new();

/// Looks up the state of the instance that owns `handle` (an instance or a
/// physical device).
///
/// # Safety
/// `handle` must be a valid dispatchable handle of a live instance.
pub unsafe fn get<H: vk::Handle + Copy>(handle: H) -> Option<Arc<InstanceData>> {
    if handle.as_raw() == 0 {
        return None;
    }
    // SAFETY: forwarded from the caller.
    INSTANCES.get(unsafe { key(handle) })
}

/// Device extensions whose presence lets the layer share images with the
/// window system (at least one is needed for the layer to be active).
pub const MEMORY_SHARING_EXTENSIONS: [&CStr; 2] = [
    vk::EXT_EXTERNAL_MEMORY_HOST_NAME,
    vk::EXT_EXTERNAL_MEMORY_DMA_BUF_NAME,
];

/// # Safety
/// Arguments as for `vkCreateInstance`, called by the loader.
pub unsafe fn create(
    create_info: *const vk::InstanceCreateInfo,
    allocator: *const vk::AllocationCallbacks,
    p_instance: *mut vk::Instance,
) -> vk::Result {
    crate::log::init();
    crate::config::report_warnings();
    if create_info.is_null() || p_instance.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: the loader passes a valid create info.
    let ci = unsafe { &*create_info };
    // SAFETY: walking the loader-provided chain.
    let link: *mut LayerInstanceCreateInfo = unsafe {
        find_loader_info(
            ci.p_next,
            LOADER_INSTANCE_CREATE_INFO,
            LayerFunction::LINK_INFO,
        )
    };
    // SAFETY: `link` is null or points into the chain.
    let Some(link) = (unsafe { link.as_mut() }) else {
        log::error!("vkCreateInstance: the loader passed no layer link info; is the layer loaded by a Vulkan loader?");
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: `function == LINK_INFO` selects `layer_info`.
    let layer_info = unsafe { link.u.layer_info };
    if layer_info.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: the loader's link list is valid for this call.
    let next_gipa = unsafe { (*layer_info).next_get_instance_proc_addr };
    // Advance the chain for the next layer, as the loader interface requires.
    // SAFETY: as above.
    link.u.layer_info = unsafe { (*layer_info).next };

    // SAFETY: querying a global function with a null instance is allowed.
    let Some(next_create) =
        (unsafe { next_gipa(vk::Instance::null(), c"vkCreateInstance".as_ptr()) })
    else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: the returned pointer is vkCreateInstance.
    let next_create: vk::PFN_vkCreateInstance = unsafe { std::mem::transmute(next_create) };

    // The layer's own work (external memory and semaphore queries, image
    // format queries with pNext chains) is Vulkan 1.1; ask for at least that
    // below the layer. The application still sees the version it asked for.
    let app_version =
        unsafe { ci.p_application_info.as_ref() }.map_or(vk::API_VERSION_1_0, |a| a.api_version);
    let api_version = app_version.max(vk::API_VERSION_1_1);
    let mut app_info = unsafe { ci.p_application_info.as_ref() }
        .copied()
        .unwrap_or_default();
    app_info.api_version = api_version;
    let mut down = *ci;
    down.p_application_info = &app_info;

    // SAFETY: a valid create info with the chain advanced.
    let res = unsafe { next_create(&down, allocator, p_instance) };
    if res != vk::Result::SUCCESS {
        return res;
    }
    // SAFETY: the instance was just created.
    let instance = unsafe { *p_instance };
    let static_fn = ash::StaticFn {
        get_instance_proc_addr: next_gipa,
    };
    // SAFETY: loads function pointers from the next layer for this instance.
    let fns = unsafe { ash::Instance::load(&static_fn, instance) };
    let active = any_device_can_share_memory(&fns);
    if !active {
        crate::warn_once!(
            "no Vulkan device offers VK_EXT_external_memory_host or VK_EXT_external_memory_dma_buf: \
             syncbridge stays out of the way and the driver's own WSI is used"
        );
    }
    log::info!(
        "instance created (API {}.{}), layer WSI {}",
        vk::api_version_major(api_version),
        vk::api_version_minor(api_version),
        if active { "active" } else { "inactive" }
    );
    let load = |name: &CStr| {
        // SAFETY: looking up a function of this instance in the next layer.
        unsafe {
            std::mem::transmute::<vk::PFN_vkVoidFunction, *const std::ffi::c_void>(next_gipa(
                instance,
                name.as_ptr(),
            ))
        }
    };
    let data = InstanceData {
        fns,
        next_gipa,
        active,
        next_surface: ash::khr::surface::InstanceFn::load(load),
        next_surface_caps2: ash::khr::get_surface_capabilities2::InstanceFn::load(load),
        next_swapchain_instance: ash::khr::swapchain::InstanceFn::load(load),
    };
    // SAFETY: a valid dispatchable handle.
    INSTANCES.insert(unsafe { key(instance) }, Arc::new(data));
    vk::Result::SUCCESS
}

fn any_device_can_share_memory(fns: &ash::Instance) -> bool {
    // SAFETY: a live instance.
    let Ok(devices) = (unsafe { fns.enumerate_physical_devices() }) else {
        return false;
    };
    devices.into_iter().any(|pd| {
        // SAFETY: a physical device of this instance.
        let exts = unsafe { fns.enumerate_device_extension_properties(pd) }.unwrap_or_default();
        exts.iter().any(|e| {
            let name = e.extension_name_as_c_str().unwrap_or_default();
            MEMORY_SHARING_EXTENSIONS.contains(&name)
        })
    })
}

/// # Safety
/// Arguments as for `vkDestroyInstance`.
pub unsafe fn destroy(instance: vk::Instance, allocator: *const vk::AllocationCallbacks) {
    if instance == vk::Instance::null() {
        return;
    }
    // SAFETY: a valid instance handle per the API contract.
    if let Some(data) = INSTANCES.remove(unsafe { key(instance) }) {
        // SAFETY: forwarding the app's own call.
        unsafe { (data.fns.fp_v1_0().destroy_instance)(instance, allocator) };
    }
}
