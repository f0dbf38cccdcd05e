//! Releases the GPU waits for, so `vkAcquireNextImageKHR` need not block.
//!
//! A window system gives a buffer back some time after a newer frame
//! replaced it (Wayland `wl_buffer.release`, X11 `PresentIdleNotify`). An
//! application that renders faster than those messages travel would have
//! to wait for them on its own thread. Instead the layer may hand out such
//! an image at once, with the application's acquire fence signalled by a
//! submission that waits, on the GPU, for a timeline semaphore the
//! presenter thread signals when the release arrives. Only a fence: a
//! binary semaphore's wait may depend only on signals already submitted,
//! so an acquire that passes a semaphore waits for the release. This
//! is the model Android's `dequeueBuffer` release fences follow, and what
//! the sync_file import at acquire does for the window system's reads.
//! Outside FIFO the image on screen qualifies too once a newer frame is
//! queued: that frame (or a newer one) will replace it.
//!
//! Each image has a timeline whose value counts the releases the GPU was
//! told to wait for; one more timeline counts the layer's waiting
//! submissions, so a swapchain being destroyed knows when none is left
//! before the semaphores go.

use crate::device::{DeviceData, QueueInfo};
use ash::vk;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct ReleaseTimelines {
    dev: Arc<DeviceData>,
    /// Per image: reaches `n` when the `n`-th waited-for release arrived.
    per_image: Vec<vk::Semaphore>,
    /// Signalled to `n` by the `n`-th waiting submission.
    submitted: vk::Semaphore,
    submits: AtomicU64,
}

fn create_timeline(dev: &DeviceData) -> Result<vk::Semaphore, vk::Result> {
    let mut ty = vk::SemaphoreTypeCreateInfo::default()
        .semaphore_type(vk::SemaphoreType::TIMELINE)
        .initial_value(0);
    let ci = vk::SemaphoreCreateInfo::default().push_next(&mut ty);
    // SAFETY: a valid create info on a live device with timeline
    // semaphores enabled (`new` checked `DeviceCaps::early_acquire`).
    unsafe { dev.fns.create_semaphore(&ci, None) }
}

impl ReleaseTimelines {
    /// Timelines for `count` images; `None` where early acquire is off (no
    /// timeline semaphores, or `SYNCBRIDGE_EARLY_ACQUIRE`), or, with a log
    /// line, where making them failed.
    pub fn new(dev: &Arc<DeviceData>, count: usize) -> Option<Self> {
        if !dev.caps.early_acquire() || dev.ext.timeline.is_none() {
            return None;
        }
        let mut made = Vec::with_capacity(count + 1);
        for _ in 0..=count {
            match create_timeline(dev) {
                Ok(s) => made.push(s),
                Err(e) => {
                    log::warn!("cannot make a timeline semaphore ({e:?}): acquire waits for releases on the CPU");
                    for s in made {
                        // SAFETY: made just now, never used.
                        unsafe { dev.fns.destroy_semaphore(s, None) };
                    }
                    return None;
                }
            }
        }
        let submitted = made.pop().expect("count + 1 made");
        Some(Self {
            dev: dev.clone(),
            per_image: made,
            submitted,
            submits: AtomicU64::new(0),
        })
    }

    /// Submits, on `queue`, a batch that waits until image `index`'s
    /// timeline reaches `value` and then signals the application's `fence`.
    /// Only a fence: a binary semaphore may not wait on a signal not yet
    /// submitted, and the release timeline is signalled from the host.
    pub fn submit_wait(
        &self,
        queue: &QueueInfo,
        index: usize,
        value: u64,
        fence: vk::Fence,
    ) -> Result<(), vk::Result> {
        let wait = [self.per_image[index]];
        let wait_values = [value];
        let stages = [vk::PipelineStageFlags::ALL_COMMANDS];
        let _held = queue.lock.lock().unwrap_or_else(|e| e.into_inner());
        // Taken under the queue's lock: the values reach the queue in order.
        let n = self.submits.load(Ordering::Relaxed) + 1;
        let signal = [self.submitted];
        let signal_values = [n];
        let mut values = vk::TimelineSemaphoreSubmitInfo::default()
            .wait_semaphore_values(&wait_values)
            .signal_semaphore_values(&signal_values);
        let submit = vk::SubmitInfo::default()
            .wait_semaphores(&wait)
            .wait_dst_stage_mask(&stages)
            .signal_semaphores(&signal)
            .push_next(&mut values);
        // SAFETY: the queue is held under the shared lock; the fence is the
        // application's, unsignalled as the API requires; the timelines are
        // the layer's.
        crate::device::cpu_time::driver(|| unsafe {
            self.dev.fns.queue_submit(queue.queue, &[submit], fence)
        })?;
        self.submits.store(n, Ordering::Relaxed);
        Ok(())
    }

    /// The release the GPU waits on for image `index` arrived: its
    /// timeline reaches `value`.
    pub fn signal(&self, index: usize, value: u64) {
        let Some(ext) = &self.dev.ext.timeline else {
            return;
        };
        let info = vk::SemaphoreSignalInfo::default()
            .semaphore(self.per_image[index])
            .value(value);
        // SAFETY: the layer's own timeline; values only grow (one signaller
        // at a time: the presenter, or destruction after it stopped).
        if let Err(e) = unsafe { ext.signal_semaphore(&info) } {
            log::warn!("signalling the release of image {index}: {e:?}");
        }
    }

    /// Signals every `(image, value)` of `releases`.
    pub fn signal_all(&self, releases: impl IntoIterator<Item = (usize, u64)>) {
        for (index, value) in releases {
            self.signal(index, value);
        }
    }

    /// Waits at most `timeout` until every waiting submission is done.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let n = self.submits.load(Ordering::Relaxed);
        let Some(ext) = &self.dev.ext.timeline else {
            return true;
        };
        if n == 0 {
            return true;
        }
        let sems = [self.submitted];
        let values = [n];
        let info = vk::SemaphoreWaitInfo::default()
            .semaphores(&sems)
            .values(&values);
        // SAFETY: the layer's own timeline.
        unsafe { ext.wait_semaphores(&info, timeout.as_nanos() as u64) }.is_ok()
    }
}

impl Drop for ReleaseTimelines {
    fn drop(&mut self) {
        for s in self.per_image.drain(..).chain([self.submitted]) {
            // SAFETY: the owner made sure no submission still uses them
            // (`wait_idle`), or leaked this value instead of dropping it.
            unsafe { self.dev.fns.destroy_semaphore(s, None) };
        }
    }
}
