//! Typed, safe wrappers around the kernel objects the bridge is made of:
//! sync_files, dma-bufs and their implicit fences, dma-buf allocators,
//! vgem (the userspace-signalled fence source) and DRM syncobjs.
//!
//! Everything that may be missing on a kernel answers
//! [`KernelError::Unsupported`] instead of failing hard.

pub mod alloc;
pub mod dma_buf;
mod drm;
pub mod error;
pub mod soft_fence;
pub mod sync_file;
pub mod syncobj;
mod sys;
pub mod vgem;

pub use dma_buf::{DmaBuf, DmaBufSource, Mapping, SyncAccess, SyncFileSupport};
pub use drm::{list_drm_nodes, DrmNodeInfo};
pub use error::{KernelError, Result};
pub use soft_fence::SoftFence;
pub use sync_file::{FenceInfo, FenceStatus, SyncFile, SyncFileInfo};
pub use syncobj::{Syncobj, SyncobjDevice};
pub use vgem::{Vgem, VgemBo, VgemFence};

#[cfg(test)]
mod tests;
