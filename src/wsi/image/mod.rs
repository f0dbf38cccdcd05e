//! Swapchain images and the memory behind them.
//!
//! An image reaches the window system by one of four paths ([`ImagePath`]),
//! chosen per swapchain ([`choose()`]) from what the driver can do with the
//! swapchain's format and usage and what the window system accepts, in the
//! order a GPU driver's own WSI prefers them (Mesa's: native images with
//! modifiers first, a blit into a linear buffer last):
//!
//! 1. [`ImagePath::DriverDmaBuf`] (`modifier.rs`): the driver allocates the
//!    image with a DRM format modifier the window system accepts and
//!    exports its memory as a dma-buf;
//! 2. [`ImagePath::ImportedDmaBuf`] (`modifier.rs`): a dma-buf the layer
//!    allocates (dma-heap, udmabuf) imported with
//!    `VK_EXT_external_memory_dma_buf` and the linear modifier;
//! 3. [`ImagePath::HostMemory`] (`host.rs`): a linear image bound to the
//!    shared buffer's mapping (`VK_EXT_external_memory_host`);
//! 4. [`ImagePath::Copy`] (`copy.rs`): an image in the driver's own layout;
//!    the present submission copies it into the shared buffer.
//!
//! On paths 1-3 the application renders straight into what the window
//! system reads. Every path is checked against the format features and
//! image format properties the driver reports before an image is made
//! (`support.rs`): the layer never hands out an image the driver cannot
//! render to.

mod choose;
mod copy;
mod host;
mod modifier;
mod support;

pub use choose::{
    choose, choose_for_physical_device, surface_format_supported, surface_usage, Choice,
    WindowSystemBuffers,
};
pub use copy::CopyCommands;

use super::shm::{Mapping, ShmFile};
use crate::device::DeviceData;
use crate::kernel::DmaBuf;
use crate::sync::BufferKind;
use ash::vk;
use std::os::fd::{AsFd, BorrowedFd};

/// What a swapchain image is, and how its pixels reach the buffer the
/// window system reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImagePath {
    DriverDmaBuf,
    ImportedDmaBuf,
    HostMemory,
    Copy,
}

impl ImagePath {
    /// A short stable name for logs, statistics and tests.
    pub fn name(self) -> &'static str {
        match self {
            ImagePath::DriverDmaBuf => "driver-dma-buf",
            ImagePath::ImportedDmaBuf => "imported-dma-buf",
            ImagePath::HostMemory => "host-memory",
            ImagePath::Copy => "copy",
        }
    }
}

/// Where an image's pixels live, as the window system sees them.
pub enum Backing {
    Shm(ShmFile),
    /// A dma-buf: allocated by the layer (dma-heap, udmabuf or vgem) and
    /// mapped into it, or exported by the driver (no mapping).
    DmaBuf {
        buf: DmaBuf,
        map: Option<Mapping>,
    },
}

impl Backing {
    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Backing::Shm(s) => s.fd(),
            Backing::DmaBuf { buf, .. } => buf.as_fd(),
        }
    }

    /// The layer's mapping of the buffer (none for a driver's dma-buf).
    pub fn mapping(&self) -> Option<&Mapping> {
        match self {
            Backing::Shm(s) => Some(s.mapping()),
            Backing::DmaBuf { map, .. } => map.as_ref(),
        }
    }

    pub fn dma_buf(&self) -> Option<&DmaBuf> {
        match self {
            Backing::DmaBuf { buf, .. } => Some(buf),
            Backing::Shm(_) => None,
        }
    }

    /// A new shared buffer of `kind` of at least `size` bytes, mapped.
    fn allocate(kind: BufferKind, index: usize, size: u64) -> Result<Self, vk::Result> {
        let backing = match kind {
            BufferKind::Shm => {
                let shm = ShmFile::new(&format!("syncbridge-image-{index}"), size as usize)
                    .map_err(|e| {
                        log::error!("cannot create shared memory of {size} bytes: {e}");
                        vk::Result::ERROR_OUT_OF_HOST_MEMORY
                    })?;
                Backing::Shm(shm)
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
                Backing::DmaBuf {
                    buf,
                    map: Some(map),
                }
            }
        };
        let len = backing.mapping().map_or(0, Mapping::len) as u64;
        if len < size {
            log::error!(
                "the buffer allocated for image {index} has {len} bytes, fewer than the {size} it needs"
            );
            return Err(vk::Result::ERROR_OUT_OF_DEVICE_MEMORY);
        }
        Ok(backing)
    }
}

/// The layout of one plane of the image inside its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneLayout {
    pub offset: u64,
    pub stride: u32,
    pub size: u64,
}

/// One swapchain image: the `VkImage` the application renders into, its
/// memory, and the buffer the window system reads.
pub struct SwapImage {
    pub image: vk::Image,
    pub memory: vk::DeviceMemory,
    /// The buffer's memory planes, as the window system is told them.
    pub planes: Vec<PlaneLayout>,
    /// The buffer's DRM format modifier; `None`: linear, named to the window
    /// system the way it accepts linear buffers.
    pub modifier: Option<u64>,
    pub extent: vk::Extent2D,
    pub backing: Backing,
    /// On the copy path, the buffer over `backing` the present submission
    /// copies the image into.
    pub copy: Option<copy::CopyTarget>,
}

impl SwapImage {
    /// The first (for every format the layer offers, the only colour)
    /// plane.
    pub fn layout(&self) -> PlaneLayout {
        self.planes[0]
    }

    /// Makes image `index` of a swapchain by the path `choice` names.
    pub fn new(
        dev: &DeviceData,
        p: &ImageParams,
        choice: &Choice,
        kind: BufferKind,
        index: usize,
    ) -> Result<Self, vk::Result> {
        match choice.path {
            ImagePath::DriverDmaBuf => modifier::exported(dev, p, &choice.modifiers),
            ImagePath::ImportedDmaBuf => modifier::imported(dev, p, index),
            ImagePath::HostMemory => host::new(dev, p, kind, index),
            ImagePath::Copy => copy::new(dev, p, kind, index),
        }
    }

    /// Destroys the Vulkan objects; the backing is released after the
    /// memory that imported it is freed.
    pub fn destroy(self, dev: &DeviceData) {
        // SAFETY: objects this image owns; the caller guarantees the GPU is
        // done with them.
        unsafe {
            if let Some(c) = &self.copy {
                c.destroy(dev);
            }
            dev.fns.destroy_image(self.image, None);
            dev.fns.free_memory(self.memory, None);
        }
        drop(self.backing);
    }
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
    v.div_ceil(align.max(1)) * align.max(1)
}

/// An image create info for `p` with `tiling` and the given `pNext`
/// structures linked in by the caller.
fn image_create_info(p: &ImageParams, tiling: vk::ImageTiling) -> vk::ImageCreateInfo<'_> {
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
        .tiling(tiling)
        .usage(p.usage)
        .sharing_mode(p.sharing_mode)
        .queue_family_indices(&p.queue_families)
        .initial_layout(vk::ImageLayout::UNDEFINED)
}

/// The pointer alignment host-memory imports need, or (with one error line
/// naming what is impossible) `VK_ERROR_INITIALIZATION_FAILED`.
fn host_import_alignment(dev: &DeviceData, what: &str) -> Result<u64, vk::Result> {
    dev.caps.host_memory_import.ok_or_else(|| {
        log::error!("the device cannot import host memory: no {what}");
        vk::Result::ERROR_INITIALIZATION_FAILED
    })
}

/// The first memory type allowed by `bits`, preferring one with `want`.
fn memory_type(dev: &DeviceData, bits: u32, want: vk::MemoryPropertyFlags) -> Option<u32> {
    let props = &dev.memory_properties;
    let allowed = |i: u32| bits & (1 << i) != 0;
    (0..props.memory_type_count)
        .find(|&i| allowed(i) && props.memory_types[i as usize].property_flags.contains(want))
        .or_else(|| (0..props.memory_type_count).find(|&i| allowed(i)))
}

/// Imports `map` (`size` bytes) as host memory of a type allowed by
/// `type_bits`.
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
    let type_index = memory_type(dev, bits, vk::MemoryPropertyFlags::empty())
        .filter(|_| bits != 0)
        .ok_or_else(|| {
            log::error!(
                "no memory type can import host memory here (resource {type_bits:#x}, host {:#x})",
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
    // SAFETY: the mapping outlives the memory (`SwapImage::destroy` frees
    // the memory before the backing is dropped).
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
        // SAFETY: objects created by this module and not yet handed out.
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
