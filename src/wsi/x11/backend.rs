//! One swapchain's presentation on an X11 window.
//!
//! Two ways to hand the server a frame:
//! - **DRI3 + Present** (dma-buf images): each image's dma-buf becomes a
//!   pixmap once (`PixmapFromBuffers`, or `PixmapFromBuffer` before DRI3
//!   1.2 and where the server lists no modifiers), and `PresentPixmap`
//!   shows it. The frame's render fence is
//!   already in the dma-buf as an implicit write fence (the swapchain core
//!   put it there), so the server's reads wait for the GPU, not this
//!   thread. The server says when it is done with a pixmap (`IdleNotify`:
//!   the image is released) and when a frame was shown (`CompleteNotify`:
//!   the FIFO pacing).
//! - **DRI3 1.4 + Present 1.4 explicit sync** (the same pixmaps, where the
//!   server has `PresentCapabilitySyncobj`): each image's acquire and
//!   release timelines are imported once (`DRI3ImportSyncobj`), and
//!   `PresentPixmapSynced` carries the frame's acquire point (the server
//!   waits for it before it reads the pixmap) and a release point (the
//!   server signals it when it is done with the pixmap). The release
//!   point, not `IdleNotify`, gives the image back, watched by its eventfd
//!   in the presenter's poll set, as on Wayland.
//! - **Shared memory** (`ShmPutImage`, or `PutImage` bands) after the GPU
//!   is done, with Present `NotifyMSC` (or a timer) pacing FIFO.
//!
//! Every present ends with a `GetGeometry` round trip: the size check
//! (`OUT_OF_DATE` when the window no longer matches), the error check of
//! the requests before it, and, on the shared-memory path, the point after
//! which the server has copied the pixels (the image is released).

use super::conn::{self, SpecialEvents, XErr, ROUNDTRIP_TIMEOUT, SLICE};
use super::Probe;
use crate::sync::explicit::{ExplicitSync, ReleaseWatch};
use crate::sync::BufferKind;
use crate::wsi::image::SwapImage;
use crate::wsi::platform::{Backend, BackendEvent, BackendParams};
use ash::vk;
use std::os::fd::AsFd;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::dri3;
use x11rb::protocol::present;
use x11rb::protocol::shm;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, ImageFormat};
use x11rb::x11_utils::TryParse;
use x11rb::xcb_ffi::XCBConnection;

/// How the server gets the pixels.
enum Path {
    /// One MIT-SHM segment per image (the image's memfd, attached by fd).
    Shm(Vec<u32>),
    /// `PutImage` from the mapping.
    PutImage,
    /// One DRI3 pixmap per image (its dma-buf), shown by `PresentPixmap`.
    Dri3 {
        /// The server's DRI3 version.
        version: (u32, u32),
        pixmaps: Vec<u32>,
        /// Images whose pixmap the server holds (no `IdleNotify` yet).
        held: Vec<bool>,
    },
}

/// What FIFO waits for between frames.
enum Pacing {
    /// Present `NotifyMSC` and its `CompleteNotify`, read from the layer's
    /// own special-event queue.
    Msc {
        events: SpecialEvents,
        eid: u32,
        serial: u32,
        waiting: Option<u32>,
        /// The MSC of the newest `CompleteNotify` (FIFO_RELAXED targets
        /// the one after it).
        last_msc: Option<u64>,
    },
    /// A timer at the refresh rate (no Present extension).
    Timer {
        start: Instant,
        interval: Duration,
        due: Option<Instant>,
    },
}

/// Where an image's pixels are in memory (for `PutImage`).
struct Pixels {
    /// The mapping's address; the images outlive the backend (the core
    /// joins the presenter thread before destroying them).
    ptr: usize,
    len: usize,
    offset: usize,
    stride: usize,
}

pub(super) struct X11Backend {
    conn: Arc<XCBConnection>,
    window: u32,
    gc: u32,
    depth: u8,
    extent: vk::Extent2D,
    path: Path,
    pixels: Vec<Pixels>,
    pacing: Pacing,
    pending: Vec<BackendEvent>,
    lost: bool,
    want_shm: bool,
    /// DRI3 version, when the images are dma-bufs for DRI3 (until
    /// `import_images` makes `Path::Dri3`).
    dri3: Option<(u32, u32)>,
    /// The server lists DRI3 modifiers (`GetSupportedModifiers`), so the
    /// images go by `PixmapFromBuffers` with theirs; otherwise by
    /// `PixmapFromBuffer`.
    dri3_modifiers: bool,
    mode: vk::PresentModeKHR,
    /// The tag of the feedback the next present asks for.
    feedback_seq: Option<u64>,
    /// Present serials whose `CompleteNotify` is a frame's feedback, with
    /// the frame's tag.
    feedback_serials: Vec<(u32, u64)>,
    /// Explicit sync: the swapchain's timelines, until `import_images`
    /// has the server import them (`syncobjs`).
    explicit: Option<Arc<ExplicitSync>>,
    syncobjs: Option<Syncobjs>,
}

/// The server's imports of a swapchain's timelines (DRI3 1.4).
struct Syncobjs {
    /// Per image, the XIDs of its acquire and release timelines.
    xids: Vec<(u32, u32)>,
    /// Release points sent and not yet come.
    watch: ReleaseWatch,
}

/// `DRM_FORMAT_MOD_LINEAR`: the swapchain's dma-bufs are linear.
const DRM_FORMAT_MOD_LINEAR: u64 = 0;

/// The Present events the layer selects.
enum PresentEvent {
    /// `CompleteNotify` of a `PresentPixmap` or `NotifyMSC` with this
    /// serial, at `ust` (microseconds, `CLOCK_MONOTONIC`); `skipped`: the
    /// pixmap was never shown.
    Complete {
        serial: u32,
        ust: u64,
        msc: u64,
        skipped: bool,
    },
    /// `IdleNotify`: the server is done with this pixmap.
    Idle(u32),
}

/// Parses a Present generic event by its event type (the layouts differ,
/// so parsing as the wrong one would succeed with garbage).
fn present_event(bytes: &[u8]) -> Option<PresentEvent> {
    let evtype = u16::from_ne_bytes(bytes.get(8..10)?.try_into().ok()?);
    match evtype {
        present::COMPLETE_NOTIFY_EVENT => {
            present::CompleteNotifyEvent::try_parse(bytes)
                .ok()
                .map(|(ev, _)| PresentEvent::Complete {
                    serial: ev.serial,
                    ust: ev.ust,
                    msc: ev.msc,
                    skipped: ev.mode == present::CompleteMode::SKIP,
                })
        }
        present::IDLE_NOTIFY_EVENT => present::IdleNotifyEvent::try_parse(bytes)
            .ok()
            .map(|(ev, _)| PresentEvent::Idle(ev.pixmap)),
        _ => None,
    }
}

fn id(c: &XCBConnection) -> Result<u32, vk::Result> {
    c.generate_id().map_err(|e| {
        log::warn!("x11: no XID: {e}");
        vk::Result::ERROR_SURFACE_LOST_KHR
    })
}

fn sent<T>(r: Result<T, x11rb::errors::ConnectionError>) -> Result<T, XErr> {
    r.map_err(|_| XErr::Conn)
}

/// A round trip that orders everything before it (bounded).
fn sync(c: &XCBConnection) -> Result<(), XErr> {
    conn::roundtrip(c, c.get_input_focus()).map(|_| ())
}

/// After the checked requests `seqs` (sent while `res` held): a round
/// trip, then the first error of any of them.
fn settle(c: &XCBConnection, res: Result<(), XErr>, seqs: Vec<u64>) -> Result<(), XErr> {
    let mut res = res.and_then(|()| sync(c));
    for seq in seqs {
        if let Err(e) = conn::void_result(c, seq) {
            res = res.and(Err(e));
        }
    }
    res
}

impl X11Backend {
    pub(super) fn new(
        c: Arc<XCBConnection>,
        window: u32,
        probe: Probe,
        modifiers_listed: bool,
        params: &BackendParams,
    ) -> Result<Self, vk::Result> {
        let gc = id(&c)?;
        let gc_seq = conn::keep(
            sent((*c).create_gc(gc, window, &CreateGCAux::new().graphics_exposures(0)))
                .map_err(|e| e.vk("CreateGC"))?,
        );
        let interval = Duration::from_micros(1_000_000 / u64::from(probe.refresh_hz));
        let mut pacing = Pacing::Timer {
            start: Instant::now(),
            interval,
            due: None,
        };
        let mut msc_seq = None;
        if probe.present.is_some() {
            let eid = id(&c)?;
            // Register before selecting, so no event can reach the
            // application's queue.
            if let Some(events) = SpecialEvents::register(&c, eid) {
                let mask = if params.buffers == BufferKind::DmaBuf {
                    present::EventMask::COMPLETE_NOTIFY | present::EventMask::IDLE_NOTIFY
                } else {
                    present::EventMask::COMPLETE_NOTIFY
                };
                let cookie = present::select_input(&*c, eid, window, mask);
                msc_seq = Some(conn::keep(sent(cookie).map_err(|e| e.vk("SelectInput"))?));
                pacing = Pacing::Msc {
                    events,
                    eid,
                    serial: 0,
                    waiting: None,
                    last_msc: None,
                };
            }
        }
        sync(&c).map_err(|e| e.vk("creating the swapchain"))?;
        conn::void_result(&c, gc_seq).map_err(|e| e.vk("CreateGC"))?;
        let dri3 = (params.buffers == BufferKind::DmaBuf)
            .then_some(probe.dri3)
            .flatten();
        let dri3_modifiers = dri3.is_some() && modifiers_listed;
        if let Some(seq) = msc_seq {
            if let Err(e) = conn::void_result(&c, seq) {
                if dri3.is_some() {
                    // Without Present events a DRI3 pixmap is never known
                    // to be idle.
                    return Err(e.vk("Present SelectInput"));
                }
                log::warn!("x11: Present SelectInput failed ({e:?}); pacing by a timer");
                pacing = Pacing::Timer {
                    start: Instant::now(),
                    interval,
                    due: None,
                };
            }
        }
        Ok(Self {
            conn: c,
            window,
            gc,
            depth: probe.depth,
            extent: params.extent,
            path: Path::PutImage,
            pixels: Vec::new(),
            pacing,
            pending: Vec::new(),
            lost: false,
            want_shm: probe.shm_fd(),
            dri3,
            dri3_modifiers,
            mode: params.present_mode,
            feedback_seq: None,
            feedback_serials: Vec::new(),
            explicit: params
                .explicit
                .clone()
                .filter(|_| params.buffers == BufferKind::DmaBuf),
            syncobjs: None,
        })
    }

    /// `DRI3ImportSyncobj` of each image's acquire and release timelines
    /// (checked: a server that refuses one fails swapchain creation, with
    /// one line and nothing left imported).
    fn import_syncobjs(&self, timelines: &Arc<ExplicitSync>) -> Result<Syncobjs, vk::Result> {
        let c = &*self.conn;
        let fds = timelines.timeline_fds()?;
        let mut xids = Vec::new();
        let mut seqs = Vec::new();
        let mut res = Ok(());
        for (a, r) in fds {
            let (Ok(xa), Ok(xr)) = (c.generate_id(), c.generate_id()) else {
                res = Err(XErr::Conn);
                break;
            };
            // x11rb sends the fds and closes them once sent.
            for (xid, fd) in [(xa, a), (xr, r)] {
                match sent(dri3::import_syncobj(c, xid, self.window, fd)) {
                    Ok(cookie) => seqs.push(conn::keep(cookie)),
                    Err(e) => res = Err(e),
                }
            }
            xids.push((xa, xr));
            if res.is_err() {
                break;
            }
        }
        match settle(c, res, seqs) {
            Ok(()) => Ok(Syncobjs {
                xids,
                watch: ReleaseWatch::new(timelines.clone()),
            }),
            Err(e) => {
                for (a, r) in xids {
                    let _ = dri3::free_syncobj(c, a);
                    let _ = dri3::free_syncobj(c, r);
                }
                Err(e.vk("DRI3ImportSyncobj of the swapchain's timelines"))
            }
        }
    }

    /// Makes a pixmap of each image's dma-buf. The server imports the
    /// buffers here, so an unsupported buffer fails swapchain creation,
    /// not a present.
    fn import_dri3(&self, images: &[SwapImage], version: (u32, u32)) -> Result<Vec<u32>, XErr> {
        let c = &*self.conn;
        let (w, h) = (self.extent.width as u16, self.extent.height as u16);
        let mut pixmaps = Vec::new();
        let mut seqs = Vec::new();
        let mut res = Ok(());
        for img in images {
            let Some(buf) = img.backing.dma_buf() else {
                res = Err(XErr::Conn);
                break;
            };
            let Ok(fd) = buf.as_fd().try_clone_to_owned() else {
                res = Err(XErr::Conn);
                break;
            };
            let pixmap = match c.generate_id() {
                Ok(p) => p,
                Err(_) => {
                    res = Err(XErr::Conn);
                    break;
                }
            };
            let modifier = img.modifier.unwrap_or(DRM_FORMAT_MOD_LINEAR);
            let plane = |i: usize| {
                img.planes
                    .get(i)
                    .map_or((0, 0), |l| (l.stride, l.offset as u32))
            };
            let (stride, offset) = plane(0);
            let cookie = if version >= (1, 2) && self.dri3_modifiers {
                // One fd per plane: the same dma-buf, as Mesa sends it.
                let mut fds = vec![fd];
                for _ in 1..img.planes.len() {
                    match fds[0].try_clone() {
                        Ok(f) => fds.push(f),
                        Err(_) => break,
                    }
                }
                let ((s1, o1), (s2, o2), (s3, o3)) = (plane(1), plane(2), plane(3));
                dri3::pixmap_from_buffers(
                    c,
                    pixmap,
                    self.window,
                    w,
                    h,
                    stride,
                    offset,
                    s1,
                    o1,
                    s2,
                    o2,
                    s3,
                    o3,
                    self.depth,
                    32,
                    modifier,
                    fds,
                )
            } else if offset == 0
                && stride <= u32::from(u16::MAX)
                && modifier == DRM_FORMAT_MOD_LINEAR
                && img.planes.len() == 1
            {
                dri3::pixmap_from_buffer(
                    c,
                    pixmap,
                    self.window,
                    buf.size().unwrap_or(0) as u32,
                    w,
                    h,
                    stride as u16,
                    self.depth,
                    32,
                    fd,
                )
            } else {
                log::warn!(
                    "x11: DRI3 {}.{} (modifiers listed: {}) cannot take an image with modifier {modifier:#x} at offset {offset} with stride {stride}",
                    version.0,
                    version.1,
                    self.dri3_modifiers
                );
                res = Err(XErr::Error { code: 8, major: 0 });
                break;
            };
            match sent(cookie) {
                Ok(cookie) => {
                    seqs.push(conn::keep(cookie));
                    pixmaps.push(pixmap);
                }
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        match settle(c, res, seqs) {
            Ok(()) => Ok(pixmaps),
            Err(e) => {
                for p in pixmaps {
                    let _ = c.free_pixmap(p);
                }
                Err(e)
            }
        }
    }

    fn attach_all(&self, images: &[SwapImage]) -> Result<Vec<u32>, XErr> {
        let c = &*self.conn;
        let mut segs = Vec::new();
        let mut seqs = Vec::new();
        for img in images {
            let seg = c.generate_id().map_err(|_| XErr::Conn)?;
            let fd = img
                .backing
                .fd()
                .try_clone_to_owned()
                .map_err(|_| XErr::Conn)?;
            seqs.push(conn::keep(sent(shm::attach_fd(c, seg, fd, true))?));
            segs.push(seg);
        }
        sync(c)?;
        let mut res = Ok(());
        for seq in seqs {
            if let Err(e) = conn::void_result(c, seq) {
                res = Err(e);
            }
        }
        match res {
            Ok(()) => Ok(segs),
            Err(e) => {
                for seg in segs {
                    let _ = shm::detach(c, seg);
                }
                Err(e)
            }
        }
    }

    fn describe(&self) -> String {
        let path = match &self.path {
            Path::Shm(_) => "MIT-SHM (memfd attached by fd, ShmPutImage)".to_string(),
            Path::PutImage => "PutImage from the mapping (no MIT-SHM fd passing)".to_string(),
            Path::Dri3 {
                version: (a, b), ..
            } => format!(
                "DRI3 {a}.{b} pixmaps of the dma-bufs ({}), {}",
                if (*a, *b) >= (1, 2) && self.dri3_modifiers {
                    "PixmapFromBuffers, LINEAR"
                } else if (*a, *b) >= (1, 2) {
                    "PixmapFromBuffer: the server lists no modifiers"
                } else {
                    "PixmapFromBuffer"
                },
                if self.syncobjs.is_some() {
                    "PresentPixmapSynced with syncobj timeline points (DRI3ImportSyncobj), released by release points"
                } else {
                    "PresentPixmap, released on IdleNotify"
                }
            ),
        };
        let pacing = match &self.pacing {
            Pacing::Msc { .. } if matches!(self.path, Path::Dri3 { .. }) => {
                "Present CompleteNotify".to_string()
            }
            Pacing::Msc { .. } => "Present NotifyMSC".to_string(),
            Pacing::Timer { interval, .. } => {
                format!("a timer at {:.1} Hz", 1.0 / interval.as_secs_f64())
            }
        };
        format!(
            "x11: window {:#x} depth {}: {path}; FIFO paced by {pacing}",
            self.window, self.depth
        )
    }

    /// Sends image `index` with `PutImage`, in bands that fit a request.
    fn put_image(&self, index: usize, voids: &mut Vec<u64>) -> Result<(), XErr> {
        let c = &*self.conn;
        let p = &self.pixels[index];
        let (w, h) = (self.extent.width as usize, self.extent.height as usize);
        let row = w * 4;
        let max = c.maximum_request_bytes().saturating_sub(64).min(4 << 20);
        let band = (max / row.max(1)).clamp(1, h.max(1));
        // SAFETY: the image's live mapping of `len` bytes (see `Pixels`);
        // the application does not write it while it is presented.
        let mem = unsafe { std::slice::from_raw_parts(p.ptr as *const u8, p.len) };
        let mut y = 0;
        while y < h {
            let rows = band.min(h - y);
            let mut data = Vec::with_capacity(rows * row);
            for r in y..y + rows {
                let start = p.offset + r * p.stride;
                data.extend_from_slice(mem.get(start..start + row).ok_or(XErr::Conn)?);
            }
            voids.push(conn::keep(sent(c.put_image(
                ImageFormat::Z_PIXMAP,
                self.window,
                self.gc,
                w as u16,
                rows as u16,
                0,
                y as i16,
                0,
                self.depth,
                &data,
            ))?));
            y += rows;
        }
        Ok(())
    }

    fn present_inner(
        &mut self,
        index: usize,
        want_frame_event: bool,
    ) -> Result<vk::Extent2D, XErr> {
        let c = &*self.conn;
        let mut voids = Vec::new();
        let (w, h) = (self.extent.width as u16, self.extent.height as u16);
        match &mut self.path {
            Path::Shm(segs) => {
                let p = &self.pixels[index];
                voids.push(conn::keep(sent(shm::put_image(
                    c,
                    self.window,
                    self.gc,
                    (p.stride / 4) as u16,
                    h,
                    0,
                    0,
                    w,
                    h,
                    0,
                    0,
                    self.depth,
                    ImageFormat::Z_PIXMAP.into(),
                    false,
                    segs[index],
                    p.offset as u32,
                ))?));
            }
            Path::PutImage => self.put_image(index, &mut voids)?,
            Path::Dri3 { pixmaps, held, .. } => {
                let Pacing::Msc {
                    serial,
                    waiting,
                    last_msc,
                    ..
                } = &mut self.pacing
                else {
                    return Err(XErr::Conn);
                };
                *serial = serial.wrapping_add(1);
                // IMMEDIATE may tear; the others wait for a vblank. FIFO
                // sends the next frame only after this one's
                // CompleteNotify (the core waits for the frame event);
                // MAILBOX sends each, and the server shows the newest
                // queued for a vblank (the others complete as skipped).
                // FIFO_RELAXED (Present's async-if-late): the vblank after
                // the one that showed the previous frame, at once (tearing)
                // if that has passed already.
                let (options, target_msc) = match (self.mode, *last_msc) {
                    (vk::PresentModeKHR::IMMEDIATE, _) => (present::Option::ASYNC, 0),
                    (vk::PresentModeKHR::FIFO_RELAXED, Some(m)) => {
                        (present::Option::ASYNC, m.wrapping_add(1))
                    }
                    _ => (present::Option::NONE, 0),
                };
                let cookie = match &mut self.syncobjs {
                    Some(so) => {
                        let (acquire_xid, release_xid) = so.xids[index];
                        let acquire = so.watch.sync().acquire_point(index);
                        let release = so.watch.next(index);
                        present::pixmap_synced(
                            c,
                            self.window,
                            pixmaps[index],
                            *serial,
                            0,
                            0,
                            0,
                            0,
                            0,
                            acquire_xid,
                            release_xid,
                            acquire,
                            release,
                            options.into(),
                            target_msc,
                            0,
                            0,
                            &[],
                        )
                    }
                    None => {
                        held[index] = true;
                        present::pixmap(
                            c,
                            self.window,
                            pixmaps[index],
                            *serial,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0,
                            options.into(),
                            target_msc,
                            0,
                            0,
                            &[],
                        )
                    }
                };
                voids.push(conn::keep(sent(cookie)?));
                *waiting = want_frame_event.then_some(*serial);
                if let Some(seq) = self.feedback_seq.take() {
                    self.feedback_serials.push((*serial, seq));
                }
            }
        }
        let feedback = self.feedback_seq.take();
        if (want_frame_event || feedback.is_some()) && !matches!(self.path, Path::Dri3 { .. }) {
            match &mut self.pacing {
                Pacing::Msc {
                    serial, waiting, ..
                } => {
                    *serial = serial.wrapping_add(1);
                    // The next MSC: target 0 is past, divisor 1 matches
                    // every count.
                    voids.push(conn::keep(sent(present::notify_msc(
                        c,
                        self.window,
                        *serial,
                        0,
                        1,
                        0,
                    ))?));
                    if want_frame_event {
                        *waiting = Some(*serial);
                    }
                    // The pixels are in the window once the server has
                    // run the ShmPutImage; they are on screen at the next
                    // vblank, which this CompleteNotify reports.
                    if let Some(seq) = feedback {
                        self.feedback_serials.push((*serial, seq));
                    }
                }
                Pacing::Timer {
                    start,
                    interval,
                    due,
                } => {
                    let now = Instant::now();
                    let n = (now - *start).as_nanos() / interval.as_nanos().max(1) + 1;
                    *due = Some(*start + *interval * n as u32);
                }
            }
        }
        let cookie = sent(c.get_geometry(self.window))?;
        let seq = cookie.sequence_number();
        std::mem::forget(cookie);
        conn::flush(c)?;
        let geo = conn::wait_reply::<x11rb::protocol::xproto::GetGeometryReply>(
            c,
            seq,
            Instant::now() + ROUNDTRIP_TIMEOUT,
        )?;
        for v in voids {
            conn::void_result(c, v)?;
        }
        Ok(vk::Extent2D {
            width: u32::from(geo.width),
            height: u32::from(geo.height),
        })
    }
}

impl Backend for X11Backend {
    fn import_images(&mut self, images: &[SwapImage]) -> Result<(), vk::Result> {
        self.pixels = images
            .iter()
            .map(|img| Pixels {
                // A driver's dma-buf has no mapping; it only goes by DRI3.
                ptr: img.backing.mapping().map_or(0, |m| m.as_ptr() as usize),
                len: img.backing.mapping().map_or(0, |m| m.len()),
                offset: img.layout().offset as usize,
                stride: img.layout().stride as usize,
            })
            .collect();
        if self.pixels.iter().any(|p| p.stride % 4 != 0) {
            log::error!("x11: image rows are not whole pixels");
            return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
        }
        if let Some(version) = self.dri3 {
            let pixmaps = self
                .import_dri3(images, version)
                .map_err(|e| e.vk("DRI3 pixmap import"))?;
            self.path = Path::Dri3 {
                version,
                held: vec![false; pixmaps.len()],
                pixmaps,
            };
            if let Some(sync) = self.explicit.take() {
                self.syncobjs = Some(self.import_syncobjs(&sync)?);
            }
        } else if self.want_shm {
            match self.attach_all(images) {
                Ok(segs) => self.path = Path::Shm(segs),
                Err(XErr::Error { code, major }) => log::warn!(
                    "x11: MIT-SHM attach failed (X error {code}, request {major}); using PutImage"
                ),
                Err(e) => return Err(e.vk("attaching shared memory")),
            }
        }
        log::info!("{}", self.describe());
        Ok(())
    }

    fn present(&mut self, index: usize, want_frame_event: bool) -> Result<(), vk::Result> {
        if self.lost || index >= self.pixels.len() {
            return Err(vk::Result::ERROR_SURFACE_LOST_KHR);
        }
        match self.present_inner(index, want_frame_event) {
            Ok(size) => {
                if !matches!(self.path, Path::Dri3 { .. }) {
                    // The server has copied the pixels.
                    self.pending.push(BackendEvent::Released(index));
                }
                if size != self.extent {
                    log::debug!(
                        "x11: window is {}x{}, swapchain {}x{}: out of date",
                        size.width,
                        size.height,
                        self.extent.width,
                        self.extent.height
                    );
                    self.pending.push(BackendEvent::OutOfDate);
                }
                Ok(())
            }
            Err(e) => {
                self.lost = true;
                if conn::window_gone(e) {
                    log::warn!("x11: window {:#x} is gone", self.window);
                }
                self.pending.push(BackendEvent::Lost);
                Err(e.vk("presenting"))
            }
        }
    }

    fn request_feedback(&mut self, seq: u64) -> bool {
        if !matches!(self.pacing, Pacing::Msc { .. }) {
            return false;
        }
        self.feedback_seq = Some(seq);
        true
    }

    fn dispatch(
        &mut self,
        wake: BorrowedFd<'_>,
        deadline: Option<Instant>,
        events: &mut Vec<BackendEvent>,
    ) -> Result<(), vk::Result> {
        if !self.pending.is_empty() {
            events.append(&mut self.pending);
            return Ok(());
        }
        let mut conn_idle = false;
        loop {
            if let Some(so) = &mut self.syncobjs {
                so.watch.collect(|i| events.push(BackendEvent::Released(i)));
            }
            let now = Instant::now();
            match &mut self.pacing {
                Pacing::Msc {
                    events: se,
                    waiting,
                    last_msc,
                    ..
                } => {
                    while let Some(bytes) = se.poll() {
                        match present_event(&bytes) {
                            Some(PresentEvent::Complete {
                                serial,
                                ust,
                                msc,
                                skipped,
                            }) => {
                                if !skipped {
                                    *last_msc = Some(last_msc.map_or(msc, |m| m.max(msc)));
                                }
                                if let Some(k) =
                                    self.feedback_serials.iter().position(|&(s, _)| s == serial)
                                {
                                    let (_, seq) = self.feedback_serials.swap_remove(k);
                                    events.push(BackendEvent::Shown {
                                        seq,
                                        at: (!skipped).then(|| {
                                            crate::wsi::platform::instant_of(
                                                1,
                                                ust.saturating_mul(1000),
                                            )
                                        }),
                                    });
                                }
                                if Some(serial) == *waiting {
                                    *waiting = None;
                                    events.push(BackendEvent::FrameDone);
                                }
                            }
                            Some(PresentEvent::Idle(pixmap)) => {
                                if let Path::Dri3 { pixmaps, held, .. } = &mut self.path {
                                    if let Some(i) = pixmaps.iter().position(|&p| p == pixmap) {
                                        if std::mem::take(&mut held[i]) {
                                            events.push(BackendEvent::Released(i));
                                        }
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Pacing::Timer { due, .. } => {
                    if due.is_some_and(|d| d <= now) {
                        *due = None;
                        events.push(BackendEvent::FrameDone);
                    }
                }
            }
            if !events.is_empty() {
                return Ok(());
            }
            if conn::broken(&self.conn) {
                self.lost = true;
                events.push(BackendEvent::Lost);
                return Err(XErr::Conn.vk("waiting for the X server"));
            }
            let (release_fds, release_due) = self
                .syncobjs
                .as_ref()
                .map_or((Vec::new(), None), |so| so.watch.poll_set());
            let left = match deadline {
                Some(d) if d <= now => return Ok(()),
                Some(d) => Some(d - now),
                None => None,
            };
            // A release point without an eventfd is looked at again soon.
            let left = match (left, release_due) {
                (l, Some(due)) => Some(l.map_or(due - now, |l| l.min(due - now))),
                (l, None) => l,
            };
            // Present events may come: a frame's completion, or (DRI3) a
            // pixmap going idle.
            let expecting = match (&self.pacing, &self.path) {
                (Pacing::Msc { waiting, .. }, Path::Dri3 { held, .. }) => {
                    waiting.is_some() || held.iter().any(|&h| h)
                }
                (Pacing::Msc { waiting, .. }, _) => {
                    waiting.is_some() || !self.feedback_serials.is_empty()
                }
                _ => false,
            };
            match &self.pacing {
                Pacing::Msc { .. } if expecting && !conn_idle => {
                    // The event may arrive on the socket: wait on it too, in
                    // slices (the application may read it first).
                    let t = left.map_or(SLICE, |l| l.min(SLICE));
                    let (readable, woken) =
                        conn::conn_readable(&self.conn, Some(wake), &release_fds, t);
                    if woken {
                        return Ok(());
                    }
                    // Readable but nothing for us: someone else is reading;
                    // do not spin on it for the next slice.
                    conn_idle = readable;
                }
                Pacing::Msc { .. } if expecting => {
                    conn_idle = false;
                    let t = left.map_or(SLICE, |l| l.min(SLICE));
                    if conn::wait_wake(wake, &release_fds, Some(t)) {
                        return Ok(());
                    }
                }
                Pacing::Timer { due: Some(d), .. } => {
                    let t = d.saturating_duration_since(now);
                    if conn::wait_wake(wake, &release_fds, Some(left.map_or(t, |l| l.min(t)))) {
                        return Ok(());
                    }
                }
                _ => {
                    if conn::wait_wake(wake, &release_fds, left) {
                        return Ok(());
                    }
                }
            }
        }
    }
}

impl Drop for X11Backend {
    fn drop(&mut self) {
        let c = &*self.conn;
        if conn::broken(c) {
            return;
        }
        // Errors of these (the window may be gone) are discarded by x11rb,
        // never delivered to the application.
        match &self.path {
            Path::Shm(segs) => {
                for seg in segs {
                    let _ = shm::detach(c, *seg);
                }
            }
            // The server keeps a pixmap it still shows until it is done.
            Path::Dri3 { pixmaps, .. } => {
                for p in pixmaps {
                    let _ = c.free_pixmap(*p);
                }
            }
            Path::PutImage => {}
        }
        // The server keeps its own reference to a timeline a present it
        // has not run yet uses.
        if let Some(so) = &self.syncobjs {
            for (a, r) in &so.xids {
                let _ = dri3::free_syncobj(c, *a);
                let _ = dri3::free_syncobj(c, *r);
            }
        }
        let _ = c.free_gc(self.gc);
        if let Pacing::Msc { eid, .. } = &self.pacing {
            let _ = present::select_input(c, *eid, self.window, present::EventMask::NO_EVENT);
            // Events already on their way still go to the layer's queue
            // until it is unregistered (when `pacing` drops, after this).
            let _ = sync(c);
        } else {
            let _ = conn::flush(c);
        }
    }
}
