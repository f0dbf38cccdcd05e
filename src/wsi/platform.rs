//! What a window-system backend provides to the platform-neutral core.

use super::image::{SwapImage, WindowSystemBuffers};
use crate::sync::Offer;
use ash::vk;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// A window-system surface (`VkSurfaceKHR`) on one platform.
pub trait PlatformSurface: Send + Sync {
    /// `"wayland"`, `"xcb"`, …
    fn platform(&self) -> &'static str;
    /// The window's current size; `None` where the swapchain defines it
    /// (Wayland).
    fn current_extent(&self) -> Result<Option<vk::Extent2D>, vk::Result>;
    /// Formats the window system can show, as Vulkan formats with the DRM
    /// fourcc each maps to.
    fn formats(&self) -> Result<Vec<(vk::Format, u32)>, vk::Result>;
    fn present_modes(&self) -> Vec<vk::PresentModeKHR>;
    fn composite_alpha(&self) -> vk::CompositeAlphaFlagsKHR;
    /// What the window system accepts, for the sync plan.
    fn offer(&self) -> Result<Offer, vk::Result>;
    /// What the window system takes as dma-bufs of `fourcc` (its opaque
    /// variant when `opaque`): modifiers and the device it composites on.
    fn dma_buf_buffers(&self, fourcc: u32, opaque: bool) -> WindowSystemBuffers;
    /// Starts presenting to this surface for a new swapchain.
    fn create_backend(&self, params: &BackendParams) -> Result<Box<dyn Backend>, vk::Result>;
}

/// What a backend is created for.
#[derive(Clone, Debug)]
pub struct BackendParams {
    pub extent: vk::Extent2D,
    pub format: vk::Format,
    pub fourcc: u32,
    pub present_mode: vk::PresentModeKHR,
    pub opaque: bool,
    pub buffers: crate::sync::BufferKind,
    /// The swapchain's timelines where the plan is explicit sync: every
    /// commit carries an acquire and a release point of image's own, and
    /// the backend reports [`BackendEvent::Released`] when the release
    /// point has a fence (`ExplicitSync::wait_available`) or signalled.
    pub explicit: Option<std::sync::Arc<crate::sync::explicit::ExplicitSync>>,
}

/// Something the window system told the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendEvent {
    /// The window system no longer reads image `index`.
    Released(usize),
    /// The frame presented last is on screen (or was skipped by the server);
    /// FIFO may present the next one.
    FrameDone,
    /// The surface changed so that the swapchain should be recreated.
    Suboptimal,
    /// The swapchain no longer matches the surface.
    OutOfDate,
    /// The connection or window is gone.
    Lost,
    /// Presentation feedback for the frame handed over after
    /// [`Backend::request_feedback`] with `seq`: shown at `at` (the
    /// window system's timestamp on this process's monotonic clock), or
    /// `None`: discarded (replaced before it was shown, or never shown).
    Shown { seq: u64, at: Option<Instant> },
}

/// One swapchain's connection to the window system, driven by the
/// swapchain's presenter thread only.
pub trait Backend: Send {
    /// Makes the window-system buffer for each image, in order.
    fn import_images(&mut self, images: &[SwapImage]) -> Result<(), vk::Result>;
    /// Shows image `index` (whose rendering is complete, or whose fence the
    /// window system honours). `want_frame_event` asks for a
    /// [`BackendEvent::FrameDone`] when it is on screen.
    fn present(&mut self, index: usize, want_frame_event: bool) -> Result<(), vk::Result>;
    /// Waits until a window-system event arrives, `wake` becomes readable,
    /// or `deadline` passes, and reports what happened into `events`.
    fn dispatch(
        &mut self,
        wake: BorrowedFd<'_>,
        deadline: Option<Instant>,
        events: &mut Vec<BackendEvent>,
    ) -> Result<(), vk::Result>;
    /// Asks for a [`BackendEvent::Shown`] for the frame the next
    /// [`present`](Backend::present) hands over, tagged `seq`. `false`:
    /// the window system gives no presentation feedback, and none comes.
    fn request_feedback(&mut self, _seq: u64) -> bool {
        false
    }
    /// FIFO paced by the window system (`wp_fifo_v1`): each frame is
    /// handed over as soon as it is ready but no sooner than the returned
    /// time after the one before (the pace of a hidden window, which the
    /// window system may stop pacing), and the window system shows one
    /// per refresh. `None`: FIFO waits for each frame event.
    fn fifo_pacing(&self) -> Option<Duration> {
        None
    }
    /// The window system keeps a frame limit of one frame every
    /// `interval`: each later [`present`](Backend::present) is shown no
    /// sooner than one interval after the one before (Wayland's
    /// `wp_commit_timing_v1`), so the caller hands frames over when ready
    /// instead of holding them. Asked once; `false`: it cannot, the
    /// caller keeps the limit itself.
    fn pace_commits(&mut self, _interval: Duration) -> bool {
        false
    }
    /// Where [`pace_commits`](Backend::pace_commits) said yes: the
    /// earliest time the next present would be shown (`None`: none yet).
    fn next_commit_time(&self) -> Option<Instant> {
        None
    }
    /// Where [`pace_commits`](Backend::pace_commits) said yes: the time
    /// the last present is shown no sooner than.
    fn last_commit_time(&self) -> Option<Instant> {
        None
    }
    /// How long to wait for a frame event before presenting anyway (a
    /// hidden window gets no frame events; the application must not hang).
    fn frame_event_timeout(&self) -> Duration {
        Duration::from_millis(250)
    }
}

/// A window system's timestamp, `ns` nanoseconds on the clock `clk_id`
/// (a Linux `clockid_t`: `wp_presentation.clock_id`; X11 Present's UST is
/// `CLOCK_MONOTONIC` microseconds), on this process's monotonic clock. A
/// clock the layer cannot read, or a time not yet reached, is taken as now
/// (the event came after the frame was shown).
pub fn instant_of(clk_id: u32, ns: u64) -> Instant {
    let Some((now, clk_now)) = clock_now(clk_id) else {
        return Instant::now();
    };
    now.checked_sub(Duration::from_nanos(clk_now.saturating_sub(ns)))
        .unwrap_or(now)
}

/// The other way: `at`, on this process's monotonic clock, as nanoseconds
/// on the clock `clk_id` (a time already past is taken as now). `None`
/// for a clock the layer cannot read.
pub fn clock_ns_at(clk_id: u32, at: Instant) -> Option<u64> {
    let (now, clk_now) = clock_now(clk_id)?;
    Some(clk_now.saturating_add(at.saturating_duration_since(now).as_nanos() as u64))
}

/// This process's `Instant::now()` and, read right after it, the clock
/// `clk_id` in nanoseconds.
fn clock_now(clk_id: u32) -> Option<(Instant, u64)> {
    use rustix::time::ClockId;
    let clock = match clk_id {
        0 => ClockId::Realtime,
        1 => ClockId::Monotonic,
        4 => ClockId::MonotonicRaw,
        5 => ClockId::RealtimeCoarse,
        6 => ClockId::MonotonicCoarse,
        _ => return None,
    };
    let now = Instant::now();
    let t = rustix::time::clock_gettime(clock);
    let ns = (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64);
    Some((now, ns))
}
