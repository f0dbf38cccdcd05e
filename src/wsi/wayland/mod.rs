//! The Wayland backend: `VK_KHR_wayland_surface` on the application's own
//! `wl_display` and `wl_surface`.

mod backend;
pub mod commit_timing;
pub mod conn;
pub mod feedback;
pub mod fifo;
pub mod formats;
pub mod per_surface;

use super::image::WindowSystemBuffers;
use super::platform::{Backend, BackendParams, PlatformSurface};
use crate::sync::Offer;
use ash::vk;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wayland_client::protocol::{wl_callback, wl_registry, wl_shm};
use wayland_client::Proxy;
use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_dmabuf_feedback_v1, zwp_linux_dmabuf_v1,
};

/// `DRM_FORMAT_MOD_LINEAR`: the only layout the layer's dma-bufs have.
pub const MOD_LINEAR: u64 = 0;

/// How long the layer waits for the compositor to answer a round trip.
pub const ROUNDTRIP_TIMEOUT: Duration = Duration::from_secs(5);

/// A global the compositor advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    pub name: u32,
    pub interface: String,
    pub version: u32,
}

/// What the compositor offers, probed once per surface.
#[derive(Clone, Debug, Default)]
pub struct Globals {
    pub list: Vec<Global>,
    pub shm_formats: Vec<u32>,
    /// `(fourcc, modifier)` pairs `zwp_linux_dmabuf_v1` accepts.
    pub dmabuf_formats: Vec<(u32, u64)>,
    /// The device the compositor composites on (linux-dmabuf v4 feedback
    /// `main_device`), a `dev_t`.
    pub main_device: Option<u64>,
}

impl Globals {
    pub fn get(&self, interface: &str) -> Option<&Global> {
        self.list.iter().find(|g| g.interface == interface)
    }
}

#[derive(Default)]
struct Probe {
    globals: Globals,
    done: bool,
    /// The feedback's format table, once received.
    table: Vec<(u32, u64)>,
}

impl Dispatch<zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1, ()> for Probe {
    fn event(
        s: &mut Self,
        _: &zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1,
        ev: zwp_linux_dmabuf_feedback_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match ev {
            zwp_linux_dmabuf_feedback_v1::Event::FormatTable { fd, size } => {
                let mut buf = vec![0u8; (size as usize).min(feedback::MAX_TABLE_BYTES)];
                let mut read = 0;
                // A memfd: read it rather than map it.
                while read < buf.len() {
                    match rustix::io::pread(&fd, &mut buf[read..], read as u64) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read += n,
                    }
                }
                s.table = feedback::parse_format_table(&buf[..read]);
            }
            zwp_linux_dmabuf_feedback_v1::Event::MainDevice { device } => {
                s.globals.main_device = feedback::parse_dev_t(&device);
            }
            zwp_linux_dmabuf_feedback_v1::Event::TrancheFormats { indices } => {
                s.globals
                    .dmabuf_formats
                    .extend(feedback::resolve_tranche(&s.table, &indices));
            }
            _ => {}
        }
    }
}

impl Dispatch<wl_registry::WlRegistry, ()> for Probe {
    fn event(
        s: &mut Self,
        _: &wl_registry::WlRegistry,
        ev: wl_registry::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            name,
            interface,
            version,
        } = ev
        {
            s.globals.list.push(Global {
                name,
                interface,
                version,
            });
        }
    }
}

impl Dispatch<wl_shm::WlShm, ()> for Probe {
    fn event(
        s: &mut Self,
        _: &wl_shm::WlShm,
        ev: wl_shm::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_shm::Event::Format { format } = ev {
            s.globals.shm_formats.push(u32::from(format));
        }
    }
}

impl Dispatch<zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, ()> for Probe {
    fn event(
        s: &mut Self,
        _: &zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
        ev: zwp_linux_dmabuf_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match ev {
            zwp_linux_dmabuf_v1::Event::Modifier {
                format,
                modifier_hi,
                modifier_lo,
            } => {
                s.globals
                    .dmabuf_formats
                    .push((format, (modifier_hi as u64) << 32 | modifier_lo as u64));
            }
            // Before version 3 every advertised format takes the linear layout.
            zwp_linux_dmabuf_v1::Event::Format { format } => {
                s.globals.dmabuf_formats.push((format, MOD_LINEAR))
            }
            _ => {}
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for Probe {
    fn event(
        s: &mut Self,
        _: &wl_callback::WlCallback,
        ev: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = ev {
            s.done = true;
        }
    }
}

/// The compositor globals the layer binds when offered (on the
/// application's display, on the layer's own queues): `syncbridge-info`
/// lists those a compositor offers. Keep in step with the binds below and
/// in the backend.
pub const USED_GLOBALS: &[&str] = &[
    "wl_shm",
    "zwp_linux_dmabuf_v1",
    "wp_presentation",
    "wp_tearing_control_manager_v1",
    fifo::GLOBAL,
    commit_timing::GLOBAL,
    "wp_linux_drm_syncobj_manager_v1",
];

/// Asks the compositor for its globals and `wl_shm` formats (two round
/// trips on the layer's own queue, each bounded by [`ROUNDTRIP_TIMEOUT`]).
pub fn probe_globals(conn: &Connection) -> Result<Globals, vk::Result> {
    let mut queue = conn.new_event_queue::<Probe>();
    let qh = queue.handle();
    let display = conn.display();
    let registry = display.get_registry(&qh, ());
    let mut probe = Probe::default();
    let deadline = Instant::now() + ROUNDTRIP_TIMEOUT;
    display.sync(&qh, ());
    wait_done(&mut queue, &mut probe, deadline)?;
    let shm = probe.globals.get("wl_shm").cloned();
    let dmabuf = probe.globals.get("zwp_linux_dmabuf_v1").cloned();
    if let Some(g) = &shm {
        let _: wl_shm::WlShm = registry.bind(g.name, g.version.min(1), &qh, ());
    }
    // Version 4 describes formats through feedback (a format table and
    // tranches); version 3 lists them with modifier events.
    let dmabuf = dmabuf.map(|g| {
        registry.bind::<zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1, _, _>(
            g.name,
            g.version.min(4),
            &qh,
            (),
        )
    });
    let feedback = dmabuf
        .as_ref()
        .filter(|d| d.version() >= 4)
        .map(|d| d.get_default_feedback(&qh, ()));
    if shm.is_some() || dmabuf.is_some() {
        probe.done = false;
        display.sync(&qh, ());
        wait_done(&mut queue, &mut probe, deadline)?;
    }
    if let Some(f) = feedback {
        f.destroy();
    }
    if let Some(d) = dmabuf {
        if d.version() >= 2 {
            d.destroy();
        }
    }
    probe.globals.dmabuf_formats.sort_unstable();
    probe.globals.dmabuf_formats.dedup();
    Ok(probe.globals)
}

fn wait_done(
    queue: &mut wayland_client::EventQueue<Probe>,
    probe: &mut Probe,
    deadline: Instant,
) -> Result<(), vk::Result> {
    match conn::dispatch_until(queue, probe, &[], Some(deadline), |p| p.done)? {
        conn::Woken::Done => Ok(()),
        _ => {
            log::warn!("the compositor did not answer within {ROUNDTRIP_TIMEOUT:?}");
            Err(vk::Result::ERROR_SURFACE_LOST_KHR)
        }
    }
}

/// The fourccs the compositor takes as linear dma-bufs.
fn linear_formats(g: &Globals) -> Vec<u32> {
    g.dmabuf_formats
        .iter()
        .filter(|(_, m)| *m == MOD_LINEAR)
        .map(|(f, _)| *f)
        .collect()
}

/// The surface's `wp_tearing_control_v1` ([`per_surface`]).
pub type Tearing = per_surface::PerSurface<backend::TearingControl>;

/// The surface's `wp_linux_drm_syncobj_surface_v1` ([`per_surface`]), made
/// by the first swapchain on explicit sync, so that a recreated swapchain
/// reuses it (a second is the `surface_exists` protocol error). While it
/// exists every commit with a buffer must carry an acquire and a release
/// point, so a swapchain of the surface that is not on explicit sync
/// destroys it first.
pub type SyncobjSurface = per_surface::PerSurface<backend::SyncobjSurfaceProxy>;

/// The per-surface protocol objects ([`per_surface`]) a `VkSurfaceKHR`
/// keeps for the swapchains made on it.
#[derive(Clone, Default)]
pub struct SurfaceObjects {
    pub tearing: std::sync::Arc<Tearing>,
    pub fifo: std::sync::Arc<fifo::Fifo>,
    pub commit_timer: std::sync::Arc<commit_timing::CommitTimer>,
    pub syncobj: std::sync::Arc<SyncobjSurface>,
}

/// A `VkSurfaceKHR` made by `vkCreateWaylandSurfaceKHR`.
pub struct WaylandSurface {
    display: usize,
    surface: usize,
    globals: Mutex<Option<Globals>>,
    objects: SurfaceObjects,
}

impl WaylandSurface {
    /// # Safety
    /// `display` and `surface` must be the application's live objects and
    /// outlive the `VkSurfaceKHR`, as the Vulkan spec requires.
    pub unsafe fn new(display: *mut std::ffi::c_void, surface: *mut std::ffi::c_void) -> Self {
        Self {
            display: display as usize,
            surface: surface as usize,
            globals: Mutex::new(None),
            objects: SurfaceObjects::default(),
        }
    }

    fn globals(&self) -> Result<Globals, vk::Result> {
        let mut cached = self.globals.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = cached.as_ref() {
            return Ok(g.clone());
        }
        // SAFETY: the display outlives the surface (Vulkan's rule).
        let conn = unsafe { conn::connect(self.display as *mut _) };
        let g = probe_globals(&conn)?;
        log::debug!(
            "wayland globals: {:?}",
            g.list.iter().map(|g| &g.interface).collect::<Vec<_>>()
        );
        *cached = Some(g.clone());
        Ok(g)
    }
}

impl PlatformSurface for WaylandSurface {
    fn platform(&self) -> &'static str {
        "wayland"
    }

    fn current_extent(&self) -> Result<Option<vk::Extent2D>, vk::Result> {
        // On Wayland the swapchain defines the surface size.
        Ok(None)
    }

    fn formats(&self) -> Result<Vec<(vk::Format, u32)>, vk::Result> {
        let g = self.globals()?;
        let mut list = formats::vk_formats_for_shm(&g.shm_formats);
        for f in formats::vk_formats_for_drm(&linear_formats(&g)) {
            if !list.contains(&f) {
                list.push(f);
            }
        }
        Ok(list)
    }

    fn present_modes(&self) -> Vec<vk::PresentModeKHR> {
        let mut modes = vec![
            vk::PresentModeKHR::FIFO,
            vk::PresentModeKHR::MAILBOX,
            vk::PresentModeKHR::IMMEDIATE,
            super::FIFO_LATEST_READY,
        ];
        // FIFO_RELAXED shows a late frame at once, tearing: only where the
        // compositor lets a frame tear (without, it would be FIFO).
        if self
            .globals()
            .is_ok_and(|g| g.get("wp_tearing_control_manager_v1").is_some())
        {
            modes.insert(1, vk::PresentModeKHR::FIFO_RELAXED);
        }
        modes
    }

    fn composite_alpha(&self) -> vk::CompositeAlphaFlagsKHR {
        vk::CompositeAlphaFlagsKHR::OPAQUE
            | vk::CompositeAlphaFlagsKHR::PRE_MULTIPLIED
            | vk::CompositeAlphaFlagsKHR::INHERIT
    }

    fn offer(&self) -> Result<Offer, vk::Result> {
        let g = self.globals()?;
        Ok(Offer {
            server_shm: g.get("wl_shm").is_some(),
            server_dma_buf: !linear_formats(&g).is_empty(),
            server_explicit: g.get("wp_linux_drm_syncobj_manager_v1").is_some(),
            main_device: g.main_device,
            ..Offer::default()
        })
    }

    fn dma_buf_buffers(&self, fourcc: u32, opaque: bool) -> WindowSystemBuffers {
        let Ok(g) = self.globals() else {
            return WindowSystemBuffers::default();
        };
        let sent = if opaque {
            formats::opaque(fourcc)
        } else {
            fourcc
        };
        WindowSystemBuffers {
            modifiers: g
                .dmabuf_formats
                .iter()
                .filter(|&&(f, _)| f == sent)
                .map(|&(_, m)| m)
                .collect(),
            main_device: g.main_device,
        }
    }

    fn create_backend(&self, params: &BackendParams) -> Result<Box<dyn Backend>, vk::Result> {
        let globals = self.globals()?;
        // SAFETY: the display and surface outlive the VkSurfaceKHR, which
        // outlives its swapchains.
        let b = unsafe {
            backend::WaylandBackend::new(
                self.display as *mut _,
                self.surface as *mut _,
                &globals,
                params,
                self.objects.clone(),
            )
        }?;
        Ok(Box::new(b))
    }
}
