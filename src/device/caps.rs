//! What the device below the layer can do for the bridge, probed once at
//! device creation (and by `syncbridge-info`).

use ash::vk;
use std::ffi::CStr;

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

/// Whether `pd` supports timeline semaphores through
/// `VK_KHR_timeline_semaphore`.
pub fn timeline_supported(inst: &ash::Instance, pd: vk::PhysicalDevice) -> bool {
    let mut tl = vk::PhysicalDeviceTimelineSemaphoreFeatures::default();
    let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut tl);
    // SAFETY: a valid physical device; the instance is at least 1.1.
    unsafe { inst.get_physical_device_features2(pd, &mut f2) };
    tl.timeline_semaphore == vk::TRUE
}
