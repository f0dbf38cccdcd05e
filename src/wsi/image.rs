//! Swapchain images and the memory behind them.
//!
//! Each image is a linear `VkImage` whose memory is the very buffer the
//! window system reads (a memfd or a dma-buf), imported into Vulkan with
//! `VK_EXT_external_memory_host`. The application renders straight into
//! what the compositor shows: no copy on either side.

use super::shm::{Mapping, ShmFile};
use crate::device::DeviceData;
use crate::kernel::DmaBuf;
use crate::sync::BufferKind;
use ash::vk;
use std::os::fd::{AsFd, BorrowedFd};

/// Where an image's pixels live.
pub enum Backing {
    Shm(ShmFile),
    /// A dma-buf (dma-heap, udmabuf or vgem) mapped into the layer.
    DmaBuf {
        buf: DmaBuf,
        map: Mapping,
    },
}

impl Backing {
    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Backing::Shm(s) => s.fd(),
            Backing::DmaBuf { buf, .. } => buf.as_fd(),
        }
    }

    pub fn mapping(&self) -> &Mapping {
        match self {
            Backing::Shm(s) => s.mapping(),
            Backing::DmaBuf { map, .. } => map,
        }
    }

    pub fn dma_buf(&self) -> Option<&DmaBuf> {
        match self {
            Backing::DmaBuf { buf, .. } => Some(buf),
            Backing::Shm(_) => None,
        }
    }

    fn allocate(kind: BufferKind, index: usize, size: u64) -> Result<Self, vk::Result> {
        match kind {
            BufferKind::Shm => {
                let shm = ShmFile::new(&format!("syncbridge-image-{index}"), size as usize)
                    .map_err(|e| {
                        log::error!("cannot create shared memory of {size} bytes: {e}");
                        vk::Result::ERROR_OUT_OF_HOST_MEMORY
                    })?;
                Ok(Backing::Shm(shm))
            }
            BufferKind::DmaBuf => {
                let buf = DmaBuf::allocate(size).map_err(|e| {
                    log::error!("cannot allocate a dma-buf of {size} bytes: {e}");
                    vk::Result::ERROR_OUT_OF_DEVICE_MEMORY
                })?;
                let map = buf.mmap().map_err(|e| {
                    log::error!("cannot map the dma-buf: {e}");
                    vk::Result::ERROR_MEMORY_MAP_FAILED
                })?;
                Ok(Backing::DmaBuf { buf, map })
            }
        }
    }
}

/// The layout of the image's single plane inside its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneLayout {
    pub offset: u64,
    pub stride: u32,
    pub size: u64,
}

/// One swapchain image with its memory and the fence the layer uses to
/// learn when the application's rendering into it is complete.
pub struct SwapImage {
    pub image: vk::Image,
    pub memory: vk::DeviceMemory,
    pub layout: PlaneLayout,
    pub extent: vk::Extent2D,
    pub backing: Backing,
}

/// What the swapchain's images are created with.
#[derive(Clone, Debug)]
pub struct ImageParams {
    pub format: vk::Format,
    pub extent: vk::Extent2D,
    pub usage: vk::ImageUsageFlags,
    pub flags: vk::ImageCreateFlags,
    pub sharing_mode: vk::SharingMode,
    pub queue_families: Vec<u32>,
}

fn round_up(v: u64, align: u64) -> u64 {
    v.div_ceil(align) * align
}

fn image_create_info<'a>(
    p: &'a ImageParams,
    external: &'a mut vk::ExternalMemoryImageCreateInfo<'static>,
) -> vk::ImageCreateInfo<'a> {
    vk::ImageCreateInfo::default()
        .flags(p.flags)
        .image_type(vk::ImageType::TYPE_2D)
        .format(p.format)
        .extent(vk::Extent3D {
            width: p.extent.width,
            height: p.extent.height,
            depth: 1,
        })
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(vk::ImageTiling::LINEAR)
        .usage(p.usage)
        .sharing_mode(p.sharing_mode)
        .queue_family_indices(&p.queue_families)
        .initial_layout(vk::ImageLayout::UNDEFINED)
        .push_next(external)
}

/// Whether the device can make linear images of `format` with `usage`
/// backed by imported host memory.
pub fn host_image_supported(
    dev: &DeviceData,
    format: vk::Format,
    usage: vk::ImageUsageFlags,
) -> bool {
    dev.caps.host_memory_import.is_some()
        && host_image_supported_pd(&dev.instance, dev.physical_device, format, usage)
}

/// [`host_image_supported`] for a physical device (surface queries come
/// before any device exists).
pub fn host_image_supported_pd(
    inst: &crate::device::InstanceData,
    pd: vk::PhysicalDevice,
    format: vk::Format,
    usage: vk::ImageUsageFlags,
) -> bool {
    let mut ext_info = vk::PhysicalDeviceExternalImageFormatInfo::default()
        .handle_type(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT);
    let info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(format)
        .ty(vk::ImageType::TYPE_2D)
        .tiling(vk::ImageTiling::LINEAR)
        .usage(usage)
        .push_next(&mut ext_info);
    let mut ext_props = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut ext_props);
    // SAFETY: valid physical device and structures.
    let r = unsafe {
        inst.fns
            .get_physical_device_image_format_properties2(pd, &info, &mut props)
    };
    r.is_ok()
        && ext_props
            .external_memory_properties
            .external_memory_features
            .contains(vk::ExternalMemoryFeatureFlags::IMPORTABLE)
}

impl SwapImage {
    /// Creates a linear image whose memory is a new buffer of `kind` (a
    /// memfd or a dma-buf), imported as host memory.
    pub fn new(
        dev: &DeviceData,
        p: &ImageParams,
        kind: BufferKind,
        index: usize,
    ) -> Result<Self, vk::Result> {
        let Some(align) = dev.caps.host_memory_import else {
            log::error!(
                "the device cannot import host memory: no shared-memory swapchain images possible"
            );
            return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
        };
        let mut external = vk::ExternalMemoryImageCreateInfo::default()
            .handle_types(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT);
        let ci = image_create_info(p, &mut external);
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
        if (backing.mapping().len() as u64) < size {
            log::error!(
                "the buffer allocated for image {index} is smaller than the {size} bytes it needs"
            );
            return Err(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY);
        }
        let memory = import_host_memory(dev, backing.mapping(), size, req.memory_type_bits)?;
        guard.memory = memory;
        // SAFETY: the memory is large enough and of an allowed type.
        unsafe { d.bind_image_memory(image, memory, 0) }?;
        guard.disarm();
        Ok(SwapImage {
            image,
            memory,
            layout: PlaneLayout {
                offset: sl.offset,
                stride: sl.row_pitch as u32,
                size: sl.size,
            },
            extent: p.extent,
            backing,
        })
    }

    /// Destroys the Vulkan objects; the backing is released when `self`
    /// drops, after the memory that imported it is freed.
    pub fn destroy(self, dev: &DeviceData) {
        // SAFETY: objects this image owns; the caller guarantees the GPU is
        // done with them.
        unsafe {
            dev.fns.destroy_image(self.image, None);
            dev.fns.free_memory(self.memory, None);
        }
        drop(self.backing);
    }
}

fn import_host_memory(
    dev: &DeviceData,
    map: &Mapping,
    size: u64,
    type_bits: u32,
) -> Result<vk::DeviceMemory, vk::Result> {
    let host = dev
        .ext
        .memory_host
        .as_ref()
        .ok_or(vk::Result::ERROR_INITIALIZATION_FAILED)?;
    let mut props = vk::MemoryHostPointerPropertiesEXT::default();
    // SAFETY: the pointer is a live mapping of at least `size` bytes.
    unsafe {
        (host.fp().get_memory_host_pointer_properties_ext)(
            dev.fns.handle(),
            vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT,
            map.as_ptr().cast(),
            &mut props,
        )
    }
    .result()?;
    let bits = type_bits & props.memory_type_bits;
    let type_index = (0..dev.memory_properties.memory_type_count).find(|i| bits & (1 << i) != 0).ok_or_else(|| {
        log::error!(
            "no memory type can import host memory for this image (image {type_bits:#x}, host {:#x})",
            props.memory_type_bits
        );
        vk::Result::ERROR_INITIALIZATION_FAILED
    })?;
    let mut import = vk::ImportMemoryHostPointerInfoEXT::default()
        .handle_type(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT)
        .host_pointer(map.as_ptr().cast());
    let ai = vk::MemoryAllocateInfo::default()
        .allocation_size(size)
        .memory_type_index(type_index)
        .push_next(&mut import);
    // SAFETY: the mapping outlives the memory (SwapImage::destroy frees the
    // memory before the backing is dropped).
    unsafe { dev.fns.allocate_memory(&ai, None) }
}

/// Destroys a half-built image on an early return.
struct Cleanup<'a> {
    dev: &'a DeviceData,
    image: vk::Image,
    memory: vk::DeviceMemory,
}

impl<'a> Cleanup<'a> {
    fn new(dev: &'a DeviceData, image: vk::Image) -> Self {
        Self {
            dev,
            image,
            memory: vk::DeviceMemory::null(),
        }
    }

    fn disarm(&mut self) {
        self.image = vk::Image::null();
        self.memory = vk::DeviceMemory::null();
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        // SAFETY: objects created by this function and not yet handed out.
        unsafe {
            if self.image != vk::Image::null() {
                self.dev.fns.destroy_image(self.image, None);
            }
            if self.memory != vk::DeviceMemory::null() {
                self.dev.fns.free_memory(self.memory, None);
            }
        }
    }
}
