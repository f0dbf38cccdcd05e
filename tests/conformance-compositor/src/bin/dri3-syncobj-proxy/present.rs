//! Present requests on pixmaps from dma-bufs: `PresentPixmapSynced` (wait
//! for the acquire point, copy the pixels into the real pixmap, a plain
//! `PresentPixmap` goes on, the release point is owed) and a plain
//! `PresentPixmap` (wait for the dma-buf's fences, copy, it goes on).

use crate::relay::{error, monotonic_ns, Owed, Relay, ACQUIRE_TIMEOUT, NO_OPERATION};
use crate::wire::u32_at;
use smithay::backend::allocator::dmabuf::DmabufSyncFlags;
use smithay::reexports::drm::control::Device as _;
use std::time::Instant;
use x11rb::connection::{Connection as _, RequestConnection as _};
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};
use x11rb_protocol::protocol::present::{PixmapRequest, PixmapSyncedRequest};
use x11rb_protocol::x11_utils::RequestHeader;

impl Relay {
    /// `PresentPixmapSynced`: wait for the acquire point, copy the pixels
    /// into the real pixmap, then `PresentPixmap` it.
    pub(crate) fn pixmap_synced(&mut self, req: &[u8], seq: u16, present: u8) -> Vec<u8> {
        let id = self.id;
        let header = RequestHeader {
            major_opcode: req[0],
            minor_opcode: req[1],
            remaining_length: (req.len() / 4 - 1) as u32,
        };
        let r = match PixmapSyncedRequest::try_parse_request(header, &req[4..]) {
            Ok(r) => r,
            Err(e) => {
                let mut st = self.state.lock().unwrap();
                error(
                    &mut st,
                    id,
                    format!("PresentPixmapSynced does not parse: {e:?}"),
                );
                return NO_OPERATION.to_vec();
            }
        };
        let (acquire, release) = {
            let mut st = self.state.lock().unwrap();
            let a = st.syncobjs.get(&r.acquire_syncobj).copied();
            let rel = st.syncobjs.get(&r.release_syncobj).copied();
            if a.is_none() || rel.is_none() {
                error(
                    &mut st,
                    id,
                    format!(
                        "PresentPixmapSynced with unknown syncobjs {:#x}/{:#x}",
                        r.acquire_syncobj, r.release_syncobj
                    ),
                );
            }
            if r.acquire_point == 0 || r.release_point == 0 {
                error(&mut st, id, "a zero acquire or release point".into());
            }
            let last = st.last_release.insert(r.release_syncobj, r.release_point);
            if last.is_some_and(|l| l >= r.release_point) {
                error(
                    &mut st,
                    id,
                    format!(
                        "release point {} on {:#x} after {}",
                        r.release_point,
                        r.release_syncobj,
                        last.unwrap_or(0)
                    ),
                );
            }
            if let Some(o) = st.owed.get(&r.pixmap) {
                let what = format!(
                    "pixmap {:#x} presented again before its release point {} was signalled",
                    r.pixmap, o.point
                );
                if st.never_release {
                    println!(
                        "x11-proxy[{id}]: reuse_before_release pixmap={:#x} point={}",
                        r.pixmap, o.point
                    );
                } else {
                    error(&mut st, id, what);
                }
            }
            (a, rel)
        };
        // The acquire point: already signalled when the request came?
        let arrived = Instant::now();
        let mut pending = false;
        if let Some(a) = acquire {
            let mut at = [0u64];
            let _ = self.node.fd.syncobj_timeline_query(&[a], &mut at, false);
            pending = at[0] < r.acquire_point;
            let deadline = monotonic_ns() + ACQUIRE_TIMEOUT.as_nanos() as i64;
            if let Err(e) = self.node.fd.syncobj_timeline_wait(
                &[a],
                &[r.acquire_point],
                deadline,
                true,
                true,
                false,
            ) {
                let mut st = self.state.lock().unwrap();
                error(
                    &mut st,
                    id,
                    format!("acquire point {}: {e}", r.acquire_point),
                );
            }
        }
        let waited = arrived.elapsed();
        let centre = self.copy_in(r.pixmap);
        let mut st = self.state.lock().unwrap();
        st.presents += 1;
        let n = st.presents;
        if let Some(handle) = release {
            st.owed.insert(
                r.pixmap,
                Owed {
                    handle,
                    point: r.release_point,
                    xid: r.release_syncobj,
                    idle: false,
                },
            );
        }
        match centre {
            Ok(c) => println!(
                "x11-proxy[{id}]: present_synced n={n} pixmap={:#x} serial={} acquire={:#x}:{} release={:#x}:{} pending_on_arrival={} waited_ms={:.1} options={} centre={c:#010x}",
                r.pixmap,
                r.serial,
                r.acquire_syncobj,
                r.acquire_point,
                r.release_syncobj,
                r.release_point,
                u8::from(pending),
                waited.as_secs_f64() * 1000.0,
                r.options
            ),
            Err(e) => error(&mut st, id, format!("reading pixmap {:#x}: {e}", r.pixmap)),
        }
        st.stands.push_back((seq, present, 5));
        drop(st);
        let plain = PixmapRequest {
            window: r.window,
            pixmap: r.pixmap,
            serial: r.serial,
            valid: r.valid,
            update: r.update,
            x_off: r.x_off,
            y_off: r.y_off,
            target_crtc: r.target_crtc,
            wait_fence: 0,
            idle_fence: 0,
            options: r.options,
            target_msc: r.target_msc,
            divisor: r.divisor,
            remainder: r.remainder,
            notifies: r.notifies,
        };
        let (parts, _) = plain.serialize(present);
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    /// `PresentPixmap` of a pixmap from a dma-buf (implicit sync): wait
    /// for the buffer's write fences (`poll` for reading), copy the pixels
    /// in; the request goes on as it is.
    pub(crate) fn pixmap_implicit(&mut self, req: &[u8]) {
        let id = self.id;
        let pixmap = u32_at(req, 8);
        let arrived = Instant::now();
        let pending = {
            let st = self.state.lock().unwrap();
            let Some(p) = st.pixmaps.get(&pixmap) else {
                return;
            };
            let Some(fd) = p.dmabuf.handles().next() else {
                return;
            };
            let busy = |timeout: i32| {
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::IN,
                )];
                let ts = rustix::time::Timespec {
                    tv_sec: i64::from(timeout / 1000),
                    tv_nsec: i64::from(timeout % 1000) * 1_000_000,
                };
                !matches!(rustix::event::poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
            };
            let pending = busy(0);
            if pending && busy(ACQUIRE_TIMEOUT.as_millis() as i32) {
                drop(st);
                let mut st = self.state.lock().unwrap();
                error(
                    &mut st,
                    id,
                    format!("pixmap {pixmap:#x}: its fences did not signal"),
                );
            }
            pending
        };
        let waited = arrived.elapsed();
        let centre = self.copy_in(pixmap);
        let mut st = self.state.lock().unwrap();
        st.presents += 1;
        let n = st.presents;
        match centre {
            Ok(c) => println!(
                "x11-proxy[{id}]: present_implicit n={n} pixmap={pixmap:#x} pending_on_arrival={} waited_ms={:.1} centre={c:#010x}",
                u8::from(pending),
                waited.as_secs_f64() * 1000.0
            ),
            Err(e) => error(&mut st, id, format!("reading pixmap {pixmap:#x}: {e}")),
        }
    }

    /// Copies pixmap `xid`'s dma-buf into the real pixmap; its centre
    /// pixel.
    fn copy_in(&mut self, xid: u32) -> Result<u32, String> {
        let st = self.state.lock().unwrap();
        let p = st.pixmaps.get(&xid).ok_or("not a pixmap from a dma-buf")?;
        let (w, h) = (p.width as usize, p.height as usize);
        let row = w * 4;
        p.dmabuf
            .sync_plane(0, DmabufSyncFlags::START | DmabufSyncFlags::READ)
            .map_err(|e| format!("DMA_BUF_IOCTL_SYNC: {e:?}"))?;
        // SAFETY: a live read-only mapping of `length()` bytes.
        let mem = unsafe { std::slice::from_raw_parts(p.map.ptr() as *const u8, p.map.length()) };
        let mut data = Vec::with_capacity(row * h);
        for y in 0..h {
            let start = p.offset + y * p.stride;
            data.extend_from_slice(mem.get(start..start + row).ok_or("short buffer")?);
        }
        let _ = p
            .dmabuf
            .sync_plane(0, DmabufSyncFlags::END | DmabufSyncFlags::READ);
        let depth = p.depth;
        drop(st);
        let centre = {
            let o = (h / 2) * row + (w / 2) * 4;
            u32::from_le_bytes(data[o..o + 4].try_into().unwrap())
        };
        let gc = self.gc(depth).map_err(|e| format!("GC: {e}"))?;
        let c = &self.side;
        let max = c.maximum_request_bytes().saturating_sub(64).min(1 << 20);
        let band = (max / row.max(1)).clamp(1, h.max(1));
        let mut y = 0;
        while y < h {
            let rows = band.min(h - y);
            c.put_image(
                ImageFormat::Z_PIXMAP,
                xid,
                gc,
                w as u16,
                rows as u16,
                0,
                y as i16,
                0,
                depth,
                &data[y * row..(y + rows) * row],
            )
            .map_err(|e| format!("PutImage: {e}"))?;
            y += rows;
        }
        c.get_input_focus()
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?;
        if let Ok(Some(ev)) = c.poll_for_event() {
            return Err(format!("the server refused the copy: {ev:?}"));
        }
        Ok(centre)
    }

    /// A GC of `depth` on the relay's own connection.
    fn gc(&mut self, depth: u8) -> Result<u32, String> {
        if let Some(gc) = self.side_gcs.get(&depth) {
            return Ok(*gc);
        }
        let c = &self.side;
        let root = c.setup().roots[0].root;
        let pix = c.generate_id().map_err(|e| e.to_string())?;
        c.create_pixmap(depth, pix, root, 1, 1)
            .map_err(|e| e.to_string())?;
        let gc = c.generate_id().map_err(|e| e.to_string())?;
        c.create_gc(gc, pix, &Default::default())
            .map_err(|e| e.to_string())?
            .check()
            .map_err(|e| e.to_string())?;
        let _ = c.free_pixmap(pix);
        self.side_gcs.insert(depth, gc);
        Ok(gc)
    }
}
