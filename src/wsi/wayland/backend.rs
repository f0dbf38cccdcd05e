//! One swapchain's presentation on a `wl_surface`.

use super::conn::{self, Woken};
use super::formats;
use super::Globals;
use crate::sync::explicit::{ExplicitSync, ReleaseWatch};
use crate::sync::BufferKind;
use crate::wsi::image::SwapImage;
use crate::wsi::platform::{Backend, BackendEvent, BackendParams};
use ash::vk;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_registry, wl_shm, wl_shm_pool, wl_surface,
};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle};
use wayland_protocols::wp::commit_timing::v1::client::{
    wp_commit_timer_v1, wp_commit_timing_manager_v1,
};
use wayland_protocols::wp::fifo::v1::client::{wp_fifo_manager_v1, wp_fifo_v1};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1, zwp_linux_dmabuf_v1,
};
use wayland_protocols::wp::linux_drm_syncobj::v1::client::{
    wp_linux_drm_syncobj_manager_v1, wp_linux_drm_syncobj_surface_v1,
    wp_linux_drm_syncobj_timeline_v1,
};
use wayland_protocols::wp::presentation_time::client::{wp_presentation, wp_presentation_feedback};
use wayland_protocols::wp::tearing_control::v1::client::{
    wp_tearing_control_manager_v1, wp_tearing_control_v1,
};

/// A surface's tearing control object (see [`super::Tearing`]).
pub type TearingControl = wp_tearing_control_v1::WpTearingControlV1;
/// A surface's explicit-sync object (see [`super::SyncobjSurface`]).
pub type SyncobjSurfaceProxy = wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1;
type SyncobjTimeline = wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1;

impl super::per_surface::SurfaceExtension for SyncobjSurfaceProxy {
    fn destroy_object(&self) {
        self.destroy();
    }
}

impl super::per_surface::SurfaceExtension for TearingControl {
    fn destroy_object(&self) {
        self.destroy();
    }
}

/// `CLOCK_MONOTONIC`, the presentation clock until `wp_presentation`
/// names its own.
const CLOCK_MONOTONIC: u32 = 1;

pub(super) struct State {
    events: Vec<BackendEvent>,
    /// The clock of `wp_presentation`'s timestamps (`clock_id`).
    clock: u32,
    /// When the last frame callback came: the surface's content was last
    /// updated then (FIFO_RELAXED: a frame after more than a refresh is
    /// late).
    last_done: Option<Instant>,
    /// The output's refresh period, from presentation feedback.
    refresh: Duration,
    /// Whether `refresh` came from the compositor (not the default).
    refresh_known: bool,
    /// Explicit sync: release points, not `wl_buffer.release`, give the
    /// buffers back (the protocol makes that event's delivery undefined).
    explicit: bool,
}

/// The tag of a feedback the backend asks for itself (to learn the
/// refresh period), which no frame of the presenter's has.
const OWN_FEEDBACK: u64 = u64::MAX;

/// The refresh period until presentation feedback says otherwise.
const DEFAULT_REFRESH: Duration = Duration::from_nanos(16_666_667);

impl Default for State {
    fn default() -> Self {
        Self {
            events: Vec::new(),
            clock: CLOCK_MONOTONIC,
            last_done: None,
            refresh: DEFAULT_REFRESH,
            refresh_known: false,
            explicit: false,
        }
    }
}

impl Dispatch<wp_presentation::WpPresentation, ()> for State {
    fn event(
        s: &mut Self,
        _: &wp_presentation::WpPresentation,
        ev: wp_presentation::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wp_presentation::Event::ClockId { clk_id } = ev {
            s.clock = clk_id;
        }
    }
}

/// One frame's feedback, tagged with the presenter's handover count.
impl Dispatch<wp_presentation_feedback::WpPresentationFeedback, u64> for State {
    fn event(
        s: &mut Self,
        _: &wp_presentation_feedback::WpPresentationFeedback,
        ev: wp_presentation_feedback::Event,
        seq: &u64,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match ev {
            wp_presentation_feedback::Event::Presented {
                tv_sec_hi,
                tv_sec_lo,
                tv_nsec,
                refresh,
                ..
            } => {
                if refresh > 0 {
                    s.refresh = Duration::from_nanos(u64::from(refresh));
                    s.refresh_known = true;
                }
                if *seq == OWN_FEEDBACK {
                    return;
                }
                let secs = (u64::from(tv_sec_hi) << 32) | u64::from(tv_sec_lo);
                let ns = secs
                    .saturating_mul(1_000_000_000)
                    .saturating_add(u64::from(tv_nsec));
                s.events.push(BackendEvent::Shown {
                    seq: *seq,
                    at: Some(crate::wsi::platform::instant_of(s.clock, ns)),
                });
            }
            wp_presentation_feedback::Event::Discarded if *seq != OWN_FEEDBACK => {
                s.events.push(BackendEvent::Shown {
                    seq: *seq,
                    at: None,
                });
            }
            _ => {}
        }
    }
}

impl Dispatch<wl_buffer::WlBuffer, usize> for State {
    fn event(
        s: &mut Self,
        _: &wl_buffer::WlBuffer,
        ev: wl_buffer::Event,
        index: &usize,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_buffer::Event::Release = ev {
            if !s.explicit {
                s.events.push(BackendEvent::Released(*index));
            }
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for State {
    fn event(
        s: &mut Self,
        _: &wl_callback::WlCallback,
        ev: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = ev {
            s.last_done = Some(Instant::now());
            s.events.push(BackendEvent::FrameDone);
        }
    }
}

// Objects whose events the backend has no use for.
wayland_client::delegate_noop!(State: ignore wl_registry::WlRegistry);
wayland_client::delegate_noop!(State: ignore wl_shm::WlShm);
wayland_client::delegate_noop!(State: ignore zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1);
wayland_client::delegate_noop!(State: ignore wl_shm_pool::WlShmPool);
wayland_client::delegate_noop!(State: wp_tearing_control_manager_v1::WpTearingControlManagerV1);
wayland_client::delegate_noop!(State: wp_tearing_control_v1::WpTearingControlV1);
wayland_client::delegate_noop!(State: wp_fifo_manager_v1::WpFifoManagerV1);
wayland_client::delegate_noop!(State: wp_fifo_v1::WpFifoV1);
wayland_client::delegate_noop!(State: wp_commit_timing_manager_v1::WpCommitTimingManagerV1);
wayland_client::delegate_noop!(State: wp_commit_timer_v1::WpCommitTimerV1);
wayland_client::delegate_noop!(State: wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1);
wayland_client::delegate_noop!(State: wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1);
wayland_client::delegate_noop!(State: wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1);

impl Dispatch<zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1, ()> for State {
    fn event(
        s: &mut Self,
        _: &zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
        ev: zwp_linux_buffer_params_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let zwp_linux_buffer_params_v1::Event::Failed = ev {
            log::error!("the compositor refused a swapchain dma-buf");
            s.events.push(BackendEvent::Lost);
        }
    }
}

pub(super) struct WaylandBackend {
    queue: EventQueue<State>,
    state: State,
    surface: wl_surface::WlSurface,
    shm: Option<wl_shm::WlShm>,
    dmabuf: Option<zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1>,
    /// What the compositor accepts as dma-bufs: `(fourcc, modifier)`.
    dmabuf_formats: Vec<(u32, u64)>,
    buffers: Vec<(wl_buffer::WlBuffer, Option<wl_shm_pool::WlShmPool>)>,
    params: BackendParams,
    /// `wp_presentation`, where the compositor offers it.
    presentation: Option<wp_presentation::WpPresentation>,
    /// The tag of the feedback the next present asks for.
    feedback_seq: Option<u64>,
    /// The surface's tearing control, and (FIFO_RELAXED) the hint the
    /// last commit carried.
    tearing: std::sync::Arc<super::Tearing>,
    relaxed_async: bool,
    /// The surface's `wp_fifo_v1`, on a FIFO swapchain where the
    /// compositor offers it (`None`: FIFO waits for frame callbacks).
    fifo: Option<std::sync::Arc<super::fifo::Fifo>>,
    /// The surface's `wp_commit_timer_v1`, where `SYNCBRIDGE_FPS_LIMIT`
    /// may use it ([`super::commit_timing`]), and once the presenter asked
    /// for it (`pace_commits`) the slots of the commits.
    commit_timer: Option<std::sync::Arc<super::commit_timing::CommitTimer>>,
    slots: Option<crate::wsi::frame_limit::Slots>,
    /// Explicit sync: the swapchain's timelines and their imports.
    explicit: Option<Explicit>,
    // Keeps the layer's queue alive as long as the objects on it.
    _conn: Connection,
}

/// A backend's explicit sync (`wp_linux_drm_syncobj_v1`).
struct Explicit {
    sync: std::sync::Arc<ExplicitSync>,
    /// The surface's syncobj object, kept by the `VkSurfaceKHR`.
    surface: std::sync::Arc<super::SyncobjSurface>,
    /// Per image, its acquire and release timelines as the compositor
    /// imported them.
    timelines: Vec<(SyncobjTimeline, SyncobjTimeline)>,
    /// Release points committed and not yet come.
    watch: ReleaseWatch,
}

/// How long a new swapchain waits for the socket to take the requests
/// queued before it ([`conn::drain`]).
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

impl Explicit {
    /// Binds the manager, makes (or reuses) the surface's syncobj object
    /// and imports every image's timelines.
    fn new(
        sync: &std::sync::Arc<ExplicitSync>,
        conn: &Connection,
        registry: &wl_registry::WlRegistry,
        qh: &QueueHandle<State>,
        surface: &wl_surface::WlSurface,
        globals: &Globals,
        syncobj: std::sync::Arc<super::SyncobjSurface>,
    ) -> Result<Self, vk::Result> {
        let g = globals
            .get("wp_linux_drm_syncobj_manager_v1")
            .ok_or(vk::Result::ERROR_INITIALIZATION_FAILED)?;
        // The fds first: a kernel that refuses them leaves nothing sent.
        let fds = sync.timeline_fds()?;
        let manager = registry
            .bind::<wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1, _, _>(
                g.name,
                g.version.min(1),
                qh,
                (),
            );
        {
            let mut s = syncobj.lock();
            if s.is_none() {
                *s = Some((manager.get_surface(surface, qh, ()), conn.clone()));
            }
        }
        // libwayland sends a dup of each fd; ours close at the end of the
        // loop.
        let timelines = fds
            .iter()
            .map(|(a, r)| {
                (
                    manager.import_timeline(a.as_fd(), qh, ()),
                    manager.import_timeline(r.as_fd(), qh, ()),
                )
            })
            .collect();
        manager.destroy();
        Ok(Self {
            sync: sync.clone(),
            surface: syncobj,
            timelines,
            watch: ReleaseWatch::new(sync.clone()),
        })
    }

    /// The acquire and release points of image `index`'s commit, on the
    /// surface's syncobj object. `false`: the object is gone (a newer
    /// swapchain of the surface is not on explicit sync; this one is
    /// retired), and the commit goes without points.
    fn set_points(&mut self, index: usize) -> bool {
        let guard = self.surface.lock();
        let Some((surface, _)) = guard.as_ref() else {
            return false;
        };
        let (acquire_tl, release_tl) = &self.timelines[index];
        let acquire = self.sync.acquire_point(index);
        let release = self.watch.next(index);
        surface.set_acquire_point(acquire_tl, (acquire >> 32) as u32, acquire as u32);
        surface.set_release_point(release_tl, (release >> 32) as u32, release as u32);
        true
    }

    /// Reports the release points that came.
    fn collect(&mut self, events: &mut Vec<BackendEvent>) {
        self.watch
            .collect(|index| events.push(BackendEvent::Released(index)));
    }
}

impl Drop for Explicit {
    fn drop(&mut self) {
        // After the swapchain's last commit: the points it set stay.
        for (a, r) in self.timelines.drain(..) {
            a.destroy();
            r.destroy();
        }
    }
}

/// Destroys the surface's syncobj object, if a swapchain made one, before
/// a commit without sync points (a swapchain not on explicit sync).
fn drop_syncobj_surface(syncobj: &super::SyncobjSurface) {
    if let Some((s, _)) = syncobj.lock().take() {
        log::info!("wp_linux_drm_syncobj_surface_v1 destroyed: this swapchain is on implicit sync");
        s.destroy();
    }
}

impl WaylandBackend {
    /// # Safety
    /// `display` and `surface` must be the application's live objects.
    pub(super) unsafe fn new(
        display: *mut std::ffi::c_void,
        surface: *mut std::ffi::c_void,
        globals: &Globals,
        params: &BackendParams,
        objects: super::SurfaceObjects,
    ) -> Result<Self, vk::Result> {
        let super::SurfaceObjects {
            tearing,
            fifo,
            commit_timer,
            syncobj,
        } = objects;
        // SAFETY: forwarded from the caller.
        let conn = unsafe { conn::connect(display) };
        // SAFETY: forwarded from the caller.
        let surface: wl_surface::WlSurface = unsafe { conn::foreign(&conn, surface) }?;
        if !conn::drain(&conn, DRAIN_LIMIT) {
            crate::warn_once!(
                "the compositor has not read this client's requests for {} ms; \
                 queueing a swapchain's buffers anyway",
                DRAIN_LIMIT.as_millis()
            );
        }
        let queue = conn.new_event_queue::<State>();
        let qh = queue.handle();
        let registry = conn.display().get_registry(&qh, ());
        let (mut shm, mut dmabuf) = (None, None);
        match params.buffers {
            BufferKind::Shm => {
                let g = globals
                    .get("wl_shm")
                    .ok_or(vk::Result::ERROR_SURFACE_LOST_KHR)?;
                shm = Some(registry.bind::<wl_shm::WlShm, _, _>(g.name, g.version.min(1), &qh, ()));
            }
            BufferKind::DmaBuf => {
                let g = globals
                    .get("zwp_linux_dmabuf_v1")
                    .ok_or(vk::Result::ERROR_SURFACE_LOST_KHR)?;
                if g.version < 2 {
                    log::error!(
                        "zwp_linux_dmabuf_v1 version {} lacks create_immed",
                        g.version
                    );
                    return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
                }
                dmabuf = Some(
                    registry.bind::<zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, _, _>(
                        g.name,
                        g.version.min(3),
                        &qh,
                        (),
                    ),
                );
            }
        }
        set_tearing(
            &tearing,
            &conn,
            &registry,
            &qh,
            &surface,
            globals,
            params.present_mode,
        );
        let fifo = (params.present_mode == vk::PresentModeKHR::FIFO
            && make_fifo(&fifo, &conn, &registry, &qh, &surface, globals))
        .then_some(fifo);
        // Only with a presentation clock to stamp commits on.
        let commit_timer = (crate::config::get().fps_limit.is_some()
            && super::commit_timing::keeps_the_limit_in(params.present_mode)
            && globals.get("wp_presentation").is_some()
            && make_commit_timer(&commit_timer, &conn, &registry, &qh, &surface, globals))
        .then_some(commit_timer);
        let explicit = match (&params.explicit, params.buffers) {
            (Some(sync), BufferKind::DmaBuf) => Some(Explicit::new(
                sync, &conn, &registry, &qh, &surface, globals, syncobj,
            )?),
            _ => {
                drop_syncobj_surface(&syncobj);
                None
            }
        };
        let presentation = globals.get("wp_presentation").map(|g| {
            registry.bind::<wp_presentation::WpPresentation, _, _>(
                g.name,
                g.version.min(1),
                &qh,
                (),
            )
        });
        Ok(Self {
            presentation,
            feedback_seq: None,
            tearing,
            relaxed_async: false,
            fifo,
            commit_timer,
            slots: None,
            queue,
            state: State {
                explicit: explicit.is_some(),
                ..State::default()
            },
            explicit,
            surface,
            shm,
            dmabuf,
            dmabuf_formats: globals.dmabuf_formats.clone(),
            buffers: Vec::new(),
            params: params.clone(),
            _conn: conn,
        })
    }
}

/// The presentation hint of the surface for a swapchain in `mode`:
/// IMMEDIATE asks for asynchronous (tearing) presentation where the
/// compositor offers `wp_tearing_control_v1`; every other mode puts back
/// vsync, should an earlier swapchain of the surface have asked for
/// tearing (FIFO_RELAXED asks for async per late frame, in `present`). The
/// hint is double-buffered: it applies from the first commit.
fn set_tearing(
    tearing: &super::Tearing,
    conn: &Connection,
    registry: &wl_registry::WlRegistry,
    qh: &QueueHandle<State>,
    surface: &wl_surface::WlSurface,
    globals: &Globals,
    mode: vk::PresentModeKHR,
) {
    use wp_tearing_control_v1::PresentationHint;
    let tears = mode == vk::PresentModeKHR::IMMEDIATE;
    let mut t = tearing.lock();
    if t.is_none() && (tears || mode == vk::PresentModeKHR::FIFO_RELAXED) {
        match globals.get("wp_tearing_control_manager_v1") {
            Some(g) => {
                let manager = registry
                    .bind::<wp_tearing_control_manager_v1::WpTearingControlManagerV1, _, _>(
                        g.name,
                        g.version.min(1),
                        qh,
                        (),
                    );
                let control = manager.get_tearing_control(surface, qh, ());
                manager.destroy();
                *t = Some((control, conn.clone()));
            }
            None => {
                log::info!(
                    "IMMEDIATE: the compositor offers no wp_tearing_control_v1: \
                     frames are handed over without waiting, and shown without tearing"
                );
                return;
            }
        }
    }
    if let Some((control, _)) = t.as_ref() {
        let hint = if tears {
            PresentationHint::Async
        } else {
            PresentationHint::Vsync
        };
        control.set_presentation_hint(hint);
        log::info!("wp_tearing_control_v1: presentation hint {hint:?}");
    }
}

/// Makes the surface's one `P` (a per-surface extension,
/// [`super::per_surface`]) with `make`, given the compositor's global
/// `name`, if the compositor offers it and the surface has none yet.
/// Returns whether the surface has one.
fn ensure_surface_object<P: super::per_surface::SurfaceExtension>(
    slot: &super::per_surface::PerSurface<P>,
    conn: &Connection,
    globals: &Globals,
    name: &str,
    make: impl FnOnce(&super::Global) -> P,
) -> bool {
    let mut s = slot.lock();
    if s.is_none() {
        let Some(g) = globals.get(name) else {
            return false;
        };
        *s = Some((make(g), conn.clone()));
    }
    true
}

/// Makes the surface's `wp_fifo_v1` ([`super::fifo`]) where offered.
fn make_fifo(
    fifo: &super::fifo::Fifo,
    conn: &Connection,
    registry: &wl_registry::WlRegistry,
    qh: &QueueHandle<State>,
    surface: &wl_surface::WlSurface,
    globals: &Globals,
) -> bool {
    ensure_surface_object(fifo, conn, globals, super::fifo::GLOBAL, |g| {
        let manager = registry.bind::<wp_fifo_manager_v1::WpFifoManagerV1, _, _>(g.name, 1, qh, ());
        let object = manager.get_fifo(surface, qh, ());
        manager.destroy();
        log::info!("FIFO: the compositor paces commits (wp_fifo_v1)");
        object
    })
}

/// Makes the surface's `wp_commit_timer_v1` ([`super::commit_timing`])
/// where offered.
fn make_commit_timer(
    timer: &super::commit_timing::CommitTimer,
    conn: &Connection,
    registry: &wl_registry::WlRegistry,
    qh: &QueueHandle<State>,
    surface: &wl_surface::WlSurface,
    globals: &Globals,
) -> bool {
    ensure_surface_object(timer, conn, globals, super::commit_timing::GLOBAL, |g| {
        let manager = registry.bind::<wp_commit_timing_manager_v1::WpCommitTimingManagerV1, _, _>(
            g.name,
            1,
            qh,
            (),
        );
        let object = manager.get_timer(surface, qh, ());
        manager.destroy();
        object
    })
}

/// Sends the queued requests (the buffers just made). A full socket
/// (`EAGAIN`: the compositor reads slowly, as under a resize storm in the
/// test guest) is not a lost surface: the rest stays queued and goes with
/// the next flush, as on present. Anything else is, with a warning.
fn flush_requests(queue: &wayland_client::EventQueue<State>) -> Result<(), vk::Result> {
    match queue.flush() {
        Ok(()) => Ok(()),
        Err(wayland_backend::client::WaylandError::Io(e))
            if e.kind() == std::io::ErrorKind::WouldBlock =>
        {
            Ok(())
        }
        Err(e) => {
            log::warn!("wayland: registering the swapchain's buffers: {e}");
            Err(vk::Result::ERROR_SURFACE_LOST_KHR)
        }
    }
}

impl Backend for WaylandBackend {
    fn import_images(&mut self, images: &[SwapImage]) -> Result<(), vk::Result> {
        let qh = self.queue.handle();
        let drm = if self.params.opaque {
            formats::opaque(self.params.fourcc)
        } else {
            self.params.fourcc
        };
        if let Some(dmabuf) = &self.dmabuf {
            for (i, img) in images.iter().enumerate() {
                let params = dmabuf.create_params(&qh, ());
                // The image's own modifier, or for the layer's linear
                // buffers the way the compositor names linear.
                let modifier = img.modifier.unwrap_or_else(|| {
                    super::feedback::modifier_for(&self.dmabuf_formats, drm)
                        .unwrap_or(super::MOD_LINEAR)
                });
                for (plane, layout) in img.planes.iter().enumerate() {
                    params.add(
                        img.backing.fd(),
                        plane as u32,
                        layout.offset as u32,
                        layout.stride,
                        (modifier >> 32) as u32,
                        modifier as u32,
                    );
                }
                let buffer = params.create_immed(
                    img.extent.width as i32,
                    img.extent.height as i32,
                    drm,
                    zwp_linux_buffer_params_v1::Flags::empty(),
                    &qh,
                    i,
                );
                params.destroy();
                self.buffers.push((buffer, None));
            }
            return flush_requests(&self.queue);
        }
        let Some(shm) = &self.shm else {
            log::error!("no buffer path for this swapchain");
            return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
        };
        for (i, img) in images.iter().enumerate() {
            let size = img.backing.mapping().map_or(0, |m| m.len()) as i32;
            let pool = shm.create_pool(img.backing.fd(), size, &qh, ());
            let layout = img.layout();
            let buffer = pool.create_buffer(
                layout.offset as i32,
                img.extent.width as i32,
                img.extent.height as i32,
                layout.stride as i32,
                wl_shm::Format::try_from(formats::shm_code(drm))
                    .map_err(|_| vk::Result::ERROR_FORMAT_NOT_SUPPORTED)?,
                &qh,
                i,
            );
            self.buffers.push((buffer, Some(pool)));
        }
        flush_requests(&self.queue)
    }

    fn present(&mut self, index: usize, want_frame_event: bool) -> Result<(), vk::Result> {
        let qh = self.queue.handle();
        let (buffer, _) = self.buffers.get(index).ok_or(vk::Result::ERROR_UNKNOWN)?;
        let (w, h) = (
            self.params.extent.width as i32,
            self.params.extent.height as i32,
        );
        self.surface.attach(Some(buffer), 0, 0);
        if self.surface.version() >= 4 {
            self.surface.damage_buffer(0, 0, w, h);
        } else {
            self.surface.damage(0, 0, i32::MAX, i32::MAX);
        }
        if want_frame_event {
            self.surface.frame(&qh, ());
        }
        if self.params.present_mode == vk::PresentModeKHR::FIFO_RELAXED {
            // Late (a refresh has passed since the surface last changed):
            // shown at once, tearing; otherwise at the next refresh.
            let late = self
                .state
                .last_done
                .is_some_and(|t| t.elapsed() > self.state.refresh);
            if late != self.relaxed_async {
                if let Some((control, _)) = self.tearing.lock().as_ref() {
                    let hint = if late {
                        wp_tearing_control_v1::PresentationHint::Async
                    } else {
                        wp_tearing_control_v1::PresentationHint::Vsync
                    };
                    control.set_presentation_hint(hint);
                    log::debug!("FIFO_RELAXED: frame late {late}, presentation hint {hint:?}");
                    self.relaxed_async = late;
                }
            }
        }
        // FIFO paced by the compositor needs its refresh period: asked for
        // until it is known.
        let own = (self.fifo.is_some() && !self.state.refresh_known).then_some(OWN_FEEDBACK);
        if let (Some(p), Some(seq)) = (&self.presentation, self.feedback_seq.take().or(own)) {
            p.feedback(&self.surface, &qh, seq);
        }
        if let Some(f) = &self.fifo {
            super::fifo::constrain(f);
        }
        if let (Some(slots), Some(timer)) = (&mut self.slots, &self.commit_timer) {
            let at = slots.stamp(Instant::now());
            match (
                timer.lock().as_ref(),
                super::commit_timing::timestamp(self.state.clock, at),
            ) {
                (Some((t, _)), Some((hi, lo, ns))) => t.set_timestamp(hi, lo, ns),
                _ => crate::warn_once!(
                    "wp_commit_timing_v1: no timestamp on presentation clock {}; the commit is not held",
                    self.state.clock
                ),
            }
        }
        if let Some(ex) = &mut self.explicit {
            if !ex.set_points(index) {
                log::debug!("image {index}: committed without sync points (syncobj surface gone)");
                self.state.explicit = false;
            }
        }
        self.surface.commit();
        match self.queue.flush() {
            Ok(()) => Ok(()),
            Err(wayland_backend::client::WaylandError::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                Ok(())
            }
            Err(e) => {
                log::warn!("wayland: {e}");
                Err(vk::Result::ERROR_SURFACE_LOST_KHR)
            }
        }
    }

    fn fifo_pacing(&self) -> Option<Duration> {
        // Until the compositor said its refresh, half the default: a faster
        // output is not held back while the layer learns it.
        let share = if self.state.refresh_known {
            super::fifo::PACE_SHARE
        } else {
            0.5
        };
        self.fifo
            .as_ref()
            .map(|_| self.state.refresh.mul_f64(share))
    }

    fn pace_commits(&mut self, interval: Duration) -> bool {
        if self.commit_timer.is_none() {
            return false;
        }
        log::info!(
            "SYNCBRIDGE_FPS_LIMIT: the compositor holds each commit until its time (wp_commit_timing_v1), one every {:.1} ms",
            interval.as_secs_f64() * 1000.0
        );
        self.slots = Some(crate::wsi::frame_limit::Slots::new(interval));
        true
    }

    fn next_commit_time(&self) -> Option<Instant> {
        self.slots.as_ref()?.next()
    }

    fn last_commit_time(&self) -> Option<Instant> {
        self.slots.as_ref()?.last()
    }

    fn request_feedback(&mut self, seq: u64) -> bool {
        self.feedback_seq = Some(seq);
        self.presentation.is_some()
    }

    fn dispatch(
        &mut self,
        wake: BorrowedFd<'_>,
        deadline: Option<Instant>,
        events: &mut Vec<BackendEvent>,
    ) -> Result<(), vk::Result> {
        let mut deadline = deadline;
        let mut fds = vec![wake];
        if let Some(ex) = &mut self.explicit {
            ex.collect(&mut self.state.events);
            let (release_fds, due) = ex.watch.poll_set();
            fds.extend(release_fds);
            if let Some(due) = due {
                deadline = Some(deadline.map_or(due, |d| d.min(due)));
            }
        }
        let r = conn::dispatch_until(&mut self.queue, &mut self.state, &fds, deadline, |s| {
            !s.events.is_empty()
        });
        drop(fds);
        if let Some(ex) = &mut self.explicit {
            ex.collect(&mut self.state.events);
        }
        events.append(&mut self.state.events);
        match r {
            Ok(Woken::Done | Woken::Wake | Woken::Deadline) => Ok(()),
            Err(e) => {
                events.push(BackendEvent::Lost);
                Err(e)
            }
        }
    }
}

impl Drop for WaylandBackend {
    fn drop(&mut self) {
        for (buffer, pool) in self.buffers.drain(..) {
            buffer.destroy();
            if let Some(p) = pool {
                p.destroy();
            }
        }
        if let Some(p) = self.presentation.take() {
            p.destroy();
        }
        self.explicit.take();
        let _ = self.queue.flush();
    }
}
