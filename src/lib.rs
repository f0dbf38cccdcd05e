//! syncbridge: a Vulkan WSI layer that bridges Vulkan's explicit
//! synchronization and the implicit synchronization of Linux window systems
//! through dma-buf sync_files.
//!
//! The modules stand on floors, bottom up; each uses only its own floor and
//! those below (`ARCHITECTURE.md`, checked by `tests/architecture.rs`):
//!
//! 0. [`config`], [`log`], [`registry`], [`pnext`]: settings, logging,
//!    handle tables, `pNext` chains.
//! 1. [`kernel`]: typed wrappers of sync_files, dma-bufs, DRM syncobjs.
//! 2. [`device`]: the device's function tables, capabilities and queues.
//! 3. [`sync`]: every synchronization decision of the bridge, in one place.
//! 4. [`wsi`]: surfaces, the swapchain core, Wayland and X11 backends.
//! 5. [`layer`]: loader interface, dispatch, entry points.
#![allow(non_snake_case)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod config;
pub mod device;
pub mod kernel;
pub mod layer;
pub mod log;
pub mod pnext;
pub mod registry;
pub mod sync;
pub mod wsi;
