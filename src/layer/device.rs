//! Device chaining: `vkCreateDevice` / `vkDestroyDevice`, the extensions the
//! layer enables below itself, and the table of [`DeviceData`] by dispatch
//! key.

use super::dispatch::key;
use super::instance;
use super::loader_abi::{
    find_loader_info, LayerDeviceCreateInfo, LayerFunction, LOADER_DEVICE_CREATE_INFO,
};
use crate::device::caps::{probe_caps, sync_fd_missing, timeline_supported};
use crate::device::{DeviceData, ExtFns, QueueInfo};
use crate::registry::Registry;
use ash::vk;
use std::ffi::{c_char, c_void, CStr};
use std::sync::{Arc, Mutex};

pub static DEVICES: Registry<usize, DeviceData> = Registry::new();

/// The state of the device that owns `handle` (a device or a queue).
///
/// # Safety
/// `handle` must be a valid dispatchable handle of a live device.
pub unsafe fn get<H: vk::Handle + Copy>(handle: H) -> Option<Arc<DeviceData>> {
    if handle.as_raw() == 0 {
        return None;
    }
    // SAFETY: forwarded from the caller.
    DEVICES.get(unsafe { key(handle) })
}

/// Extensions the layer turns on below itself when the device has them.
/// `VK_EXT_image_drm_format_modifier` needs `VK_KHR_image_format_list`
/// below Vulkan 1.2; it is only enabled with it.
const LAYER_DEVICE_EXTENSIONS: [&CStr; 8] = [
    vk::KHR_EXTERNAL_MEMORY_FD_NAME,
    vk::EXT_EXTERNAL_MEMORY_DMA_BUF_NAME,
    vk::EXT_EXTERNAL_MEMORY_HOST_NAME,
    vk::KHR_IMAGE_FORMAT_LIST_NAME,
    vk::EXT_IMAGE_DRM_FORMAT_MODIFIER_NAME,
    vk::KHR_EXTERNAL_SEMAPHORE_FD_NAME,
    vk::KHR_EXTERNAL_FENCE_FD_NAME,
    vk::KHR_TIMELINE_SEMAPHORE_NAME,
];

/// Extensions the layer implements itself and removes from the list passed
/// down when the driver lacks them.
const LAYER_IMPLEMENTED_DEVICE_EXTENSIONS: [&CStr; 5] = [
    vk::KHR_SWAPCHAIN_NAME,
    vk::KHR_PRESENT_ID_NAME,
    vk::KHR_PRESENT_WAIT_NAME,
    vk::EXT_SWAPCHAIN_MAINTENANCE1_NAME,
    crate::wsi::FIFO_LATEST_READY_NAME,
];

/// Feature structures of the extensions the layer implements, with the
/// extension that must exist below the layer for them to be passed down.
const LAYER_FEATURE_STRUCTS: [(vk::StructureType, &CStr); 4] = [
    (
        crate::wsi::FIFO_LATEST_READY_FEATURES,
        crate::wsi::FIFO_LATEST_READY_NAME,
    ),
    (
        vk::StructureType::PHYSICAL_DEVICE_PRESENT_ID_FEATURES_KHR,
        vk::KHR_PRESENT_ID_NAME,
    ),
    (
        vk::StructureType::PHYSICAL_DEVICE_PRESENT_WAIT_FEATURES_KHR,
        vk::KHR_PRESENT_WAIT_NAME,
    ),
    (
        vk::StructureType::PHYSICAL_DEVICE_SWAPCHAIN_MAINTENANCE_1_FEATURES_EXT,
        vk::EXT_SWAPCHAIN_MAINTENANCE1_NAME,
    ),
];

/// Unlinks the structures `drop` selects from a `pNext` chain for the
/// duration of a call, and links them back afterwards.
struct Unlinked {
    /// (predecessor, removed) pairs, in chain order.
    links: Vec<(
        *mut vk::BaseOutStructure<'static>,
        *mut vk::BaseOutStructure<'static>,
    )>,
}

impl Unlinked {
    /// # Safety
    /// `head` must start a valid chain that nothing else touches until the
    /// returned value is dropped.
    unsafe fn new(
        head: *mut vk::BaseOutStructure<'static>,
        drop: impl Fn(vk::StructureType) -> bool,
    ) -> Self {
        let mut links = Vec::new();
        let mut prev = head;
        // SAFETY: walking a valid chain (the caller's promise).
        unsafe {
            while !(*prev).p_next.is_null() {
                let cur = (*prev).p_next;
                if drop((*cur).s_type) {
                    (*prev).p_next = (*cur).p_next;
                    links.push((prev, cur));
                } else {
                    prev = cur;
                }
            }
        }
        Self { links }
    }
}

impl Drop for Unlinked {
    fn drop(&mut self) {
        // SAFETY: relinking in reverse order restores the original chain.
        for (prev, cur) in self.links.drain(..).rev() {
            unsafe { (*prev).p_next = cur };
        }
    }
}

/// Turns the `timelineSemaphore` feature on in a device create info for the
/// duration of a call: in the application's own feature structure if it
/// has one (replaced by a copy with the feature on, the application's
/// memory is not written), else in a structure of the layer's linked at
/// the head of the chain.
struct TimelineFeature {
    vk12: vk::PhysicalDeviceVulkan12Features<'static>,
    timeline: vk::PhysicalDeviceTimelineSemaphoreFeatures<'static>,
    /// Where a replacement was linked: (predecessor, the original).
    replaced: Option<(
        *mut vk::BaseOutStructure<'static>,
        *mut vk::BaseOutStructure<'static>,
    )>,
    /// The create info whose head was changed, and its old `pNext`.
    head: Option<(*mut vk::DeviceCreateInfo<'static>, *const c_void)>,
}

impl TimelineFeature {
    /// # Safety
    /// `ci` must start a valid chain that nothing else touches until the
    /// returned value is dropped; the value must not move while linked
    /// (it is boxed).
    unsafe fn enable(ci: *mut vk::DeviceCreateInfo<'static>) -> Box<Self> {
        let mut me = Box::new(Self {
            vk12: Default::default(),
            timeline: Default::default(),
            replaced: None,
            head: None,
        });
        // SAFETY: walking and relinking a valid chain (the caller's
        // promise); the copies live in the box, which outlives the call.
        unsafe {
            let mut prev = ci as *mut vk::BaseOutStructure<'static>;
            while !(*prev).p_next.is_null() {
                let cur = (*prev).p_next;
                let copy: *mut vk::BaseOutStructure<'static> = match (*cur).s_type {
                    vk::StructureType::PHYSICAL_DEVICE_VULKAN_1_2_FEATURES => {
                        me.vk12 = *(cur as *const vk::PhysicalDeviceVulkan12Features);
                        me.vk12.timeline_semaphore = vk::TRUE;
                        &mut me.vk12 as *mut _ as *mut _
                    }
                    vk::StructureType::PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES => {
                        me.timeline = *(cur as *const vk::PhysicalDeviceTimelineSemaphoreFeatures);
                        me.timeline.timeline_semaphore = vk::TRUE;
                        &mut me.timeline as *mut _ as *mut _
                    }
                    _ => {
                        prev = cur;
                        continue;
                    }
                };
                (*prev).p_next = copy;
                me.replaced = Some((prev, cur));
                return me;
            }
            me.timeline.timeline_semaphore = vk::TRUE;
            me.timeline.p_next = (*ci).p_next as *mut c_void;
            me.head = Some((ci, (*ci).p_next));
            (*ci).p_next = &me.timeline as *const _ as *const c_void;
        }
        me
    }
}

impl Drop for TimelineFeature {
    fn drop(&mut self) {
        // SAFETY: restores the links `enable` changed.
        unsafe {
            if let Some((prev, orig)) = self.replaced {
                (*prev).p_next = orig;
            }
            if let Some((ci, next)) = self.head {
                (*ci).p_next = next;
            }
        }
    }
}

/// # Safety
/// Arguments as for `vkCreateDevice`, called by the loader.
pub unsafe fn create(
    physical_device: vk::PhysicalDevice,
    create_info: *const vk::DeviceCreateInfo,
    allocator: *const vk::AllocationCallbacks,
    p_device: *mut vk::Device,
) -> vk::Result {
    // SAFETY: a valid physical device from the loader.
    let Some(inst) = (unsafe { instance::get(physical_device) }) else {
        log::error!("vkCreateDevice: unknown physical device");
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    if create_info.is_null() || p_device.is_null() {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    }
    // SAFETY: the loader passes a valid create info.
    let ci = unsafe { &*create_info };
    // SAFETY: walking the loader-provided chain.
    let link: *mut LayerDeviceCreateInfo = unsafe {
        find_loader_info(
            ci.p_next,
            LOADER_DEVICE_CREATE_INFO,
            LayerFunction::LINK_INFO,
        )
    };
    let callback: *mut LayerDeviceCreateInfo = unsafe {
        find_loader_info(
            ci.p_next,
            LOADER_DEVICE_CREATE_INFO,
            LayerFunction::LOADER_DATA_CALLBACK,
        )
    };
    // SAFETY: null or pointing into the chain.
    let (Some(link), Some(callback)) = (unsafe { link.as_mut() }, unsafe { callback.as_ref() })
    else {
        log::error!("vkCreateDevice: the loader passed no layer link info");
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: `function` selects the union member.
    let (layer_info, set_loader_data) =
        unsafe { (link.u.layer_info, callback.u.set_device_loader_data) };
    let (Some(set_loader_data), false) = (set_loader_data, layer_info.is_null()) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: the loader's link list is valid for this call.
    let (next_gipa, next_gdpa) = unsafe {
        (
            (*layer_info).next_get_instance_proc_addr,
            (*layer_info).next_get_device_proc_addr,
        )
    };
    // SAFETY: as above.
    link.u.layer_info = unsafe { (*layer_info).next };

    let instance = inst.fns.handle();
    // SAFETY: a valid instance and a known name.
    let Some(next_create) = (unsafe { next_gipa(instance, c"vkCreateDevice".as_ptr()) }) else {
        return vk::Result::ERROR_INITIALIZATION_FAILED;
    };
    // SAFETY: the returned pointer is vkCreateDevice.
    let next_create: vk::PFN_vkCreateDevice = unsafe { std::mem::transmute(next_create) };

    // SAFETY: a valid physical device.
    let available = unsafe {
        inst.fns
            .enumerate_device_extension_properties(physical_device)
    }
    .unwrap_or_default();
    let has = |name: &CStr| {
        available
            .iter()
            .any(|e| e.extension_name_as_c_str() == Ok(name))
    };

    // SAFETY: the application's extension names are valid C strings.
    let app_exts: Vec<&CStr> = (0..ci.enabled_extension_count as usize)
        .map(|i| unsafe { CStr::from_ptr(*ci.pp_enabled_extension_names.add(i)) })
        .collect();
    let swapchain_enabled = app_exts.contains(&vk::KHR_SWAPCHAIN_NAME);
    let mut exts: Vec<&CStr> = app_exts
        .iter()
        .copied()
        .filter(|e| has(e) || !LAYER_IMPLEMENTED_DEVICE_EXTENSIONS.contains(e))
        .collect();
    let timeline = inst.active
        && has(vk::KHR_TIMELINE_SEMAPHORE_NAME)
        && timeline_supported(&inst.fns, physical_device);
    if inst.active {
        let usable = |e: &CStr| match e {
            e if e == vk::KHR_TIMELINE_SEMAPHORE_NAME => timeline,
            e if e == vk::EXT_IMAGE_DRM_FORMAT_MODIFIER_NAME => has(vk::KHR_IMAGE_FORMAT_LIST_NAME),
            _ => true,
        };
        for e in LAYER_DEVICE_EXTENSIONS {
            if has(e) && !exts.contains(&e) && usable(e) {
                exts.push(e);
            }
        }
    }
    let ext_ptrs: Vec<*const c_char> = exts.iter().map(|e| e.as_ptr()).collect();
    let mut down = *ci;
    down.enabled_extension_count = ext_ptrs.len() as u32;
    down.pp_enabled_extension_names = ext_ptrs.as_ptr();

    // Feature structures of extensions the layer implements and the driver
    // lacks would make the driver refuse the device: hide them from it.
    let hide = |t: vk::StructureType| {
        LAYER_FEATURE_STRUCTS
            .iter()
            .any(|(st, ext)| *st == t && !has(ext))
    };
    // SAFETY: the application's chain, restored when `_hidden` drops right
    // after the call.
    let _hidden = unsafe { Unlinked::new(&mut down as *mut vk::DeviceCreateInfo as *mut _, hide) };
    // SAFETY: as above; dropped (restoring the chain) before `_hidden`.
    let _timeline = timeline.then(|| unsafe {
        TimelineFeature::enable(&mut down as *mut vk::DeviceCreateInfo as *mut _)
    });
    // SAFETY: a valid create info with the chain advanced.
    let res = unsafe { next_create(physical_device, &down, allocator, p_device) };
    drop(_timeline);
    drop(_hidden);
    if res != vk::Result::SUCCESS {
        return res;
    }
    // SAFETY: just created.
    let device = unsafe { *p_device };
    // SAFETY: loads the next layer's device functions for this device.
    let fns = unsafe {
        ash::Device::load_with(
            |name| std::mem::transmute(next_gdpa(device, name.as_ptr())),
            device,
        )
    };
    let enabled = |name: &CStr| exts.contains(&name);
    // SAFETY: `device` was just created by `next_gdpa`'s layer.
    let ext = unsafe { ExtFns::load(instance, device, next_gdpa, &fns, &enabled, timeline) };
    let caps = probe_caps(&inst.fns, physical_device, &enabled);
    // SAFETY: a valid physical device.
    let memory_properties = unsafe {
        inst.fns
            .get_physical_device_memory_properties(physical_device)
    };

    let mut queues = Vec::new();
    // SAFETY: the application's queue create infos are valid.
    let qcis = unsafe {
        std::slice::from_raw_parts(ci.p_queue_create_infos, ci.queue_create_info_count as usize)
    };
    for q in qcis.iter().filter(|q| q.flags.is_empty()) {
        for i in 0..q.queue_count {
            // SAFETY: the queue was created with the device.
            let queue = unsafe { fns.get_device_queue(q.queue_family_index, i) };
            queues.push(QueueInfo {
                queue,
                family: q.queue_family_index,
                lock: Mutex::new(()),
            });
        }
    }

    if inst.active {
        log::info!("device created: {caps:?}");
        if let Some(why) = sync_fd_missing(&inst.fns, physical_device, &enabled, &caps) {
            crate::info_once!(
                "the driver cannot export a semaphore as a sync_file ({why}): frames are handed to the \
                 window system by a worker thread once the GPU is done (the application thread never waits)"
            );
        }
    }
    let data = DeviceData {
        fns,
        ext,
        instance: inst,
        physical_device,
        next_gdpa,
        set_loader_data,
        caps,
        memory_properties,
        queues,
        swapchain_enabled,
    };
    // SAFETY: a valid dispatchable handle.
    DEVICES.insert(unsafe { key(device) }, Arc::new(data));
    vk::Result::SUCCESS
}

/// # Safety
/// Arguments as for `vkDestroyDevice`.
pub unsafe fn destroy(device: vk::Device, allocator: *const vk::AllocationCallbacks) {
    if device == vk::Device::null() {
        return;
    }
    // SAFETY: a valid device handle per the API contract.
    if let Some(data) = DEVICES.remove(unsafe { key(device) }) {
        crate::wsi::device_destroyed(&data);
        // SAFETY: forwarding the app's own call.
        unsafe { (data.fns.fp_v1_0().destroy_device)(device, allocator) };
    }
}
