//! The device the layer works on: the next layer's function tables, what
//! the device can do for the bridge ([`caps`]), the application's queues
//! and the lock the layer shares with it, and the accounting of time spent
//! in driver calls ([`cpu_time`]).
//!
//! Everything above (the sync bridge, the swapchain core, the entry points)
//! takes a [`DeviceData`]; how one is made from the loader's
//! `vkCreateDevice` chain, and where it is kept, is the loader interface's
//! business (`layer/device.rs`), not this module's.

pub mod caps;
pub mod cpu_time;
pub mod instance;

pub use caps::DeviceCaps;
pub use instance::InstanceData;

use ash::vk;
use std::ffi::{c_void, CStr};
use std::sync::{Arc, Mutex};

/// The loader's `PFN_vkSetDeviceLoaderData`.
pub type SetDeviceLoaderData =
    unsafe extern "system" fn(device: vk::Device, object: *mut c_void) -> vk::Result;

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
    /// `VK_EXT_image_drm_format_modifier`.
    pub drm_modifier: Option<ash::ext::image_drm_format_modifier::Device>,
    pub semaphore_fd: Option<ash::khr::external_semaphore_fd::Device>,
    pub fence_fd: Option<ash::khr::external_fence_fd::Device>,
    pub timeline: Option<ash::khr::timeline_semaphore::Device>,
}

impl ExtFns {
    /// Looks up the extension functions of `device` in the next layer
    /// (`next_gdpa`), for the extensions `enabled` says are on.
    ///
    /// # Safety
    /// `device` must be a live device of `instance` made by the layer
    /// below, `fns` its core table.
    pub unsafe fn load(
        instance: vk::Instance,
        device: vk::Device,
        next_gdpa: vk::PFN_vkGetDeviceProcAddr,
        fns: &ash::Device,
        enabled: &dyn Fn(&CStr) -> bool,
        timeline: bool,
    ) -> Self {
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
        ExtFns {
            // SAFETY: a lookup in the next layer; a non-null pointer is the
            // function of that name.
            next_queue_submit2_khr: unsafe { next_gdpa(device, c"vkQueueSubmit2KHR".as_ptr()) }
                .map(|f| unsafe {
                    std::mem::transmute::<unsafe extern "system" fn(), vk::PFN_vkQueueSubmit2>(f)
                }),
            next_present_wait: unsafe { next_gdpa(device, c"vkWaitForPresentKHR".as_ptr()) }.map(
                |f| unsafe {
                    std::mem::transmute::<unsafe extern "system" fn(), vk::PFN_vkWaitForPresentKHR>(
                        f,
                    )
                },
            ),
            // SAFETY: as above.
            next_release_images: unsafe {
                next_gdpa(device, c"vkReleaseSwapchainImagesEXT".as_ptr())
            }
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
                .then(|| ash::ext::external_memory_host::Device::new(&loader, fns)),
            memory_fd: enabled(vk::KHR_EXTERNAL_MEMORY_FD_NAME)
                .then(|| ash::khr::external_memory_fd::Device::new(&loader, fns)),
            drm_modifier: enabled(vk::EXT_IMAGE_DRM_FORMAT_MODIFIER_NAME)
                .then(|| ash::ext::image_drm_format_modifier::Device::new(&loader, fns)),
            semaphore_fd: enabled(vk::KHR_EXTERNAL_SEMAPHORE_FD_NAME)
                .then(|| ash::khr::external_semaphore_fd::Device::new(&loader, fns)),
            fence_fd: enabled(vk::KHR_EXTERNAL_FENCE_FD_NAME)
                .then(|| ash::khr::external_fence_fd::Device::new(&loader, fns)),
            timeline: timeline.then(|| ash::khr::timeline_semaphore::Device::new(&loader, fns)),
        }
    }
}

/// What the layer keeps per `VkDevice`.
pub struct DeviceData {
    pub fns: ash::Device,
    pub ext: ExtFns,
    pub instance: Arc<InstanceData>,
    pub physical_device: vk::PhysicalDevice,
    pub next_gdpa: vk::PFN_vkGetDeviceProcAddr,
    /// The loader's `vkSetDeviceLoaderData`: every dispatchable object the
    /// layer creates itself (command buffers of the copy path) must be
    /// passed to it before the layers below see it.
    pub set_loader_data: SetDeviceLoaderData,
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
