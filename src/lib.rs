//! syncbridge: a Vulkan WSI layer that bridges Vulkan's explicit
//! synchronization and the implicit synchronization of Linux window systems
//! through dma-buf sync_files.
#![allow(non_snake_case)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod kernel;
