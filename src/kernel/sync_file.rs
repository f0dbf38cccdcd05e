//! `SyncFile`: a sync_file fd (a set of dma-fences), or the "already
//! signaled" form Vulkan spells as fd `-1`.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use super::error::{KernelError, Result};
use super::sys;

/// A sync_file, or the already-signaled sync_file that has no fd.
///
/// Vulkan's `VK_EXTERNAL_SEMAPHORE_HANDLE_TYPE_SYNC_FD_BIT` export may return
/// `-1`, meaning "already signaled": that is [`SyncFile::Signaled`].
#[derive(Debug)]
pub enum SyncFile {
    /// Already signaled; no fd (Vulkan's `-1`).
    Signaled,
    /// A sync_file fd owned by this value.
    Fd(OwnedFd),
}

/// Status of a fence or of a whole sync_file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceStatus {
    /// Not yet signaled.
    Active,
    /// Signaled without error.
    Signaled,
    /// Signaled with an error (negative errno from the kernel).
    Error(i32),
}

impl FenceStatus {
    fn from_raw(status: i32) -> Self {
        match status {
            0 => FenceStatus::Active,
            s if s > 0 => FenceStatus::Signaled,
            e => FenceStatus::Error(e),
        }
    }

    /// True when signaled, with or without error.
    pub fn is_signaled(self) -> bool {
        !matches!(self, FenceStatus::Active)
    }
}

/// One fence of a sync_file (`struct sync_fence_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceInfo {
    /// Timeline name, e.g. `"vgem"`-specific text.
    pub obj_name: String,
    /// Name of the driver that created the fence, e.g. `"vgem"`.
    pub driver_name: String,
    pub status: FenceStatus,
    /// CLOCK_MONOTONIC time of signalling, in ns (0 while active).
    pub timestamp_ns: u64,
}

/// `SYNC_IOC_FILE_INFO` of a sync_file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFileInfo {
    pub name: String,
    pub status: FenceStatus,
    pub fences: Vec<FenceInfo>,
}

impl SyncFile {
    /// The already-signaled form.
    pub const fn signaled() -> Self {
        SyncFile::Signaled
    }

    /// Wrap an owned sync_file fd (not checked to be a sync_file; the
    /// ioctls on another kind of fd fail with a typed error).
    pub fn from_fd(fd: OwnedFd) -> Self {
        SyncFile::Fd(fd)
    }

    /// Take ownership of a raw fd as Vulkan hands it out for SYNC_FD:
    /// `-1` is the signaled form, other negative values are invalid.
    ///
    /// # Safety
    /// `fd` must be `-1` or an open fd the caller owns and gives away.
    pub unsafe fn from_raw_fd(fd: RawFd) -> Result<Self> {
        match fd {
            -1 => Ok(SyncFile::Signaled),
            fd if fd < 0 => Err(KernelError::InvalidFd),
            // SAFETY: the caller owns `fd` and hands it to us.
            fd => Ok(SyncFile::Fd(unsafe { OwnedFd::from_raw_fd(fd) })),
        }
    }

    /// Give the fd away as Vulkan expects it for SYNC_FD import: `-1` for
    /// the signaled form.
    pub fn into_raw_fd(self) -> RawFd {
        match self {
            SyncFile::Signaled => -1,
            SyncFile::Fd(fd) => fd.into_raw_fd(),
        }
    }

    /// The fd, unless this is the signaled form.
    pub fn as_fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            SyncFile::Signaled => None,
            SyncFile::Fd(fd) => Some(fd.as_fd()),
        }
    }

    /// The raw fd without giving it away (`-1` for the signaled form).
    pub fn as_raw_fd(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        self.as_fd().map_or(-1, |fd| fd.as_raw_fd())
    }

    /// True for the fd-less signaled form (does not ask the kernel).
    pub fn is_signaled_form(&self) -> bool {
        matches!(self, SyncFile::Signaled)
    }

    /// Duplicate (the signaled form stays fd-less).
    pub fn try_clone(&self) -> Result<Self> {
        match self {
            SyncFile::Signaled => Ok(SyncFile::Signaled),
            SyncFile::Fd(fd) => Ok(SyncFile::Fd(fd.try_clone().map_err(io_to_kernel)?)),
        }
    }

    /// Non-blocking: have all fences signaled?
    pub fn is_signaled(&self) -> Result<bool> {
        self.wait(Duration::ZERO)
    }

    /// Wait up to `timeout` for all fences to signal, with `poll()`.
    /// Returns `Ok(true)` when signaled, `Ok(false)` when the time ran out.
    /// Never waits without bound.
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
        match self {
            SyncFile::Signaled => Ok(true),
            SyncFile::Fd(fd) => poll_fd(fd.as_fd(), PollFlags::IN, timeout),
        }
    }

    /// Like [`SyncFile::wait`], but `Err(KernelError::Timeout)` when the time
    /// runs out.
    pub fn wait_or_timeout(&self, timeout: Duration) -> Result<()> {
        if self.wait(timeout)? {
            Ok(())
        } else {
            Err(KernelError::Timeout)
        }
    }

    /// A sync_file that signals when both `a` and `b` have (`SYNC_IOC_MERGE`).
    /// Merging with the signaled form just duplicates the other side.
    pub fn merge(a: &SyncFile, b: &SyncFile, name: &str) -> Result<SyncFile> {
        let (fa, fb) = match (a, b) {
            (SyncFile::Signaled, other) | (other, SyncFile::Signaled) => return other.try_clone(),
            (SyncFile::Fd(fa), SyncFile::Fd(fb)) => (fa, fb),
        };
        use std::os::fd::AsRawFd;
        let mut data = sys::SyncMergeData {
            name: sys::c_name(name),
            fd2: fb.as_raw_fd(),
            ..Default::default()
        };
        // SAFETY: SYNC_IOC_MERGE takes a `struct sync_merge_data`.
        unsafe { sys::ioctl::<{ sys::SYNC_IOC_MERGE }, _>(fa.as_fd(), &mut data) }
            .map_err(|e| KernelError::from_ioctl(e, "SYNC_IOC_MERGE"))?;
        // SAFETY: on success the kernel installed a new fd that we now own.
        Ok(SyncFile::Fd(unsafe { OwnedFd::from_raw_fd(data.fence) }))
    }

    /// Merge in place: `self` becomes the merge of `self` and `other`.
    pub fn merge_with(&mut self, other: &SyncFile, name: &str) -> Result<()> {
        *self = SyncFile::merge(self, other, name)?;
        Ok(())
    }

    /// `SYNC_IOC_FILE_INFO` with the fence array. The signaled form reports
    /// the name `"signaled"`, status signaled and no fences.
    pub fn info(&self) -> Result<SyncFileInfo> {
        let fd = match self {
            SyncFile::Signaled => {
                return Ok(SyncFileInfo {
                    name: "signaled".into(),
                    status: FenceStatus::Signaled,
                    fences: Vec::new(),
                })
            }
            SyncFile::Fd(fd) => fd.as_fd(),
        };
        let mut info = sys::SyncFileInfo::default();
        // SAFETY: SYNC_IOC_FILE_INFO takes a `struct sync_file_info`;
        // num_fences = 0 asks only for the count, no array pointer is used.
        unsafe { sys::ioctl::<{ sys::SYNC_IOC_FILE_INFO }, _>(fd, &mut info) }
            .map_err(|e| KernelError::from_ioctl(e, "SYNC_IOC_FILE_INFO"))?;
        let count = info.num_fences as usize;
        let mut fences = vec![sys::SyncFenceInfo::default(); count];
        if count > 0 {
            info = sys::SyncFileInfo {
                num_fences: count as u32,
                sync_fence_info: fences.as_mut_ptr() as u64,
                ..Default::default()
            };
            // SAFETY: `sync_fence_info` points at `count` writable
            // `struct sync_fence_info`s that outlive the call; the kernel
            // writes at most `num_fences` of them.
            unsafe { sys::ioctl::<{ sys::SYNC_IOC_FILE_INFO }, _>(fd, &mut info) }
                .map_err(|e| KernelError::from_ioctl(e, "SYNC_IOC_FILE_INFO"))?;
            fences.truncate(info.num_fences as usize);
        }
        Ok(SyncFileInfo {
            name: sys::c_str(&info.name),
            status: FenceStatus::from_raw(info.status),
            fences: fences
                .iter()
                .map(|f| FenceInfo {
                    obj_name: sys::c_str(&f.obj_name),
                    driver_name: sys::c_str(&f.driver_name),
                    status: FenceStatus::from_raw(f.status),
                    timestamp_ns: f.timestamp_ns,
                })
                .collect(),
        })
    }
}

impl From<OwnedFd> for SyncFile {
    fn from(fd: OwnedFd) -> Self {
        SyncFile::Fd(fd)
    }
}

pub(crate) fn io_to_kernel(e: std::io::Error) -> KernelError {
    match e.raw_os_error() {
        Some(n) => KernelError::from(Errno::from_raw_os_error(n)),
        None => KernelError::Io(Errno::IO),
    }
}

/// Poll one fd for `events` for at most `timeout` (restarting on `EINTR`
/// with the time that is left). `Ok(true)` when ready.
pub(crate) fn poll_fd(fd: BorrowedFd<'_>, events: PollFlags, timeout: Duration) -> Result<bool> {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => timeout,
        };
        let ts = Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: i64::MAX / 2,
            tv_nsec: 0,
        });
        let mut fds = [PollFd::new(&fd, events)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => return Ok(false),
            Ok(_) => {
                let rev = fds[0].revents();
                if rev.contains(PollFlags::NVAL) {
                    return Err(KernelError::InvalidFd);
                }
                if rev.intersects(events) {
                    return Ok(true);
                }
                if rev.contains(PollFlags::ERR) {
                    return Err(KernelError::Io(Errno::IO));
                }
                if left.is_zero() {
                    return Ok(false);
                }
            }
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
