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

/// Why `pd` exports no binary semaphore as a SYNC_FD, where the cause is
/// known; `None` where it does. `has` says which device extensions the
/// driver offers.
///
/// The case worth naming: Mesa's lavapipe (24.3 and later) offers the fd
/// extensions only to a process that can open `/dev/udmabuf`: llvmpipe
/// exports a sync_file from a one-byte udmabuf at start-up and turns them
/// off if that fails. Earlier lavapipe has none.
pub fn sync_fd_missing(
    inst: &ash::Instance,
    pd: vk::PhysicalDevice,
    has: &dyn Fn(&CStr) -> bool,
    caps: &DeviceCaps,
) -> Option<String> {
    if caps.semaphore_sync_fd_export {
        return None;
    }
    let mut driver = vk::PhysicalDeviceDriverProperties::default();
    // SAFETY: a valid physical device of a 1.1 instance;
    // VkPhysicalDeviceDriverProperties is only chained where the device
    // has Vulkan 1.2 or VK_KHR_driver_properties.
    let api = unsafe { inst.get_physical_device_properties(pd) }.api_version;
    let known = vk::api_version_minor(api) >= 2 || has(vk::KHR_DRIVER_PROPERTIES_NAME);
    if known {
        let mut props = vk::PhysicalDeviceProperties2::default().push_next(&mut driver);
        // SAFETY: as above.
        unsafe { inst.get_physical_device_properties2(pd, &mut props) };
    }
    let info = driver
        .driver_info_as_c_str()
        .unwrap_or_default()
        .to_string_lossy();
    let udmabuf = || {
        rustix::fs::open(
            "/dev/udmabuf",
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map(drop)
    };
    Some(sync_fd_reason(
        known && driver.driver_id == vk::DriverId::MESA_LLVMPIPE,
        mesa_version(&info),
        has(vk::KHR_EXTERNAL_SEMAPHORE_FD_NAME),
        udmabuf,
    ))
}

/// The reason [`sync_fd_missing`] gives, from what it found.
fn sync_fd_reason(
    lavapipe: bool,
    mesa: Option<(u32, u32)>,
    semaphore_fd: bool,
    open_udmabuf: impl FnOnce() -> rustix::io::Result<()>,
) -> String {
    if lavapipe {
        if mesa.is_some_and(|v| v < (24, 3)) {
            return "lavapipe before Mesa 24.3 has no SYNC_FD".into();
        }
        match open_udmabuf() {
            Err(rustix::io::Errno::NOENT) => {
                return "lavapipe offers SYNC_FD only where /dev/udmabuf exists; \
                        this kernel has none (CONFIG_UDMABUF)"
                    .into()
            }
            Err(e) => {
                return format!(
                    "lavapipe offers SYNC_FD only to a process that can open /dev/udmabuf ({e})"
                )
            }
            Ok(()) => {}
        }
    }
    if semaphore_fd {
        "the driver cannot export binary semaphores as SYNC_FD".into()
    } else {
        "the driver has no VK_KHR_external_semaphore_fd".into()
    }
}

/// `(major, minor)` from a Mesa driver's `driverInfo` ("Mesa 25.0.7 ...").
fn mesa_version(info: &str) -> Option<(u32, u32)> {
    let v = info.strip_prefix("Mesa ")?;
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::io::Errno;

    #[test]
    fn mesa_versions_parse() {
        assert_eq!(mesa_version("Mesa 22.3.6 (LLVM 15.0.6)"), Some((22, 3)));
        assert_eq!(mesa_version("Mesa 25.0.7-2"), Some((25, 0)));
        assert_eq!(mesa_version("580.95.05"), None);
        assert_eq!(mesa_version("Mesa x"), None);
    }

    #[test]
    fn the_reason_names_the_cause() {
        let never = || -> rustix::io::Result<()> { panic!("not asked") };
        assert_eq!(
            sync_fd_reason(true, Some((22, 3)), false, never),
            "lavapipe before Mesa 24.3 has no SYNC_FD"
        );
        assert_eq!(
            sync_fd_reason(true, Some((25, 0)), false, || Err(Errno::ACCESS)),
            "lavapipe offers SYNC_FD only to a process that can open /dev/udmabuf (Permission denied (os error 13))"
        );
        assert_eq!(
            sync_fd_reason(true, Some((25, 0)), false, || Err(Errno::NOENT)),
            "lavapipe offers SYNC_FD only where /dev/udmabuf exists; this kernel has none (CONFIG_UDMABUF)"
        );
        assert_eq!(
            sync_fd_reason(true, Some((25, 0)), true, || Ok(())),
            "the driver cannot export binary semaphores as SYNC_FD"
        );
        assert_eq!(
            sync_fd_reason(false, None, false, never),
            "the driver has no VK_KHR_external_semaphore_fd"
        );
    }
}
