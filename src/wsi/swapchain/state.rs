//! The state the application's thread and the swapchain's two threads
//! share: where each image is ([`ImageState`]), what the window system
//! holds, and the condition acquires and present waits sleep on
//! ([`Shared`]). Every transition is one method, made under the lock and
//! logged there, so the log's order is the order of the transitions.

use crate::kernel::SoftFence;
use crate::sync::explicit::ExplicitSync;
use crate::sync::frame_fence::FrameFence;
use crate::wsi::stats::Stats;
use ash::vk;
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Where an image is, from the application's side. Whether the window
/// system holds the image's buffer is kept apart (`State::ws_holds`): an
/// image handed out early is `Acquired` (or even `Queued` again) while the
/// window system still holds its previous frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ImageState {
    Free,
    Acquired,
    /// Presented, on its way to the window system (GPU waiter, presenter).
    Queued,
    /// Handed to the window system, which has not released it yet.
    Shown,
}

pub(super) struct State {
    pub(super) images: Vec<ImageState>,
    /// Free images in the order they were released.
    pub(super) free: VecDeque<usize>,
    /// Per image: the window system holds its buffer (committed, not
    /// released).
    pub(super) ws_holds: Vec<bool>,
    /// Per image: handed out before the window system released it, since
    /// when; the release must be signalled on its timeline.
    pub(super) owed: Vec<Option<Instant>>,
    /// Per image: the last value of its release timeline that was asked
    /// for; the next early acquire waits for one more.
    pub(super) release_value: Vec<u64>,
    /// Per image: when it was handed to the window system, as a count of
    /// handovers; `last_shown` is the newest. An image shown before the
    /// newest has been replaced and its release is on the way.
    pub(super) shown_seq: Vec<u64>,
    pub(super) last_shown: u64,
    /// Per image the window system holds: since when a newer frame
    /// replaced it on screen (`None`: not replaced, or not held). Past the
    /// release timeout the presenter treats it as released.
    pub(super) replaced_at: Vec<Option<Instant>>,
    /// A presented frame still on its way also counts as replacing the
    /// newest shown one (every queued frame, or a newer one, will be
    /// shown). Not in FIFO, where it would let the application run one
    /// more frame ahead of the display.
    pub(super) queued_replaces: bool,
    /// Acquires waiting on `cond` that may take an image early (a
    /// fence-only acquire, release timelines made): showing a frame wakes
    /// only these. An acquire with a semaphore waits for a release, and a
    /// wake-up for each frame shown would be one more for nothing.
    pub(super) early_waiters: u32,
    /// `SUCCESS`, `SUBOPTIMAL_KHR` or the error every later call returns.
    pub(super) status: vk::Result,
    pub(super) retired: bool,
    /// The presenter handed over the frames queued at the retirement, or
    /// is gone: the new swapchain's frames may follow.
    pub(super) retire_flushed: bool,
    /// The `VK_KHR_present_id` of the frame last presented from each image.
    pub(super) present_ids: Vec<u64>,
    /// The highest present id known to be on screen (`VK_KHR_present_wait`).
    pub(super) displayed_id: u64,
    /// Per image: when the application presented its frame, while the
    /// statistics are kept (present-to-display latency).
    pub(super) present_at: Vec<Option<Instant>>,
    /// The statistics are kept (`SYNCBRIDGE_STATS`): frames are timed.
    pub(super) timed: bool,
    /// FIFO: the presenter waits for a frame event, so it wakes before any
    /// newer frame can be shown, and looks at `deferred` then. While set, a
    /// present on the worker-wait path leaves its frame there instead of
    /// waking the GPU waiter: the application's thread pays no wake-up.
    pub(super) presenter_will_look: bool,
    /// Frames presented while `presenter_will_look`, in order.
    pub(super) deferred: Vec<(usize, Arc<FrameFence>)>,
}

impl State {
    /// Image `index`, which the application no longer uses (a frame not
    /// shown, an image given back), goes back to the window system's side
    /// if the window system still holds its previous frame, and is free
    /// otherwise (at the front of the free list: next to be acquired, or
    /// the back). Returns whether it is free.
    pub(super) fn unuse(&mut self, index: usize, to_front: bool) -> bool {
        if self.ws_holds[index] {
            self.images[index] = ImageState::Shown;
            return false;
        }
        self.images[index] = ImageState::Free;
        if to_front {
            self.free.push_front(index);
        } else {
            self.free.push_back(index);
        }
        true
    }

    /// Image `index`'s owed release, if it was handed out early, as
    /// settled: the value to signal its release timeline with.
    pub(super) fn settle_owed(&mut self, index: usize) -> Option<u64> {
        self.owed[index].take()?;
        self.release_value[index] += 1;
        Some(self.release_value[index])
    }
}

pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) cond: Condvar,
    pub(super) wake: OwnedFd,
    pub(super) shutdown: AtomicBool,
    /// Frames the GPU waiter has yet to hand to the presenter. While there
    /// are any, a later frame must go the same way, or it would be shown
    /// before them. An atomic rather than [`State`], so the application's
    /// present and the waiter do not contend for the lock over it.
    pub(super) with_waiter: AtomicUsize,
    /// The layer's CPU time in the acquire of each acquired image, and the
    /// time its blocking waits cost, added to its present's for the
    /// per-frame statistic.
    pub(super) acquire_cpu_ns: Vec<(AtomicU64, AtomicU64)>,
    pub(super) stats: Mutex<Stats>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The presenter handed over what was queued when the swapchain was
    /// retired (or will hand over nothing more): `retire` may return.
    pub(super) fn retire_flushed(&self) {
        self.lock().retire_flushed = true;
        self.cond.notify_all();
    }

    /// A presented frame that will not be shown (replaced in MAILBOX, a
    /// retired swapchain, a failed handover): its image is free again
    /// unless the window system still holds the image's previous frame.
    pub(super) fn drop_frame(&self, index: usize) {
        let mut st = self.lock();
        if st.images[index] == ImageState::Queued {
            // Logged under the lock, so the order of these lines is the
            // order of the transitions (tests replay it).
            log::debug!("image {index}: dropped");
            if st.unuse(index, false) {
                self.cond.notify_all();
            }
        }
    }

    /// The window system gave image `index` back. Returns the value to
    /// signal its release timeline with, if it had been handed out early.
    #[must_use]
    pub(super) fn window_released(&self, index: usize) -> Option<u64> {
        let mut st = self.lock();
        if !st.ws_holds[index] {
            return None;
        }
        st.ws_holds[index] = false;
        st.replaced_at[index] = None;
        log::debug!("image {index}: released");
        let signal = st.settle_owed(index);
        if st.images[index] == ImageState::Shown {
            st.images[index] = ImageState::Free;
            st.free.push_back(index);
            // Notified after the lock is given up: a waiter woken under it
            // would find the lock taken, sleep again on it, and make its
            // unlock a system call (a wake-up of this thread).
            drop(st);
            self.cond.notify_all();
        }
        signal
    }

    /// Marks frame `index` as handed to the window system, unless the
    /// window system still holds the image's previous frame (an image
    /// handed out early and presented again before its release): then
    /// `None`, and the frame waits for the release.
    pub(super) fn begin_show(&self, index: usize) -> Option<Handed> {
        let mut st = self.lock();
        if st.ws_holds[index] {
            return None;
        }
        // The frame shown before is replaced from now on: its release is
        // due, and the release timeout runs.
        let newest = st.last_shown;
        if let Some(j) = (0..st.ws_holds.len())
            .find(|&j| st.ws_holds[j] && st.shown_seq[j] == newest && st.replaced_at[j].is_none())
        {
            st.replaced_at[j] = Some(Instant::now());
        }
        st.ws_holds[index] = true;
        st.replaced_at[index] = None;
        st.images[index] = ImageState::Shown;
        log::debug!("image {index}: shown");
        st.last_shown += 1;
        st.shown_seq[index] = st.last_shown;
        if st.early_waiters > 0 {
            // The image shown before may now be handed out early.
            self.cond.notify_all();
        }
        Some(Handed {
            id: st.present_ids[index],
            seq: st.last_shown,
            presented: st.present_at[index].take(),
            timed: st.timed,
        })
    }

    /// Every image handed out early, as released: for a window system that
    /// is gone, or a swapchain being destroyed. Returns what to signal.
    pub(super) fn give_up_owed(&self) -> Vec<(usize, u64)> {
        let mut st = self.lock();
        (0..st.owed.len())
            .filter_map(|i| {
                let value = st.settle_owed(i)?;
                st.ws_holds[i] = false;
                st.replaced_at[i] = None;
                Some((i, value))
            })
            .collect()
    }

    /// Records a problem; the worst one wins and errors are sticky.
    pub(super) fn set_status(&self, status: vk::Result) {
        let mut st = self.lock();
        let rank = |r: vk::Result| match r {
            vk::Result::SUCCESS => 0,
            vk::Result::SUBOPTIMAL_KHR => 1,
            vk::Result::ERROR_OUT_OF_DATE_KHR => 2,
            _ => 3,
        };
        if rank(status) > rank(st.status) {
            if status.as_raw() < 0 {
                log::warn!("swapchain: {status:?}");
            }
            st.status = status;
            self.cond.notify_all();
        }
    }

    /// Waits on the swapchain's condition until something changes or
    /// `deadline` (none: no deadline) passes; the caller re-checks.
    pub(super) fn wait<'a>(
        &self,
        st: MutexGuard<'a, State>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'a, State> {
        match deadline {
            None => self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                self.cond
                    .wait_timeout(st, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        }
    }

    /// Frames up to `id` are on screen (or were replaced by one that is).
    pub(super) fn mark_displayed(&self, id: u64) {
        let mut st = self.lock();
        if id > st.displayed_id {
            st.displayed_id = id;
            self.cond.notify_all();
        }
    }

    pub(super) fn wake(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    pub(super) fn drain_wake(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.wake, &mut buf);
    }

    pub(super) fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A frame just handed to the window system ([`Shared::begin_show`]).
pub(super) struct Handed {
    /// Its `VK_KHR_present_id` (0: none).
    pub(super) id: u64,
    /// Its place in the order of handovers.
    pub(super) seq: u64,
    /// When the application presented it (statistics only).
    pub(super) presented: Option<Instant>,
    /// The statistics are kept.
    pub(super) timed: bool,
}

/// A frame handed over whose presentation feedback is awaited.
pub(super) struct AwaitingFeedback {
    pub(super) seq: u64,
    pub(super) id: u64,
    pub(super) presented: Option<Instant>,
    pub(super) handed: Instant,
    /// The time its commit told the window system not to show it before
    /// (commit timing), where it did.
    pub(super) not_before: Option<Instant>,
}

impl AwaitingFeedback {
    /// When the feedback counts as not coming: `timeout` after the frame
    /// was handed over, or after the time its commit holds it until.
    pub(super) fn expires(&self, timeout: Duration) -> Instant {
        self.not_before.map_or(self.handed, |t| t.max(self.handed)) + timeout
    }
}

/// How a frame's render-complete fence went into its dma-buf.
pub(super) enum Handover {
    /// A vgem fence the GPU waiter signals.
    SoftFence(SoftFence),
    /// The driver's own sync_file, exported from the render semaphore.
    SyncFile,
}

/// The deadline of a Vulkan timeout in nanoseconds (`u64::MAX`: none).
pub(super) fn deadline_after(timeout_ns: u64) -> Option<Instant> {
    (timeout_ns != u64::MAX).then(|| Instant::now() + Duration::from_nanos(timeout_ns))
}

/// A presented frame on its way to the GPU waiter.
pub(super) struct InFlight {
    pub(super) index: usize,
    pub(super) fence: Arc<FrameFence>,
    /// The kernel fence the window system already waits on, signalled by
    /// the waiter when the GPU is done ([`PresentSync::ImplicitSoftFence`]).
    pub(super) soft_fence: Option<SoftFence>,
    /// The frame went to the presenter at present time (its fence travels
    /// with the buffer); the waiter only tracks completion.
    pub(super) sent_early: bool,
    /// Explicit sync without a sync_file: the acquire point the waiter
    /// signals when the GPU is done.
    pub(super) acquire_point: Option<(Arc<ExplicitSync>, u64)>,
}

/// The image an acquire may hand out before its release: one the window
/// system holds but has replaced with a newer frame (its release is on the
/// way, or follows once a queued frame is shown), not already handed out;
/// the one shown longest ago.
pub(super) fn replaced_image(st: &State) -> Option<usize> {
    let queued = st.queued_replaces && st.images.contains(&ImageState::Queued);
    (0..st.images.len())
        .filter(|&i| {
            st.images[i] == ImageState::Shown
                && st.ws_holds[i]
                && st.owed[i].is_none()
                && (st.shown_seq[i] < st.last_shown || queued)
        })
        .min_by_key(|&i| st.shown_seq[i])
}
