//! The Vulkan layer: loader negotiation, instance and device chaining,
//! dispatch, and the entry points for the WSI functions the layer owns.
//!
//! Only this module knows about the loader; swapchain logic lives in
//! [`crate::wsi`], every synchronization decision in [`crate::sync`].

pub mod device;
pub mod dispatch;
pub mod entry;
pub mod guard;
pub mod instance;
pub mod loader_abi;
pub mod queue_lock;
mod wsi_entry;
