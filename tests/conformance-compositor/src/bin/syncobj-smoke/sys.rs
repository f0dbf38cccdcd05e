//! The smoke client's kernel objects: udmabufs (a sealed memfd turned into
//! a dma-buf by `/dev/udmabuf`), vgem write fences (a pending fence in a
//! dma-buf's reservation object, signalled when the client says), and DRM
//! timeline syncobjs (through the `drm` crate). The raw ioctls are all here.

use rustix::fs::{self, MemfdFlags, Mode, OFlags, SealFlags};
use rustix::mm::{self, MapFlags, ProtFlags};
use smithay::reexports::drm::control::{syncobj, Device as ControlDevice};
use smithay::reexports::drm::Device;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

/// A DRM node (card or render) opened for the `drm` crate's traits.
pub struct Card(OwnedFd);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
impl Device for Card {}
impl ControlDevice for Card {}

impl Card {
    pub fn open(path: &Path) -> io::Result<Card> {
        Ok(Card(fs::open(
            path,
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        )?))
    }

    pub fn driver(&self) -> String {
        self.get_driver()
            .map(|d| d.name().to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// A timeline syncobj on some node; its fd is what the compositor imports.
pub struct Timeline<'a> {
    card: &'a Card,
    handle: syncobj::Handle,
}

impl<'a> Timeline<'a> {
    pub fn new(card: &'a Card) -> io::Result<Timeline<'a>> {
        Ok(Timeline {
            card,
            handle: card.create_syncobj(false)?,
        })
    }

    pub fn fd(&self) -> io::Result<OwnedFd> {
        self.card.syncobj_to_fd(self.handle, false)
    }

    pub fn signal(&self, point: u64) -> io::Result<()> {
        self.card.syncobj_timeline_signal(&[self.handle], &[point])
    }

    /// The last signalled point.
    pub fn signalled(&self) -> io::Result<u64> {
        let mut p = [0u64];
        self.card
            .syncobj_timeline_query(&[self.handle], &mut p, false)?;
        Ok(p[0])
    }
}

impl Drop for Timeline<'_> {
    fn drop(&mut self) {
        let _ = self.card.destroy_syncobj(self.handle);
    }
}

/// A CPU-writable buffer shared as a dma-buf.
pub struct Shared {
    pub dmabuf: OwnedFd,
    map: *mut u8,
    len: usize,
    /// vgem only: the node and GEM handle a fence is attached through.
    vgem: Option<(OwnedFd, u32)>,
}

#[repr(C)]
struct UdmabufCreate {
    memfd: u32,
    flags: u32,
    offset: u64,
    size: u64,
}
const UDMABUF_FLAGS_CLOEXEC: u32 = 0x01;
// _IOW('u', 0x42, struct udmabuf_create)
const UDMABUF_CREATE: libc::c_ulong = 0x4018_7542;

#[repr(C)]
struct VgemFenceAttach {
    handle: u32,
    flags: u32,
    out_fence: u32,
    pad: u32,
}
#[repr(C)]
struct VgemFenceSignal {
    fence: u32,
    flags: u32,
}
const VGEM_FENCE_WRITE: u32 = 0x1;
// DRM_IOWR(DRM_COMMAND_BASE + 0x1, struct drm_vgem_fence_attach)
const DRM_IOCTL_VGEM_FENCE_ATTACH: libc::c_ulong = 0xc010_6441;
// DRM_IOW(DRM_COMMAND_BASE + 0x2, struct drm_vgem_fence_signal)
const DRM_IOCTL_VGEM_FENCE_SIGNAL: libc::c_ulong = 0x4008_6442;

fn check(rc: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if rc < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(rc)
    }
}

impl Shared {
    /// `len` bytes from `/dev/udmabuf`, mapped through the memfd.
    pub fn udmabuf(len: usize) -> io::Result<Shared> {
        let len = len.next_multiple_of(4096);
        let memfd = fs::memfd_create(
            "syncobj-smoke",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        fs::ftruncate(&memfd, len as u64)?;
        fs::fcntl_add_seals(&memfd, SealFlags::SHRINK)?;
        let dev = fs::open(
            "/dev/udmabuf",
            OFlags::RDWR | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let arg = UdmabufCreate {
            memfd: memfd.as_raw_fd() as u32,
            flags: UDMABUF_FLAGS_CLOEXEC,
            offset: 0,
            size: len as u64,
        };
        // SAFETY: UDMABUF_CREATE reads one udmabuf_create, which `arg` is.
        let fd = check(
            unsafe { libc::ioctl(dev.as_raw_fd(), UDMABUF_CREATE, &arg) },
            "UDMABUF_CREATE",
        )?;
        // SAFETY: the ioctl returned a new dma-buf fd that nothing else owns.
        let dmabuf = unsafe { OwnedFd::from_raw_fd(fd) };
        Self::mapped(dmabuf, &memfd, len, None)
    }

    /// A vgem dumb buffer of `len` bytes (so a fence can be attached to
    /// it), exported as a dma-buf and mapped through it.
    pub fn vgem(card: &Card, width: u32, height: u32) -> io::Result<Shared> {
        use smithay::reexports::drm::buffer::DrmFourcc;
        let bo = card.create_dumb_buffer((width, height), DrmFourcc::Xrgb8888, 32)?;
        let handle: u32 = smithay::reexports::drm::buffer::Buffer::handle(&bo).into();
        let dmabuf = card.buffer_to_prime_fd(
            smithay::reexports::drm::buffer::Buffer::handle(&bo),
            libc::O_CLOEXEC as u32 | libc::O_RDWR as u32,
        )?;
        let len = (width * height * 4) as usize;
        let dup = dmabuf.try_clone()?;
        let node = card.0.try_clone()?;
        Self::mapped(dmabuf, &dup, len, Some((node, handle)))
    }

    fn mapped(
        dmabuf: OwnedFd,
        via: &OwnedFd,
        len: usize,
        vgem: Option<(OwnedFd, u32)>,
    ) -> io::Result<Shared> {
        // SAFETY: a fresh shared mapping of `len` bytes of `via`, unmapped in Drop.
        let map = unsafe {
            mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                via,
                0,
            )?
        };
        Ok(Shared {
            dmabuf,
            map: map.cast(),
            len,
            vgem,
        })
    }

    /// Fills the first `pixels` 32-bit words with `argb` (little-endian,
    /// as DRM's XRGB8888/ARGB8888 are).
    pub fn fill(&self, pixels: usize, argb: u32) {
        assert!(pixels * 4 <= self.len);
        // SAFETY: the mapping is `len` writable bytes for the life of self;
        // the compositor reads it only after the client's acquire point or
        // fence, which this fill precedes.
        let words = unsafe { std::slice::from_raw_parts_mut(self.map.cast::<u32>(), pixels) };
        words.fill(argb);
    }

    /// Attaches an unsignalled vgem write fence; returns its id.
    pub fn attach_fence(&self) -> io::Result<u32> {
        let (node, handle) = self
            .vgem
            .as_ref()
            .ok_or_else(|| io::Error::other("not a vgem buffer"))?;
        let mut arg = VgemFenceAttach {
            handle: *handle,
            flags: VGEM_FENCE_WRITE,
            out_fence: 0,
            pad: 0,
        };
        // SAFETY: the ioctl reads and writes one drm_vgem_fence_attach, which `arg` is.
        check(
            unsafe { libc::ioctl(node.as_raw_fd(), DRM_IOCTL_VGEM_FENCE_ATTACH, &mut arg) },
            "VGEM_FENCE_ATTACH",
        )?;
        Ok(arg.out_fence)
    }

    pub fn signal_fence(&self, fence: u32) -> io::Result<()> {
        let (node, _) = self
            .vgem
            .as_ref()
            .ok_or_else(|| io::Error::other("not a vgem buffer"))?;
        let arg = VgemFenceSignal { fence, flags: 0 };
        // SAFETY: the ioctl reads one drm_vgem_fence_signal, which `arg` is.
        check(
            unsafe { libc::ioctl(node.as_raw_fd(), DRM_IOCTL_VGEM_FENCE_SIGNAL, &arg) },
            "VGEM_FENCE_SIGNAL",
        )?;
        Ok(())
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: `map` is the mapping made in `mapped`, of `len` bytes.
        let _ = unsafe { mm::munmap(self.map.cast(), self.len) };
    }
}
