//! The platform-neutral swapchain core.
//!
//! An image moves `Free → Acquired → Queued → Shown → Free`. The
//! application thread only ever does non-blocking work in
//! `vkQueuePresentKHR`: it submits a batch that waits for the application's
//! semaphores and signals a fence of the frame's own ([`FencePool`]), and
//! hands the frame on. Two threads per swapchain do the rest:
//!
//! - the GPU waiter learns when each presented frame's rendering is
//!   complete (waiting on its fence, with a timeout on every wait) and
//!   passes it to the presenter;
//! - the presenter owns the window-system connection: it shows frames
//!   according to the present mode, and turns the window system's events
//!   (buffer released, frame shown, window gone) into image and swapchain
//!   state that `vkAcquireNextImageKHR` waits on.
//!
//! When no image is free, acquire hands out one the window system still
//! holds but has replaced with a newer frame, and the GPU waits for its
//! release ([`ReleaseTimelines`]); it blocks only when there is none.

use super::fallback::SyncFallback;
use super::image::{self, Choice, CopyCommands, ImageParams, SwapImage, WindowSystemBuffers};
use super::platform::{Backend, BackendEvent, BackendParams};
use super::stats::Stats;
use super::surface::Surface;
use crate::device::cpu_time;
use crate::device::DeviceData;
use crate::kernel::{DmaBuf, SoftFence, SyncAccess, Vgem};
use crate::sync::explicit::{AcquirePoint, ExplicitSync};
use crate::sync::frame_fence::{FencePool, FrameFence};
use crate::sync::release_timeline::ReleaseTimelines;
use crate::sync::{self, fault, AcquireSync, Plan, PresentSync};
use ash::vk;
use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest single wait on a GPU fence before the waiter looks up to
/// see whether the swapchain is being destroyed.
const FENCE_POLL: Duration = Duration::from_millis(100);
/// How long a swapchain being destroyed waits for outstanding GPU work.
const DESTROY_FENCE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where an image is, from the application's side. Whether the window
/// system holds the image's buffer is kept apart (`State::ws_holds`): an
/// image handed out early is `Acquired` (or even `Queued` again) while the
/// window system still holds its previous frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ImageState {
    Free,
    Acquired,
    /// Presented, on its way to the window system (GPU waiter, presenter).
    Queued,
    /// Handed to the window system, which has not released it yet.
    Shown,
}

struct State {
    images: Vec<ImageState>,
    /// Free images in the order they were released.
    free: VecDeque<usize>,
    /// Per image: the window system holds its buffer (committed, not
    /// released).
    ws_holds: Vec<bool>,
    /// Per image: handed out before the window system released it, since
    /// when; the release must be signalled on its timeline.
    owed: Vec<Option<Instant>>,
    /// Per image: the last value of its release timeline that was asked
    /// for; the next early acquire waits for one more.
    release_value: Vec<u64>,
    /// Per image: when it was handed to the window system, as a count of
    /// handovers; `last_shown` is the newest. An image shown before the
    /// newest has been replaced and its release is on the way.
    shown_seq: Vec<u64>,
    last_shown: u64,
    /// Per image the window system holds: since when a newer frame
    /// replaced it on screen (`None`: not replaced, or not held). Past the
    /// release timeout the presenter treats it as released.
    replaced_at: Vec<Option<Instant>>,
    /// A presented frame still on its way also counts as replacing the
    /// newest shown one (every queued frame, or a newer one, will be
    /// shown). Not in FIFO, where it would let the application run one
    /// more frame ahead of the display.
    queued_replaces: bool,
    /// Acquires waiting on `cond`: showing a frame wakes them only then.
    acquire_waiters: u32,
    /// `SUCCESS`, `SUBOPTIMAL_KHR` or the error every later call returns.
    status: vk::Result,
    retired: bool,
    /// The `VK_KHR_present_id` of the frame last presented from each image.
    present_ids: Vec<u64>,
    /// The highest present id known to be on screen (`VK_KHR_present_wait`).
    displayed_id: u64,
    /// Per image: when the application presented its frame, while the
    /// statistics are kept (present-to-display latency).
    present_at: Vec<Option<Instant>>,
    /// The statistics are kept (`SYNCBRIDGE_STATS`): frames are timed.
    timed: bool,
    /// FIFO: the presenter waits for a frame event, so it wakes before any
    /// newer frame can be shown, and looks at `deferred` then. While set, a
    /// present on the worker-wait path leaves its frame there instead of
    /// waking the GPU waiter: the application's thread pays no wake-up.
    presenter_will_look: bool,
    /// Frames presented while `presenter_will_look`, in order.
    deferred: Vec<(usize, Arc<FrameFence>)>,
}

impl State {
    /// Image `index`, which the application no longer uses (a frame not
    /// shown, an image given back), goes back to the window system's side
    /// if the window system still holds its previous frame, and is free
    /// otherwise (at the front of the free list: next to be acquired, or
    /// the back). Returns whether it is free.
    fn unuse(&mut self, index: usize, to_front: bool) -> bool {
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
    fn settle_owed(&mut self, index: usize) -> Option<u64> {
        self.owed[index].take()?;
        self.release_value[index] += 1;
        Some(self.release_value[index])
    }
}

pub(crate) struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    wake: OwnedFd,
    shutdown: AtomicBool,
    /// Frames the GPU waiter has yet to hand to the presenter. While there
    /// are any, a later frame must go the same way, or it would be shown
    /// before them. An atomic rather than [`State`], so the application's
    /// present and the waiter do not contend for the lock over it.
    with_waiter: AtomicUsize,
    /// The layer's CPU time in the acquire of each acquired image, and the
    /// time its blocking waits cost, added to its present's for the
    /// per-frame statistic.
    acquire_cpu_ns: Vec<(AtomicU64, AtomicU64)>,
    stats: Mutex<Stats>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A presented frame that will not be shown (replaced in MAILBOX, a
    /// retired swapchain, a failed handover): its image is free again
    /// unless the window system still holds the image's previous frame.
    fn drop_frame(&self, index: usize) {
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
    fn window_released(&self, index: usize) -> Option<u64> {
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
    fn begin_show(&self, index: usize) -> Option<Handed> {
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
        if st.acquire_waiters > 0 {
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
    fn give_up_owed(&self) -> Vec<(usize, u64)> {
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
    fn set_status(&self, status: vk::Result) {
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
    fn wait<'a>(
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
    fn mark_displayed(&self, id: u64) {
        let mut st = self.lock();
        if id > st.displayed_id {
            st.displayed_id = id;
            self.cond.notify_all();
        }
    }

    fn wake(&self) {
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    fn drain_wake(&self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.wake, &mut buf);
    }

    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A frame just handed to the window system ([`Shared::begin_show`]).
struct Handed {
    /// Its `VK_KHR_present_id` (0: none).
    id: u64,
    /// Its place in the order of handovers.
    seq: u64,
    /// When the application presented it (statistics only).
    presented: Option<Instant>,
    /// The statistics are kept.
    timed: bool,
}

/// A frame handed over whose presentation feedback is awaited.
struct AwaitingFeedback {
    seq: u64,
    id: u64,
    presented: Option<Instant>,
    handed: Instant,
}

/// How a frame's render-complete fence went into its dma-buf.
enum Handover {
    /// A vgem fence the GPU waiter signals.
    SoftFence(SoftFence),
    /// The driver's own sync_file, exported from the render semaphore.
    SyncFile,
}

/// The deadline of a Vulkan timeout in nanoseconds (`u64::MAX`: none).
fn deadline_after(timeout_ns: u64) -> Option<Instant> {
    (timeout_ns != u64::MAX).then(|| Instant::now() + Duration::from_nanos(timeout_ns))
}

/// A presented frame on its way to the GPU waiter.
struct InFlight {
    index: usize,
    fence: Arc<FrameFence>,
    /// The kernel fence the window system already waits on, signalled by
    /// the waiter when the GPU is done ([`PresentSync::ImplicitSoftFence`]).
    soft_fence: Option<SoftFence>,
    /// The frame went to the presenter at present time (its fence travels
    /// with the buffer); the waiter only tracks completion.
    sent_early: bool,
    /// Explicit sync without a sync_file: the acquire point the waiter
    /// signals when the GPU is done.
    acquire_point: Option<(Arc<ExplicitSync>, u64)>,
}

pub struct Swapchain {
    pub dev: Arc<DeviceData>,
    pub surface: Arc<Surface>,
    pub images: Vec<SwapImage>,
    pub plan: Plan,
    /// How the images reach the window system's buffers.
    pub images_path: image::ImagePath,
    /// The copy path's command buffers (`None` on the other paths).
    copies: Option<CopyCommands>,
    pub present_mode: vk::PresentModeKHR,
    pub extent: vk::Extent2D,
    pub format: vk::Format,
    /// Per image, the exportable semaphore its render completion is
    /// exported from ([`PresentSync::ImplicitSyncFile`] only).
    render_sems: Vec<vk::Semaphore>,
    /// Render-complete fences for presented frames (only the application's
    /// present, which the API serializes per swapchain, takes from it).
    fences: Mutex<FencePool>,
    /// The release timelines early acquires wait on (`None`: acquire waits
    /// for releases on the CPU).
    timelines: Option<Arc<ReleaseTimelines>>,
    /// Explicit sync: the images' acquire and release timelines.
    explicit: Option<Arc<ExplicitSync>>,
    shared: Arc<Shared>,
    /// Taken (closing the channel, which ends the waiter) on drop.
    to_waiter: Option<Sender<InFlight>>,
    to_presenter: Sender<usize>,
    threads: Vec<JoinHandle<()>>,
    /// FIFO on the worker-wait path without a frame limiter: a present may
    /// leave its frame for the presenter (`State::presenter_will_look`).
    defers: bool,
    /// Where a call on the planned path failed and the swapchain took the
    /// next one down ([`SyncFallback`]).
    fallback: SyncFallback,
    /// The vgem node the soft-fence path makes each frame's fence on, held
    /// open for the swapchain's life (`None` on the other paths: the node
    /// is open only while someone uses it).
    _soft_fence_node: Option<Arc<Vgem>>,
}

/// The present modes of a `VkSwapchainPresentModesCreateInfoEXT` in the
/// create info's chain (`VK_EXT_swapchain_maintenance1`).
fn present_modes_asked(ci: &vk::SwapchainCreateInfoKHR) -> Vec<vk::PresentModeKHR> {
    // SAFETY: the application's valid chain; the sType names the structure.
    let info = unsafe {
        crate::pnext::find::<vk::SwapchainPresentModesCreateInfoEXT<'_>>(
            ci.p_next,
            vk::StructureType::SWAPCHAIN_PRESENT_MODES_CREATE_INFO_EXT,
        )
    };
    match info {
        Some(i) if !i.p_present_modes.is_null() => {
            // SAFETY: the application's array of `present_mode_count` modes.
            unsafe { std::slice::from_raw_parts(i.p_present_modes, i.present_mode_count as usize) }
                .to_vec()
        }
        _ => Vec::new(),
    }
}

/// `ci` with the present mode `SYNCBRIDGE_PRESENT_MODE` names, where the
/// surface offers it (one line either way when it differs from the
/// application's).
fn with_present_mode_override<'a>(
    surface: &Surface,
    ci: &vk::SwapchainCreateInfoKHR<'a>,
) -> vk::SwapchainCreateInfoKHR<'a> {
    let mut out = *ci;
    let Some(mode) = crate::config::get().present_mode else {
        return out;
    };
    if mode == ci.present_mode {
        return out;
    }
    if surface.platform.present_modes().contains(&mode) {
        log::info!(
            "SYNCBRIDGE_PRESENT_MODE: {mode:?} instead of the application's {:?}",
            ci.present_mode
        );
        out.present_mode = mode;
    } else {
        log::warn!(
            "SYNCBRIDGE_PRESENT_MODE: {mode:?} is not offered on {}; keeping the application's {:?}",
            surface.platform.platform(),
            ci.present_mode
        );
    }
    out
}

/// Checks a create info against what the surface offers.
fn validate(
    dev: &DeviceData,
    surface: &Surface,
    ci: &vk::SwapchainCreateInfoKHR,
) -> Result<u32, vk::Result> {
    let formats = surface.formats(&dev.instance, dev.physical_device)?;
    let Some(&(_, fourcc)) = formats.iter().find(|(f, _)| *f == ci.image_format) else {
        log::error!(
            "vkCreateSwapchainKHR: format {:?} is not offered by this surface",
            ci.image_format
        );
        return Err(vk::Result::ERROR_FORMAT_NOT_SUPPORTED);
    };
    let offered =
        super::image::surface_usage(&dev.instance.fns, dev.physical_device, ci.image_format);
    if !offered.contains(ci.image_usage) {
        log::error!(
            "vkCreateSwapchainKHR: usage {:?} is not offered for {:?} (supportedUsageFlags {offered:?})",
            ci.image_usage,
            ci.image_format
        );
        return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
    }
    if !surface.platform.present_modes().contains(&ci.present_mode) {
        log::error!(
            "vkCreateSwapchainKHR: present mode {:?} is not offered",
            ci.present_mode
        );
        return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
    }
    if ci.image_extent.width == 0 || ci.image_extent.height == 0 || ci.image_array_layers != 1 {
        log::error!(
            "vkCreateSwapchainKHR: bad extent {:?} or array layers {}",
            ci.image_extent,
            ci.image_array_layers
        );
        return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
    }
    // Under SYNCBRIDGE_PRESENT_MODE the application's list names the mode
    // it asked for, not the one it gets.
    let overridden = crate::config::get().present_mode.is_some();
    if let Some(other) = present_modes_asked(ci)
        .into_iter()
        .find(|&m| m != ci.present_mode && !overridden)
    {
        // The layer reports every present mode compatible only with itself
        // (`VkSurfacePresentModeCompatibilityEXT`), so a swapchain keeps
        // the mode it was made with.
        log::error!(
            "vkCreateSwapchainKHR: VkSwapchainPresentModesCreateInfoEXT lists {other:?}, \
             which is not compatible with {:?}",
            ci.present_mode
        );
        return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
    }
    if let Some(cur) = surface.platform.current_extent()? {
        if cur != ci.image_extent {
            // The window changed size since the application asked.
            return Err(vk::Result::ERROR_OUT_OF_DATE_KHR);
        }
    }
    Ok(fourcc)
}

/// The sync plan and the image path of a new swapchain. Where the window
/// system takes dma-bufs but no image path can make them for this format
/// and usage, and shared memory is not ruled out, the plan falls back to
/// shared memory.
fn plan_and_images(
    dev: &DeviceData,
    params: &ImageParams,
    offer: &mut sync::Offer,
    ws: &WindowSystemBuffers,
) -> Result<(Plan, Choice), vk::Result> {
    let cfg = crate::config::get();
    let planned = |offer: &sync::Offer| {
        sync::plan(cfg, &dev.caps, offer).ok_or_else(|| {
            log::error!(
                "vkCreateSwapchainKHR: the window system accepts no buffer the layer can make"
            );
            vk::Result::ERROR_INITIALIZATION_FAILED
        })
    };
    let plan = planned(offer)?;
    let dma_err = match image::choose(dev, params, plan.buffers, ws, cfg.images) {
        Ok(choice) => return Ok((plan, choice)),
        Err(e) => e,
    };
    if plan.buffers == sync::BufferKind::DmaBuf
        && offer.server_shm
        && cfg.buffers != crate::config::BufferMode::DmaBuf
    {
        offer.server_dma_buf = false;
        let mut plan = planned(offer)?;
        match image::choose(dev, params, plan.buffers, ws, cfg.images) {
            Ok(choice) => {
                plan.reason = format!("{}; dma-bufs: {dma_err}", plan.reason);
                return Ok((plan, choice));
            }
            Err(e) => log::error!("vkCreateSwapchainKHR: {dma_err}; {e}"),
        }
    } else {
        log::error!("vkCreateSwapchainKHR: {dma_err}");
    }
    Err(vk::Result::ERROR_INITIALIZATION_FAILED)
}

impl Swapchain {
    pub fn create(
        dev: Arc<DeviceData>,
        surface: Arc<Surface>,
        ci: &vk::SwapchainCreateInfoKHR,
        old: Option<&Swapchain>,
    ) -> Result<Swapchain, vk::Result> {
        if let Some(old) = old {
            // Whatever happens next, the old swapchain is retired.
            old.retire();
        }
        let overridden = with_present_mode_override(&surface, ci);
        let ci = &overridden;
        let fourcc = validate(&dev, &surface, ci)?;
        let mut offer = surface.platform.offer()?;
        sync::complete_offer(&mut offer, &dev.caps);
        let count = super::surface::image_count(ci.present_mode, ci.min_image_count);
        if crate::config::get().min_image_count.is_some() && count != ci.min_image_count as usize {
            log::info!(
                "SYNCBRIDGE_MIN_IMAGE_COUNT: {count} images (the application asked for at least {})",
                ci.min_image_count
            );
        }
        if let Some(n) = crate::config::get().fps_limit {
            log::info!("SYNCBRIDGE_FPS_LIMIT: at most {n} frames a second are shown");
        }
        let queue_families = if ci.image_sharing_mode == vk::SharingMode::CONCURRENT
            && !ci.p_queue_family_indices.is_null()
        {
            // SAFETY: the application's array of the given length.
            unsafe {
                std::slice::from_raw_parts(
                    ci.p_queue_family_indices,
                    ci.queue_family_index_count as usize,
                )
            }
            .to_vec()
        } else {
            Vec::new()
        };
        let mut flags = vk::ImageCreateFlags::empty();
        if ci
            .flags
            .contains(vk::SwapchainCreateFlagsKHR::MUTABLE_FORMAT)
        {
            flags |= vk::ImageCreateFlags::MUTABLE_FORMAT;
        }
        let params = ImageParams {
            format: ci.image_format,
            extent: ci.image_extent,
            usage: ci.image_usage,
            flags,
            sharing_mode: ci.image_sharing_mode,
            queue_families,
        };
        let opaque = ci.composite_alpha == vk::CompositeAlphaFlagsKHR::OPAQUE;
        let ws = surface.platform.dma_buf_buffers(fourcc, opaque);
        let (mut plan, choice) = plan_and_images(&dev, &params, &mut offer, &ws)?;
        let explicit = if plan.present == PresentSync::ExplicitSyncobj {
            match explicit_timelines(&dev, &plan, &offer, count) {
                Ok(e) => Some(Arc::new(e)),
                Err(e) => {
                    // One line, and the implicit path.
                    log::error!("explicit sync: the kernel refused the swapchain's timelines ({e}); using implicit sync");
                    offer.kernel_syncobj = false;
                    let mut implicit = sync::plan(crate::config::get(), &dev.caps, &offer)
                        .ok_or(vk::Result::ERROR_INITIALIZATION_FAILED)?;
                    implicit.reason = format!("{}; explicit sync: {e}", implicit.reason);
                    plan = implicit;
                    None
                }
            }
        } else {
            None
        };
        if crate::config::get().sync == crate::config::SyncMode::Explicit && explicit.is_none() {
            crate::warn_once!(
                "SYNCBRIDGE_SYNC=explicit: explicit sync is not available on {}, using {} ({})",
                surface.platform.platform(),
                plan.present.name(),
                plan.reason
            );
        }
        if let Some(e) = &explicit {
            log::info!(
                "explicit sync: timelines on {}, acquire points by {:?}, releases counted when {}",
                e.node().display(),
                e.acquire_by,
                if e.wait_available {
                    "the release point has a fence"
                } else {
                    "the release point signalled"
                }
            );
        }
        log::info!(
            "swapchain {}x{} {:?} {:?} on {}: {plan}; images {} ({})",
            ci.image_extent.width,
            ci.image_extent.height,
            ci.image_format,
            ci.present_mode,
            surface.platform.platform(),
            choice.path.name(),
            choice.reason,
        );
        let mut images = Vec::with_capacity(count);
        for i in 0..count {
            match SwapImage::new(&dev, &params, &choice, plan.buffers, i) {
                Ok(img) => images.push(img),
                Err(e) => {
                    images
                        .into_iter()
                        .for_each(|img: SwapImage| img.destroy(&dev));
                    return Err(e);
                }
            }
        }
        let backend_params = BackendParams {
            extent: ci.image_extent,
            format: ci.image_format,
            fourcc,
            present_mode: ci.present_mode,
            opaque,
            buffers: plan.buffers,
            explicit: explicit.clone(),
        };
        let backend = surface
            .platform
            .create_backend(&backend_params)
            .and_then(|mut b| b.import_images(&images).map(|_| b));
        let backend = match backend {
            Ok(b) => b,
            Err(e) => {
                images.into_iter().for_each(|img| img.destroy(&dev));
                return Err(e);
            }
        };
        let mut render_sems = Vec::new();
        let sync_file_points = explicit
            .as_ref()
            .is_some_and(|e| e.acquire_by == AcquirePoint::SyncFile);
        if plan.present == PresentSync::ImplicitSyncFile || sync_file_points {
            for _ in 0..images.len() {
                match sync::vk::create_exportable_semaphore(&dev) {
                    Ok(sem) => render_sems.push(sem),
                    Err(e) => {
                        // SAFETY: semaphores made just now, never used.
                        render_sems
                            .iter()
                            .for_each(|s| unsafe { dev.fns.destroy_semaphore(*s, None) });
                        images.into_iter().for_each(|img| img.destroy(&dev));
                        return Err(e);
                    }
                }
            }
        }
        let wake = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .map_err(|_| vk::Result::ERROR_OUT_OF_HOST_MEMORY)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                images: vec![ImageState::Free; count],
                free: (0..count).collect(),
                ws_holds: vec![false; count],
                owed: vec![None; count],
                release_value: vec![0; count],
                shown_seq: vec![0; count],
                last_shown: 0,
                replaced_at: vec![None; count],
                queued_replaces: !matches!(
                    ci.present_mode,
                    vk::PresentModeKHR::FIFO
                        | vk::PresentModeKHR::FIFO_RELAXED
                        | super::FIFO_LATEST_READY
                ),
                acquire_waiters: 0,
                status: vk::Result::SUCCESS,
                retired: false,
                present_ids: vec![0; count],
                displayed_id: 0,
                present_at: vec![None; count],
                timed: crate::config::get().stats_path.is_some(),
                presenter_will_look: false,
                deferred: Vec::new(),
            }),
            cond: Condvar::new(),
            wake,
            shutdown: AtomicBool::new(false),
            with_waiter: AtomicUsize::new(0),
            acquire_cpu_ns: (0..count)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            stats: Mutex::new(Stats::new(crate::config::get().stats_path.is_some())),
        });
        let (to_waiter, waiter_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut threads = Vec::new();
        let to_presenter = ready_tx.clone();
        let timelines = ReleaseTimelines::new(&dev, count).map(Arc::new);
        // The presenter checks a released dma-buf for pending fences (a
        // compositor's GPU may still read it) before the image is reused
        // where acquire does not import them: with an empty submission, and
        // for images handed out early.
        let idle_check = IdleCheck {
            all: plan.acquire == AcquireSync::QueueSignal,
            explicit: explicit.clone(),
            bufs: if explicit.is_some() {
                // The release points, not the dma-bufs' fences, say when the
                // compositor is done.
                Vec::new()
            } else if plan.acquire == AcquireSync::QueueSignal || timelines.is_some() {
                images
                    .iter()
                    .map(|i| i.backing.dma_buf().and_then(|b| b.try_clone().ok()))
                    .collect()
            } else {
                Vec::new()
            },
        };
        {
            let (dev, shared) = (dev.clone(), shared.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("syncbridge-gpu".into())
                    .spawn(move || gpu_wait_loop(&dev, &waiter_rx, &ready_tx, &shared))
                    .map_err(|_| vk::Result::ERROR_OUT_OF_HOST_MEMORY)?,
            );
        }
        {
            let (shared, timelines) = (shared.clone(), timelines.clone());
            let to_waiter = to_waiter.clone();
            let mode = ci.present_mode;
            threads.push(
                std::thread::Builder::new()
                    .name("syncbridge-present".into())
                    .spawn(move || {
                        let p = Presenter {
                            shared: &shared,
                            timelines: timelines.as_deref(),
                            idle_check,
                            to_waiter,
                        };
                        p.run(backend, &ready_rx, mode)
                    })
                    .map_err(|_| vk::Result::ERROR_OUT_OF_HOST_MEMORY)?,
            );
        }
        let defers = plan.present == PresentSync::WorkerWait
            && matches!(
                ci.present_mode,
                vk::PresentModeKHR::FIFO | vk::PresentModeKHR::FIFO_RELAXED
            )
            && crate::config::get().fps_limit.is_none();
        let soft_fence_node = (plan.present == PresentSync::ImplicitSoftFence)
            .then(Vgem::shared)
            .and_then(Result::ok);
        Ok(Swapchain {
            _soft_fence_node: soft_fence_node,
            images_path: choice.path,
            copies: (choice.path == image::ImagePath::Copy).then(CopyCommands::new),
            render_sems,
            fences: Mutex::new(FencePool::new(&dev)),
            timelines,
            explicit,
            dev,
            surface,
            images,
            plan,
            present_mode: ci.present_mode,
            extent: ci.image_extent,
            format: ci.image_format,
            shared,
            to_waiter: Some(to_waiter),
            to_presenter,
            threads,
            defers,
            fallback: SyncFallback::default(),
        })
    }

    /// Marks the swapchain as replaced (`oldSwapchain`): it hands out no more
    /// images and shows no more frames.
    pub fn retire(&self) {
        let mut st = self.shared.lock();
        st.retired = true;
        self.shared.cond.notify_all();
        drop(st);
        self.shared.wake();
    }

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
                st.acquire_waiters += 1;
                st = cpu_time::blocking(|| self.shared.wait(st, deadline));
                st.acquire_waiters -= 1;
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

    /// The present sync this swapchain's frames take now: the plan's, or
    /// worker wait once the plan's failed ([`SyncFallback`]).
    fn present_sync(&self) -> PresentSync {
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
        let stages = vec![vk::PipelineStageFlags::ALL_COMMANDS; wait.len()];
        // The render semaphore (the sync_file path, explicit sync's points
        // by sync_file) only until that path failed: after a failed export
        // it may still be signalled.
        let signal: Vec<vk::Semaphore> = match self.fallback.present() {
            None => self.render_sems.get(i).copied().into_iter().collect(),
            Some(_) => Vec::new(),
        };
        let submit = vk::SubmitInfo::default()
            .wait_semaphores(wait)
            .wait_dst_stage_mask(&stages)
            .command_buffers(copy.as_slice())
            .signal_semaphores(&signal);
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
        let sent = self.to_waiter.as_ref().map(|tx| tx.send(frame));
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
        // Always through the waiter, even when the GPU is already done: it
        // signals each timeline's points in order (an image's frame dropped
        // in MAILBOX may still wait there while the image is presented
        // again).
        let acquire_point = by_worker.then(|| (ex.clone(), point));
        // Imported or not, the point is set before the compositor sees the
        // commit; it waits for it.
        self.hand_to_presenter(i);
        let frame = InFlight {
            index: i,
            fence,
            soft_fence: None,
            sent_early: true,
            acquire_point,
        };
        match self.to_waiter.as_ref().map(|tx| tx.send(frame)) {
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
        let _ = self.to_presenter.send(index);
        self.shared.wake();
    }

    /// Notes the layer's CPU time in the acquire that returned `index`.
    pub fn note_acquire_cpu(&self, index: u32, spent: cpu_time::Spent) {
        if let Some(slot) = self.shared.acquire_cpu_ns.get(index as usize) {
            slot.0.store(spent.layer_ns, Ordering::Relaxed);
            slot.1.store(spent.wait_ns, Ordering::Relaxed);
        }
    }

    /// Records a frame's layer CPU time: its present's `ns` plus what its
    /// acquire noted.
    pub fn record_frame_cpu(&self, index: u32, spent: cpu_time::Spent) {
        let acquired = self.shared.acquire_cpu_ns.get(index as usize).map_or(
            cpu_time::Spent::default(),
            |slot| cpu_time::Spent {
                layer_ns: slot.0.swap(0, Ordering::Relaxed),
                wait_ns: slot.1.swap(0, Ordering::Relaxed),
            },
        );
        self.shared.stats().on_layer_cpu(acquired + spent);
    }

    /// `vkWaitForPresentKHR`: waits at most `timeout_ns` until the frame
    /// with `present_id` (or a later one) is on screen.
    pub fn wait_for_present(&self, present_id: u64, timeout_ns: u64) -> vk::Result {
        let deadline = deadline_after(timeout_ns);
        let mut st = self.shared.lock();
        loop {
            if st.displayed_id >= present_id {
                return if st.status == vk::Result::SUBOPTIMAL_KHR {
                    st.status
                } else {
                    vk::Result::SUCCESS
                };
            }
            if st.retired {
                return vk::Result::ERROR_OUT_OF_DATE_KHR;
            }
            if st.status.as_raw() < 0 {
                return st.status;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return vk::Result::TIMEOUT;
            }
            st = self.shared.wait(st, deadline);
        }
    }
}

impl Drop for Swapchain {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.to_waiter.take();
        self.shared.wake();
        self.shared.cond.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Releases that will never come now: let the GPU go on, and make
        // sure nothing waits on the timelines any more before they go.
        if let Some(t) = self.timelines.take() {
            t.signal_all(self.shared.give_up_owed());
            if !t.wait_idle(DESTROY_FENCE_TIMEOUT) {
                log::warn!(
                    "swapchain destroyed while the GPU still waits on its release timelines; \
                     leaving them alive"
                );
                std::mem::forget(t);
            }
        }
        // The GPU may still be running frames presented just before: wait
        // (bounded) before their memory goes away.
        let pool = self.fences.get_mut().unwrap_or_else(|e| e.into_inner());
        if !pool.wait_all(DESTROY_FENCE_TIMEOUT) {
            log::warn!("swapchain destroyed while the GPU was still rendering to it");
        }
        let stats = self.shared.stats();
        stats.write_out(&[
            ("platform", self.surface.platform.platform().to_string()),
            ("present_mode", format!("{:?}", self.present_mode)),
            ("sync", self.present_sync().name().to_string()),
            ("fallback", self.fallback.describe()),
            ("buffers", format!("{:?}", self.plan.buffers)),
            ("images", self.images_path.name().to_string()),
            (
                "extent",
                format!("{}x{}", self.extent.width, self.extent.height),
            ),
        ]);
        drop(stats);
        for sem in self.render_sems.drain(..) {
            // SAFETY: the layer's own semaphores; their submissions are done
            // (the fences above were waited on).
            unsafe { self.dev.fns.destroy_semaphore(sem, None) };
        }
        if let Some(c) = &self.copies {
            // SAFETY: the frames' fences were waited on above.
            unsafe { c.destroy(&self.dev) };
        }
        for img in self.images.drain(..) {
            img.destroy(&self.dev);
        }
    }
}

fn gpu_wait_loop(
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
fn signal_acquire_point(frame: &InFlight) {
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

/// The timelines of an explicit-sync swapchain of `count` images, on the
/// compositor's main device where it has timeline syncobjs.
fn explicit_timelines(
    dev: &DeviceData,
    plan: &Plan,
    offer: &sync::Offer,
    count: usize,
) -> crate::kernel::Result<ExplicitSync> {
    let node = crate::kernel::SyncobjDevice::preferred(offer.main_device)?;
    ExplicitSync::new(
        node,
        count,
        sync::acquire_point_source(crate::config::get(), &dev.caps),
        plan.acquire == AcquireSync::ImportSyncFile,
    )
}

/// The image an acquire may hand out before its release: one the window
/// system holds but has replaced with a newer frame (its release is on the
/// way, or follows once a queued frame is shown), not already handed out;
/// the one shown longest ago.
fn replaced_image(st: &State) -> Option<usize> {
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

/// How many frames whose feedback came too late to be awaited the
/// presenter remembers, for the statistics.
const LATE_FEEDBACK_KEPT: usize = 16;

/// How often a released dma-buf whose fences are still pending is looked at
/// again.
const IDLE_POLL: Duration = Duration::from_millis(1);

/// Which released dma-bufs the presenter checks for pending fences (a
/// compositor's GPU may still read them) before their image is reused.
struct IdleCheck {
    /// Every image's (acquire signals with an empty submission); otherwise
    /// only those of images handed out early.
    all: bool,
    /// Explicit sync: the release points are checked instead of dma-bufs.
    explicit: Option<Arc<ExplicitSync>>,
    /// Per image, its dma-buf (empty: no dma-bufs, nothing to check).
    bufs: Vec<Option<DmaBuf>>,
}

/// The presenter thread: shows frames, and turns the window system's
/// events into image and swapchain state.
struct Presenter<'a> {
    shared: &'a Shared,
    timelines: Option<&'a ReleaseTimelines>,
    idle_check: IdleCheck,
    /// For the deferred frames.
    to_waiter: Sender<InFlight>,
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

    /// The swapchain is being destroyed: the frames presented and not yet
    /// handed over go to the window system now, in order, without waiting
    /// for a frame event (it shows the newest; not called where a frame
    /// limit paces the frames), so that a frame
    /// `vkQueuePresentKHR` took is not lost because the application
    /// destroyed the swapchain right after presenting it (vkcube's last
    /// frame, under load). Frames still with the GPU waiter (deferred
    /// ones among them) are waited for, all together at most
    /// [`DESTROY_FENCE_TIMEOUT`] (the waiter gives up on them after as
    /// long). A frame whose image the window system still holds is dropped;
    /// `newest_only` (MAILBOX, FIFO_LATEST_READY): the older frames are
    /// dropped as skipped, as those modes do at any time.
    fn hand_over_at_destroy(
        &self,
        backend: &mut dyn Backend,
        queue: &mut VecDeque<usize>,
        ready: &Receiver<usize>,
        newest_only: bool,
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
        for i in queue.drain(..) {
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

    fn run(
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
        let defer = !unpaced && fps_limit.is_none() && mode != super::FIFO_LATEST_READY;
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
            if shared.shutdown.load(Ordering::SeqCst) {
                // Not where a frame limit holds the frames back: they
                // were not due yet, and handing them over at once would
                // break the limit.
                let limited = fps_limit.is_some() || fifo_paced;
                if !limited && !shared.lock().retired {
                    let newest_only = matches!(mode, vk::PresentModeKHR::MAILBOX)
                        || mode == super::FIFO_LATEST_READY;
                    self.hand_over_at_destroy(&mut *backend, &mut queue, ready, newest_only);
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
            while awaiting.front().is_some_and(|a| now - a.handed >= timeout) {
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
            let (retired, overdue, oldest_due) = {
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
                // Frames presented to a retired swapchain are not shown.
                queue.drain(..).for_each(|i| shared.drop_frame(i));
            }
            if mode == vk::PresentModeKHR::MAILBOX || mode == super::FIFO_LATEST_READY {
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
            let held_by_limit = next_slot.is_some_and(|t| now < t);
            if held_by_limit {
                // Not yet: the frames wait in order, and the application
                // waits for images in acquire.
            } else if unpaced && limit.is_none() {
                to_show.extend(queue.drain(..));
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
            if let Some(a) = awaiting.front() {
                sooner(a.handed + timeout);
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
                            shared.stats().on_feedback(a.presented, at);
                            shared.mark_displayed(a.id);
                        } else if let Some(k) = late.iter().position(|a| a.seq == seq) {
                            let a = late.remove(k).expect("found");
                            shared.stats().on_feedback(a.presented, at);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_modes_are_read_from_the_create_info_chain() {
        let ci = vk::SwapchainCreateInfoKHR::default();
        assert!(present_modes_asked(&ci).is_empty());
        let modes = [vk::PresentModeKHR::FIFO, vk::PresentModeKHR::MAILBOX];
        let mut info = vk::SwapchainPresentModesCreateInfoEXT::default().present_modes(&modes);
        let mut other = vk::ImageFormatListCreateInfo::default();
        let ci = vk::SwapchainCreateInfoKHR::default()
            .push_next(&mut info)
            .push_next(&mut other);
        assert_eq!(present_modes_asked(&ci), modes);
    }
}
