//! [`ImagePath::Copy`](super::ImagePath::Copy): the application renders
//! into an image in the driver's own (optimal) layout, in the driver's own
//! memory; the layer's present submission, after the application's
//! semaphores and before the frame's fence, copies it into the buffer the
//! window system reads, through a `VkBuffer` bound to that buffer's mapping
//! (`VK_EXT_external_memory_host`). The path for drivers that cannot render
//! to linear host memory (discrete GPUs) and for a window system whose GPU
//! is not the Vulkan device (PRIME): Mesa's "buffer blit".
//!
//! No CPU wait is added: the copy is one more command buffer in the
//! present's own submission.

use super::{
    image_create_info, import_host_memory, memory_type, round_up, Backing, Cleanup, ImageParams,
    PlaneLayout, SwapImage,
};
use crate::device::DeviceData;
use crate::sync::BufferKind;
use ash::vk;
use std::ffi::c_void;
use std::sync::Mutex;

/// The copy path's destination: a buffer bound to the shared buffer.
pub struct CopyTarget {
    pub buffer: vk::Buffer,
    pub memory: vk::DeviceMemory,
    /// `bufferRowLength` of the copy: the stride in pixels.
    pub row_pixels: u32,
}

impl CopyTarget {
    /// # Safety
    /// The GPU is done with the buffer.
    pub(super) unsafe fn destroy(&self, dev: &DeviceData) {
        // SAFETY: the caller's promise; objects this target owns.
        unsafe {
            dev.fns.destroy_buffer(self.buffer, None);
            dev.fns.free_memory(self.memory, None);
        }
    }
}

/// The row pitch of the shared buffers the layer copies into.
const PITCH_ALIGN: u32 = super::modifier::LINEAR_PITCH_ALIGN;

pub(super) fn new(
    dev: &DeviceData,
    p: &ImageParams,
    kind: BufferKind,
    index: usize,
) -> Result<SwapImage, vk::Result> {
    let align = super::host_import_alignment(dev, "copy destination")?;
    let bpp =
        super::support::bytes_per_pixel(p.format).ok_or(vk::Result::ERROR_FORMAT_NOT_SUPPORTED)?;
    let d = &dev.fns;
    // The application's image, in the driver's layout and memory.
    let mut params = p.clone();
    params.usage |= vk::ImageUsageFlags::TRANSFER_SRC;
    let ci = image_create_info(&params, vk::ImageTiling::OPTIMAL);
    // SAFETY: a valid create info, checked supported.
    let image = unsafe { d.create_image(&ci, None) }?;
    let mut guard = Cleanup::new(dev, image);
    // SAFETY: a live image.
    let req = unsafe { d.get_image_memory_requirements(image) };
    let type_index = memory_type(
        dev,
        req.memory_type_bits,
        vk::MemoryPropertyFlags::DEVICE_LOCAL,
    )
    .ok_or(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY)?;
    let ai = vk::MemoryAllocateInfo::default()
        .allocation_size(req.size)
        .memory_type_index(type_index);
    // SAFETY: a valid allocate info.
    let memory = unsafe { d.allocate_memory(&ai, None) }?;
    guard.memory = memory;
    // SAFETY: memory of an allowed type and size.
    unsafe { d.bind_image_memory(image, memory, 0) }?;

    // The shared buffer and a VkBuffer over its mapping.
    let stride = (p.extent.width * bpp).next_multiple_of(PITCH_ALIGN);
    let used = u64::from(stride) * u64::from(p.extent.height);
    let mut ext = vk::ExternalMemoryBufferCreateInfo::default()
        .handle_types(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT);
    let bci = vk::BufferCreateInfo::default()
        .size(used)
        .usage(vk::BufferUsageFlags::TRANSFER_DST)
        .sharing_mode(vk::SharingMode::EXCLUSIVE)
        .push_next(&mut ext);
    // SAFETY: a valid create info.
    let buffer = unsafe { d.create_buffer(&bci, None) }?;
    let destroy_buffer = |m: Option<vk::DeviceMemory>| {
        // SAFETY: made just above, never used.
        unsafe {
            d.destroy_buffer(buffer, None);
            if let Some(m) = m {
                d.free_memory(m, None);
            }
        }
    };
    // SAFETY: a live buffer.
    let breq = unsafe { d.get_buffer_memory_requirements(buffer) };
    let size = round_up(used.max(breq.size), align.max(breq.alignment));
    let backing = match Backing::allocate(kind, index, size) {
        Ok(b) => b,
        Err(e) => {
            destroy_buffer(None);
            return Err(e);
        }
    };
    let map = backing
        .mapping()
        .ok_or(vk::Result::ERROR_INITIALIZATION_FAILED)?;
    let bmem = match import_host_memory(dev, map, size, breq.memory_type_bits) {
        Ok(m) => m,
        Err(e) => {
            destroy_buffer(None);
            return Err(e);
        }
    };
    // SAFETY: memory of an allowed type, large enough.
    if let Err(e) = unsafe { d.bind_buffer_memory(buffer, bmem, 0) } {
        destroy_buffer(Some(bmem));
        return Err(e);
    }
    guard.disarm();
    Ok(SwapImage {
        image,
        memory,
        planes: vec![PlaneLayout {
            offset: 0,
            stride,
            size: used,
        }],
        modifier: None,
        extent: p.extent,
        backing,
        copy: Some(CopyTarget {
            buffer,
            memory: bmem,
            row_pixels: stride / bpp,
        }),
    })
}

/// One queue family's pre-recorded copy command buffers, one per image.
struct FamilyCommands {
    family: u32,
    pool: vk::CommandPool,
    cmds: Vec<vk::CommandBuffer>,
}

/// A swapchain's copy command buffers, recorded once per queue family the
/// application presents from (the copy must run on the present queue's
/// family, which owns the image at present time).
pub struct CopyCommands {
    families: Mutex<Vec<FamilyCommands>>,
}

impl Default for CopyCommands {
    fn default() -> Self {
        Self::new()
    }
}

impl CopyCommands {
    pub fn new() -> Self {
        Self {
            families: Mutex::new(Vec::new()),
        }
    }

    /// The command buffer that copies image `index` into its shared buffer
    /// on queue family `family`, recording the family's on first use.
    pub fn get(
        &self,
        dev: &DeviceData,
        images: &[SwapImage],
        family: u32,
        index: usize,
    ) -> Result<vk::CommandBuffer, vk::Result> {
        let mut fams = self.families.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = fams.iter().find(|f| f.family == family) {
            return f.cmds.get(index).copied().ok_or(vk::Result::ERROR_UNKNOWN);
        }
        let f = record(dev, images, family)?;
        let cmd = f.cmds.get(index).copied().ok_or(vk::Result::ERROR_UNKNOWN);
        fams.push(f);
        cmd
    }

    /// # Safety
    /// The GPU is done with every copy.
    pub unsafe fn destroy(&self, dev: &DeviceData) {
        let mut fams = self.families.lock().unwrap_or_else(|e| e.into_inner());
        for f in fams.drain(..) {
            // SAFETY: the caller's promise; freeing the pool frees its
            // command buffers.
            unsafe { dev.fns.destroy_command_pool(f.pool, None) };
        }
    }
}

/// Records, for queue family `family`, each image's copy: the image from
/// `PRESENT_SRC_KHR` to a transfer source, the copy into the buffer, the
/// image back, and the buffer's writes made visible to the host (the
/// window system maps the memory).
fn record(
    dev: &DeviceData,
    images: &[SwapImage],
    family: u32,
) -> Result<FamilyCommands, vk::Result> {
    let d = &dev.fns;
    let pci = vk::CommandPoolCreateInfo::default().queue_family_index(family);
    // SAFETY: a valid create info.
    let pool = unsafe { d.create_command_pool(&pci, None) }?;
    let fail = |e: vk::Result| {
        // SAFETY: the pool and its buffers were never submitted.
        unsafe { d.destroy_command_pool(pool, None) };
        e
    };
    let ai = vk::CommandBufferAllocateInfo::default()
        .command_pool(pool)
        .level(vk::CommandBufferLevel::PRIMARY)
        .command_buffer_count(images.len() as u32);
    // SAFETY: a valid allocate info.
    let cmds = unsafe { d.allocate_command_buffers(&ai) }.map_err(fail)?;
    let range = vk::ImageSubresourceRange::default()
        .aspect_mask(vk::ImageAspectFlags::COLOR)
        .level_count(1)
        .layer_count(1);
    for (&cb, img) in cmds.iter().zip(images) {
        let Some(target) = &img.copy else {
            return Err(fail(vk::Result::ERROR_UNKNOWN));
        };
        // The layer made this dispatchable object itself: the loader must
        // set its dispatch table before layers below see it.
        // SAFETY: a command buffer just allocated on this device.
        unsafe { (dev.set_loader_data)(d.handle(), vk::Handle::as_raw(cb) as *mut c_void) }
            .result()
            .map_err(fail)?;
        let to_src = vk::ImageMemoryBarrier::default()
            .old_layout(vk::ImageLayout::PRESENT_SRC_KHR)
            .new_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
            .src_access_mask(vk::AccessFlags::empty())
            .dst_access_mask(vk::AccessFlags::TRANSFER_READ)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .image(img.image)
            .subresource_range(range);
        let back = vk::ImageMemoryBarrier::default()
            .old_layout(vk::ImageLayout::TRANSFER_SRC_OPTIMAL)
            .new_layout(vk::ImageLayout::PRESENT_SRC_KHR)
            .src_access_mask(vk::AccessFlags::empty())
            .dst_access_mask(vk::AccessFlags::empty())
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .image(img.image)
            .subresource_range(range);
        let to_host = vk::BufferMemoryBarrier::default()
            .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
            .dst_access_mask(vk::AccessFlags::HOST_READ)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .buffer(target.buffer)
            .size(vk::WHOLE_SIZE);
        let region = vk::BufferImageCopy::default()
            .buffer_row_length(target.row_pixels)
            .image_subresource(
                vk::ImageSubresourceLayers::default()
                    .aspect_mask(vk::ImageAspectFlags::COLOR)
                    .layer_count(1),
            )
            .image_extent(vk::Extent3D {
                width: img.extent.width,
                height: img.extent.height,
                depth: 1,
            });
        // SAFETY: recording into a fresh command buffer of this device; the
        // image and buffer live as long as the swapchain, which outlives
        // the command buffers.
        let recorded = unsafe {
            (|| {
                // A frame may be presented from an image again before the GPU
                // finished its previous copy (its semaphores order the two).
                let begin = vk::CommandBufferBeginInfo::default()
                    .flags(vk::CommandBufferUsageFlags::SIMULTANEOUS_USE);
                d.begin_command_buffer(cb, &begin)?;
                // The present's wait on the application's semaphores (all
                // commands) orders its rendering before this barrier.
                d.cmd_pipeline_barrier(
                    cb,
                    vk::PipelineStageFlags::ALL_COMMANDS,
                    vk::PipelineStageFlags::TRANSFER,
                    vk::DependencyFlags::empty(),
                    &[],
                    &[],
                    &[to_src],
                );
                d.cmd_copy_image_to_buffer(
                    cb,
                    img.image,
                    vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
                    target.buffer,
                    &[region],
                );
                d.cmd_pipeline_barrier(
                    cb,
                    vk::PipelineStageFlags::TRANSFER,
                    vk::PipelineStageFlags::BOTTOM_OF_PIPE | vk::PipelineStageFlags::HOST,
                    vk::DependencyFlags::empty(),
                    &[],
                    &[to_host],
                    &[back],
                );
                d.end_command_buffer(cb)
            })()
        };
        recorded.map_err(fail)?;
    }
    Ok(FamilyCommands { family, pool, cmds })
}
