//! Sources of dma-bufs: the system dma-buf heap, udmabuf (a sealed memfd)
//! and vgem dumb buffers.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};

use super::dma_buf::{DmaBuf, DmaBufSource};
use super::error::{KernelError, Result};
use super::sys;
use super::vgem::Vgem;

/// The allocating sources, in the order [`DmaBuf::allocate`] tries them.
pub const ALLOC_ORDER: [DmaBufSource; 3] = [
    DmaBufSource::SystemHeap,
    DmaBufSource::Udmabuf,
    DmaBufSource::Vgem,
];

const PAGE: u64 = 4096;

fn round_up(size: u64) -> u64 {
    size.max(1).div_ceil(PAGE) * PAGE
}

impl DmaBuf {
    /// A dma-buf of at least `size` bytes (rounded up to pages) from the
    /// first source that works, in [`ALLOC_ORDER`]; see
    /// [`DmaBuf::source`] for which. `Unsupported` if none works.
    pub fn allocate(size: u64) -> Result<DmaBuf> {
        let mut last = KernelError::Unsupported("no dma-buf source (dma-heap, udmabuf, vgem)");
        for src in ALLOC_ORDER {
            match DmaBuf::allocate_from(src, size) {
                Ok(b) => return Ok(b),
                Err(e) => last = if e.is_unsupported() { last } else { e },
            }
        }
        Err(last)
    }

    /// A dma-buf from one given source.
    pub fn allocate_from(source: DmaBufSource, size: u64) -> Result<DmaBuf> {
        let size = round_up(size);
        let fd = match source {
            DmaBufSource::SystemHeap => heap_alloc(size)?,
            DmaBufSource::Udmabuf => udmabuf_alloc(size)?,
            DmaBufSource::Vgem => return Vgem::shared()?.create_dma_buf(size),
            DmaBufSource::Imported => {
                return Err(KernelError::InvalidArgument("Imported is not an allocator"))
            }
        };
        Ok(DmaBuf::from_fd_with_source(fd, source))
    }
}

fn open_dev(path: &str, what: &'static str) -> Result<OwnedFd> {
    match rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::NOENT)
        | Err(rustix::io::Errno::NODEV)
        | Err(rustix::io::Errno::NXIO) => Err(KernelError::Unsupported(what)),
        Err(e) => Err(e.into()),
    }
}

fn heap_alloc(size: u64) -> Result<OwnedFd> {
    let heap = open_dev("/dev/dma_heap/system", "no /dev/dma_heap/system")?;
    let mut arg = sys::DmaHeapAllocationData {
        len: size,
        fd: 0,
        fd_flags: (OFlags::RDWR | OFlags::CLOEXEC).bits(),
        heap_flags: 0,
    };
    // SAFETY: DMA_HEAP_IOCTL_ALLOC takes a `struct dma_heap_allocation_data`.
    unsafe { sys::ioctl::<{ sys::DMA_HEAP_IOCTL_ALLOC }, _>(heap.as_fd(), &mut arg) }
        .map_err(|e| KernelError::from_ioctl(e, "DMA_HEAP_IOCTL_ALLOC"))?;
    // SAFETY: on success the kernel installed a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(arg.fd as i32) })
}

fn udmabuf_alloc(size: u64) -> Result<OwnedFd> {
    let dev = open_dev("/dev/udmabuf", "no /dev/udmabuf")?;
    let memfd = rustix::fs::memfd_create(
        "syncbridge-udmabuf",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    rustix::fs::ftruncate(&memfd, size)?;
    rustix::fs::fcntl_add_seals(&memfd, SealFlags::SHRINK)?;
    use std::os::fd::AsRawFd;
    let mut arg = sys::UdmabufCreate {
        memfd: memfd.as_raw_fd() as u32,
        flags: sys::UDMABUF_FLAGS_CLOEXEC,
        offset: 0,
        size,
    };
    // SAFETY: UDMABUF_CREATE takes a `struct udmabuf_create`; it returns the
    // new dma-buf fd as the ioctl's result, not through the struct.
    let r = unsafe { rustix::ioctl::ioctl(&dev, UdmabufCreateIoctl(&mut arg)) };
    let fd = r.map_err(|e| KernelError::from_ioctl(e, "UDMABUF_CREATE"))?;
    // SAFETY: on success the ioctl's result is a new fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// UDMABUF_CREATE returns the fd as the ioctl's return value, which
/// rustix's `Updater` discards: a small `Ioctl` that keeps it.
struct UdmabufCreateIoctl<'a>(&'a mut sys::UdmabufCreate);

// SAFETY: the opcode is UDMABUF_CREATE, whose argument is the pointed-to
// `struct udmabuf_create`; the kernel only reads it.
unsafe impl rustix::ioctl::Ioctl for UdmabufCreateIoctl<'_> {
    type Output = i32;
    const IS_MUTATING: bool = false;
    fn opcode(&self) -> rustix::ioctl::Opcode {
        sys::UDMABUF_CREATE
    }
    fn as_ptr(&mut self) -> *mut std::ffi::c_void {
        (self.0 as *mut sys::UdmabufCreate).cast()
    }
    unsafe fn output_from_ptr(
        out: rustix::ioctl::IoctlOutput,
        _: *mut std::ffi::c_void,
    ) -> rustix::io::Result<i32> {
        Ok(out)
    }
}

/// Which allocating sources work on this machine (each probed once by
/// allocating a page; cached process-wide).
pub fn available_sources() -> &'static [DmaBufSource] {
    static AVAILABLE: OnceLock<Vec<DmaBufSource>> = OnceLock::new();
    AVAILABLE.get_or_init(|| {
        ALLOC_ORDER
            .into_iter()
            .filter(|s| DmaBuf::allocate_from(*s, PAGE).is_ok())
            .collect()
    })
}
