//! `vkGetPhysicalDeviceFeatures2`: the features of the extensions the layer
//! implements (present id and wait, swapchain maintenance 1, FIFO latest
//! ready) added to what the driver reports.

use super::inst_of;
use crate::layer::guard::guard;
use ash::vk;

/// Adds the features of the extensions the layer implements to what the
/// driver reports.
pub(super) unsafe extern "system" fn physical_device_features2(
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
