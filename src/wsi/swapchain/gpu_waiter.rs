//! The GPU-waiter thread: learns when each presented frame's rendering is
//! complete, waiting on the frame's fence with a timeout on every wait,
//! signals what the window system waits on where the driver has no
//! sync_file (a soft fence, an explicit-sync acquire point), and passes the
//! frame to the presenter in order.

use super::state::{InFlight, Shared};
use super::{DESTROY_FENCE_TIMEOUT, FENCE_POLL};
use crate::device::DeviceData;
use ash::vk;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

pub(super) fn gpu_wait_loop(
    dev: &DeviceData,
    rx: &Receiver<InFlight>,
    ready: &Sender<usize>,
    shared: &Shared,
) {
    // Once the swapchain is being destroyed, how long the waiter still
    // waits for the GPU, all frames together.
    let mut give_up_at: Option<Instant> = None;
    while let Ok(frame) = rx.recv() {
        loop {
            // SAFETY: the layer's own fence, submitted by present(); no
            // one resets it while this frame holds it.
            let r = unsafe {
                dev.fns
                    .wait_for_fences(&[frame.fence.fence], true, FENCE_POLL.as_nanos() as u64)
            };
            match r {
                Ok(()) => {
                    let delay = crate::config::get().debug_fence_delay_ms;
                    if delay > 0 {
                        std::thread::sleep(Duration::from_millis(delay));
                    }
                    if let Some(soft) = &frame.soft_fence {
                        if let Err(e) = soft.signal() {
                            log::warn!("signalling the render fence of image {}: {e}", frame.index);
                        }
                    }
                    signal_acquire_point(&frame);
                    if !frame.sent_early {
                        let _ = ready.send(frame.index);
                        shared.with_waiter.fetch_sub(1, Ordering::AcqRel);
                        shared.wake();
                    }
                    break;
                }
                Err(vk::Result::TIMEOUT) => {
                    if shared.shutdown.load(Ordering::SeqCst) {
                        let at = *give_up_at
                            .get_or_insert_with(|| Instant::now() + DESTROY_FENCE_TIMEOUT);
                        if Instant::now() >= at {
                            give_up(frame, rx);
                            return;
                        }
                    }
                }
                Err(e) => {
                    shared.set_status(if e == vk::Result::ERROR_DEVICE_LOST {
                        e
                    } else {
                        vk::Result::ERROR_SURFACE_LOST_KHR
                    });
                    give_up(frame, rx);
                    return;
                }
            }
        }
    }
}

/// Explicit sync without a sync_file: `frame`'s rendering is done (or
/// given up on), its acquire point signals.
pub(super) fn signal_acquire_point(frame: &InFlight) {
    if let Some((ex, point)) = &frame.acquire_point {
        if let Err(e) = ex.signal_acquire(frame.index, *point) {
            log::warn!(
                "signalling acquire point {point} of image {}: {e}",
                frame.index
            );
        }
    }
}

/// The GPU waiter stops waiting (the swapchain is destroyed while the GPU
/// still renders, or the device is lost): every frame it still has lets
/// the window system go on. A frame's soft fence signals as it is dropped;
/// its acquire point is signalled here, or a compositor would keep the
/// commit (and every later one of the surface, which it applies in order)
/// waiting for a point no one signals.
fn give_up(frame: InFlight, rx: &Receiver<InFlight>) {
    let frames: Vec<InFlight> = std::iter::once(frame).chain(rx.try_iter()).collect();
    log::warn!(
        "the GPU has not finished {} presented frame(s); letting the window system have them",
        frames.len()
    );
    for f in &frames {
        signal_acquire_point(f);
    }
}
