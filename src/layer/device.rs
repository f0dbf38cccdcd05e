//! Device chaining: `vkCreateDevice` / `vkDestroyDevice`, the extensions the
//! layer enables below itself, and what the device can do for the bridge.

use super::dispatch::{key, Registry};
use super::instance::{self, InstanceData};
use super::loader_abi::{
    find_loader_info, LayerDeviceCreateInfo, LayerFunction, PfnSetDeviceLoaderData,
    LOADER_DEVICE_CREATE_INFO,
};
use ash::vk;
use std::ffi::{c_char, c_void, CStr};
use std::sync::{Arc, Mutex};

/// What the device below the layer can do for the sync bridge, probed once
/// at device creation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceCaps {
    /// `VK_EXT_external_memory_host`, and the pointer alignment it needs.
    pub host_memory_import: Option<u64>,
    /// `VK_EXT_external_memory_dma_buf` (with `VK_KHR_external_memory_fd`).
    pub dma_buf_memory: bool,
    /// `VK_EXT_image_drm_format_modifier`.
    pub drm_format_modifiers: bool,
    /// A binary semaphore can be exported as a SYNC_FD.
    pub semaphore_sync_fd_export: bool,
    /// A SYNC_FD can be imported into a binary semaphore.
    pub semaphore_sync_fd_import: bool,
    /// A SYNC_FD can be imported into a fence.
    pub fence_sync_fd_import: bool,
    /// Timeline semaphores (`VK_KHR_timeline_semaphore`) are on, so the GPU
    /// can wait for a value the layer signals from the CPU.
    pub timeline_semaphores: bool,
}

impl DeviceCaps {
    /// Whether the layer must submit work on the application's queues itself
    /// (to signal acquire semaphores and fences), which then needs a lock
    /// around every submission to honour external synchronization.
    pub fn needs_queue_lock(&self) -> bool {
        !(self.semaphore_sync_fd_import && self.fence_sync_fd_import) || self.early_acquire()
    }

    /// Whether acquire may hand out an image the window system has not
    /// released yet, its semaphore and fence signalled on the release:
    /// timeline semaphores, and `SYNCBRIDGE_EARLY_ACQUIRE` not off.
    pub fn early_acquire(&self) -> bool {
        self.timeline_semaphores && crate::config::get().early_acquire
    }
}

/// A queue the application created, with the lock the layer and the
/// application share when the layer has to submit on it.
pub struct QueueInfo {
    pub queue: vk::Queue,
    pub family: u32,
    pub lock: Mutex<()>,
}

/// Extension function tables the layer uses, present when enabled.
pub struct ExtFns {
    /// The next layer's swapchain functions, for swapchains on surfaces the
    /// layer does not own.
    pub next_swapchain: ash::khr::swapchain::DeviceFn,
    /// The driver's `vkWaitForPresentKHR`, if it has one.
    pub next_present_wait: Option<vk::PFN_vkWaitForPresentKHR>,
    /// The driver's `vkReleaseSwapchainImagesEXT`, if it has one.
    pub next_release_images: Option<vk::PFN_vkReleaseSwapchainImagesEXT>,
    /// The driver's `vkQueueSubmit2KHR` (`VK_KHR_synchronization2`).
    pub next_queue_submit2_khr: Option<vk::PFN_vkQueueSubmit2>,
    pub memory_host: Option<ash::ext::external_memory_host::Device>,
    pub memory_fd: Option<ash::khr::external_memory_fd::Device>,
    pub semaphore_fd: Option<ash::khr::external_semaphore_fd::Device>,
    pub fence_fd: Option<ash::khr::external_fence_fd::Device>,
    pub timeline: Option<ash::khr::timeline_semaphore::Device>,
}

/// What the layer keeps per `VkDevice`.
pub struct DeviceData {
    pub fns: ash::Device,
    pub ext: ExtFns,
    pub instance: Arc<InstanceData>,
    pub physical_device: vk::PhysicalDevice,
    pub next_gdpa: vk::PFN_vkGetDeviceProcAddr,
    pub set_loader_data: PfnSetDeviceLoaderData,
    pub caps: DeviceCaps,
    pub memory_properties: vk::PhysicalDeviceMemoryProperties,
    pub queues: Vec<QueueInfo>,
    /// Whether the application enabled `VK_KHR_swapchain` (the layer's WSI
    /// entry points are only handed out then).
    pub swapchain_enabled: bool,
}

impl DeviceData {
    /// The shared lock of `queue`, if the application created it.
    pub fn queue(&self, queue: vk::Queue) -> Option<&QueueInfo> {
        self.queues.iter().find(|q| q.queue == queue)
    }
}

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
const LAYER_DEVICE_EXTENSIONS: [&CStr; 6] = [
    vk::KHR_EXTERNAL_MEMORY_FD_NAME,
    vk::EXT_EXTERNAL_MEMORY_DMA_BUF_NAME,
    vk::EXT_EXTERNAL_MEMORY_HOST_NAME,
    vk::KHR_EXTERNAL_SEMAPHORE_FD_NAME,
    vk::KHR_EXTERNAL_FENCE_FD_NAME,
    vk::KHR_TIMELINE_SEMAPHORE_NAME,
];

/// Extensions the layer implements itself and removes from the list passed
/// down when the driver lacks them.
const LAYER_IMPLEMENTED_DEVICE_EXTENSIONS: [&CStr; 4] = [
    vk::KHR_SWAPCHAIN_NAME,
    vk::KHR_PRESENT_ID_NAME,
    vk::KHR_PRESENT_WAIT_NAME,
    vk::EXT_SWAPCHAIN_MAINTENANCE1_NAME,
];

/// Feature structures of the extensions the layer implements, with the
/// extension that must exist below the layer for them to be passed down.
const LAYER_FEATURE_STRUCTS: [(vk::StructureType, &CStr); 3] = [
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

/// Whether `pd` supports timeline semaphores through
/// `VK_KHR_timeline_semaphore`.
fn timeline_supported(inst: &ash::Instance, pd: vk::PhysicalDevice) -> bool {
    let mut tl = vk::PhysicalDeviceTimelineSemaphoreFeatures::default();
    let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut tl);
    // SAFETY: a valid physical device; the instance is at least 1.1.
    unsafe { inst.get_physical_device_features2(pd, &mut f2) };
    tl.timeline_semaphore == vk::TRUE
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
        for e in LAYER_DEVICE_EXTENSIONS {
            if has(e) && !exts.contains(&e) && (e != vk::KHR_TIMELINE_SEMAPHORE_NAME || timeline) {
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
    // ash's extension loaders look functions up through the instance's
    // vkGetDeviceProcAddr; below a layer that is the link's, not the
    // instance's (which the next layer may not hand out).
    // SAFETY: only vkGetDeviceProcAddr of this loader table is ever called.
    let loader = unsafe {
        ash::Instance::load_with(
            |name| {
                if name == c"vkGetDeviceProcAddr" {
                    next_gdpa as *const c_void
                } else {
                    std::ptr::null()
                }
            },
            instance,
        )
    };
    let ext = ExtFns {
        // SAFETY: a lookup in the next layer; a non-null pointer is the
        // function of that name.
        next_queue_submit2_khr: unsafe { next_gdpa(device, c"vkQueueSubmit2KHR".as_ptr()) }.map(
            |f| unsafe {
                std::mem::transmute::<unsafe extern "system" fn(), vk::PFN_vkQueueSubmit2>(f)
            },
        ),
        next_present_wait: unsafe { next_gdpa(device, c"vkWaitForPresentKHR".as_ptr()) }.map(
            |f| unsafe {
                std::mem::transmute::<unsafe extern "system" fn(), vk::PFN_vkWaitForPresentKHR>(f)
            },
        ),
        // SAFETY: as above.
        next_release_images: unsafe { next_gdpa(device, c"vkReleaseSwapchainImagesEXT".as_ptr()) }
            .map(|f| unsafe {
                std::mem::transmute::<
                    unsafe extern "system" fn(),
                    vk::PFN_vkReleaseSwapchainImagesEXT,
                >(f)
            }),
        next_swapchain: ash::khr::swapchain::DeviceFn::load(|name| {
            // SAFETY: looking up a function of this device in the next layer.
            unsafe {
                std::mem::transmute::<vk::PFN_vkVoidFunction, *const c_void>(next_gdpa(
                    device,
                    name.as_ptr(),
                ))
            }
        }),
        memory_host: enabled(vk::EXT_EXTERNAL_MEMORY_HOST_NAME)
            .then(|| ash::ext::external_memory_host::Device::new(&loader, &fns)),
        memory_fd: enabled(vk::KHR_EXTERNAL_MEMORY_FD_NAME)
            .then(|| ash::khr::external_memory_fd::Device::new(&loader, &fns)),
        semaphore_fd: enabled(vk::KHR_EXTERNAL_SEMAPHORE_FD_NAME)
            .then(|| ash::khr::external_semaphore_fd::Device::new(&loader, &fns)),
        fence_fd: enabled(vk::KHR_EXTERNAL_FENCE_FD_NAME)
            .then(|| ash::khr::external_fence_fd::Device::new(&loader, &fns)),
        timeline: timeline.then(|| ash::khr::timeline_semaphore::Device::new(&loader, &fns)),
    };
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
        if !caps.semaphore_sync_fd_export {
            crate::info_once!(
                "the driver cannot export a semaphore as a sync_file: frames are handed to the window system \
                 by a worker thread once the GPU is done (the application thread never waits)"
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

/// What `pd` can do for the bridge, given which extensions are (to be)
/// enabled. Used by the layer at device creation and by `syncbridge-info`.
pub fn probe_caps(
    inst: &ash::Instance,
    pd: vk::PhysicalDevice,
    enabled: &dyn Fn(&CStr) -> bool,
) -> DeviceCaps {
    let mut caps = DeviceCaps::default();
    if enabled(vk::EXT_EXTERNAL_MEMORY_HOST_NAME) {
        let mut host = vk::PhysicalDeviceExternalMemoryHostPropertiesEXT::default();
        let mut props = vk::PhysicalDeviceProperties2::default().push_next(&mut host);
        // SAFETY: a valid physical device; the instance is at least 1.1.
        unsafe { inst.get_physical_device_properties2(pd, &mut props) };
        caps.host_memory_import = Some(host.min_imported_host_pointer_alignment.max(1));
    }
    caps.dma_buf_memory =
        enabled(vk::EXT_EXTERNAL_MEMORY_DMA_BUF_NAME) && enabled(vk::KHR_EXTERNAL_MEMORY_FD_NAME);
    caps.drm_format_modifiers = enabled(vk::EXT_IMAGE_DRM_FORMAT_MODIFIER_NAME);
    if enabled(vk::KHR_EXTERNAL_SEMAPHORE_FD_NAME) {
        let info = vk::PhysicalDeviceExternalSemaphoreInfo::default()
            .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
        let mut props = vk::ExternalSemaphoreProperties::default();
        // SAFETY: a valid physical device; the instance is at least 1.1.
        unsafe { inst.get_physical_device_external_semaphore_properties(pd, &info, &mut props) };
        let f = props.external_semaphore_features;
        caps.semaphore_sync_fd_export = f.contains(vk::ExternalSemaphoreFeatureFlags::EXPORTABLE);
        caps.semaphore_sync_fd_import = f.contains(vk::ExternalSemaphoreFeatureFlags::IMPORTABLE);
    }
    if enabled(vk::KHR_EXTERNAL_FENCE_FD_NAME) {
        let info = vk::PhysicalDeviceExternalFenceInfo::default()
            .handle_type(vk::ExternalFenceHandleTypeFlags::SYNC_FD);
        let mut props = vk::ExternalFenceProperties::default();
        // SAFETY: a valid physical device; the instance is at least 1.1.
        unsafe { inst.get_physical_device_external_fence_properties(pd, &info, &mut props) };
        caps.fence_sync_fd_import = props
            .external_fence_features
            .contains(vk::ExternalFenceFeatureFlags::IMPORTABLE);
    }
    caps.timeline_semaphores =
        enabled(vk::KHR_TIMELINE_SEMAPHORE_NAME) && timeline_supported(inst, pd);
    caps
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
