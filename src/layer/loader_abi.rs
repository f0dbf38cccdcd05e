//! The loader ↔ layer ABI from the Vulkan-Loader's `vk_layer.h`.
//!
//! ash does not carry these structures: they are part of the loader's layer
//! interface, not of the Vulkan API. Layouts follow `vk_layer.h` exactly.

use ash::vk;
use std::ffi::{c_char, c_void};

/// `VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO`
pub const LOADER_INSTANCE_CREATE_INFO: vk::StructureType = vk::StructureType::from_raw(47);
/// `VK_STRUCTURE_TYPE_LOADER_DEVICE_CREATE_INFO`
pub const LOADER_DEVICE_CREATE_INFO: vk::StructureType = vk::StructureType::from_raw(48);

/// `VkLayerFunction`: which member of the create-info union is valid.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerFunction(pub i32);
impl LayerFunction {
    pub const LINK_INFO: Self = Self(0);
    pub const LOADER_DATA_CALLBACK: Self = Self(1);
}

pub type PfnGetPhysicalDeviceProcAddr =
    unsafe extern "system" fn(vk::Instance, *const c_char) -> vk::PFN_vkVoidFunction;
pub type PfnSetInstanceLoaderData =
    unsafe extern "system" fn(vk::Instance, *mut c_void) -> vk::Result;
pub type PfnSetDeviceLoaderData = crate::device::SetDeviceLoaderData;

#[repr(C)]
pub struct LayerInstanceLink {
    pub next: *mut LayerInstanceLink,
    pub next_get_instance_proc_addr: vk::PFN_vkGetInstanceProcAddr,
    pub next_get_physical_device_proc_addr: Option<PfnGetPhysicalDeviceProcAddr>,
}

#[repr(C)]
pub union LayerInstanceUnion {
    pub layer_info: *mut LayerInstanceLink,
    pub set_instance_loader_data: Option<PfnSetInstanceLoaderData>,
    /// `layerDevice` (two function pointers) is the largest member.
    _layer_device: [*mut c_void; 2],
}

/// `VkLayerInstanceCreateInfo`
#[repr(C)]
pub struct LayerInstanceCreateInfo {
    pub s_type: vk::StructureType,
    pub p_next: *const c_void,
    pub function: LayerFunction,
    pub u: LayerInstanceUnion,
}

#[repr(C)]
pub struct LayerDeviceLink {
    pub next: *mut LayerDeviceLink,
    pub next_get_instance_proc_addr: vk::PFN_vkGetInstanceProcAddr,
    pub next_get_device_proc_addr: vk::PFN_vkGetDeviceProcAddr,
}

#[repr(C)]
pub union LayerDeviceUnion {
    pub layer_info: *mut LayerDeviceLink,
    pub set_device_loader_data: Option<PfnSetDeviceLoaderData>,
}

/// `VkLayerDeviceCreateInfo`
#[repr(C)]
pub struct LayerDeviceCreateInfo {
    pub s_type: vk::StructureType,
    pub p_next: *const c_void,
    pub function: LayerFunction,
    pub u: LayerDeviceUnion,
}

/// `VkNegotiateLayerStructType::LAYER_NEGOTIATE_INTERFACE_STRUCT`
pub const LAYER_NEGOTIATE_INTERFACE_STRUCT: i32 = 1;

/// `VkNegotiateLayerInterface`
#[repr(C)]
pub struct NegotiateLayerInterface {
    pub s_type: i32,
    pub p_next: *mut c_void,
    pub loader_layer_interface_version: u32,
    pub pfn_get_instance_proc_addr: Option<vk::PFN_vkGetInstanceProcAddr>,
    pub pfn_get_device_proc_addr: Option<vk::PFN_vkGetDeviceProcAddr>,
    pub pfn_get_physical_device_proc_addr: Option<PfnGetPhysicalDeviceProcAddr>,
}

/// Walks a create-info `pNext` chain for the loader's structure of `s_type`
/// carrying `function`.
///
/// # Safety
/// `p_next` must be a valid Vulkan structure chain.
pub unsafe fn find_loader_info<T>(
    p_next: *const c_void,
    s_type: vk::StructureType,
    function: LayerFunction,
) -> *mut T {
    // SAFETY: the caller's promise.
    unsafe { crate::pnext::structures(p_next) }
        .map(|s| s as *const vk::BaseInStructure<'_> as *const u8)
        .find(|&p| {
            // SAFETY: a structure of the chain; both loader structures share
            // the (sType, pNext, function) prefix read here.
            unsafe {
                (*p.cast::<vk::BaseInStructure<'_>>()).s_type == s_type
                    && *(p.add(2 * size_of::<usize>()) as *const i32) == function.0
            }
        })
        .map_or(std::ptr::null_mut(), |p| p as *mut T)
}
