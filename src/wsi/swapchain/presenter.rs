//! The presenter thread: owns the window-system connection, shows frames
//! as the present mode says (FIFO one per frame event, MAILBOX the newest,
//! IMMEDIATE at once), and turns the window system's events (buffer
//! released, frame shown, window gone) into image and swapchain state.
//! At destruction it hands the frames still queued over in order.

use super::state::{AwaitingFeedback, InFlight, Shared};
use super::{DESTROY_FENCE_TIMEOUT, FENCE_POLL};
use crate::kernel::{DmaBuf, SyncAccess};
use crate::sync::explicit::ExplicitSync;
use crate::sync::release_timeline::ReleaseTimelines;
use crate::wsi::frame_limit::{paced_allowance, Slots};
use crate::wsi::platform::{Backend, BackendEvent};
use ash::vk;
use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many frames whose feedback came too late to be awaited the
/// presenter remembers, for the statistics.
const LATE_FEEDBACK_KEPT: usize = 16;

/// How often a released dma-buf whose fences are still pending is looked at
/// again.
const IDLE_POLL: Duration = Duration::from_millis(1);
/// How long a swapchain going away (destroyed, retired) keeps the layer's
/// own frame limit for the frames it still has: they are handed over at
/// their slots, and those whose slot is later are dropped. Within
/// [`RETIRE_FLUSH_TIMEOUT`](super::RETIRE_FLUSH_TIMEOUT), which a
/// retirement waits for.
const LIMITED_HAND_OVER: Duration = Duration::from_secs(1);

/// Which released dma-bufs the presenter checks for pending fences (a
/// compositor's GPU may still read them) before their image is reused.
pub(super) struct IdleCheck {
    /// Every image's (acquire signals with an empty submission); otherwise
    /// only those of images handed out early.
    pub(super) all: bool,
    /// Explicit sync: the release points are checked instead of dma-bufs.
    pub(super) explicit: Option<Arc<ExplicitSync>>,
    /// Per image, its dma-buf (empty: no dma-bufs, nothing to check).
    pub(super) bufs: Vec<Option<DmaBuf>>,
}

/// The presenter thread: shows frames, and turns the window system's
/// events into image and swapchain state.
pub(super) struct Presenter<'a> {
    pub(super) shared: &'a Shared,
    pub(super) timelines: Option<&'a ReleaseTimelines>,
    pub(super) idle_check: IdleCheck,
    /// For the deferred frames.
    pub(super) to_waiter: Sender<InFlight>,
}

impl Presenter<'_> {
    /// Whether image `i`'s released dma-buf must be idle before the image is
    /// reused, and is not yet.
    fn still_read(&self, i: usize) -> bool {
        if let Some(ex) = &self.idle_check.explicit {
            if !self.idle_check.all && self.shared.lock().owed[i].is_none() {
                return false;
            }
            return !ex.released(i);
        }
        let Some(buf) = self.idle_check.bufs.get(i).and_then(Option::as_ref) else {
            return false;
        };
        if !self.idle_check.all && self.shared.lock().owed[i].is_none() {
            return false;
        }
        !buf.poll_ready(SyncAccess::Write, Duration::ZERO)
            .unwrap_or(true)
    }

    /// Takes the frames presented while this thread waited for a frame
    /// event (`State::deferred`) and gives them, in order, to the GPU
    /// waiter (counted in `with_waiter` under the lock, so a later present
    /// follows them). This thread never asks for a fence's state itself: it
    /// signals the release timelines the frames' rendering may wait on, and
    /// a layer below may hold a fence query until those are known (the
    /// validation layer does). `looking`: the presenter still waits for a
    /// frame event and will look again.
    fn take_deferred(&self, looking: bool) {
        let mut st = self.shared.lock();
        st.presenter_will_look = looking;
        if st.deferred.is_empty() {
            return;
        }
        let frames: Vec<InFlight> = st
            .deferred
            .drain(..)
            .map(|(index, fence)| InFlight {
                index,
                fence,
                soft_fence: None,
                sent_early: false,
                acquire_point: None,
            })
            .collect();
        self.shared
            .with_waiter
            .fetch_add(frames.len(), Ordering::AcqRel);
        drop(st);
        self.shared.stats().deferred += frames.len() as u64;
        for f in frames {
            let _ = self.to_waiter.send(f);
        }
    }

    /// The swapchain is being destroyed or was retired: the frames
    /// presented and not yet handed over go to the window system now, in
    /// order, without waiting for a frame event (it shows the newest), so
    /// that a frame `vkQueuePresentKHR` took is not lost because the
    /// application destroyed the swapchain right after presenting it
    /// (vkcube's last frame, under load). Frames still with the GPU waiter
    /// (deferred ones among them) are waited for, all together at most
    /// [`DESTROY_FENCE_TIMEOUT`] (the waiter gives up on them after as
    /// long). A frame whose image the window system still holds is dropped;
    /// `newest_only` (MAILBOX, FIFO_LATEST_READY): the older frames are
    /// dropped as skipped, as those modes do at any time. Where the layer
    /// keeps `SYNCBRIDGE_FPS_LIMIT` (`limit`: the interval and the next
    /// slot), each frame still waits for its slot, for at most
    /// [`LIMITED_HAND_OVER`] together; the frames whose slot lies past
    /// that are dropped.
    fn hand_over_at_destroy(
        &self,
        backend: &mut dyn Backend,
        queue: &mut VecDeque<usize>,
        ready: &Receiver<usize>,
        newest_only: bool,
        limit: Option<(Duration, Option<Instant>)>,
    ) {
        let shared = self.shared;
        self.take_deferred(false);
        let end = Instant::now() + DESTROY_FENCE_TIMEOUT;
        while shared.with_waiter.load(Ordering::Acquire) > 0 {
            let now = Instant::now();
            if now >= end {
                break;
            }
            match ready.recv_timeout((end - now).min(FENCE_POLL)) {
                Ok(i) => queue.push_back(i),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        queue.extend(ready.try_iter());
        if newest_only {
            self.skip_all_but_newest(queue);
        }
        let mut handed = 0;
        let mut dropped = 0;
        let last_slot = Instant::now() + LIMITED_HAND_OVER;
        let mut slots = limit.map(|(interval, next)| Slots::from_next(interval, next));
        for i in queue.drain(..) {
            if let Some(slots) = &mut slots {
                let now = Instant::now();
                if slots.peek(now) > last_slot {
                    shared.drop_frame(i);
                    dropped += 1;
                    continue;
                }
                std::thread::sleep(slots.stamp(now).saturating_duration_since(now));
            }
            let Some(h) = shared.begin_show(i) else {
                shared.drop_frame(i);
                continue;
            };
            match backend.present(i, false) {
                Ok(()) => {
                    handed += 1;
                    shared.stats().on_present(Instant::now());
                    shared.mark_displayed(h.id);
                }
                Err(_) => self.released(i),
            }
        }
        if handed > 0 {
            log::debug!("{handed} frame(s) handed over as the swapchain is destroyed");
        }
        if dropped > 0 {
            log::debug!(
                "{dropped} frame(s) dropped as the swapchain is destroyed: their slots under \
                 SYNCBRIDGE_FPS_LIMIT lie more than {} ms ahead",
                LIMITED_HAND_OVER.as_millis()
            );
        }
    }

    /// Drops every queued frame but the newest, as skipped (MAILBOX,
    /// FIFO_LATEST_READY): their images are free again at once.
    fn skip_all_but_newest(&self, queue: &mut VecDeque<usize>) {
        while queue.len() > 1 {
            let old = queue.pop_front().expect("non-empty");
            self.shared.stats().skipped += 1;
            self.shared.drop_frame(old);
        }
    }

    /// The window system is done with image `i`.
    fn released(&self, i: usize) {
        if let (Some(v), Some(t)) = (self.shared.window_released(i), self.timelines) {
            t.signal(i, v);
        }
    }

    pub(super) fn run(
        &self,
        mut backend: Box<dyn Backend>,
        ready: &Receiver<usize>,
        mode: vk::PresentModeKHR,
    ) {
        let shared = self.shared;
        let mut queue: VecDeque<usize> = VecDeque::new();
        // Released images whose dma-buf still has fences (readers) pending.
        let mut not_idle: Vec<usize> = Vec::new();
        let mut frame_pending: Option<Instant> = None;
        let mut shown_at: Vec<Option<Instant>> = Vec::new();
        // Frames handed over whose presentation feedback has not come, in
        // order; `vkWaitForPresentKHR` waits for it.
        let mut awaiting: VecDeque<AwaitingFeedback> = VecDeque::new();
        // Frames no longer awaited (their feedback was late), whose
        // feedback the statistics still take when it comes: a compositor
        // that waits on a slow frame's fence shows it late.
        let mut late: VecDeque<AwaitingFeedback> = VecDeque::new();
        let mut events = Vec::new();
        let timeout = backend.frame_event_timeout();
        let release_timeout = Duration::from_millis(crate::config::get().release_timeout_ms);
        // One line per swapchain for releases given up on.
        let mut warned_release_timeout = false;
        // The present id of the frame waiting for its frame event.
        let mut pending_id = 0u64;
        // SYNCBRIDGE_FPS_LIMIT: the earliest time the next frame is shown.
        let fps_limit = crate::config::get()
            .fps_limit
            .map(|n| Duration::from_nanos(1_000_000_000 / u64::from(n)));
        // FIFO the window system paces (`wp_fifo_v1`): handed over like
        // IMMEDIATE, at the backend's pace at most, shown one per refresh.
        let fifo_paced = mode == vk::PresentModeKHR::FIFO && backend.fifo_pacing().is_some();
        let mut next_slot: Option<Instant> = None;
        // MAILBOX and FIFO_LATEST_READY show only the newest frame, also
        // when the queued frames are handed over at the end (destruction,
        // retirement). Where the layer keeps `SYNCBRIDGE_FPS_LIMIT`, those
        // still wait for their slots then. (`wp_fifo_v1` frames go at
        // once: each commit carries its barrier, and the compositor
        // applies them one a refresh.)
        let newest_only =
            matches!(mode, vk::PresentModeKHR::MAILBOX) || mode == crate::wsi::FIFO_LATEST_READY;
        // The frame limit kept by the window system where it can
        // (`wp_commit_timing_v1`): each frame is handed over when ready,
        // stamped with its slot, and only one more than `COMMITS_AHEAD`
        // slots ahead waits here. Not where only the newest frame is
        // shown: that choice is made at each slot, here.
        let ws_limit = fps_limit.filter(|&i| !newest_only && backend.pace_commits(i));
        let fps_limit = fps_limit.filter(|_| ws_limit.is_none());
        // IMMEDIATE and MAILBOX hand each frame over as soon as it is
        // ready (MAILBOX only the newest of those ready), with no frame
        // event in between: the window system keeps the newest one for its
        // next repaint (a compositor replaces a surface's pending buffer;
        // X11 Present replaces a pixmap queued for the same vblank), and
        // gives back the ones it replaced. Waiting for a frame event
        // instead would show, at each repaint, the first frame after the
        // previous one, up to a refresh old.
        let unpaced = fifo_paced
            || matches!(
                mode,
                vk::PresentModeKHR::IMMEDIATE | vk::PresentModeKHR::MAILBOX
            );
        // FIFO without a frame limiter: a frame presented while a frame
        // event is awaited cannot be shown before it. (Not
        // FIFO_LATEST_READY: a newer frame gives the older one's image
        // back at once, which needs the presenter to see it at once.)
        let defer = !unpaced && fps_limit.is_none() && mode != crate::wsi::FIFO_LATEST_READY;
        loop {
            // The backend learns the refresh period as frames are shown.
            let limit = match (
                fps_limit,
                fifo_paced.then(|| backend.fifo_pacing()).flatten(),
            ) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            queue.extend(ready.try_iter());
            // Where the layer keeps the frame limit, the frames left at
            // the end still wait for their slots.
            let at_end = fps_limit.map(|i| (i, next_slot));
            if shared.shutdown.load(Ordering::SeqCst) {
                if !shared.lock().retired {
                    self.hand_over_at_destroy(
                        &mut *backend,
                        &mut queue,
                        ready,
                        newest_only,
                        at_end,
                    );
                }
                return;
            }
            let now = Instant::now();
            if frame_pending.is_some_and(|t| now - t >= timeout) {
                // No frame event (a hidden window): carry on, and do not keep
                // present waiters waiting for what may never be shown.
                frame_pending = None;
                shared.stats().frame_event_timeouts += 1;
                shared.mark_displayed(pending_id);
            }
            self.take_deferred(frame_pending.is_some());
            while awaiting.front().is_some_and(|a| now >= a.expires(timeout)) {
                // The compositor said nothing of this frame (a hidden
                // surface may get no feedback until it is shown again).
                let a = awaiting.pop_front().expect("non-empty");
                shared.stats().feedback_timeouts += 1;
                shared.mark_displayed(a.id);
                if late.len() == LATE_FEEDBACK_KEPT {
                    late.pop_front();
                }
                late.push_back(a);
            }
            let (retired, retire_flushed, overdue, oldest_due) = {
                let st = shared.lock();
                // Since when each held image's release is due: it was
                // replaced on screen, or handed out early.
                let due =
                    |i: usize| match (st.replaced_at[i].filter(|_| st.ws_holds[i]), st.owed[i]) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                let overdue: Vec<usize> = (0..st.owed.len())
                    .filter(|&i| due(i).is_some_and(|t| now - t >= release_timeout))
                    .collect();
                (
                    st.retired,
                    st.retire_flushed,
                    overdue,
                    (0..st.owed.len()).filter_map(due).min(),
                )
            };
            for i in overdue {
                // A window system that keeps a replaced buffer this long is
                // stuck: the application must not wait for it forever, on
                // the GPU (an image handed out early) or in acquire.
                if !warned_release_timeout {
                    warned_release_timeout = true;
                    log::warn!(
                        "the window system has not released a replaced buffer in {} ms; \
                         letting the application reuse it (SYNCBRIDGE_RELEASE_TIMEOUT_MS)",
                        release_timeout.as_millis()
                    );
                }
                shared.stats().release_timeouts += 1;
                not_idle.retain(|&j| j != i);
                self.released(i);
            }
            if retired {
                if !retire_flushed {
                    // Replaced by a new swapchain (`oldSwapchain`): the
                    // frames presented before go to the window system now,
                    // before the new swapchain's first (its creation waits
                    // for this), so that a window resize loses none of them.
                    self.hand_over_at_destroy(
                        &mut *backend,
                        &mut queue,
                        ready,
                        newest_only,
                        at_end,
                    );
                    shared.retire_flushed();
                }
                // Frames presented to it after that are not shown (their
                // present said `VK_ERROR_OUT_OF_DATE_KHR`).
                queue.drain(..).for_each(|i| shared.drop_frame(i));
            }
            if mode == vk::PresentModeKHR::MAILBOX || mode == crate::wsi::FIFO_LATEST_READY {
                // Only the newest frame is shown (FIFO_LATEST_READY: at
                // the next frame event, MAILBOX: at once), so older ones give their
                // image back at once, not at the next refresh: the
                // application renders unthrottled. Unless the window
                // system still holds the newest frame's image (handed out
                // early on the strength of the frames before it): only
                // showing one of those brings that release, so they go
                // first.
                let newest_waits = queue.back().is_some_and(|&i| shared.lock().ws_holds[i]);
                if !newest_waits {
                    self.skip_all_but_newest(&mut queue);
                }
            }
            let mut to_show = Vec::new();
            // How many frames the window system's limit lets go now, and
            // when the next may.
            let ws_allowed = ws_limit.map(|i| paced_allowance(backend.next_commit_time(), i, now));
            let held_by_limit =
                next_slot.is_some_and(|t| now < t) || ws_allowed.is_some_and(|(n, _)| n == 0);
            if held_by_limit {
                // Not yet: the frames wait in order, and the application
                // waits for images in acquire.
            } else if unpaced && limit.is_none() {
                let n = ws_allowed.map_or(queue.len(), |(n, _)| n.min(queue.len()));
                to_show.extend(queue.drain(..n));
            } else if frame_pending.is_none() || unpaced {
                to_show.extend(queue.pop_front());
            }
            // Frames that wait for the window system to release their
            // image's previous frame, in order.
            let mut held_back = Vec::new();
            for i in to_show {
                let want_frame = !unpaced;
                let handed = match held_back.is_empty().then(|| shared.begin_show(i)).flatten() {
                    Some(h) => h,
                    None => {
                        held_back.push(i);
                        continue;
                    }
                };
                // Presentation feedback where someone waits for it (a
                // present id) or times it (the statistics).
                let feedback =
                    (handed.id != 0 || handed.timed) && backend.request_feedback(handed.seq);
                // Without feedback, a frame counts as on screen at its
                // frame event, or (IMMEDIATE) once handed over.
                let id = if feedback { 0 } else { handed.id };
                match backend.present(i, want_frame) {
                    Ok(()) => {
                        if let Some(interval) = limit {
                            // On a steady grid, unless the application fell
                            // behind it.
                            let base = next_slot.filter(|&t| now < t + interval).unwrap_or(now);
                            next_slot = Some(base + interval);
                        }
                        if shown_at.len() <= i {
                            shown_at.resize(i + 1, None);
                        }
                        shown_at[i] = Some(now);
                        shared.stats().on_present(now);
                        if feedback {
                            awaiting.push_back(AwaitingFeedback {
                                seq: handed.seq,
                                id: handed.id,
                                presented: handed.presented,
                                handed: now,
                                not_before: ws_limit.and(backend.last_commit_time()),
                            });
                        }
                        if want_frame {
                            frame_pending = Some(now);
                            pending_id = id;
                            // Frames presented from now on wait for this
                            // thread to look (no wake-up of the waiter).
                            shared.lock().presenter_will_look = defer;
                        } else {
                            shared.mark_displayed(id);
                        }
                    }
                    Err(e) => {
                        shared.set_status(e);
                        self.released(i);
                    }
                }
            }
            for i in held_back.into_iter().rev() {
                queue.push_front(i);
            }
            not_idle.retain(|&i| {
                let read = self.still_read(i);
                if !read {
                    self.released(i);
                }
                read
            });
            events.clear();
            let mut deadline = frame_pending.map(|t| t + timeout);
            let mut sooner = |d: Instant| deadline = Some(deadline.map_or(d, |e| e.min(d)));
            if !not_idle.is_empty() {
                sooner(Instant::now() + IDLE_POLL);
            }
            if let Some(t) = next_slot.filter(|_| !queue.is_empty()) {
                sooner(t);
            }
            if let Some((_, next)) = ws_allowed.filter(|_| !queue.is_empty()) {
                sooner(next);
            }
            if let Some(a) = awaiting.front() {
                sooner(a.expires(timeout));
            }
            if let Some(t) = oldest_due {
                sooner(t + release_timeout);
            } else if self.timelines.is_some() {
                // An early acquire may make a release owed while this
                // thread sleeps; it is not woken for that.
                sooner(Instant::now() + release_timeout);
            }
            let res = backend.dispatch(shared.wake.as_fd(), deadline, &mut events);
            shared.drain_wake();
            for ev in events.drain(..) {
                match ev {
                    BackendEvent::Released(i) => {
                        if let Some(t) = shown_at.get_mut(i).and_then(Option::take) {
                            shared.stats().on_release(t.elapsed());
                        }
                        if self.still_read(i) {
                            not_idle.push(i);
                        } else {
                            self.released(i);
                        }
                    }
                    BackendEvent::FrameDone => {
                        frame_pending = None;
                        shared.mark_displayed(pending_id);
                    }
                    BackendEvent::Shown { seq, at } => {
                        // Not always in order: a frame taken for a repaint
                        // is reported shown after later ones were
                        // discarded. A wait for an earlier id ends with a
                        // later frame's (present ids only grow).
                        if let Some(k) = awaiting.iter().position(|a| a.seq == seq) {
                            let a = awaiting.remove(k).expect("found");
                            shared.stats().on_feedback(a.presented, at, a.not_before);
                            shared.mark_displayed(a.id);
                        } else if let Some(k) = late.iter().position(|a| a.seq == seq) {
                            let a = late.remove(k).expect("found");
                            shared.stats().on_feedback(a.presented, at, a.not_before);
                        }
                    }
                    BackendEvent::Suboptimal => shared.set_status(vk::Result::SUBOPTIMAL_KHR),
                    BackendEvent::OutOfDate => shared.set_status(vk::Result::ERROR_OUT_OF_DATE_KHR),
                    BackendEvent::Lost => shared.set_status(vk::Result::ERROR_SURFACE_LOST_KHR),
                }
            }
            if let Err(e) = res {
                shared.set_status(e);
                // The connection is gone: nothing more will be shown or
                // released. Let the GPU go on (only images handed out
                // early, which needs timelines, are owed), and wait for
                // destruction without spinning.
                if let Some(t) = self.timelines {
                    t.signal_all(shared.give_up_owed());
                }
                shared.retire_flushed();
                while !shared.shutdown.load(Ordering::SeqCst) {
                    let _ = crate::kernel::sync_file::poll_fd(
                        shared.wake.as_fd(),
                        rustix::event::PollFlags::IN,
                        Duration::from_secs(1),
                    );
                    shared.drain_wake();
                    let _ = ready.try_iter().count();
                }
                return;
            }
        }
    }
}
