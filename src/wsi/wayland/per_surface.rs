//! Protocol objects a `wl_surface` may have only one of.
//!
//! `wp_tearing_control_v1` and `wp_fifo_v1` (and, for explicit sync,
//! `wp_linux_drm_syncobj_surface_v1`) are per-surface extensions: asking
//! for a second one on the same `wl_surface` is a protocol error
//! (`already_exists`). A swapchain made with `oldSwapchain` lives beside
//! the old one for a while, and several swapchains follow each other on
//! one surface, so the object is made by the first swapchain that wants it
//! and kept by the `VkSurfaceKHR`, which goes before the application
//! destroys its `wl_surface` (Vulkan's order); it destroys the object then.

use std::sync::{Mutex, MutexGuard};
use wayland_client::Connection;

/// A per-surface protocol object the layer destroys with the surface.
pub trait SurfaceExtension: Send {
    /// The protocol's destructor request.
    fn destroy_object(&self);
}

/// The surface's one `P`, once a swapchain made it, with the connection
/// its destructor is flushed on.
pub struct PerSurface<P: SurfaceExtension>(Mutex<Option<(P, Connection)>>);

impl<P: SurfaceExtension> Default for PerSurface<P> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<P: SurfaceExtension> PerSurface<P> {
    pub fn lock(&self) -> MutexGuard<'_, Option<(P, Connection)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<P: SurfaceExtension> Drop for PerSurface<P> {
    fn drop(&mut self) {
        if let Some((p, conn)) = self.lock().take() {
            p.destroy_object();
            let _ = conn.flush();
        }
    }
}
