//! Explicit sync with the window system: DRM syncobj timeline points
//! (`wp_linux_drm_syncobj_v1`, DRI3 1.4 `PresentPixmapSynced`).
//!
//! With explicit sync a commit carries two points: an *acquire* point the
//! compositor waits for before it reads the buffer, and a *release* point it
//! signals when it no longer reads it. Neither the dma-buf's implicit
//! fences nor `wl_buffer.release` are the signal any more (the protocol
//! makes the latter's delivery undefined while the surface has a syncobj
//! object).
//!
//! Each image has two timelines of its own, one for its acquire points and
//! one for its release points, as Mesa's WSI does: signalling a point also
//! signals every earlier one, and a compositor may release buffers in
//! another order than they were committed (or release one it never read,
//! before its acquire point signalled), so a timeline shared between
//! images, or between the two directions, could report a buffer released
//! while it is still read. An image's `k`-th commit uses point `k` on both
//! of its timelines: an image is committed again only after its release
//! point signalled, so each timeline's points signal in order.
//!
//! The acquire point is the render semaphore's sync_file, imported into the
//! point at present time, where the driver exports `SYNC_FD`; otherwise the
//! GPU waiter signals the point from the CPU once the frame's fence has
//! signalled. Either way the buffer goes to the compositor at once.
//!
//! The release point is watched by the presenter (an eventfd,
//! `DRM_IOCTL_SYNCOBJ_EVENTFD`, in the backend's poll set; a zero-timeout
//! wait where the kernel has no eventfd); once it has a fence, its sync_file
//! becomes the payload of the application's acquire semaphore and fence
//! where the driver imports `SYNC_FD`, or the layer waits for it to signal
//! before the image is free.

use crate::kernel::{self, SyncFile, Syncobj, SyncobjDevice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a frame's acquire point is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcquirePoint {
    /// The render semaphore's sync_file is imported into the point.
    SyncFile,
    /// The GPU waiter signals the point when the frame's fence signals.
    Worker,
}

struct ImageTimelines {
    acquire: Syncobj,
    release: Syncobj,
    /// The acquire point of the image's newest presented frame.
    acquire_point: AtomicU64,
    /// The release point of the image's newest commit.
    release_point: AtomicU64,
}

/// One swapchain's timelines.
pub struct ExplicitSync {
    dev: Arc<SyncobjDevice>,
    images: Vec<ImageTimelines>,
    /// A binary syncobj the per-frame sync_file imports and exports go
    /// through (its fence replaced each time), instead of a new one
    /// created and destroyed around each: two ioctls fewer each way.
    scratch: Mutex<Syncobj>,
    pub acquire_by: AcquirePoint,
    /// A release counts once its point has a fence (the GPU waits for it,
    /// through the application's semaphore): the acquire side imports the
    /// point's sync_file. Otherwise once the point has signalled.
    pub wait_available: bool,
}

impl std::fmt::Debug for ExplicitSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExplicitSync")
            .field("node", &self.dev.path())
            .field("images", &self.images.len())
            .field("acquire_by", &self.acquire_by)
            .field("wait_available", &self.wait_available)
            .finish()
    }
}

impl ExplicitSync {
    /// Two timelines per image on `dev`, each checked to export as an fd
    /// and to import back from it, as the compositor will
    /// (`SYNCBRIDGE_DEBUG_FAULTS=syncobj` makes the kernel refuse that
    /// import). A kernel that refuses any of it gives the error, and
    /// nothing is left behind.
    pub fn new(
        dev: Arc<SyncobjDevice>,
        count: usize,
        acquire_by: AcquirePoint,
        wait_available: bool,
    ) -> kernel::Result<Self> {
        let mut images = Vec::with_capacity(count);
        for _ in 0..count {
            let acquire = dev.create(false)?;
            let release = dev.create(false)?;
            for timeline in [&acquire, &release] {
                let fd = super::fault::syncobj_fd(timeline.export_fd()?)?;
                drop(dev.import(fd.as_fd())?);
            }
            images.push(ImageTimelines {
                acquire,
                release,
                acquire_point: AtomicU64::new(0),
                release_point: AtomicU64::new(0),
            });
        }
        let scratch = Mutex::new(dev.create(false)?);
        Ok(Self {
            dev,
            images,
            scratch,
            acquire_by,
            wait_available,
        })
    }

    /// The DRM node the timelines live on.
    pub fn node(&self) -> &std::path::Path {
        self.dev.path()
    }

    pub fn image_count(&self) -> usize {
        self.images.len()
    }

    /// Every image's acquire and release timelines as fds, for the window
    /// system to import (`import_timeline`, `DRI3ImportSyncobj`). A
    /// kernel that refuses one gives one error line.
    pub fn timeline_fds(&self) -> Result<Vec<(OwnedFd, OwnedFd)>, ash::vk::Result> {
        self.images
            .iter()
            .map(|t| Ok((t.acquire.export_fd()?, t.release.export_fd()?)))
            .collect::<kernel::Result<Vec<_>>>()
            .map_err(|e| {
                log::error!("exporting a swapchain timeline for the window system: {e}");
                ash::vk::Result::ERROR_INITIALIZATION_FAILED
            })
    }

    /// The acquire point of a new frame of image `index` (application
    /// thread, at present).
    pub fn next_acquire(&self, index: usize) -> u64 {
        self.images[index]
            .acquire_point
            .fetch_add(1, Ordering::AcqRel)
            + 1
    }

    /// The acquire point of image `index`'s newest frame.
    pub fn acquire_point(&self, index: usize) -> u64 {
        self.images[index].acquire_point.load(Ordering::Acquire)
    }

    /// The render semaphore's sync_file becomes acquire point `point`.
    pub fn import_acquire(&self, index: usize, point: u64, sf: &SyncFile) -> kernel::Result<()> {
        let scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        self.images[index]
            .acquire
            .import_sync_file_via(point, sf, &scratch)
    }

    /// The frame's rendering is done: acquire point `point` signals.
    pub fn signal_acquire(&self, index: usize, point: u64) -> kernel::Result<()> {
        self.images[index].acquire.signal(point)
    }

    /// The release point of a new commit of image `index` (presenter, at
    /// commit).
    pub fn next_release(&self, index: usize) -> u64 {
        self.images[index]
            .release_point
            .fetch_add(1, Ordering::AcqRel)
            + 1
    }

    /// The release point of image `index`'s newest commit (0: none yet).
    pub fn release_point(&self, index: usize) -> u64 {
        self.images[index].release_point.load(Ordering::Acquire)
    }

    /// An eventfd readable when release point `point` of image `index` has
    /// a fence (`available`) or has signalled.
    pub fn release_eventfd(
        &self,
        index: usize,
        point: u64,
        available: bool,
    ) -> kernel::Result<OwnedFd> {
        self.images[index].release.eventfd(point, available)
    }

    /// Whether release point `point` of image `index` has a fence
    /// (`available`) or has signalled, without waiting. A point the
    /// compositor has not submitted yet is not ready (a wait without
    /// `WAIT_FOR_SUBMIT` would be `EINVAL` for it).
    pub fn release_ready(&self, index: usize, point: u64, available: bool) -> kernel::Result<bool> {
        let t = &self.images[index].release;
        if available {
            t.wait_available(point, Duration::ZERO)
        } else {
            t.wait(point, Duration::ZERO, true)
        }
    }

    /// Waits up to `timeout` for image `index`'s newest release point to
    /// signal (submitted or not yet). `Ok(false)` on timeout.
    pub fn wait_released(&self, index: usize, timeout: Duration) -> kernel::Result<bool> {
        let point = self.release_point(index);
        if point == 0 {
            return Ok(true);
        }
        self.images[index].release.wait(point, timeout, true)
    }

    /// Whether image `index`'s newest release point has signalled (no
    /// commit yet: it has).
    pub fn released(&self, index: usize) -> bool {
        let point = self.release_point(index);
        point == 0
            || self.images[index]
                .release
                .query()
                .is_ok_and(|done| done >= point)
    }

    /// Image `index`'s newest release point as a sync_file. It has a
    /// fence once the image was released ([`release_ready`](Self::release_ready)
    /// with `available`); a point still without one is a release the layer
    /// stopped waiting for (the release timeout let the image go): there
    /// is nothing to wait on, and the signalled form is returned.
    pub fn export_release(&self, index: usize) -> kernel::Result<SyncFile> {
        let point = self.release_point(index);
        if point == 0 {
            return Ok(SyncFile::Signaled);
        }
        let t = &self.images[index].release;
        let exported = {
            let scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
            t.export_sync_file_via(point, &scratch)
        };
        match exported {
            Ok(sf) => Ok(sf),
            Err(e) => match t.wait_available(point, Duration::ZERO) {
                Ok(false) => Ok(SyncFile::Signaled),
                _ => Err(e),
            },
        }
    }
}

/// How often a release point is looked at where the kernel gives no
/// eventfd for it.
pub const RELEASE_POLL: Duration = Duration::from_millis(1);

/// The release points a backend handed the window system and that have not
/// come yet, watched on the presenter thread: each with the eventfd that
/// becomes readable when it comes (in the backend's poll set), or looked at
/// every [`RELEASE_POLL`] where the kernel has no syncobj eventfd. The same
/// for `wp_linux_drm_syncobj_v1` and DRI3 1.4.
pub struct ReleaseWatch {
    sync: Arc<ExplicitSync>,
    /// Image, point, and the eventfd (`None`: polled).
    pending: Vec<(usize, u64, Option<OwnedFd>)>,
}

impl ReleaseWatch {
    pub fn new(sync: Arc<ExplicitSync>) -> Self {
        Self {
            sync,
            pending: Vec::new(),
        }
    }

    pub fn sync(&self) -> &Arc<ExplicitSync> {
        &self.sync
    }

    /// The release point of a new commit of image `index`, watched from
    /// now on.
    pub fn next(&mut self, index: usize) -> u64 {
        let sync = &self.sync;
        let point = sync.next_release(index);
        let efd = match sync.release_eventfd(index, point, sync.wait_available) {
            Ok(fd) => Some(fd),
            Err(e) => {
                crate::warn_once!(
                    "no eventfd for release points ({e}); looking at them every {} ms",
                    RELEASE_POLL.as_millis()
                );
                None
            }
        };
        // A point of the same image not come yet cannot be (the image is
        // presented again only after its release), but keep one per image.
        self.pending.retain(|(i, _, _)| *i != index);
        self.pending.push((index, point, efd));
        point
    }

    /// Calls `released` with each image whose release point came (or
    /// cannot be waited for: the image is given back, as a window system
    /// that is gone would).
    pub fn collect(&mut self, mut released: impl FnMut(usize)) {
        let sync = &self.sync;
        self.pending.retain(|(index, point, _)| {
            match sync.release_ready(*index, *point, sync.wait_available) {
                Ok(false) => true,
                Ok(true) => {
                    released(*index);
                    false
                }
                Err(e) => {
                    log::warn!("waiting for the release point of image {index}: {e}");
                    released(*index);
                    false
                }
            }
        });
    }

    /// The eventfds to poll, and the deadline by which the points without
    /// one are to be looked at again.
    pub fn poll_set(&self) -> (Vec<BorrowedFd<'_>>, Option<std::time::Instant>) {
        let mut fds = Vec::new();
        let mut due = None;
        for (_, _, efd) in &self.pending {
            match efd {
                Some(fd) => fds.push(fd.as_fd()),
                None => due = Some(std::time::Instant::now() + RELEASE_POLL),
            }
        }
        (fds, due)
    }

    /// Whether a release point is still to come.
    pub fn is_waiting(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host has no DRM: every way in answers `Unsupported`, cleanly.
    #[test]
    fn without_drm_every_way_in_is_unsupported() {
        if !kernel::list_drm_nodes().is_empty() {
            eprintln!("this machine has DRM nodes; the guest's kernel tests cover them");
            return;
        }
        assert!(SyncobjDevice::shared().unwrap_err().is_unsupported());
        assert!(SyncobjDevice::preferred(Some(226 << 8))
            .unwrap_err()
            .is_unsupported());
        assert!(SyncobjDevice::preferred(None).unwrap_err().is_unsupported());
    }
}
