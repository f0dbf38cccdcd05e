//! syncbridge: a Vulkan WSI layer that bridges Vulkan's explicit
//! synchronization and the implicit synchronization of Linux window systems
//! through dma-buf sync_files.
//!
//! - [`layer`]: loader interface, dispatch, entry points.
//! - [`wsi`]: surfaces, the swapchain core, Wayland and X11 backends.
//! - [`sync`]: every synchronization decision of the bridge, in one place.
//! - [`kernel`]: typed wrappers of sync_files, dma-bufs, DRM syncobjs.
#![allow(non_snake_case)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod config;
pub mod kernel;
pub mod layer;
pub mod log;
pub mod sync;
pub mod wsi;
