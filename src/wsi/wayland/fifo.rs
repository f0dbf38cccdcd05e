//! FIFO by the compositor's refresh: `wp_fifo_v1`.
//!
//! Without it, a client keeps FIFO's promise (one frame per refresh, none
//! dropped) by waiting for each frame callback before it commits the next
//! frame. A compositor sends no frame callbacks to a surface it does not
//! draw (a minimized, occluded or off-screen window), so such a client
//! stalls: the layer's bounded wait (`Backend::frame_event_timeout`,
//! 250 ms) lets it go on at four frames a second.
//!
//! With `wp_fifo_v1` each commit carries `wait_barrier` (not applied while
//! the barrier the previous commit set is up) and `set_barrier` (the
//! barrier clears at the latching deadline after this commit is applied):
//! the compositor applies one frame per refresh, and the layer commits
//! each frame as soon as it is ready. The protocol lets a compositor drop
//! the constraint for a surface it does not update, so the layer also
//! keeps its own pace, a little faster than the refresh
//! ([`PACE_SHARE`]): visible, the compositor's barrier is the tighter of
//! the two and sets the rhythm; hidden, the layer's timer does, and the
//! application neither stalls nor spins. Mesa's WSI (24.3+) uses the
//! protocol for FIFO the same way.

use super::per_surface::{PerSurface, SurfaceExtension};
use wayland_protocols::wp::fifo::v1::client::wp_fifo_v1;

/// The global the layer binds for FIFO.
pub const GLOBAL: &str = "wp_fifo_manager_v1";

/// The share of the refresh period the layer's own pace allows between
/// two FIFO commits when the compositor paces them.
pub const PACE_SHARE: f64 = 0.9;

/// A surface's `wp_fifo_v1` (made by the backend, `make_fifo`).
pub type Fifo = PerSurface<wp_fifo_v1::WpFifoV1>;

impl SurfaceExtension for wp_fifo_v1::WpFifoV1 {
    fn destroy_object(&self) {
        self.destroy();
    }
}

/// Adds FIFO's constraint to the commit about to be made: applied only
/// once the previous commit's barrier cleared, and setting one itself.
pub(super) fn constrain(fifo: &Fifo) {
    if let Some((f, _)) = fifo.lock().as_ref() {
        f.wait_barrier();
        f.set_barrier();
    }
}
