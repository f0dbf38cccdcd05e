//! Images with DRM format modifiers (`VK_EXT_image_drm_format_modifier`)
//! whose memory is a dma-buf (`VK_EXT_external_memory_dma_buf`):
//!
//! - [`exported`]: the driver picks one of the modifiers the window system
//!   and the driver both support, allocates the image its own way and
//!   exports the memory; the planes' offsets and strides come from the
//!   image. What a GPU driver's own WSI does.
//! - [`imported`]: the layer allocates a dma-buf (dma-heap, udmabuf) and
//!   the driver imports it as a linear image with the layer's stride.

use super::{
    image_create_info, memory_type, Backing, Cleanup, ImageParams, PlaneLayout, SwapImage,
};
use crate::device::DeviceData;
use crate::kernel::DmaBuf;
use ash::vk;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

/// `DRM_FORMAT_MOD_LINEAR`.
pub const MOD_LINEAR: u64 = 0;

/// The memory-plane aspects, in order.
const MEMORY_PLANES: [vk::ImageAspectFlags; 4] = [
    vk::ImageAspectFlags::MEMORY_PLANE_0_EXT,
    vk::ImageAspectFlags::MEMORY_PLANE_1_EXT,
    vk::ImageAspectFlags::MEMORY_PLANE_2_EXT,
    vk::ImageAspectFlags::MEMORY_PLANE_3_EXT,
];

fn fns(
    dev: &DeviceData,
) -> Result<
    (
        &ash::ext::image_drm_format_modifier::Device,
        &ash::khr::external_memory_fd::Device,
    ),
    vk::Result,
> {
    match (&dev.ext.drm_modifier, &dev.ext.memory_fd) {
        (Some(m), Some(fd)) if dev.caps.dma_buf_memory => Ok((m, fd)),
        _ => {
            log::error!("the device has no dma-buf images with modifiers");
            Err(vk::Result::ERROR_INITIALIZATION_FAILED)
        }
    }
}

/// The layout of the image's `planes` memory planes.
fn plane_layouts(dev: &DeviceData, image: vk::Image, planes: u32) -> Vec<PlaneLayout> {
    MEMORY_PLANES[..(planes as usize).clamp(1, MEMORY_PLANES.len())]
        .iter()
        .map(|&aspect| {
            let sub = vk::ImageSubresource {
                aspect_mask: aspect,
                mip_level: 0,
                array_layer: 0,
            };
            // SAFETY: a live image with a modifier, a memory plane it has.
            let sl = unsafe { dev.fns.get_image_subresource_layout(image, sub) };
            PlaneLayout {
                offset: sl.offset,
                stride: sl.row_pitch as u32,
                size: sl.size,
            }
        })
        .collect()
}

/// A driver-allocated image with one of `modifiers`, its memory exported as
/// a dma-buf.
pub(super) fn exported(
    dev: &DeviceData,
    p: &ImageParams,
    modifiers: &[(u64, u32)],
) -> Result<SwapImage, vk::Result> {
    let (mod_fn, fd_fn) = fns(dev)?;
    let list: Vec<u64> = modifiers.iter().map(|m| m.0).collect();
    let mut mods =
        vk::ImageDrmFormatModifierListCreateInfoEXT::default().drm_format_modifiers(&list);
    let mut external = vk::ExternalMemoryImageCreateInfo::default()
        .handle_types(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
    let ci = image_create_info(p, vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT)
        .push_next(&mut mods)
        .push_next(&mut external);
    let d = &dev.fns;
    // SAFETY: a valid create info; the modifiers were checked supported.
    let image = unsafe { d.create_image(&ci, None) }?;
    let mut guard = Cleanup::new(dev, image);
    let mut props = vk::ImageDrmFormatModifierPropertiesEXT::default();
    // SAFETY: a live image made with a modifier list.
    unsafe { mod_fn.get_image_drm_format_modifier_properties(image, &mut props) }?;
    let modifier = props.drm_format_modifier;
    let planes = modifiers
        .iter()
        .find(|m| m.0 == modifier)
        .map_or(1, |m| m.1);
    // SAFETY: a live image.
    let req = unsafe { d.get_image_memory_requirements(image) };
    let type_index = memory_type(
        dev,
        req.memory_type_bits,
        vk::MemoryPropertyFlags::DEVICE_LOCAL,
    )
    .ok_or(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY)?;
    let mut export = vk::ExportMemoryAllocateInfo::default()
        .handle_types(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
    let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().image(image);
    let ai = vk::MemoryAllocateInfo::default()
        .allocation_size(req.size)
        .memory_type_index(type_index)
        .push_next(&mut export)
        .push_next(&mut dedicated);
    // SAFETY: a valid allocate info for this image.
    let memory = unsafe { d.allocate_memory(&ai, None) }?;
    guard.memory = memory;
    // SAFETY: dedicated memory of an allowed type and size.
    unsafe { d.bind_image_memory(image, memory, 0) }?;
    let info = vk::MemoryGetFdInfoKHR::default()
        .memory(memory)
        .handle_type(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
    // SAFETY: memory allocated exportable as a dma-buf.
    let raw = unsafe { fd_fn.get_memory_fd(&info) }?;
    // SAFETY: vkGetMemoryFdKHR returns a new fd the caller owns.
    let buf = DmaBuf::from_fd(unsafe { OwnedFd::from_raw_fd(raw) });
    let planes = plane_layouts(dev, image, planes);
    guard.disarm();
    Ok(SwapImage {
        image,
        memory,
        planes,
        modifier: Some(modifier),
        extent: p.extent,
        backing: Backing::DmaBuf { buf, map: None },
        copy: None,
    })
}

/// The row pitch of the layer's linear dma-bufs: what compositors' GPUs
/// take for scan-out and texturing (Mesa aligns linear buffers the same).
pub const LINEAR_PITCH_ALIGN: u32 = 256;

/// A linear image over a dma-buf the layer allocates (dma-heap, udmabuf),
/// imported with the linear modifier and an explicit stride.
pub(super) fn imported(
    dev: &DeviceData,
    p: &ImageParams,
    index: usize,
) -> Result<SwapImage, vk::Result> {
    let (_, fd_fn) = fns(dev)?;
    let bpp =
        super::support::bytes_per_pixel(p.format).ok_or(vk::Result::ERROR_FORMAT_NOT_SUPPORTED)?;
    let stride = (p.extent.width * bpp).next_multiple_of(LINEAR_PITCH_ALIGN);
    let size = u64::from(stride) * u64::from(p.extent.height);
    let buf = DmaBuf::allocate(size).map_err(|e| {
        log::error!("cannot allocate a dma-buf of {size} bytes for image {index}: {e}");
        vk::Result::ERROR_OUT_OF_DEVICE_MEMORY
    })?;
    let layout = [vk::SubresourceLayout {
        offset: 0,
        size: 0,
        row_pitch: u64::from(stride),
        array_pitch: 0,
        depth_pitch: 0,
    }];
    let mut explicit = vk::ImageDrmFormatModifierExplicitCreateInfoEXT::default()
        .drm_format_modifier(MOD_LINEAR)
        .plane_layouts(&layout);
    let mut external = vk::ExternalMemoryImageCreateInfo::default()
        .handle_types(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT);
    let ci = image_create_info(p, vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT)
        .push_next(&mut explicit)
        .push_next(&mut external);
    let d = &dev.fns;
    // SAFETY: a valid create info; the linear modifier was checked
    // supported for this format and usage.
    let image = unsafe { d.create_image(&ci, None) }?;
    let mut guard = Cleanup::new(dev, image);
    // SAFETY: a live image.
    let req = unsafe { d.get_image_memory_requirements(image) };
    if req.size > buf.size().unwrap_or(size) {
        log::error!(
            "image {index} needs {} bytes, more than its {size}-byte dma-buf",
            req.size
        );
        return Err(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY);
    }
    let fd = std::os::fd::AsFd::as_fd(&buf)
        .try_clone_to_owned()
        .map_err(|e| {
            log::error!("cannot duplicate the dma-buf of image {index}: {e}");
            vk::Result::ERROR_TOO_MANY_OBJECTS
        })?;
    let mut fd_props = vk::MemoryFdPropertiesKHR::default();
    // SAFETY: a dma-buf fd, borrowed for the query.
    unsafe {
        (fd_fn.fp().get_memory_fd_properties_khr)(
            d.handle(),
            vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &mut fd_props,
        )
    }
    .result()?;
    let bits = req.memory_type_bits & fd_props.memory_type_bits;
    let type_index = memory_type(dev, bits, vk::MemoryPropertyFlags::empty())
        .filter(|_| bits != 0)
        .ok_or_else(|| {
            log::error!(
                "no memory type imports this dma-buf for image {index} (image {:#x}, dma-buf {:#x})",
                req.memory_type_bits,
                fd_props.memory_type_bits
            );
            vk::Result::ERROR_INITIALIZATION_FAILED
        })?;
    let raw = fd.into_raw_fd();
    let mut import = vk::ImportMemoryFdInfoKHR::default()
        .handle_type(vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT)
        .fd(raw);
    let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().image(image);
    let ai = vk::MemoryAllocateInfo::default()
        .allocation_size(req.size)
        .memory_type_index(type_index)
        .push_next(&mut import)
        .push_next(&mut dedicated);
    // SAFETY: a valid allocate info; on success the driver owns `raw`.
    let memory = match unsafe { d.allocate_memory(&ai, None) } {
        Ok(m) => m,
        Err(e) => {
            // SAFETY: the import failed, so `raw` is still ours to close.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
            return Err(e);
        }
    };
    guard.memory = memory;
    // SAFETY: dedicated memory of an allowed type and size.
    unsafe { d.bind_image_memory(image, memory, 0) }?;
    let planes = plane_layouts(dev, image, 1);
    guard.disarm();
    Ok(SwapImage {
        image,
        memory,
        planes,
        modifier: Some(MOD_LINEAR),
        extent: p.extent,
        backing: Backing::DmaBuf { buf, map: None },
        copy: None,
    })
}
