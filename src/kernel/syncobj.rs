//! DRM syncobjs (binary and timeline) for explicit sync
//! (`wp_linux_drm_syncobj_v1`), behind a probe: the probe opens the first
//! DRM node whose driver advertises `DRM_CAP_SYNCOBJ_TIMELINE` and answers
//! `KernelError::Unsupported` when there is none (vgem, for one, has no
//! syncobjs).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustix::io::Errno;
use rustix::time::{clock_gettime, ClockId};

use super::drm::{sysfs_device_of, DrmDevice};
use super::error::{KernelError, Result};
use super::sync_file::SyncFile;
use super::sys;

/// A DRM node with timeline syncobj support.
#[derive(Debug)]
pub struct SyncobjDevice {
    dev: DrmDevice,
}

impl SyncobjDevice {
    /// The first DRM node (render nodes first) with
    /// `DRM_CAP_SYNCOBJ_TIMELINE`; `Unsupported` if none.
    pub fn open() -> Result<Arc<SyncobjDevice>> {
        let mut devs = DrmDevice::open_all();
        devs.sort_by_key(|d| !d.path.to_string_lossy().contains("renderD"));
        devs.into_iter()
            .find(has_timeline)
            .map(|dev| Arc::new(SyncobjDevice { dev }))
            .ok_or(KernelError::Unsupported(
                "no DRM node with timeline syncobjs",
            ))
    }

    /// Open a given node; `Unsupported` if it lacks timeline syncobjs.
    pub fn open_path(path: &Path) -> Result<Arc<SyncobjDevice>> {
        let dev = DrmDevice::open(path)?;
        if has_timeline(&dev) {
            Ok(Arc::new(SyncobjDevice { dev }))
        } else {
            Err(KernelError::Unsupported(
                "DRM node without timeline syncobjs",
            ))
        }
    }

    /// A process-wide device, probed once (the answer is cached).
    pub fn shared() -> Result<Arc<SyncobjDevice>> {
        static SHARED: OnceLock<Result<Arc<SyncobjDevice>>> = OnceLock::new();
        SHARED.get_or_init(SyncobjDevice::open).clone()
    }

    /// A node with timeline syncobjs on the device `main` (a `dev_t`: the
    /// compositor's main device from linux-dmabuf feedback), its render
    /// node first; any node with timelines ([`shared`](Self::shared)) when
    /// `main` is `None`, names no DRM device here, or has none. Cached per
    /// device.
    pub fn preferred(main: Option<u64>) -> Result<Arc<SyncobjDevice>> {
        static BY_DEVICE: Mutex<Vec<(u64, Option<Arc<SyncobjDevice>>)>> = Mutex::new(Vec::new());
        let Some(main) = main else {
            return SyncobjDevice::shared();
        };
        let mut cache = BY_DEVICE.lock().unwrap_or_else(|e| e.into_inner());
        let found = match cache.iter().find(|(d, _)| *d == main) {
            Some((_, found)) => found.clone(),
            None => {
                let found = sysfs_device_of(main).and_then(|want| {
                    let mut devs = DrmDevice::open_all();
                    devs.sort_by_key(|d| !d.path.to_string_lossy().contains("renderD"));
                    devs.into_iter()
                        .find(|d| d.sysfs_device().as_ref() == Some(&want) && has_timeline(d))
                        .map(|dev| Arc::new(SyncobjDevice { dev }))
                });
                cache.push((main, found.clone()));
                found
            }
        };
        drop(cache);
        found.map_or_else(SyncobjDevice::shared, Ok)
    }

    pub fn path(&self) -> &Path {
        &self.dev.path
    }

    pub fn driver(&self) -> &str {
        &self.dev.driver
    }

    /// A new syncobj (`signaled`: binary payload already signaled).
    pub fn create(self: &Arc<Self>, signaled: bool) -> Result<Syncobj> {
        let mut arg = sys::DrmSyncobjCreate {
            handle: 0,
            flags: if signaled {
                sys::DRM_SYNCOBJ_CREATE_SIGNALED
            } else {
                0
            },
        };
        // SAFETY: DRM_IOCTL_SYNCOBJ_CREATE takes a `struct drm_syncobj_create`.
        unsafe { sys::ioctl::<{ sys::DRM_IOCTL_SYNCOBJ_CREATE }, _>(self.dev.fd(), &mut arg) }
            .map_err(|e| KernelError::from_ioctl(e, "DRM_IOCTL_SYNCOBJ_CREATE"))?;
        Ok(Syncobj {
            dev: Arc::clone(self),
            handle: arg.handle,
        })
    }

    /// Import a syncobj fd (as sent with `wp_linux_drm_syncobj_v1`).
    pub fn import(self: &Arc<Self>, fd: BorrowedFd<'_>) -> Result<Syncobj> {
        let handle = self.fd_to_handle(fd, 0)?;
        Ok(Syncobj {
            dev: Arc::clone(self),
            handle,
        })
    }

    fn fd_to_handle(&self, fd: BorrowedFd<'_>, flags: u32) -> Result<u32> {
        let mut arg = sys::DrmSyncobjHandle {
            handle: 0,
            flags,
            fd: fd.as_raw_fd(),
            pad: 0,
        };
        // SAFETY: DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE takes a `struct drm_syncobj_handle`.
        unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE }, _>(self.dev.fd(), &mut arg)
        }
        .map_err(|e| KernelError::from_ioctl(e, "DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE"))?;
        Ok(arg.handle)
    }
}

fn has_timeline(d: &DrmDevice) -> bool {
    d.get_cap(sys::DRM_CAP_SYNCOBJ).unwrap_or(0) != 0
        && d.get_cap(sys::DRM_CAP_SYNCOBJ_TIMELINE).unwrap_or(0) != 0
}

/// Is there a node with timeline syncobjs (cached)?
pub fn syncobj_support() -> Result<()> {
    SyncobjDevice::shared().map(|_| ())
}

/// A syncobj handle; destroyed on drop.
#[derive(Debug)]
pub struct Syncobj {
    dev: Arc<SyncobjDevice>,
    handle: u32,
}

impl Syncobj {
    pub fn handle(&self) -> u32 {
        self.handle
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.dev.dev.fd()
    }

    /// Export the syncobj itself as an fd (for `wp_linux_drm_syncobj_v1`).
    pub fn export_fd(&self) -> Result<OwnedFd> {
        self.handle_to_fd(self.handle, 0)
    }

    fn handle_to_fd(&self, handle: u32, flags: u32) -> Result<OwnedFd> {
        let mut arg = sys::DrmSyncobjHandle {
            handle,
            flags,
            fd: -1,
            pad: 0,
        };
        // SAFETY: DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD takes a `struct drm_syncobj_handle`.
        unsafe { sys::ioctl::<{ sys::DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD }, _>(self.fd(), &mut arg) }
            .map_err(|e| KernelError::from_ioctl(e, "DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD"))?;
        // SAFETY: on success the kernel installed a new fd that we now own.
        Ok(unsafe { OwnedFd::from_raw_fd(arg.fd) })
    }

    fn timeline_array<const OP: rustix::ioctl::Opcode>(
        &self,
        point: u64,
        flags: u32,
        what: &'static str,
    ) -> Result<u64> {
        let handles = [self.handle];
        let mut points = [point];
        let mut arg = sys::DrmSyncobjTimelineArray {
            handles: handles.as_ptr() as u64,
            points: points.as_mut_ptr() as u64,
            count_handles: 1,
            flags,
        };
        // SAFETY: OP is TIMELINE_SIGNAL or QUERY, both taking a
        // `struct drm_syncobj_timeline_array`; `handles`/`points` point at one
        // element each and outlive the call.
        unsafe { sys::ioctl::<OP, _>(self.fd(), &mut arg) }
            .map_err(|e| KernelError::from_ioctl(e, what))?;
        Ok(points[0])
    }

    /// Signal timeline point `point` from the CPU (`point` 0: the binary
    /// payload).
    pub fn signal(&self, point: u64) -> Result<()> {
        self.timeline_array::<{ sys::DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL }>(
            point,
            0,
            "DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL",
        )
        .map(|_| ())
    }

    /// The last signaled timeline point.
    pub fn query(&self) -> Result<u64> {
        self.timeline_array::<{ sys::DRM_IOCTL_SYNCOBJ_QUERY }>(0, 0, "DRM_IOCTL_SYNCOBJ_QUERY")
    }

    /// Reset the binary payload to unsignaled.
    pub fn reset(&self) -> Result<()> {
        let handles = [self.handle];
        let mut arg = sys::DrmSyncobjArray {
            handles: handles.as_ptr() as u64,
            count_handles: 1,
            pad: 0,
        };
        // SAFETY: DRM_IOCTL_SYNCOBJ_RESET takes a `struct drm_syncobj_array`
        // whose `handles` points at one handle that outlives the call.
        unsafe { sys::ioctl::<{ sys::DRM_IOCTL_SYNCOBJ_RESET }, _>(self.fd(), &mut arg) }
            .map_err(|e| KernelError::from_ioctl(e, "DRM_IOCTL_SYNCOBJ_RESET"))
    }

    /// `DRM_IOCTL_SYNCOBJ_TRANSFER`: make `dst_point` of `self` carry the
    /// fence of `src_point` of `src` (point 0 = binary payload). Both must
    /// be on the same device.
    pub fn transfer_from(
        &self,
        dst_point: u64,
        src: &Syncobj,
        src_point: u64,
        wait_for_submit: bool,
    ) -> Result<()> {
        if !Arc::ptr_eq(&self.dev, &src.dev) {
            return Err(KernelError::InvalidArgument(
                "syncobjs of different devices",
            ));
        }
        let mut arg = sys::DrmSyncobjTransfer {
            src_handle: src.handle,
            dst_handle: self.handle,
            src_point,
            dst_point,
            flags: if wait_for_submit {
                sys::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT
            } else {
                0
            },
            pad: 0,
        };
        // SAFETY: DRM_IOCTL_SYNCOBJ_TRANSFER takes a `struct drm_syncobj_transfer`.
        unsafe { sys::ioctl::<{ sys::DRM_IOCTL_SYNCOBJ_TRANSFER }, _>(self.fd(), &mut arg) }
            .map_err(|e| KernelError::from_ioctl(e, "DRM_IOCTL_SYNCOBJ_TRANSFER"))
    }

    /// Put the fences of `sync_file` at timeline point `point` (0: binary
    /// payload). Done as Mesa does: import into a temporary binary syncobj,
    /// then transfer. The signaled form signals the point.
    pub fn import_sync_file(&self, point: u64, sync_file: &SyncFile) -> Result<()> {
        self.import_sync_file_via(point, sync_file, &self.dev.create(false)?)
    }

    /// [`import_sync_file`](Self::import_sync_file) through `scratch`, a
    /// binary syncobj of the same device kept for it (its fence is
    /// replaced): two ioctls fewer than with a new one each time.
    pub fn import_sync_file_via(
        &self,
        point: u64,
        sync_file: &SyncFile,
        scratch: &Syncobj,
    ) -> Result<()> {
        let Some(fd) = sync_file.as_fd() else {
            return self.signal(point);
        };
        let mut arg = sys::DrmSyncobjHandle {
            handle: scratch.handle,
            flags: sys::DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE,
            fd: fd.as_raw_fd(),
            pad: 0,
        };
        // SAFETY: DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE takes a `struct drm_syncobj_handle`.
        unsafe { sys::ioctl::<{ sys::DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE }, _>(scratch.fd(), &mut arg) }
            .map_err(|e| {
                KernelError::from_ioctl(e, "DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE(IMPORT_SYNC_FILE)")
            })?;
        self.transfer_from(point, scratch, 0, false)
    }

    /// The fence at timeline point `point` (0: binary payload) as a
    /// sync_file: transfer into a temporary binary syncobj and export that.
    /// The point must have a fence (been submitted): wait with
    /// `wait(point, .., true)` first if unsure, or this fails.
    pub fn export_sync_file(&self, point: u64) -> Result<SyncFile> {
        self.export_sync_file_via(point, &self.dev.create(false)?)
    }

    /// [`export_sync_file`](Self::export_sync_file) through `scratch`, a
    /// binary syncobj of the same device kept for it (its fence is
    /// replaced).
    pub fn export_sync_file_via(&self, point: u64, scratch: &Syncobj) -> Result<SyncFile> {
        scratch.transfer_from(0, self, point, false)?;
        let fd = scratch.handle_to_fd(
            scratch.handle,
            sys::DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE,
        )?;
        Ok(SyncFile::Fd(fd))
    }

    /// Wait up to `timeout` for `point` to signal (`wait_for_submit`: also
    /// wait for a fence to appear instead of failing). `Ok(false)` on
    /// timeout.
    pub fn wait(&self, point: u64, timeout: Duration, wait_for_submit: bool) -> Result<bool> {
        self.wait_flags(
            point,
            timeout,
            if wait_for_submit {
                sys::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT
            } else {
                0
            },
        )
    }

    /// Wait up to `timeout` for a fence to be *submitted* for `point` (it
    /// may still be pending). `Ok(false)` on timeout.
    pub fn wait_available(&self, point: u64, timeout: Duration) -> Result<bool> {
        self.wait_flags(
            point,
            timeout,
            sys::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT
                | sys::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE,
        )
    }

    fn wait_flags(&self, point: u64, timeout: Duration, flags: u32) -> Result<bool> {
        let now = clock_gettime(ClockId::Monotonic);
        let now_ns = now.tv_sec as i128 * 1_000_000_000 + now.tv_nsec as i128;
        let abs = (now_ns + timeout.as_nanos() as i128).min(i64::MAX as i128) as i64;
        let handles = [self.handle];
        let points = [point];
        let mut arg = sys::DrmSyncobjTimelineWait {
            handles: handles.as_ptr() as u64,
            points: points.as_ptr() as u64,
            timeout_nsec: abs,
            count_handles: 1,
            flags: flags | sys::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL,
            ..Default::default()
        };
        // SAFETY: DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT takes a
        // `struct drm_syncobj_timeline_wait`; `handles`/`points` point at one
        // element each and outlive the call.
        match unsafe {
            sys::ioctl::<{ sys::DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT }, _>(self.fd(), &mut arg)
        } {
            Ok(()) => Ok(true),
            Err(Errno::TIME) | Err(Errno::TIMEDOUT) => Ok(false),
            Err(e) => Err(KernelError::from_ioctl(
                e,
                "DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT",
            )),
        }
    }

    /// An eventfd that becomes readable when `point` signals (or, with
    /// `available`, when a fence for it is submitted):
    /// `DRM_IOCTL_SYNCOBJ_EVENTFD` (kernel 6.6+; older kernels give
    /// `Unsupported`).
    pub fn eventfd(&self, point: u64, available: bool) -> Result<OwnedFd> {
        let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?;
        let mut arg = sys::DrmSyncobjEventfd {
            handle: self.handle,
            flags: if available {
                sys::DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE
            } else {
                0
            },
            point,
            fd: efd.as_fd().as_raw_fd(),
            pad: 0,
        };
        // SAFETY: DRM_IOCTL_SYNCOBJ_EVENTFD takes a `struct drm_syncobj_eventfd`.
        unsafe { sys::ioctl::<{ sys::DRM_IOCTL_SYNCOBJ_EVENTFD }, _>(self.fd(), &mut arg) }
            .map_err(|e| KernelError::from_ioctl(e, "DRM_IOCTL_SYNCOBJ_EVENTFD"))?;
        Ok(efd)
    }
}

impl Drop for Syncobj {
    fn drop(&mut self) {
        let mut arg = sys::DrmSyncobjDestroy {
            handle: self.handle,
            pad: 0,
        };
        // SAFETY: DRM_IOCTL_SYNCOBJ_DESTROY takes a `struct drm_syncobj_destroy`.
        if let Err(e) =
            unsafe { sys::ioctl::<{ sys::DRM_IOCTL_SYNCOBJ_DESTROY }, _>(self.fd(), &mut arg) }
        {
            log::warn!("DRM_IOCTL_SYNCOBJ_DESTROY({}) failed: {e}", self.handle);
        }
    }
}
