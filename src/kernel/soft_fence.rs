//! `SoftFence`: a fence that userspace signals, visible to anyone as a
//! sync_file. Built on vgem (the kernel has no sw_sync here): a write fence
//! attached to a small private vgem buffer, exported through that buffer's
//! dma-buf.
//!
//! Use: the layer's worker thread waits for the GPU, then calls
//! [`SoftFence::signal`]; the compositor got [`SoftFence::sync_file`] long
//! before. Dropping an unsignaled `SoftFence` signals it, so no fence is
//! ever left hanging; the kernel also signals it by itself after ~10 s.

use std::sync::Arc;

use super::dma_buf::SyncAccess;
use super::error::Result;
use super::sync_file::SyncFile;
use super::vgem::{Vgem, VgemFence};

/// A userspace-signalled fence. `Send + Sync`.
#[derive(Debug)]
pub struct SoftFence {
    fence: VgemFence,
    sync_file: SyncFile,
}

impl SoftFence {
    /// A new unsignaled fence on the process-wide vgem node.
    /// `KernelError::Unsupported` without vgem.
    pub fn new() -> Result<SoftFence> {
        SoftFence::new_on(&Vgem::shared()?)
    }

    /// A new unsignaled fence on the given vgem node.
    pub fn new_on(vgem: &Arc<Vgem>) -> Result<SoftFence> {
        let bo = vgem.create_bo(4096)?;
        let fence = bo.fence_attach(true)?;
        // READ export = the writers, i.e. exactly our fence.
        let sync_file = bo.export()?.export_sync_file(SyncAccess::Read)?;
        // The sync_file holds its own reference to the fence; the buffer
        // and its dma-buf are not needed any more.
        drop(bo);
        Ok(SoftFence { fence, sync_file })
    }

    /// Is the machine able to make soft fences (vgem present)?
    pub fn is_available() -> bool {
        Vgem::is_available()
    }

    /// A sync_file of this fence (a new fd each call).
    pub fn sync_file(&self) -> Result<SyncFile> {
        self.sync_file.try_clone()
    }

    /// Signal. `Ok(true)` if this call signaled it, `Ok(false)` if it was
    /// already signaled (earlier call, or the kernel's ~10 s timeout).
    pub fn signal(&self) -> Result<bool> {
        self.fence.signal()
    }

    /// Has it signaled (asks the kernel)?
    pub fn is_signaled(&self) -> Result<bool> {
        self.sync_file.is_signaled()
    }
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SoftFence>();
};
