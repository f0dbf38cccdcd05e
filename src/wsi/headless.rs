//! `VK_EXT_headless_surface`: a surface with no window system behind it,
//! for off-screen rendering, CI and benchmarks that want a real swapchain
//! (acquire, present, present modes, present waits) without a display.
//!
//! The "display" is a clock: it refreshes at [`REFRESH_HZ`], FIFO shows one
//! frame per refresh, MAILBOX the newest queued frame at each refresh,
//! IMMEDIATE every frame at once. A frame replaced on the display is
//! released at once, as a compositor would release it. Images live in
//! shared memory (no one else reads them), made by the same image paths as
//! every other surface, so the layer renders and presents exactly as it
//! does on a window system.

use super::image::{SwapImage, WindowSystemBuffers};
use super::platform::{Backend, BackendEvent, BackendParams, PlatformSurface};
use super::wayland::formats::{DRM_FORMAT_ABGR8888, DRM_FORMAT_ARGB8888};
use crate::sync::Offer;
use ash::vk;
use rustix::event::PollFlags;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// The refresh rate of the headless "display".
pub const REFRESH_HZ: u64 = 60;

/// A `VkSurfaceKHR` made by `vkCreateHeadlessSurfaceEXT`.
pub struct HeadlessSurface;

impl PlatformSurface for HeadlessSurface {
    fn platform(&self) -> &'static str {
        "headless"
    }

    fn current_extent(&self) -> Result<Option<vk::Extent2D>, vk::Result> {
        // The swapchain defines the size (currentExtent 0xFFFFFFFF).
        Ok(None)
    }

    fn formats(&self) -> Result<Vec<(vk::Format, u32)>, vk::Result> {
        Ok(vec![
            (vk::Format::B8G8R8A8_UNORM, DRM_FORMAT_ARGB8888),
            (vk::Format::B8G8R8A8_SRGB, DRM_FORMAT_ARGB8888),
            (vk::Format::R8G8B8A8_UNORM, DRM_FORMAT_ABGR8888),
            (vk::Format::R8G8B8A8_SRGB, DRM_FORMAT_ABGR8888),
        ])
    }

    fn present_modes(&self) -> Vec<vk::PresentModeKHR> {
        super::ALL_PRESENT_MODES.to_vec()
    }

    fn composite_alpha(&self) -> vk::CompositeAlphaFlagsKHR {
        vk::CompositeAlphaFlagsKHR::OPAQUE | vk::CompositeAlphaFlagsKHR::INHERIT
    }

    fn offer(&self) -> Result<Offer, vk::Result> {
        Ok(Offer {
            server_shm: true,
            ..Offer::default()
        })
    }

    fn dma_buf_buffers(&self, _fourcc: u32, _opaque: bool) -> WindowSystemBuffers {
        WindowSystemBuffers::default()
    }

    fn create_backend(&self, params: &BackendParams) -> Result<Box<dyn Backend>, vk::Result> {
        Ok(Box::new(HeadlessBackend {
            interval: Duration::from_micros(1_000_000 / REFRESH_HZ),
            grid: None,
            frame_due: None,
            on_display: None,
            relaxed: params.present_mode == vk::PresentModeKHR::FIFO_RELAXED,
            pending: Vec::new(),
        }))
    }
}

/// One swapchain on the headless clock.
struct HeadlessBackend {
    interval: Duration,
    /// The last refresh a frame was shown at: the clock's grid.
    grid: Option<Instant>,
    /// The refresh at which the frame shown last is on the display: its
    /// frame event is due then.
    frame_due: Option<Instant>,
    /// The image on the display.
    on_display: Option<usize>,
    /// FIFO_RELAXED: a frame that comes after its refresh is shown at once
    /// (the clock restarts from it).
    relaxed: bool,
    pending: Vec<BackendEvent>,
}

impl Backend for HeadlessBackend {
    fn import_images(&mut self, _images: &[SwapImage]) -> Result<(), vk::Result> {
        Ok(())
    }

    fn present(&mut self, index: usize, want_frame_event: bool) -> Result<(), vk::Result> {
        if let Some(old) = self.on_display.replace(index) {
            if old != index {
                self.pending.push(BackendEvent::Released(old));
            }
        }
        if want_frame_event {
            let now = Instant::now();
            // The next refresh after now, on the clock's grid; a relaxed
            // FIFO frame that missed its refresh is shown at once and
            // starts the grid afresh.
            let due = match self.grid {
                Some(t) if t > now => t + self.interval,
                Some(t) if !self.relaxed => {
                    let missed = (now - t).as_nanos() / self.interval.as_nanos().max(1);
                    t + self.interval * (missed as u32 + 1)
                }
                _ => now + self.interval,
            };
            self.grid = Some(due);
            self.frame_due = Some(due);
        }
        Ok(())
    }

    fn dispatch(
        &mut self,
        wake: BorrowedFd<'_>,
        deadline: Option<Instant>,
        events: &mut Vec<BackendEvent>,
    ) -> Result<(), vk::Result> {
        if !self.pending.is_empty() {
            events.append(&mut self.pending);
            return Ok(());
        }
        let due = |b: &mut Self| {
            if b.frame_due.is_some_and(|t| t <= Instant::now()) {
                b.frame_due = None;
                true
            } else {
                false
            }
        };
        if !due(self) {
            let until = match (deadline, self.frame_due) {
                (Some(d), Some(r)) => Some(d.min(r)),
                (d, r) => d.or(r),
            };
            let timeout = until.map_or(Duration::from_secs(1), |u| {
                u.saturating_duration_since(Instant::now())
            });
            let _ = crate::kernel::sync_file::poll_fd(wake, PollFlags::IN, timeout);
            if !due(self) {
                return Ok(());
            }
        }
        events.push(BackendEvent::FrameDone);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(mode: vk::PresentModeKHR) -> HeadlessBackend {
        HeadlessBackend {
            interval: Duration::from_millis(10),
            grid: None,
            frame_due: None,
            on_display: None,
            relaxed: mode == vk::PresentModeKHR::FIFO_RELAXED,
            pending: Vec::new(),
        }
    }

    #[test]
    fn a_replaced_frame_is_released_and_fifo_waits_for_the_refresh() {
        let mut b = backend(vk::PresentModeKHR::FIFO);
        let (r, w) = rustix::pipe::pipe().unwrap();
        let _keep = w;
        let mut ev = Vec::new();
        b.present(0, true).unwrap();
        let t0 = Instant::now();
        b.dispatch(std::os::fd::AsFd::as_fd(&r), None, &mut ev)
            .unwrap();
        assert_eq!(ev, vec![BackendEvent::FrameDone]);
        assert!(
            t0.elapsed() >= Duration::from_millis(9),
            "{:?}",
            t0.elapsed()
        );
        ev.clear();
        b.present(1, true).unwrap();
        b.dispatch(std::os::fd::AsFd::as_fd(&r), None, &mut ev)
            .unwrap();
        assert_eq!(ev, vec![BackendEvent::Released(0)]);
        ev.clear();
        // The next frame event comes one refresh after the last.
        b.dispatch(std::os::fd::AsFd::as_fd(&r), None, &mut ev)
            .unwrap();
        assert_eq!(ev, vec![BackendEvent::FrameDone]);
        assert!(
            t0.elapsed() >= Duration::from_millis(19),
            "{:?}",
            t0.elapsed()
        );
        ev.clear();
        let deadline = Instant::now() + Duration::from_millis(5);
        b.dispatch(std::os::fd::AsFd::as_fd(&r), Some(deadline), &mut ev)
            .unwrap();
        assert!(ev.is_empty(), "no frame event owed: {ev:?}");
    }
}
