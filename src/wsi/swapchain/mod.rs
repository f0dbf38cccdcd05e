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
//!
//! Here: the swapchain's creation (plan, images, threads) and destruction;
//! `state` the state the three share, `acquire` and `present` the
//! application's two calls, `gpu_waiter` and `presenter` the threads.

use super::fallback::SyncFallback;
use super::image::{self, Choice, CopyCommands, ImageParams, SwapImage, WindowSystemBuffers};
use super::platform::BackendParams;
use super::stats::Stats;
use super::surface::Surface;
use crate::device::cpu_time;
use crate::device::DeviceData;
use crate::kernel::Vgem;
use crate::sync::explicit::{AcquirePoint, ExplicitSync};
use crate::sync::frame_fence::FencePool;
use crate::sync::release_timeline::ReleaseTimelines;
use crate::sync::{self, AcquireSync, Plan, PresentSync};
use ash::vk;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod acquire;
mod gpu_waiter;
mod present;
mod presenter;
mod state;

use gpu_waiter::gpu_wait_loop;
use presenter::{IdleCheck, Presenter};
use state::{deadline_after, ImageState, InFlight, Shared, State};

/// The longest single wait on a GPU fence before the waiter looks up to
/// see whether the swapchain is being destroyed.
const FENCE_POLL: Duration = Duration::from_millis(100);
/// How long a swapchain being destroyed waits for outstanding GPU work.
const DESTROY_FENCE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long retiring a swapchain waits for its presenter to hand over the
/// frames presented before: the GPU's part ([`DESTROY_FENCE_TIMEOUT`]) and
/// the commits.
const RETIRE_FLUSH_TIMEOUT: Duration = Duration::from_millis(2500);

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
                early_waiters: 0,
                status: vk::Result::SUCCESS,
                retired: false,
                retire_flushed: false,
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
                        p.run(backend, &ready_rx, mode);
                        // Nothing more will be handed over.
                        shared.retire_flushed();
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
    /// images, and the frames presented before are handed to the window
    /// system before this returns (at most [`RETIRE_FLUSH_TIMEOUT`]), so
    /// that they come before the new swapchain's first.
    pub fn retire(&self) {
        let mut st = self.shared.lock();
        if st.retired {
            return;
        }
        st.retired = true;
        self.shared.cond.notify_all();
        drop(st);
        self.shared.wake();
        let deadline = Instant::now() + RETIRE_FLUSH_TIMEOUT;
        let mut st = self.shared.lock();
        while !st.retire_flushed {
            if Instant::now() >= deadline {
                log::warn!(
                    "the frames presented before the swapchain was replaced were not handed over in {} ms",
                    RETIRE_FLUSH_TIMEOUT.as_millis()
                );
                break;
            }
            st = self.shared.wait(st, Some(deadline));
        }
    }

    /// Notes the layer's CPU time in the acquire that returned `index` (an
    /// acquire hands nothing to another thread).
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
                handoff_ns: 0,
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
