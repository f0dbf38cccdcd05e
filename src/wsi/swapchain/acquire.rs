//! `vkAcquireNextImageKHR` and `vkReleaseSwapchainImagesEXT`: a free
//! image, or one the window system has replaced and will release (its
//! release then reaches the application's semaphore and fence on the GPU:
//! the released dma-buf's fences imported, or a signal on the release
//! timeline), and the signal of the application's semaphore and fence
//! without a wait on the application's thread.

use super::state::{deadline_after, replaced_image, ImageState};
use super::Swapchain;
use crate::device::cpu_time;
use crate::kernel::SyncAccess;
use crate::sync::{self, fault, AcquireSync};
use ash::vk;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Swapchain {
    /// `vkAcquireNextImageKHR`. Waits at most `timeout_ns` for a free image
    /// (the only wait the API allows on this call), then signals the
    /// application's semaphore and/or fence without waiting.
    pub fn acquire(
        &self,
        timeout_ns: u64,
        semaphore: vk::Semaphore,
        fence: vk::Fence,
        out: &mut u32,
    ) -> vk::Result {
        let deadline = deadline_after(timeout_ns);
        let mut waited = false;
        // Only a fence may wait, on the GPU, for a release still to come:
        // a binary semaphore's wait may depend only on signals already
        // submitted (vkQueueSubmit, `pWaitSemaphores`), and the release
        // timeline's signal comes from the host later. An acquire with a
        // semaphore waits here for the release instead, as in Mesa's WSI.
        let can_wait_on_gpu = self.timelines.is_some()
            && semaphore == vk::Semaphore::null()
            && fence != vk::Fence::null();
        let (index, status, early) = {
            let mut st = self.shared.lock();
            loop {
                if st.retired {
                    return vk::Result::ERROR_OUT_OF_DATE_KHR;
                }
                if st.status.as_raw() < 0 {
                    return st.status;
                }
                if let Some(i) = st.free.pop_front() {
                    st.images[i] = ImageState::Acquired;
                    log::debug!("image {i}: acquired");
                    break (i, st.status, None);
                }
                if let Some(i) = can_wait_on_gpu.then(|| replaced_image(&st)).flatten() {
                    st.images[i] = ImageState::Acquired;
                    st.owed[i] = Some(Instant::now());
                    log::debug!("image {i}: acquired early");
                    break (i, st.status, Some(st.release_value[i] + 1));
                }
                if !waited && timeout_ns != 0 {
                    waited = true;
                    self.shared.stats().acquire_waits += 1;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return if timeout_ns == 0 {
                        vk::Result::NOT_READY
                    } else {
                        vk::Result::TIMEOUT
                    };
                }
                // Only a waiter that may take an image early wants to
                // hear of a frame shown (`begin_show`).
                let early_ok = u32::from(can_wait_on_gpu);
                st.early_waiters += early_ok;
                st = cpu_time::blocking(|| self.shared.wait(st, deadline));
                st.early_waiters -= early_ok;
            }
        };
        let signalled = match (early, &self.timelines) {
            (Some(value), Some(t)) => {
                // The presenter keeps the time limit on the release; it
                // looks at the owed releases at least that often.
                self.shared.stats().early_acquires += 1;
                self.dev
                    .queues
                    .first()
                    .ok_or(vk::Result::ERROR_DEVICE_LOST)
                    .and_then(|q| t.submit_wait(q, index, value, fence))
            }
            _ => self.signal_acquire(index, semaphore, fence),
        };
        if let Err(e) = signalled {
            let mut st = self.shared.lock();
            if early.is_some() && st.owed[index].take().is_some() {
                // Not released yet: back to the window system's side.
                st.images[index] = ImageState::Shown;
            } else {
                // Released meanwhile (its timeline value is signalled and
                // no one waits for it) or acquired normally.
                st.images[index] = ImageState::Free;
                st.free.push_front(index);
            }
            return e;
        }
        *out = index as u32;
        status
    }

    /// `vkReleaseSwapchainImagesEXT`: acquired images given back without
    /// being presented. One still held by the window system (handed out
    /// early) goes back to its side, its release still owed; the others
    /// are free again.
    pub fn release_images(&self, indices: &[u32]) -> vk::Result {
        let mut st = self.shared.lock();
        if let Some(bad) = indices
            .iter()
            .find(|&&i| st.images.get(i as usize) != Some(&ImageState::Acquired))
        {
            log::error!("vkReleaseSwapchainImagesEXT: image {bad} is not acquired");
            return vk::Result::ERROR_UNKNOWN;
        }
        for &i in indices {
            let i = i as usize;
            log::debug!("image {i}: given back");
            st.unuse(i, true);
            self.shared.acquire_cpu_ns[i].0.store(0, Ordering::Relaxed);
            self.shared.acquire_cpu_ns[i].1.store(0, Ordering::Relaxed);
        }
        self.shared.cond.notify_all();
        vk::Result::SUCCESS
    }

    /// Signals the application's acquire `semaphore` and `fence` (either
    /// may be null) for image `index`, which the window system released.
    fn signal_acquire(
        &self,
        index: usize,
        semaphore: vk::Semaphore,
        fence: vk::Fence,
    ) -> Result<(), vk::Result> {
        if semaphore == vk::Semaphore::null() && fence == vk::Fence::null() {
            return Ok(());
        }
        match self.plan.acquire {
            AcquireSync::ImportSyncFile => self.import_release_fences(index, semaphore, fence),
            AcquireSync::QueueSignal => self.queue_signal(semaphore, fence),
        }
    }

    /// Signals `semaphore` and `fence` (either may be null) by an empty
    /// submission on the first queue.
    fn queue_signal(&self, semaphore: vk::Semaphore, fence: vk::Fence) -> Result<(), vk::Result> {
        if semaphore == vk::Semaphore::null() && fence == vk::Fence::null() {
            return Ok(());
        }
        let q = self
            .dev
            .queues
            .first()
            .ok_or(vk::Result::ERROR_DEVICE_LOST)?;
        let sems = [semaphore];
        let submit =
            vk::SubmitInfo::default().signal_semaphores(if semaphore == vk::Semaphore::null() {
                &[]
            } else {
                &sems
            });
        let _held = q.lock.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the queue is held under the shared lock; the semaphore and
        // fence are the application's, unsignalled as the API requires.
        cpu_time::driver(|| unsafe { self.dev.fns.queue_submit(q.queue, &[submit], fence) })
    }

    /// The GPU, not the CPU, waits for the window system: the fences still
    /// on the released dma-buf (a compositor's reads) become the payload of
    /// the application's semaphore and fence. Where that fails (the kernel
    /// or the driver refuses), the swapchain steps down for good
    /// ([`SyncFallback`]): the reads are waited for here, bounded, and what
    /// was not imported is signalled by a submission.
    fn import_release_fences(
        &self,
        index: usize,
        semaphore: vk::Semaphore,
        fence: vk::Fence,
    ) -> Result<(), vk::Result> {
        let buf = self.images[index].backing.dma_buf();
        // Explicit sync: the release point of the image's last commit (it
        // has a fence: that is when the image was released); otherwise the
        // dma-buf's fences.
        let export = || -> Result<crate::kernel::SyncFile, String> {
            match (&self.explicit, buf) {
                (Some(ex), _) => ex.export_release(index),
                (None, Some(buf)) => {
                    fault::with_dma_buf(buf, |b| b.export_sync_file(SyncAccess::Write))
                }
                (None, None) => return Err(format!("image {index} has no dma-buf")),
            }
            .map_err(|e| format!("exporting the release fences of image {index}: {e}"))
        };
        let mut left = (semaphore, fence);
        if self.fallback.acquire().is_none() {
            let imported = (|| -> Result<(), String> {
                if semaphore != vk::Semaphore::null() {
                    let sf = export()?;
                    cpu_time::driver(|| sync::vk::import_into_semaphore(&self.dev, semaphore, sf))
                        .map_err(|e| format!("vkImportSemaphoreFdKHR: {e:?}"))?;
                    left.0 = vk::Semaphore::null();
                }
                if fence != vk::Fence::null() {
                    let sf = export()?;
                    cpu_time::driver(|| sync::vk::import_into_fence(&self.dev, fence, sf))
                        .map_err(|e| format!("vkImportFenceFdKHR: {e:?}"))?;
                    left.1 = vk::Fence::null();
                }
                Ok(())
            })();
            match imported {
                Ok(()) => return Ok(()),
                Err(why) => self.fallback.acquire_failed(why),
            }
        }
        let limit = Duration::from_millis(crate::config::get().release_timeout_ms);
        let idle = cpu_time::blocking(|| match (&self.explicit, buf) {
            (Some(ex), _) => ex.wait_released(index, limit),
            (None, Some(buf)) => buf.poll_ready(SyncAccess::Write, limit),
            (None, None) => Ok(true),
        });
        match idle {
            Ok(true) => {}
            Ok(false) => log::warn!(
                "image {index}: the window system still reads it after {} ms; handing it out",
                limit.as_millis()
            ),
            Err(e) => log::warn!("image {index}: cannot wait for the window system's reads ({e})"),
        }
        self.queue_signal(left.0, left.1)
    }
}
