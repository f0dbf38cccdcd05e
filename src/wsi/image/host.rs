//! [`ImagePath::HostMemory`](super::ImagePath::HostMemory): a linear
//! `VkImage` whose memory is the very buffer the window system reads (a
//! memfd or a dma-buf the layer allocated and mapped), imported with
//! `VK_EXT_external_memory_host`. What CPU drivers (lavapipe) render into;
//! GPU drivers often cannot use linear images as colour attachments.

use super::{image_create_info, import_host_memory, round_up, Backing, Cleanup, ImageParams};
use super::{PlaneLayout, SwapImage};
use crate::device::DeviceData;
use crate::sync::BufferKind;
use ash::vk;

pub(super) fn new(
    dev: &DeviceData,
    p: &ImageParams,
    kind: BufferKind,
    index: usize,
) -> Result<SwapImage, vk::Result> {
    let align = super::host_import_alignment(dev, "host-memory swapchain images")?;
    let mut external = vk::ExternalMemoryImageCreateInfo::default()
        .handle_types(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT);
    let ci = image_create_info(p, vk::ImageTiling::LINEAR).push_next(&mut external);
    let d = &dev.fns;
    // SAFETY: a valid create info.
    let image = unsafe { d.create_image(&ci, None) }?;
    let mut guard = Cleanup::new(dev, image);
    // SAFETY: a live image.
    let req = unsafe { d.get_image_memory_requirements(image) };
    let sub = vk::ImageSubresource {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        mip_level: 0,
        array_layer: 0,
    };
    // SAFETY: a live linear image.
    let sl = unsafe { d.get_image_subresource_layout(image, sub) };
    let size = round_up(req.size.max(sl.offset + sl.size), align.max(req.alignment));
    let backing = Backing::allocate(kind, index, size)?;
    let map = backing
        .mapping()
        .ok_or(vk::Result::ERROR_INITIALIZATION_FAILED)?;
    let memory = import_host_memory(dev, map, size, req.memory_type_bits)?;
    guard.memory = memory;
    // SAFETY: the memory is large enough and of an allowed type.
    unsafe { d.bind_image_memory(image, memory, 0) }?;
    guard.disarm();
    Ok(SwapImage {
        image,
        memory,
        planes: vec![PlaneLayout {
            offset: sl.offset,
            stride: sl.row_pitch as u32,
            size: sl.size,
        }],
        modifier: None,
        extent: p.extent,
        backing,
        copy: None,
    })
}
