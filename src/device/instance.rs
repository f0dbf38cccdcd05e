//! What the layer keeps per `VkInstance`: the next layer's instance-level
//! functions, and whether the layer implements WSI on it.

use ash::vk;

/// What the layer keeps per `VkInstance`.
pub struct InstanceData {
    /// The next layer's instance-level functions.
    pub fns: ash::Instance,
    /// The next layer's `vkGetInstanceProcAddr`, for pass-through lookups.
    pub next_gipa: vk::PFN_vkGetInstanceProcAddr,
    /// Whether the layer implements WSI on this instance. When no physical
    /// device can share memory with the window system the layer stays out
    /// of the way and every call goes straight to the driver.
    pub active: bool,
    /// The next layer's surface functions, for surfaces the layer does not
    /// own (created by the driver).
    pub next_surface: ash::khr::surface::InstanceFn,
    pub next_surface_caps2: ash::khr::get_surface_capabilities2::InstanceFn,
    pub next_swapchain_instance: ash::khr::swapchain::InstanceFn,
}
