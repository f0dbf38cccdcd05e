//! `vkQueuePresentKHR`: the frame's render-complete fence (a sync_file
//! exported from the render semaphore into the image's dma-buf, a soft
//! fence the GPU waiter signals, or an explicit-sync acquire point) and the
//! frame's way to the presenter, without a blocking call on the
//! application's thread.

use super::gpu_waiter::signal_acquire_point;
use super::state::{Handover, ImageState, InFlight};
use super::Swapchain;
use crate::device::cpu_time;
use crate::kernel::{SoftFence, SyncAccess};
use crate::sync::explicit::{AcquirePoint, ExplicitSync};
use crate::sync::frame_fence::FrameFence;
use crate::sync::{self, fault, PresentSync};
use ash::vk;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Instant;

impl Swapchain {
    /// The present sync this swapchain's frames take now: the plan's, or
    /// worker wait once the plan's failed ([`SyncFallback`]).
    pub(super) fn present_sync(&self) -> PresentSync {
        match self.plan.present {
            PresentSync::ImplicitSyncFile | PresentSync::ImplicitSoftFence
                if self.fallback.present().is_some() =>
            {
                PresentSync::WorkerWait
            }
            planned => planned,
        }
    }

    /// The render-complete fence of a frame as a kernel fence on its
    /// dma-buf, for the implicit paths. `None` means the frame goes the
    /// worker-wait way (no such path, or it failed: then every later frame
    /// goes that way too).
    fn attach_render_fence(&self, index: usize) -> Option<Handover> {
        let buf = self.images[index].backing.dma_buf()?;
        let import = |sf: &crate::kernel::SyncFile| {
            fault::with_dma_buf(buf, |b| b.import_sync_file(SyncAccess::Write, sf))
        };
        let attached = match self.present_sync() {
            PresentSync::ImplicitSoftFence => (|| -> crate::kernel::Result<Handover> {
                let soft = SoftFence::new()?;
                import(&soft.sync_file()?)?;
                Ok(Handover::SoftFence(soft))
            })()
            .map_err(|e| format!("a soft fence into the dma-buf: {e}")),
            PresentSync::ImplicitSyncFile => {
                let sem = *self.render_sems.get(index)?;
                cpu_time::driver(|| sync::vk::export_semaphore(&self.dev, sem))
                    .map_err(|e| format!("vkGetSemaphoreFdKHR: {e:?}"))
                    .and_then(|sf| {
                        fault::sync_file(sf)
                            .and_then(|sf| import(&sf))
                            .map_err(|e| format!("the render sync_file into the dma-buf: {e}"))
                    })
                    .map(|()| Handover::SyncFile)
            }
            PresentSync::ExplicitSyncobj | PresentSync::WorkerWait => return None,
        };
        match attached {
            Ok(h) => Some(h),
            Err(why) => {
                self.fallback.present_failed(why);
                None
            }
        }
    }

    /// Whether the frame whose `fence` was just submitted is rendered
    /// already, so it needs no waiter at all. A non-blocking status query; never for the
    /// sync_file path, whose render semaphore must be exported (consumed)
    /// every frame, nor while a test delays fence signals.
    fn rendering_already_done(&self, fence: vk::Fence) -> bool {
        if self.present_sync() == PresentSync::ImplicitSyncFile
            || crate::config::get().debug_fence_delay_ms > 0
        {
            return false;
        }
        // Not measured as a driver call: a status read is cheaper than the
        // two clock reads that would take it out, so the layer's figure
        // keeps it (an overcount, never an undercount).
        // SAFETY: the layer's own fence, just submitted.
        matches!(unsafe { self.dev.fns.get_fence_status(fence) }, Ok(true))
    }

    /// `vkQueuePresentKHR` for one swapchain. `wait` holds the application's
    /// semaphores for the first swapchain of the call and is empty after.
    pub fn present(
        &self,
        queue: vk::Queue,
        index: u32,
        wait: &[vk::Semaphore],
        present_id: u64,
    ) -> vk::Result {
        let i = index as usize;
        // The status this present reports: read under the lock the present
        // takes anyway, so the hot path takes it once.
        let status = {
            let mut st = self.shared.lock();
            if st.images.get(i) != Some(&ImageState::Acquired) {
                log::error!("vkQueuePresentKHR: image {index} is not acquired");
                return vk::Result::ERROR_UNKNOWN;
            }
            st.images[i] = ImageState::Queued;
            log::debug!("image {i}: presented");
            st.present_ids[i] = present_id;
            if st.timed {
                st.present_at[i] = Some(Instant::now());
            }
            if st.retired {
                vk::Result::ERROR_OUT_OF_DATE_KHR
            } else {
                st.status
            }
        };
        // Not measured as a driver call: two more clock reads would cost
        // more than the fence reset they would take out.
        let taken = self.fences.lock().unwrap_or_else(|e| e.into_inner()).take();
        let fence = match taken {
            Ok(f) => f,
            Err(e) => {
                self.shared.lock().images[i] = ImageState::Acquired;
                return e;
            }
        };
        let copy = match self.copy_command(queue, i) {
            Ok(c) => c,
            Err(e) => {
                self.shared.lock().images[i] = ImageState::Acquired;
                return e;
            }
        };
        // One stage mask per wait, on the stack for the usual few (no
        // allocation on the hot path).
        const STAGES: [vk::PipelineStageFlags; 8] = [vk::PipelineStageFlags::ALL_COMMANDS; 8];
        let many;
        let stages: &[vk::PipelineStageFlags] = match STAGES.get(..wait.len()) {
            Some(s) => s,
            None => {
                many = vec![vk::PipelineStageFlags::ALL_COMMANDS; wait.len()];
                &many
            }
        };
        // The render semaphore (the sync_file path, explicit sync's points
        // by sync_file) only until that path failed: after a failed export
        // it may still be signalled.
        let signal: Option<vk::Semaphore> = match self.fallback.present() {
            None => self.render_sems.get(i).copied(),
            Some(_) => None,
        };
        let submit = vk::SubmitInfo::default()
            .wait_semaphores(wait)
            .wait_dst_stage_mask(stages)
            .command_buffers(copy.as_slice())
            .signal_semaphores(signal.as_slice());
        let res = {
            let _held = self
                .dev
                .queue(queue)
                .map(|q| q.lock.lock().unwrap_or_else(|e| e.into_inner()));
            // SAFETY: the fence is the layer's, unsignalled and held by no
            // other thread (`FencePool::take`); the queue is externally
            // synchronized by the application and the shared lock.
            cpu_time::driver(|| unsafe { self.dev.fns.queue_submit(queue, &[submit], fence.fence) })
        };
        if let Err(e) = res {
            self.shared.lock().images[i] = ImageState::Acquired;
            return e;
        }
        fence.mark_submitted();
        if let Some(ex) = &self.explicit {
            return self.present_explicit(ex, i, fence, status);
        }
        if self.defers {
            let mut st = self.shared.lock();
            if st.presenter_will_look {
                // The presenter looks at it when its frame event comes,
                // before this frame could be shown anyway.
                st.deferred.push((i, fence));
                return status;
            }
        }
        // Earlier frames still with the waiter go first; this one follows
        // them through the waiter. (Read after the lock above: the
        // presenter counts the deferred frames it gives the waiter under
        // it.)
        let behind = self.shared.with_waiter.load(Ordering::Acquire) > 0;
        if !behind && self.rendering_already_done(fence.fence) {
            // Nothing to wait for (the GPU finished before the submission
            // returned: with lavapipe 22.3 about one frame in twenty of the
            // benchmark's): straight to the presenter, one thread hand-off
            // fewer.
            self.hand_to_presenter(i);
            return status;
        }
        let handover = self.attach_render_fence(i);
        let sent_early = handover.is_some() && !behind;
        let soft_fence = match handover {
            Some(Handover::SoftFence(f)) => Some(f),
            _ => None,
        };
        if sent_early {
            // The window system gets the buffer now; the kernel fence in it
            // keeps readers out until the GPU is done.
            self.hand_to_presenter(i);
            if soft_fence.is_none() {
                // The driver's own sync_file is in the buffer: nothing is
                // left for the GPU waiter but to see the frame's fence
                // signal, which the fence pool checks before it reuses the
                // fence. One thread wake-up a frame fewer.
                return status;
            }
        }
        if !sent_early {
            self.shared.with_waiter.fetch_add(1, Ordering::AcqRel);
        }
        let frame = InFlight {
            index: i,
            fence,
            soft_fence,
            sent_early,
            acquire_point: None,
        };
        let sent = cpu_time::handoff(|| self.to_waiter.as_ref().map(|tx| tx.send(frame)));
        if !matches!(sent, Some(Ok(()))) {
            return vk::Result::ERROR_SURFACE_LOST_KHR;
        }
        status
    }

    /// Explicit sync: frame `i` goes to the presenter at once, its commit
    /// carrying a new acquire point of the image's timeline: the render
    /// semaphore's sync_file imported into it, or signalled by the GPU
    /// waiter when the frame's fence signals.
    fn present_explicit(
        &self,
        ex: &Arc<ExplicitSync>,
        i: usize,
        fence: Arc<FrameFence>,
        status: vk::Result,
    ) -> vk::Result {
        let point = ex.next_acquire(i);
        let mut by_worker =
            ex.acquire_by == AcquirePoint::Worker || self.fallback.present().is_some();
        if let (false, Some(&sem)) = (by_worker, self.render_sems.get(i)) {
            let imported = cpu_time::driver(|| sync::vk::export_semaphore(&self.dev, sem))
                .map_err(|e| format!("vkGetSemaphoreFdKHR: {e:?}"))
                .and_then(|sf| {
                    ex.import_acquire(i, point, &sf)
                        .map_err(|e| format!("the render sync_file into an acquire point: {e}"))
                });
            if let Err(why) = imported {
                // From now on the GPU waiter signals every acquire point.
                self.fallback.present_failed(why);
                by_worker = true;
            }
        }
        // Imported or not, the point is set before the compositor sees the
        // commit; it waits for it.
        self.hand_to_presenter(i);
        if !by_worker {
            // The driver's sync_file is in the point: nothing is left for
            // the GPU waiter but to see the frame's fence signal, which the
            // fence pool checks before it reuses the fence. One thread
            // wake-up a frame fewer, as on the implicit sync_file path.
            return status;
        }
        // A point the waiter signals goes through it even when the GPU is
        // already done: it signals each timeline's points in order (an
        // image's frame dropped in MAILBOX may still wait there while the
        // image is presented again).
        let acquire_point = Some((ex.clone(), point));
        let frame = InFlight {
            index: i,
            fence,
            soft_fence: None,
            sent_early: true,
            acquire_point,
        };
        match cpu_time::handoff(|| self.to_waiter.as_ref().map(|tx| tx.send(frame))) {
            Some(Ok(())) => status,
            Some(Err(mpsc::SendError(frame))) => {
                // The waiter is gone (a lost device): the commit must not
                // wait for a point no one would signal.
                signal_acquire_point(&frame);
                vk::Result::ERROR_SURFACE_LOST_KHR
            }
            None => vk::Result::ERROR_SURFACE_LOST_KHR,
        }
    }

    /// On the copy path, the command buffer that copies image `index` into
    /// its shared buffer, for the family of `queue` (none elsewhere).
    fn copy_command(
        &self,
        queue: vk::Queue,
        index: usize,
    ) -> Result<Option<vk::CommandBuffer>, vk::Result> {
        let Some(copies) = &self.copies else {
            return Ok(None);
        };
        let Some(q) = self.dev.queue(queue) else {
            log::error!(
                "vkQueuePresentKHR: a queue the layer did not see created cannot copy a swapchain image"
            );
            return Err(vk::Result::ERROR_UNKNOWN);
        };
        copies
            .get(&self.dev, &self.images, q.family, index)
            .map(Some)
    }

    /// Gives frame `index` to the presenter thread and wakes it.
    fn hand_to_presenter(&self, index: usize) {
        cpu_time::handoff(|| {
            let _ = self.to_presenter.send(index);
            self.shared.wake();
        });
    }
}
