//! The failures `SYNCBRIDGE_DEBUG_FAULTS` makes happen, so that the tests
//! reach the fallbacks of the sync_file path (and of explicit sync) on a
//! kernel and driver that work. Where the kernel can be made to refuse for
//! real, it is: the layer hands it an fd of the wrong kind (an eventfd)
//! where it expects a sync_file, a dma-buf or a syncobj. A driver cannot be made to fail on request, so
//! its calls are answered with an error it may return, without being made
//! ([`crate::sync::vk`]).

use crate::config::Fault;
use crate::kernel::{DmaBuf, KernelError, SyncFile};
use std::os::fd::OwnedFd;

/// Whether `SYNCBRIDGE_DEBUG_FAULTS` names `fault`.
pub fn active(fault: Fault) -> bool {
    crate::config::get().fault(fault)
}

fn eventfd() -> Result<OwnedFd, KernelError> {
    rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).map_err(KernelError::from)
}

/// `sync_file`, or under the `sync-file` fault an fd that is not one (the
/// real sync_file is closed).
pub fn sync_file(sync_file: SyncFile) -> Result<SyncFile, KernelError> {
    if active(Fault::SyncFile) {
        return Ok(SyncFile::from_fd(eventfd()?));
    }
    Ok(sync_file)
}

/// Runs `f` on `buf`, or under the `dma-buf` fault on an fd that is not a
/// dma-buf.
pub fn with_dma_buf<R>(
    buf: &DmaBuf,
    f: impl FnOnce(&DmaBuf) -> Result<R, KernelError>,
) -> Result<R, KernelError> {
    if active(Fault::DmaBuf) {
        return f(&DmaBuf::from_fd(eventfd()?));
    }
    f(buf)
}

/// `timeline`, a syncobj's fd, or under the `syncobj` fault an fd that is
/// not one (the real one is closed).
pub fn syncobj_fd(timeline: OwnedFd) -> Result<OwnedFd, KernelError> {
    if active(Fault::Syncobj) {
        return eventfd();
    }
    Ok(timeline)
}
