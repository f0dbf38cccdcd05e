//! The DRI3 requests, which the relay takes itself: `QueryVersion` (1.4),
//! `Open` (its DRM node), `GetSupportedModifiers` (linear),
//! `PixmapFromBuffer(s)` (a real pixmap of the same id and the dma-buf
//! mapped beside it), `ImportSyncobj` and `FreeSyncobj` (timelines on its
//! DRM node).

use crate::relay::{
    error, reply_header, Fix, Pix, Relay, DRI3_OPCODE, GET_INPUT_FOCUS, NO_OPERATION,
};
use crate::wire::{self, u16_at, u32_at, Reader};
use smithay::backend::allocator::dmabuf::{Dmabuf, DmabufFlags, DmabufMappingMode};
use smithay::backend::allocator::{Fourcc, Modifier};
use smithay::reexports::drm::control::Device as _;
use std::os::fd::{AsFd, OwnedFd};

impl Relay {
    pub(crate) fn dri3(&mut self, req: &[u8], seq: u16, from: &mut Reader) -> Vec<u8> {
        let id = self.id;
        match req[1] {
            // QueryVersion
            0 => {
                let mut r = reply_header(seq, 0);
                r[8..12].copy_from_slice(&1u32.to_le_bytes());
                r[12..16].copy_from_slice(&u32_at(req, 8).min(4).to_le_bytes());
                self.fix(seq, Fix::Replace(r, None));
                GET_INPUT_FOCUS.to_vec()
            }
            // Open: the relay's own DRM node, as a server gives the one it
            // renders on (Mesa's WSI asks, to compare it with its device).
            1 => {
                let mut r = reply_header(seq, 0);
                r[1] = 1;
                match rustix::fs::open(
                    &self.node.path,
                    rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                ) {
                    Ok(fd) => {
                        println!("x11-proxy[{id}]: open node={}", self.node.path.display());
                        self.fix(seq, Fix::Replace(r, Some(fd)));
                    }
                    Err(e) => {
                        let mut st = self.state.lock().unwrap();
                        error(&mut st, id, format!("DRI3 Open: {e}"));
                    }
                }
                GET_INPUT_FOCUS.to_vec()
            }
            // GetSupportedModifiers: linear, for the screen.
            6 => {
                let mut r = reply_header(seq, 2);
                r[12..16].copy_from_slice(&1u32.to_le_bytes());
                r.extend_from_slice(&0u64.to_le_bytes());
                self.fix(seq, Fix::Replace(r, None));
                GET_INPUT_FOCUS.to_vec()
            }
            // PixmapFromBuffer (1.0) and PixmapFromBuffers (1.2)
            2 | 7 => {
                let (pixmap, window) = (u32_at(req, 4), u32_at(req, 8));
                let (nfds, w, h, stride, offset, depth, modifier) = if req[1] == 2 {
                    (
                        1,
                        u16_at(req, 16),
                        u16_at(req, 18),
                        u16_at(req, 20) as u32,
                        0,
                        req[22],
                        0,
                    )
                } else {
                    (
                        req[12] as usize,
                        u16_at(req, 16),
                        u16_at(req, 18),
                        u32_at(req, 20),
                        u32_at(req, 24),
                        req[52],
                        wire::u64_at(req, 56),
                    )
                };
                let fds: Vec<OwnedFd> = (0..nfds).filter_map(|_| from.fds.pop_front()).collect();
                let made = fds
                    .into_iter()
                    .next()
                    .ok_or_else(|| "no fd".to_string())
                    .and_then(|fd| {
                        let fourcc = if depth == 32 {
                            Fourcc::Argb8888
                        } else {
                            Fourcc::Xrgb8888
                        };
                        let mut b = Dmabuf::builder(
                            (i32::from(w), i32::from(h)),
                            fourcc,
                            Modifier::from(modifier),
                            DmabufFlags::empty(),
                        );
                        b.add_plane(fd, 0, offset, stride);
                        let d = b.build().ok_or("not a dma-buf layout")?;
                        let map = d
                            .map_plane(0, DmabufMappingMode::READ)
                            .map_err(|e| format!("mmap: {e:?}"))?;
                        Ok(Pix {
                            dmabuf: d,
                            map,
                            width: w,
                            height: h,
                            stride: stride as usize,
                            offset: offset as usize,
                            depth,
                        })
                    });
                let mut st = self.state.lock().unwrap();
                match made {
                    Ok(p) => {
                        println!(
                            "x11-proxy[{id}]: pixmap_from_buffers pixmap={pixmap:#x} {w}x{h} stride={stride} depth={depth} modifier={modifier:#x}"
                        );
                        st.pixmaps.insert(pixmap, p);
                    }
                    Err(e) => error(&mut st, id, format!("pixmap {pixmap:#x}: {e}")),
                }
                st.stands.push_back((seq, DRI3_OPCODE, req[1]));
                // CreatePixmap of the same id, size and depth.
                let mut out = vec![53, depth, 4, 0];
                out.extend_from_slice(&pixmap.to_le_bytes());
                out.extend_from_slice(&window.to_le_bytes());
                out.extend_from_slice(&w.to_le_bytes());
                out.extend_from_slice(&h.to_le_bytes());
                out
            }
            // ImportSyncobj
            10 => {
                let xid = u32_at(req, 4);
                let imported = from
                    .fds
                    .pop_front()
                    .ok_or_else(|| "no fd".to_string())
                    .and_then(|fd| {
                        self.node
                            .fd
                            .fd_to_syncobj(fd.as_fd(), false)
                            .map_err(|e| format!("DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE: {e}"))
                    });
                let mut st = self.state.lock().unwrap();
                match imported {
                    Ok(h) => {
                        println!("x11-proxy[{id}]: import_syncobj syncobj={xid:#x}");
                        if let Some(old) = st.syncobjs.insert(xid, h) {
                            let _ = self.node.fd.destroy_syncobj(old);
                            error(&mut st, id, format!("syncobj {xid:#x} imported twice"));
                        }
                    }
                    Err(e) => error(&mut st, id, format!("syncobj {xid:#x}: {e}")),
                }
                NO_OPERATION.to_vec()
            }
            // FreeSyncobj
            11 => {
                let xid = u32_at(req, 4);
                let mut st = self.state.lock().unwrap();
                match st.syncobjs.remove(&xid) {
                    Some(h) => {
                        println!("x11-proxy[{id}]: free_syncobj syncobj={xid:#x}");
                        // A release point the relay still owes keeps its
                        // handle until it is signalled.
                        if !st.owed.values().any(|o| o.handle == h) {
                            let _ = self.node.fd.destroy_syncobj(h);
                        }
                    }
                    None => error(&mut st, id, format!("FreeSyncobj of unknown {xid:#x}")),
                }
                NO_OPERATION.to_vec()
            }
            other => {
                let mut st = self.state.lock().unwrap();
                error(&mut st, id, format!("DRI3 request {other} is not handled"));
                NO_OPERATION.to_vec()
            }
        }
    }
}
