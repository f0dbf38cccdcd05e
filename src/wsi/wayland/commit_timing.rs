//! A frame limit the compositor keeps: `wp_commit_timing_v1`.
//!
//! `SYNCBRIDGE_FPS_LIMIT` shows at most N frames a second. Without help
//! from the compositor the layer keeps the limit itself: its presenter
//! holds each frame until its slot (one every 1/N s) and commits it then,
//! so the frames waiting for their slot live in the layer, a timer of the
//! layer's wakes it for each, and a swapchain destroyed or retired with
//! frames still waiting keeps its presenter until their slots (at most
//! 1 s; later ones are dropped).
//!
//! `wp_commit_timing_v1` lets a commit carry a time before which the
//! compositor does not present it (`set_timestamp`, on the compositor's
//! presentation clock: `wp_presentation.clock_id`). Content updates are
//! still applied in order, so a commit with a later time holds the ones
//! after it. The layer then commits each frame as soon as it is ready,
//! stamped with its slot: the compositor waits, the application is
//! throttled by the buffers the compositor keeps until then, and nothing
//! waits in the layer when the swapchain goes. The layer
//! keeps a backstop: a frame whose slot is more than
//! [`COMMITS_AHEAD`](crate::wsi::frame_limit::COMMITS_AHEAD) slots away
//! waits in the layer as before (a compositor may present a surface it does
//! not draw without its constraints, and the application must not spin).
//!
//! Used for IMMEDIATE (every frame shown, at most N a second, tearing
//! where the compositor allows it). MAILBOX and FIFO_LATEST_READY keep the
//! layer's own slots: they show the newest frame at each slot, which a
//! commit already made cannot be any more. FIFO keeps them too: on mutter
//! 48 (the one compositor here that offers the protocol) FIFO frames with
//! timestamps stalled, with `wp_fifo_v1`'s barriers and without them: 0.8
//! and 1.0 frames a second against a limit of 5, releases given up on
//! after 5 s, frame callbacks timing out (2026-12-04, in the guest; the
//! cause inside mutter not found), while IMMEDIATE frames kept the limit
//! with none shown before its time.
//!
//! The protocol was made for applications' target presentation times
//! (what `VK_EXT_present_timing` asks for); the layer, which does not
//! offer that extension, uses it for its limiter.

use super::per_surface::{PerSurface, SurfaceExtension};
use std::time::Instant;
use wayland_protocols::wp::commit_timing::v1::client::wp_commit_timer_v1;

/// The global the layer binds for a frame limit.
pub const GLOBAL: &str = "wp_commit_timing_manager_v1";

/// A surface's `wp_commit_timer_v1` (one per surface: a second is the
/// `commit_timer_exists` protocol error).
pub type CommitTimer = PerSurface<wp_commit_timer_v1::WpCommitTimerV1>;

impl SurfaceExtension for wp_commit_timer_v1::WpCommitTimerV1 {
    fn destroy_object(&self) {
        self.destroy();
    }
}

/// Whether the compositor keeps the frame limit of a swapchain in `mode`
/// (IMMEDIATE only: see the module's notes).
pub fn keeps_the_limit_in(mode: ash::vk::PresentModeKHR) -> bool {
    mode == ash::vk::PresentModeKHR::IMMEDIATE
}

/// `set_timestamp`'s three words for `at` on the clock `clk_id`, or `None`
/// where the layer cannot read that clock.
pub fn timestamp(clk_id: u32, at: Instant) -> Option<(u32, u32, u32)> {
    let ns = crate::wsi::platform::clock_ns_at(clk_id, at)?;
    let sec = ns / 1_000_000_000;
    Some(((sec >> 32) as u32, sec as u32, (ns % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_on_the_monotonic_clock() {
        let at = Instant::now() + Duration::from_millis(20);
        let (hi, lo, ns) = timestamp(1, at).expect("CLOCK_MONOTONIC");
        assert!(ns < 1_000_000_000);
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let secs = (u64::from(hi) << 32) | u64::from(lo);
        let stamped = secs * 1_000_000_000 + u64::from(ns);
        let now = t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
        assert!(
            stamped > now && stamped - now <= 20_000_000,
            "{stamped} vs {now}"
        );
        assert_eq!(timestamp(99, at), None, "an unknown clock");
    }
}
