//! The sync bridge: every synchronization decision the layer makes, in one
//! place.
//!
//! A presented image must not be read by the window system before the
//! application's rendering into it is done, and an acquired image must not be
//! written by the application before the window system is done reading it.
//! Vulkan expresses both with semaphores and fences (explicit sync); the
//! Linux window systems expect either fences attached to the dma-buf
//! (implicit sync) or, where they speak it, DRM syncobj timeline points
//! (explicit sync).
//!
//! [`plan`] picks, per swapchain, how each direction is bridged, preferring
//! the path that keeps the CPU out of the loop:
//!
//! | present side ([`PresentSync`]) | needs |
//! |---|---|
//! | `ExplicitSyncobj`: each commit carries an acquire point of a DRM syncobj timeline (`wp_linux_drm_syncobj_v1`, DRI3 1.4 `PresentPixmapSynced`): the render semaphore's sync_file imported into it, or (no SYNC_FD export) signalled by a worker thread when the GPU is done ([`explicit`]) | the protocol, a DRM node with timeline syncobjs, dma-buf images |
//! | `ImplicitSyncFile`: the render semaphore's sync_file is imported into the dma-buf as a write fence (`DMA_BUF_IOCTL_IMPORT_SYNC_FILE`) | SYNC_FD export, the kernel ioctls, dma-buf images |
//! | `ImplicitSoftFence`: a userspace-signalled kernel fence is imported into the dma-buf now and signalled by a worker thread when the GPU is done | the kernel ioctls, a soft-fence source, dma-buf images |
//! | `WorkerWait`: a worker thread waits for the GPU, then hands the buffer over | nothing |
//!
//! | acquire side ([`AcquireSync`]) | needs |
//! |---|---|
//! | `ImportSyncFile`: the released buffer's fences (explicit sync: its release point), exported as a sync_file, are imported into the app's semaphore/fence | SYNC_FD import, dma-buf images, the kernel ioctls (explicit sync: a syncobj timeline) |
//! | `QueueSignal`: the layer waits (off the app thread) until the buffer is idle, then signals the app's semaphore/fence with an empty submission | nothing |
//!
//! Both apply to images the window system has released. When none is free,
//! acquire may hand out one the window system has replaced but not yet
//! released, or, outside FIFO, the one on screen while a newer frame is on
//! its way (*early acquire*): the app's fence is signalled by a submission
//! that waits on a timeline the layer signals when the release arrives
//! ([`release_timeline`]); it needs timeline semaphores
//! ([`DeviceCaps::early_acquire`]) and an acquire that passes only a fence
//! (a binary semaphore may not wait for a signal not yet submitted).

pub mod explicit;
pub mod fault;
pub mod frame_fence;
pub mod release_timeline;
pub mod vk;

use crate::config::{BufferMode, Config, SyncMode};
use crate::device::DeviceCaps;
use std::fmt;

/// Where swapchain images live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferKind {
    /// dma-bufs the window system imports (linux-dmabuf, DRI3).
    DmaBuf,
    /// Shared memory (`wl_shm`, MIT-SHM): the window system copies.
    Shm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresentSync {
    ExplicitSyncobj,
    ImplicitSyncFile,
    ImplicitSoftFence,
    WorkerWait,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcquireSync {
    ImportSyncFile,
    QueueSignal,
}

/// What the window system, the kernel and the driver offer: the inputs of
/// [`plan`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// The window system accepts dma-bufs of a format the layer can make.
    pub server_dma_buf: bool,
    /// The window system accepts shared-memory buffers.
    pub server_shm: bool,
    /// The window system speaks explicit sync (`wp_linux_drm_syncobj_v1`,
    /// DRI3 1.4).
    pub server_explicit: bool,
    /// The layer can make dma-bufs the driver can render into (or copy
    /// into): the driver exports them, or the layer allocates them.
    pub dma_buf_alloc: bool,
    /// The kernel has the dma-buf sync_file ioctls.
    pub kernel_sync_file: bool,
    /// A DRM device with syncobj timelines is open.
    pub kernel_syncobj: bool,
    /// A userspace-signalled kernel fence source (vgem) is available.
    pub kernel_soft_fence: bool,
    /// The device the window system composites on, a `dev_t`
    /// (linux-dmabuf feedback): its node is preferred for syncobjs.
    pub main_device: Option<u64>,
}

/// The synchronization plan of one swapchain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub buffers: BufferKind,
    pub present: PresentSync,
    pub acquire: AcquireSync,
    /// Why this plan, for the log and for `syncbridge-info`.
    pub reason: String,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} buffers, present {:?}, acquire {:?} ({})",
            self.buffers, self.present, self.acquire, self.reason
        )
    }
}

impl PresentSync {
    /// A short stable name for logs, statistics and tests.
    pub fn name(self) -> &'static str {
        match self {
            PresentSync::ExplicitSyncobj => "explicit",
            PresentSync::ImplicitSyncFile => "implicit",
            PresentSync::ImplicitSoftFence => "implicit-soft-fence",
            PresentSync::WorkerWait => "worker-wait",
        }
    }
}

/// Fills in what this process can do (allocation, kernel fences) for a
/// window system that takes dma-bufs. Probes are cached process-wide.
pub fn complete_offer(offer: &mut Offer, caps: &DeviceCaps) {
    use crate::kernel;
    if !offer.server_dma_buf {
        return;
    }
    // The driver exports dma-bufs itself, or the layer allocates them for
    // the driver to import (as dma-bufs or as host memory).
    let driver_exports = caps.dma_buf_memory && caps.drm_format_modifiers;
    let importable = caps.host_memory_import.is_some() || driver_exports;
    offer.dma_buf_alloc =
        driver_exports || (importable && !kernel::alloc::available_sources().is_empty());
    offer.kernel_sync_file =
        kernel::dma_buf::sync_file_support() == kernel::SyncFileSupport::Supported;
    offer.kernel_soft_fence = kernel::SoftFence::is_available();
    offer.kernel_syncobj = kernel::SyncobjDevice::preferred(offer.main_device).is_ok();
}

/// How the acquire points of an explicit-sync swapchain on `caps` are
/// made: the render semaphore's sync_file where the driver exports one,
/// unless `SYNCBRIDGE_DEBUG_FENCE_DELAY_MS` asks for the worker to hold
/// them back.
pub fn acquire_point_source(cfg: &Config, caps: &DeviceCaps) -> explicit::AcquirePoint {
    if caps.semaphore_sync_fd_export && cfg.debug_fence_delay_ms == 0 {
        explicit::AcquirePoint::SyncFile
    } else {
        explicit::AcquirePoint::Worker
    }
}

/// Why explicit sync cannot be used with `offer` (`dma`: the buffers are
/// dma-bufs), for the plan's reason and the line `SYNCBRIDGE_SYNC=explicit`
/// gets.
fn explicit_missing(offer: &Offer, dma: bool) -> &'static str {
    if !offer.server_explicit {
        "the window system does not speak explicit sync (no wp_linux_drm_syncobj_manager_v1, no DRI3 1.4 syncobjs)"
    } else if !dma {
        "shared-memory buffers carry no sync points"
    } else if !offer.kernel_syncobj {
        "no DRM node with timeline syncobjs (DRM_CAP_SYNCOBJ_TIMELINE)"
    } else {
        "SYNCBRIDGE_SYNC rules it out"
    }
}

/// Picks how a swapchain synchronizes. Returns `None` when nothing the
/// window system accepts can be made (the caller reports
/// `VK_ERROR_INITIALIZATION_FAILED`).
pub fn plan(cfg: &Config, caps: &DeviceCaps, offer: &Offer) -> Option<Plan> {
    let mut why = Vec::new();
    let dma_buf_possible = offer.server_dma_buf && offer.dma_buf_alloc;
    let buffers = match cfg.buffers {
        BufferMode::Shm if offer.server_shm => BufferKind::Shm,
        BufferMode::DmaBuf if dma_buf_possible => BufferKind::DmaBuf,
        BufferMode::DmaBuf => return None,
        _ if dma_buf_possible => BufferKind::DmaBuf,
        _ if offer.server_shm => {
            why.push(if !offer.server_dma_buf {
                "the window system takes no dma-bufs"
            } else {
                "no dma-buf can be allocated for the driver"
            });
            BufferKind::Shm
        }
        _ => return None,
    };

    let dma = buffers == BufferKind::DmaBuf;
    // Explicit sync needs no SYNC_FD from the driver: without it a worker
    // thread signals the acquire point.
    let explicit_ok = dma && offer.server_explicit && offer.kernel_syncobj;
    let implicit_ok = dma && offer.kernel_sync_file && caps.semaphore_sync_fd_export;
    let soft_ok = dma && offer.kernel_sync_file && offer.kernel_soft_fence;
    let wanted = cfg.sync;
    let present = match wanted {
        SyncMode::Auto | SyncMode::Explicit if explicit_ok => {
            why.push("the window system speaks explicit sync and a DRM node has timeline syncobjs");
            why.push(match acquire_point_source(cfg, caps) {
                explicit::AcquirePoint::SyncFile => {
                    "acquire points: the render semaphore's sync_file"
                }
                explicit::AcquirePoint::Worker => {
                    "acquire points: signalled by a worker thread when the GPU is done"
                }
            });
            PresentSync::ExplicitSyncobj
        }
        SyncMode::Auto | SyncMode::Explicit | SyncMode::Implicit if implicit_ok => {
            PresentSync::ImplicitSyncFile
        }
        SyncMode::Auto | SyncMode::Explicit | SyncMode::Implicit if soft_ok => {
            why.push("the driver cannot export a semaphore as a sync_file; a worker thread signals a kernel fence");
            PresentSync::ImplicitSoftFence
        }
        _ => {
            if wanted == SyncMode::Cpu {
                why.push("SYNCBRIDGE_SYNC=cpu");
            } else if !dma {
                why.push("shared-memory buffers carry no fences");
            } else if !offer.kernel_sync_file {
                why.push("the kernel lacks DMA_BUF_IOCTL_IMPORT_SYNC_FILE");
            } else {
                why.push("no way to turn the GPU's completion into a kernel fence");
            }
            PresentSync::WorkerWait
        }
    };
    if wanted == SyncMode::Explicit && present != PresentSync::ExplicitSyncobj {
        why.push("SYNCBRIDGE_SYNC=explicit, but explicit sync is not available");
        why.push(explicit_missing(offer, dma));
    }
    if wanted == SyncMode::Implicit && explicit_ok {
        why.push("SYNCBRIDGE_SYNC=implicit: explicit sync not used");
    }
    let acquire = if present == PresentSync::ExplicitSyncobj {
        // The release point's sync_file, into the application's semaphore
        // and fence; or the layer waits for the point to signal.
        if caps.semaphore_sync_fd_import && caps.fence_sync_fd_import {
            why.push("release points: their sync_file into the acquire semaphore and fence");
            AcquireSync::ImportSyncFile
        } else {
            why.push("release points: waited for by the layer");
            AcquireSync::QueueSignal
        }
    } else if dma
        && offer.kernel_sync_file
        && caps.semaphore_sync_fd_import
        && caps.fence_sync_fd_import
        && wanted != SyncMode::Cpu
    {
        AcquireSync::ImportSyncFile
    } else {
        AcquireSync::QueueSignal
    };
    if why.is_empty() {
        why.push("best path available");
    }
    Some(Plan {
        buffers,
        present,
        acquire,
        reason: why.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_caps() -> DeviceCaps {
        DeviceCaps {
            host_memory_import: Some(4096),
            dma_buf_memory: true,
            drm_format_modifiers: true,
            semaphore_sync_fd_export: true,
            semaphore_sync_fd_import: true,
            fence_sync_fd_import: true,
            timeline_semaphores: true,
        }
    }

    fn full_offer() -> Offer {
        Offer {
            server_dma_buf: true,
            server_shm: true,
            server_explicit: true,
            dma_buf_alloc: true,
            kernel_sync_file: true,
            kernel_syncobj: true,
            kernel_soft_fence: true,
            main_device: None,
        }
    }

    #[test]
    fn explicit_needs_no_sync_fd_from_the_driver() {
        let cfg = Config::default();
        let mut caps = full_caps();
        caps.semaphore_sync_fd_export = false;
        caps.fence_sync_fd_import = false;
        let p = plan(&cfg, &caps, &full_offer()).unwrap();
        assert_eq!(
            (p.buffers, p.present, p.acquire),
            (
                BufferKind::DmaBuf,
                PresentSync::ExplicitSyncobj,
                AcquireSync::QueueSignal
            )
        );
        assert!(p.reason.contains("signalled by a worker thread"), "{p}");
        assert!(p.reason.contains("waited for by the layer"), "{p}");
        assert_eq!(
            acquire_point_source(&cfg, &caps),
            explicit::AcquirePoint::Worker
        );
        let p = plan(&cfg, &full_caps(), &full_offer()).unwrap();
        assert!(p.reason.contains("the render semaphore's sync_file"), "{p}");
        assert_eq!(
            acquire_point_source(&cfg, &full_caps()),
            explicit::AcquirePoint::SyncFile
        );
        // The delay of the testing aid needs the worker to hold points back.
        let delayed = Config {
            debug_fence_delay_ms: 50,
            ..Config::default()
        };
        assert_eq!(
            acquire_point_source(&delayed, &full_caps()),
            explicit::AcquirePoint::Worker
        );
        // Without the dma-buf sync_file ioctls explicit sync still works.
        let offer = Offer {
            kernel_sync_file: false,
            ..full_offer()
        };
        let p = plan(&cfg, &full_caps(), &offer).unwrap();
        assert_eq!(
            (p.present, p.acquire),
            (PresentSync::ExplicitSyncobj, AcquireSync::ImportSyncFile)
        );
    }

    #[test]
    fn explicit_never_on_shared_memory_nor_without_a_node() {
        let cfg = Config {
            buffers: BufferMode::Shm,
            ..Config::default()
        };
        let p = plan(&cfg, &full_caps(), &full_offer()).unwrap();
        assert_eq!(
            (p.buffers, p.present),
            (BufferKind::Shm, PresentSync::WorkerWait)
        );
        let offer = Offer {
            kernel_syncobj: false,
            ..full_offer()
        };
        assert_eq!(
            plan(&Config::default(), &full_caps(), &offer)
                .unwrap()
                .present,
            PresentSync::ImplicitSyncFile
        );
    }

    #[test]
    fn forcing_explicit_or_implicit_says_why() {
        let explicit = Config {
            sync: SyncMode::Explicit,
            ..Config::default()
        };
        let implicit = Config {
            sync: SyncMode::Implicit,
            ..Config::default()
        };
        let p = plan(&explicit, &full_caps(), &full_offer()).unwrap();
        assert_eq!(p.present, PresentSync::ExplicitSyncobj);
        let p = plan(&implicit, &full_caps(), &full_offer()).unwrap();
        assert_eq!(
            (p.present, p.acquire),
            (PresentSync::ImplicitSyncFile, AcquireSync::ImportSyncFile)
        );
        assert!(p.reason.contains("SYNCBRIDGE_SYNC=implicit"), "{p}");
        for (offer, why) in [
            (
                Offer {
                    server_explicit: false,
                    ..full_offer()
                },
                "wp_linux_drm_syncobj_manager_v1",
            ),
            (
                Offer {
                    kernel_syncobj: false,
                    ..full_offer()
                },
                "DRM_CAP_SYNCOBJ_TIMELINE",
            ),
            (
                Offer {
                    server_dma_buf: false,
                    ..full_offer()
                },
                "shared-memory buffers carry no sync points",
            ),
        ] {
            let p = plan(&explicit, &full_caps(), &offer).unwrap();
            assert_ne!(p.present, PresentSync::ExplicitSyncobj);
            assert!(p.reason.contains("SYNCBRIDGE_SYNC=explicit"), "{p}");
            assert!(p.reason.contains(why), "{p}");
        }
    }

    #[test]
    fn everything_available_goes_explicit() {
        let p = plan(&Config::default(), &full_caps(), &full_offer()).unwrap();
        assert_eq!(
            (p.buffers, p.present, p.acquire),
            (
                BufferKind::DmaBuf,
                PresentSync::ExplicitSyncobj,
                AcquireSync::ImportSyncFile
            )
        );
    }

    #[test]
    fn falls_back_explicit_implicit_soft_worker() {
        let cfg = Config::default();
        let mut offer = full_offer();
        offer.server_explicit = false;
        assert_eq!(
            plan(&cfg, &full_caps(), &offer).unwrap().present,
            PresentSync::ImplicitSyncFile
        );
        let mut caps = full_caps();
        caps.semaphore_sync_fd_export = false;
        assert_eq!(
            plan(&cfg, &caps, &offer).unwrap().present,
            PresentSync::ImplicitSoftFence
        );
        offer.kernel_soft_fence = false;
        assert_eq!(
            plan(&cfg, &caps, &offer).unwrap().present,
            PresentSync::WorkerWait
        );
        offer.kernel_sync_file = false;
        let p = plan(&cfg, &full_caps(), &offer).unwrap();
        assert_eq!(
            (p.present, p.acquire),
            (PresentSync::WorkerWait, AcquireSync::QueueSignal)
        );
        assert!(p.reason.contains("IMPORT_SYNC_FILE"));
    }

    #[test]
    fn no_dma_buf_server_means_shm_and_worker() {
        let mut offer = full_offer();
        offer.server_dma_buf = false;
        let p = plan(&Config::default(), &full_caps(), &offer).unwrap();
        assert_eq!(
            (p.buffers, p.present, p.acquire),
            (
                BufferKind::Shm,
                PresentSync::WorkerWait,
                AcquireSync::QueueSignal
            )
        );
        assert!(p.reason.contains("no dma-bufs"));
    }

    #[test]
    fn forced_modes_are_honoured() {
        let cfg = Config {
            sync: SyncMode::Cpu,
            ..Config::default()
        };
        let p = plan(&cfg, &full_caps(), &full_offer()).unwrap();
        assert_eq!(
            (p.present, p.acquire),
            (PresentSync::WorkerWait, AcquireSync::QueueSignal)
        );
        let cfg = Config {
            sync: SyncMode::Implicit,
            ..Config::default()
        };
        assert_eq!(
            plan(&cfg, &full_caps(), &full_offer()).unwrap().present,
            PresentSync::ImplicitSyncFile
        );
        let cfg = Config {
            buffers: BufferMode::Shm,
            ..Config::default()
        };
        assert_eq!(
            plan(&cfg, &full_caps(), &full_offer()).unwrap().buffers,
            BufferKind::Shm
        );
    }

    #[test]
    fn nothing_acceptable_is_none() {
        let offer = Offer {
            server_shm: false,
            server_dma_buf: false,
            ..full_offer()
        };
        assert!(plan(&Config::default(), &full_caps(), &offer).is_none());
        let cfg = Config {
            buffers: BufferMode::DmaBuf,
            ..Config::default()
        };
        let offer = Offer {
            server_dma_buf: false,
            ..full_offer()
        };
        assert!(plan(&cfg, &full_caps(), &offer).is_none());
    }
}
