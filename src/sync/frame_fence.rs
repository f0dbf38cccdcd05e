//! The fences that tell the layer a presented frame's rendering is done.
//!
//! The GPU waiter thread waits on each presented frame's fence (on the
//! sync_file path no one does: the window system waits on the driver's own
//! fence, and the pool looks at the frame's fence before it reuses it). It may
//! still be inside `vkWaitForFences`, or not have reached the frame yet,
//! when the image has already gone round the loop: on the sync_file path
//! the window system waits on the driver's fence, not on the layer, so it
//! can release the image and the application can present it again before
//! the waiter looks up. Vulkan forbids resetting a fence while another
//! thread uses it (`vkResetFences` needs external synchronization), so a
//! frame does not reuse a fence per image: each present takes one from a
//! [`FencePool`], which only hands out fences no one else holds any more.

use crate::device::DeviceData;
use ash::vk;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One frame's render-complete fence. Held by the pool, the present that
/// submitted it, and the waiter until it has seen it signalled.
pub struct FrameFence {
    pub fence: vk::Fence,
    /// A submission will signal it (cleared when the pool hands it out
    /// again): what destruction must wait for.
    submitted: AtomicBool,
}

impl FrameFence {
    /// The present's submission, which signals this fence, was made.
    pub fn mark_submitted(&self) {
        self.submitted.store(true, Ordering::Release);
    }
}

/// A swapchain's frame fences.
pub struct FencePool {
    dev: Arc<DeviceData>,
    fences: Vec<Arc<FrameFence>>,
}

impl FencePool {
    pub fn new(dev: &Arc<DeviceData>) -> Self {
        Self {
            dev: dev.clone(),
            fences: Vec::new(),
        }
    }

    /// An unsignalled fence no one else holds: a free one whose last
    /// submission is complete, reset, or a new one. The pool grows only
    /// while the GPU (or the waiter) lags behind the application, to about
    /// the number of images.
    pub fn take(&mut self) -> Result<Arc<FrameFence>, vk::Result> {
        // `Arc::get_mut` succeeds only once every other holder dropped its
        // reference, and synchronizes with those drops: the waiter's last
        // use of the fence happens before the reset below. A frame no
        // waiter tracks (the sync_file path) drops its reference at once,
        // so a submitted fence is reused only once it has signalled: a
        // fence may not be reset while its submission is pending.
        for i in 0..self.fences.len() {
            let Some(f) = Arc::get_mut(&mut self.fences[i]) else {
                continue;
            };
            if *f.submitted.get_mut() {
                // SAFETY: the layer's own fence, on a live device.
                if !unsafe { self.dev.fns.get_fence_status(f.fence) }? {
                    continue;
                }
            }
            *f.submitted.get_mut() = false;
            // SAFETY: the layer's own fence; no other thread holds it, and
            // its last submission, if any, is complete (just checked).
            unsafe { self.dev.fns.reset_fences(&[f.fence]) }?;
            return Ok(self.fences[i].clone());
        }
        // SAFETY: a default create info on a live device.
        let fence = unsafe {
            self.dev
                .fns
                .create_fence(&vk::FenceCreateInfo::default(), None)
        }?;
        let f = Arc::new(FrameFence {
            fence,
            submitted: AtomicBool::new(false),
        });
        self.fences.push(f.clone());
        log::debug!("frame fences: {}", self.fences.len());
        Ok(f)
    }

    /// Waits at most `timeout` for every submitted fence; `false` if the
    /// GPU is not done by then.
    pub fn wait_all(&self, timeout: Duration) -> bool {
        let pending: Vec<vk::Fence> = self
            .fences
            .iter()
            .filter(|f| f.submitted.load(Ordering::Acquire))
            .map(|f| f.fence)
            .collect();
        if pending.is_empty() {
            return true;
        }
        // SAFETY: the layer's own fences.
        let r = unsafe {
            self.dev
                .fns
                .wait_for_fences(&pending, true, timeout.as_nanos() as u64)
        };
        r.is_ok()
    }
}

impl Drop for FencePool {
    fn drop(&mut self) {
        for f in self.fences.drain(..) {
            // SAFETY: the owner waited for the submissions (`wait_all`) and
            // stopped the waiter, so no one uses the fence any more.
            unsafe { self.dev.fns.destroy_fence(f.fence, None) };
        }
    }
}
