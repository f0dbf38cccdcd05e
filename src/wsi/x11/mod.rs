//! The X11 backend: `VK_KHR_xcb_surface` and `VK_KHR_xlib_surface` on the
//! application's own connection (an Xlib `Display` is used through its xcb
//! connection, from `XGetXCBConnection`).
//!
//! Shared-memory path: each image's memfd is attached with MIT-SHM fd
//! passing and shown with `ShmPutImage` (plain `PutImage` from the mapping
//! without MIT-SHM ≥ 1.2). FIFO is paced by Present `NotifyMSC` events read
//! from a special-event queue the application never sees, or by a timer at
//! the RandR refresh rate without Present.

mod backend;
pub mod conn;
pub mod xlib;

use super::image::WindowSystemBuffers;
use super::platform::{Backend, BackendParams, PlatformSurface};
use super::wayland::formats::{DRM_FORMAT_ARGB8888, DRM_FORMAT_XRGB8888};
use crate::sync::Offer;
use ash::vk;
use conn::XErr;
use std::sync::{Arc, Mutex};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageOrder, VisualClass};
use x11rb::protocol::{dri3, present, randr, shm};
use x11rb::xcb_ffi::XCBConnection;

/// Whether the layer hands an X server dma-bufs: it must take them as
/// pixmaps (DRI3) and show pixmaps with Present, which tells when it is
/// done with one (`IdleNotify`); and `SYNCBRIDGE_BUFFERS=dmabuf` must ask
/// for it. The path is verified up to the server importing the images,
/// but no X server here can show a dma-buf (see tests/guest/README.md), so
/// MIT-SHM stays the default. Where the server speaks DRI3 1.4 with
/// syncobjs ([`Probe::explicit`]), the dma-buf path is explicitly synced
/// (`PresentPixmapSynced`, see `backend.rs`).
pub fn takes_dma_bufs(dri3: bool, present: bool) -> bool {
    dri3 && present && crate::config::get().buffers == crate::config::BufferMode::DmaBuf
}

/// Whether a server with these DRI3 and Present versions and Present
/// capabilities takes `PresentPixmapSynced`: DRI3 1.4 (`ImportSyncobj`),
/// Present 1.4 and `PresentCapabilitySyncobj`.
pub fn speaks_explicit(dri3: Option<(u32, u32)>, present: Option<(u32, u32)>, caps: u32) -> bool {
    dri3.is_some_and(|v| v >= (1, 4))
        && present.is_some_and(|v| v >= (1, 4))
        && caps & u32::from(u8::from(present::Capability::SYNCOBJ)) != 0
}

/// DRI3 1.2 `GetSupportedModifiers` for the window's depth and bpp: the
/// window's and the screen's lists. Empty before 1.2, when the request
/// fails, and where the server lists none: Xorg 21's glamor answers no
/// modifiers unless the server was started with `-debug dmabuf_capable`
/// (glamor_egl.c; later servers turn it on for some drivers), though it
/// takes a linear buffer by `PixmapFromBuffer`.
fn server_modifiers(c: &XCBConnection, window: u32, p: &Probe) -> Vec<u64> {
    if !p.dri3.is_some_and(|v| v >= (1, 2)) {
        return Vec::new();
    }
    let cookie = dri3::get_supported_modifiers(c, window, p.depth, p.bpp);
    match conn::roundtrip(c, cookie) {
        Ok(r) => {
            let mut all = r.window_modifiers;
            all.extend(r.screen_modifiers);
            all
        }
        Err(_) => Vec::new(),
    }
}

/// What the server and the window offer, probed once per surface.
#[derive(Clone, Debug)]
pub struct Probe {
    pub root: u32,
    pub depth: u8,
    /// Bits per pixel of the window depth's ZPixmap format.
    pub bpp: u8,
    pub visual_class: VisualClass,
    pub masks: (u32, u32, u32),
    pub lsb_first: bool,
    /// MIT-SHM version, if the extension is there.
    pub shm: Option<(u16, u16)>,
    /// Present version, if the extension is there.
    pub present: Option<(u32, u32)>,
    /// DRI3 version, if the extension is there.
    pub dri3: Option<(u32, u32)>,
    /// Present `QueryCapabilities` for the window (asked only where DRI3
    /// and Present are both 1.4).
    pub present_caps: u32,
    /// Refresh rate of the screen (RandR; 60 when unknown).
    pub refresh_hz: u32,
}

impl Probe {
    /// MIT-SHM with fd passing (1.2).
    pub fn shm_fd(&self) -> bool {
        self.shm.is_some_and(|v| v >= (1, 2))
    }

    /// DRI3 1.4 and Present 1.4 with `PresentCapabilitySyncobj`: the
    /// server takes `PresentPixmapSynced` with syncobj timeline points
    /// (what Mesa's WSI checks too).
    pub fn explicit(&self) -> bool {
        speaks_explicit(self.dri3, self.present, self.present_caps)
    }

    /// The Vulkan format that matches the window's visual byte for byte.
    fn native(&self) -> Option<u32> {
        let true_color = matches!(
            self.visual_class,
            VisualClass::TRUE_COLOR | VisualClass::DIRECT_COLOR
        );
        if !true_color || self.bpp != 32 || !self.lsb_first {
            return None;
        }
        if self.masks != (0xff_0000, 0xff00, 0xff) {
            return None;
        }
        match self.depth {
            24 => Some(DRM_FORMAT_XRGB8888),
            32 => Some(DRM_FORMAT_ARGB8888),
            _ => None,
        }
    }
}

fn probe(c: &XCBConnection, window: u32) -> Result<Probe, XErr> {
    let geo = conn::roundtrip(c, c.get_geometry(window))?;
    let attrs = conn::roundtrip(c, c.get_window_attributes(window))?;
    let setup = x11rb::connection::Connection::setup(c);
    let visual = setup
        .roots
        .iter()
        .flat_map(|s| &s.allowed_depths)
        .flat_map(|d| &d.visuals)
        .find(|v| v.visual_id == attrs.visual);
    let bpp = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == geo.depth)
        .map_or(0, |f| f.bits_per_pixel);
    // x11rb looks extensions up with a round trip of its own, without a
    // timeout; the server just answered two, so it is there to answer.
    let ext = |name: &'static str| {
        x11rb::connection::RequestConnection::extension_information(c, name)
            .ok()
            .flatten()
            .is_some()
    };
    let shm = ext(shm::X11_EXTENSION_NAME)
        .then(|| conn::roundtrip(c, shm::query_version(c)).ok())
        .flatten()
        .map(|r| (r.major_version, r.minor_version));
    // 1.4: PresentPixmapSynced.
    let present = ext(present::X11_EXTENSION_NAME)
        .then(|| conn::roundtrip(c, present::query_version(c, 1, 4)).ok())
        .flatten()
        .map(|r| (r.major_version, r.minor_version));
    // 1.2: PixmapFromBuffers, with a modifier and a plane offset; 1.4:
    // ImportSyncobj.
    let dri3 = ext(dri3::X11_EXTENSION_NAME)
        .then(|| conn::roundtrip(c, dri3::query_version(c, 1, 4)).ok())
        .flatten()
        .map(|r| (r.major_version, r.minor_version));
    // Whether the server takes syncobj points for this window (a server
    // may speak the 1.4 protocols and still not, e.g. Xwayland on a
    // compositor without wp_linux_drm_syncobj_v1).
    let present_caps = if dri3.is_some_and(|v| v >= (1, 4)) && present.is_some_and(|v| v >= (1, 4))
    {
        conn::roundtrip(c, present::query_capabilities(c, window)).map_or(0, |r| r.capabilities)
    } else {
        0
    };
    let refresh_hz = if ext(randr::X11_EXTENSION_NAME) {
        refresh_rate(c, geo.root)
    } else {
        0
    };
    Ok(Probe {
        root: geo.root,
        depth: geo.depth,
        bpp,
        visual_class: visual.map_or(VisualClass::STATIC_GRAY, |v| v.class),
        masks: visual.map_or((0, 0, 0), |v| (v.red_mask, v.green_mask, v.blue_mask)),
        lsb_first: setup.image_byte_order == ImageOrder::LSB_FIRST,
        shm,
        present,
        dri3,
        present_caps,
        refresh_hz: if (1..=1000).contains(&refresh_hz) {
            refresh_hz
        } else {
            60
        },
    })
}

/// The refresh rate of the screen's first listed mode (RandR 1.3), in Hz;
/// 0 when unknown.
fn refresh_rate(c: &XCBConnection, root: u32) -> u32 {
    if conn::roundtrip(c, randr::query_version(c, 1, 3)).is_err() {
        return 0;
    }
    let Ok(res) = conn::roundtrip(c, randr::get_screen_resources_current(c, root)) else {
        return 0;
    };
    res.modes
        .iter()
        .filter(|m| m.htotal > 0 && m.vtotal > 0 && m.dot_clock > 0)
        .map(|m| {
            let hz = f64::from(m.dot_clock) / (f64::from(m.htotal) * f64::from(m.vtotal));
            hz.round() as u32
        })
        .next()
        .unwrap_or(0)
}

/// A `VkSurfaceKHR` made by `vkCreateXcbSurfaceKHR` or
/// `vkCreateXlibSurfaceKHR`.
pub struct X11Surface {
    platform: &'static str,
    conn: Arc<XCBConnection>,
    window: u32,
    probe: Mutex<Option<Probe>>,
    /// What [`server_modifiers`] answered, asked once per surface.
    modifiers: Mutex<Option<Vec<u64>>>,
}

impl X11Surface {
    /// [`server_modifiers`] for this surface, asked once.
    fn listed_modifiers(&self, p: &Probe) -> Vec<u64> {
        let mut cached = self.modifiers.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .get_or_insert_with(|| server_modifiers(&self.conn, self.window, p))
            .clone()
    }

    /// # Safety
    /// `connection` must be the application's live `xcb_connection_t`, and
    /// outlive the `VkSurfaceKHR`, as the Vulkan spec requires.
    pub unsafe fn new(
        platform: &'static str,
        connection: *mut std::ffi::c_void,
        window: u32,
    ) -> Result<Self, vk::Result> {
        // SAFETY: forwarded from the caller.
        let conn = unsafe { conn::wrap(connection) }?;
        Ok(Self {
            platform,
            conn: Arc::new(conn),
            window,
            probe: Mutex::new(None),
            modifiers: Mutex::new(None),
        })
    }

    fn probe(&self) -> Result<Probe, vk::Result> {
        let mut cached = self.probe.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cached.as_ref() {
            return Ok(p.clone());
        }
        let p = probe(&self.conn, self.window).map_err(|e| e.vk("probing the window"))?;
        log::debug!("x11: window {:#x}: {p:?}", self.window);
        if p.native().is_none() {
            log::warn!(
                "x11: window {:#x} has a visual the layer cannot show (depth {}, {} bpp, masks {:x?}, {:?})",
                self.window,
                p.depth,
                p.bpp,
                p.masks,
                p.visual_class
            );
        }
        *cached = Some(p.clone());
        Ok(p)
    }
}

impl PlatformSurface for X11Surface {
    fn platform(&self) -> &'static str {
        self.platform
    }

    fn current_extent(&self) -> Result<Option<vk::Extent2D>, vk::Result> {
        let geo = conn::roundtrip(&self.conn, (*self.conn).get_geometry(self.window))
            .map_err(|e| e.vk("GetGeometry"))?;
        Ok(Some(vk::Extent2D {
            width: u32::from(geo.width),
            height: u32::from(geo.height),
        }))
    }

    fn formats(&self) -> Result<Vec<(vk::Format, u32)>, vk::Result> {
        Ok(match self.probe()?.native() {
            Some(fourcc) => vec![
                (vk::Format::B8G8R8A8_UNORM, fourcc),
                (vk::Format::B8G8R8A8_SRGB, fourcc),
            ],
            None => Vec::new(),
        })
    }

    fn present_modes(&self) -> Vec<vk::PresentModeKHR> {
        super::ALL_PRESENT_MODES.to_vec()
    }

    fn composite_alpha(&self) -> vk::CompositeAlphaFlagsKHR {
        let base = vk::CompositeAlphaFlagsKHR::OPAQUE | vk::CompositeAlphaFlagsKHR::INHERIT;
        match self.probe() {
            Ok(p) if p.depth == 32 => base | vk::CompositeAlphaFlagsKHR::PRE_MULTIPLIED,
            _ => base,
        }
    }

    fn offer(&self) -> Result<Offer, vk::Result> {
        let p = self.probe()?;
        Ok(Offer {
            // ShmPutImage, or PutImage without MIT-SHM: the server can
            // always take pixels from memory.
            server_shm: true,
            server_dma_buf: takes_dma_bufs(p.dri3.is_some(), p.present.is_some()),
            server_explicit: p.explicit(),
            ..Offer::default()
        })
    }

    /// The modifiers [`server_modifiers`] lists; linear alone where it
    /// lists none (the buffer then goes by `PixmapFromBuffer`, which takes
    /// no modifier: the server's implicit layout, linear for a buffer with
    /// no tiling of its own).
    fn dma_buf_buffers(&self, _fourcc: u32, _opaque: bool) -> WindowSystemBuffers {
        let Ok(p) = self.probe() else {
            return WindowSystemBuffers::default();
        };
        let mut modifiers = self.listed_modifiers(&p);
        if modifiers.is_empty() {
            modifiers.push(0);
        }
        WindowSystemBuffers {
            modifiers,
            main_device: None,
        }
    }

    fn create_backend(&self, params: &BackendParams) -> Result<Box<dyn Backend>, vk::Result> {
        let probe = self.probe()?;
        let listed = !self.listed_modifiers(&probe).is_empty();
        let b = backend::X11Backend::new(self.conn.clone(), self.window, probe, listed, params)?;
        Ok(Box::new(b))
    }
}
