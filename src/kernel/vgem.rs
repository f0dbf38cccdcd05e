//! vgem: the virtual GEM driver. Its dumb buffers export as dma-bufs and its
//! fence ioctls (`DRM_IOCTL_VGEM_FENCE_ATTACH` / `_SIGNAL`) are the only
//! fences userspace can signal on kernels without sw_sync.
//!
//! The kernel signals a vgem fence by itself about 10 s after it was
//! attached (`VGEM_FENCE_TIMEOUT`), so a vgem fence can never hang forever.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rustix::io::Errno;

use super::dma_buf::{DmaBuf, DmaBufSource};
use super::drm::DrmDevice;
use super::error::{KernelError, Result};
use super::sys;

/// An open vgem node.
#[derive(Debug)]
pub struct Vgem {
    dev: DrmDevice,
}

impl Vgem {
    /// Open the first `/dev/dri/card*` or `renderD*` node whose driver is
    /// `vgem` (a card node first: dumb buffers need one). `Unsupported` if
    /// there is none (vgem not loaded, or no DRM at all).
    pub fn open() -> Result<Vgem> {
        match DrmDevice::open_driver("vgem", false) {
            Ok(dev) => Ok(Vgem { dev }),
            Err(KernelError::Unsupported(_)) => Err(KernelError::Unsupported("no vgem DRM node")),
            Err(e) => Err(e),
        }
    }

    /// The process-wide vgem node, open while anyone holds it (a soft
    /// fence, a swapchain on the soft-fence path): when the last holder lets
    /// go the node is closed, so a process whose swapchains never used it,
    /// or are all gone, holds no fd for it. Which node it is (or why there
    /// is none) is probed once and cached.
    pub fn shared() -> Result<Arc<Vgem>> {
        static LIVE: Mutex<Weak<Vgem>> = Mutex::new(Weak::new());
        let path = Vgem::node()?;
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(vgem) = live.upgrade() {
            return Ok(vgem);
        }
        let dev = DrmDevice::open(path)?;
        if dev.driver != "vgem" {
            return Err(KernelError::Unsupported("no vgem DRM node"));
        }
        let vgem = Arc::new(Vgem { dev });
        *live = Arc::downgrade(&vgem);
        Ok(vgem)
    }

    /// The vgem node's path, probed once (opened and closed again).
    fn node() -> Result<&'static Path> {
        static NODE: OnceLock<Result<PathBuf>> = OnceLock::new();
        match NODE.get_or_init(|| Vgem::open().map(|v| v.dev.path.clone())) {
            Ok(path) => Ok(path),
            Err(e) => Err(*e),
        }
    }

    /// Is vgem available (probed once, see [`Vgem::shared`]; keeps no fd)?
    pub fn is_available() -> bool {
        Vgem::node().is_ok()
    }

    /// The node's path, e.g. `/dev/dri/card0`.
    pub fn path(&self) -> &Path {
        &self.dev.path
    }

    /// A vgem buffer object of at least `size` bytes.
    pub fn create_bo(self: &Arc<Self>, size: u64) -> Result<VgemBo> {
        let width = size.max(4).div_ceil(4);
        let width = u32::try_from(width)
            .map_err(|_| KernelError::InvalidArgument("vgem buffer too large"))?;
        let (handle, size) = self.dev.create_dumb(width, 1, 32)?;
        Ok(VgemBo {
            vgem: Arc::clone(self),
            handle,
            size,
        })
    }

    /// A vgem buffer exported as a dma-buf (the GEM handle is closed; the
    /// dma-buf keeps the buffer alive).
    pub fn create_dma_buf(self: &Arc<Self>, size: u64) -> Result<DmaBuf> {
        self.create_bo(size)?.export()
    }

    /// `DRM_IOCTL_VGEM_FENCE_SIGNAL` of a raw fence id. `Ok(false)` when the
    /// fence had already signaled (by the kernel's timeout: `ETIMEDOUT`) or
    /// is unknown (`ENOENT`, e.g. signaled before).
    pub fn fence_signal(&self, fence: u32) -> Result<bool> {
        let mut arg = sys::DrmVgemFenceSignal { fence, flags: 0 };
        // SAFETY: DRM_IOCTL_VGEM_FENCE_SIGNAL takes a `struct drm_vgem_fence_signal`.
        match unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_VGEM_FENCE_SIGNAL }, _>(self.dev.fd(), &mut arg)
        } {
            Ok(()) => Ok(true),
            Err(Errno::TIMEDOUT) | Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(KernelError::from_ioctl(e, "DRM_IOCTL_VGEM_FENCE_SIGNAL")),
        }
    }
}

/// A vgem GEM buffer object; the handle is closed on drop.
#[derive(Debug)]
pub struct VgemBo {
    vgem: Arc<Vgem>,
    handle: u32,
    size: u64,
}

impl VgemBo {
    pub fn handle(&self) -> u32 {
        self.handle
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// PRIME export as a dma-buf (shares the buffer's implicit fences).
    pub fn export(&self) -> Result<DmaBuf> {
        Ok(DmaBuf::from_fd_with_source(
            self.vgem.dev.prime_export(self.handle)?,
            DmaBufSource::Vgem,
        ))
    }

    /// `DRM_IOCTL_VGEM_FENCE_ATTACH`: attach a new unsignaled fence to the
    /// buffer, as its writer (`write`) or as a reader. The kernel refuses
    /// (`EBUSY`, as `KernelError::Io`) a writer while any fence is pending
    /// and a reader while a writer is pending.
    pub fn fence_attach(&self, write: bool) -> Result<VgemFence> {
        let mut arg = sys::DrmVgemFenceAttach {
            handle: self.handle,
            flags: if write { sys::VGEM_FENCE_WRITE } else { 0 },
            ..Default::default()
        };
        // SAFETY: DRM_IOCTL_VGEM_FENCE_ATTACH takes a `struct drm_vgem_fence_attach`.
        unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_VGEM_FENCE_ATTACH }, _>(self.vgem.dev.fd(), &mut arg)
        }
        .map_err(|e| KernelError::from_ioctl(e, "DRM_IOCTL_VGEM_FENCE_ATTACH"))?;
        Ok(VgemFence {
            vgem: Arc::clone(&self.vgem),
            id: arg.out_fence,
            done: AtomicBool::new(false),
        })
    }
}

impl Drop for VgemBo {
    fn drop(&mut self) {
        self.vgem.dev.gem_close(self.handle);
    }
}

/// A pending vgem fence; signaled on drop if not signaled before.
#[derive(Debug)]
pub struct VgemFence {
    vgem: Arc<Vgem>,
    id: u32,
    done: AtomicBool,
}

impl VgemFence {
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Signal the fence. `Ok(true)` if this call signaled it, `Ok(false)` if
    /// it was already signaled (by an earlier call or the kernel's ~10 s
    /// timeout).
    pub fn signal(&self) -> Result<bool> {
        if self.done.swap(true, Ordering::AcqRel) {
            return Ok(false);
        }
        self.vgem.fence_signal(self.id)
    }
}

impl Drop for VgemFence {
    fn drop(&mut self) {
        if let Err(e) = self.signal() {
            log::warn!("signalling vgem fence {} on drop failed: {e}", self.id);
        }
    }
}
