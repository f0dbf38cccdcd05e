//! One client's connection: its requests on their way to the real server,
//! and the server's answers on their way back.
//!
//! The real server has no DRI3, and Present without syncobjs. The relay
//! answers `QueryExtension("DRI3")` with an opcode of its own and takes
//! every DRI3 request itself; it says DRI3 1.4 and Present 1.4 with
//! `PresentCapabilitySyncobj`; and it turns `PresentPixmapSynced` into
//! what the real server can do: once the acquire point has signalled, the
//! dma-buf's pixels go into a real pixmap of the same id (`PutImage` on a
//! connection of the relay's own), and a plain `PresentPixmap` of it goes
//! on; when the server says the pixmap is idle, the release point is
//! signalled. Each request the relay takes itself is replaced by one the
//! real server answers the same way (`GetInputFocus` for one with a reply,
//! whose reply the relay swaps for its own; `NoOperation` or
//! `CreatePixmap` for one without), so the sequence numbers of both sides
//! stay the same.

use crate::node::Node;
use crate::wire::{self, u16_at, u32_at, Reader};
use smithay::backend::allocator::dmabuf::{Dmabuf, DmabufMapping};
use smithay::reexports::drm::control::{syncobj, Device as _};
use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use x11rb::rust_connection::RustConnection;

/// The major opcode the relay gives DRI3 (the real server's extensions
/// have opcodes from 128 up, a few dozen of them).
pub const DRI3_OPCODE: u8 = 250;
pub(crate) const QUERY_EXTENSION: u8 = 98;
pub(crate) const FREE_PIXMAP: u8 = 54;
pub(crate) const PRESENT_IDLE_NOTIFY: u16 = 2;
/// `PresentCapabilitySyncobj`.
pub(crate) const CAPABILITY_SYNCOBJ: u32 = 1 << 4;
/// How long an acquire point may take before the relay reports it.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the relay does to the server's reply to a request.
pub(crate) enum Fix {
    QueryExtension(Vec<u8>),
    PresentVersion(u32, u32),
    PresentCaps,
    /// The relay's own reply replaces the server's (to a `GetInputFocus`),
    /// with an fd.
    Replace(Vec<u8>, Option<OwnedFd>),
}

/// A pixmap made from a dma-buf.
pub(crate) struct Pix {
    pub(crate) dmabuf: Dmabuf,
    pub(crate) map: DmabufMapping,
    pub(crate) width: u16,
    pub(crate) height: u16,
    pub(crate) stride: usize,
    pub(crate) offset: usize,
    pub(crate) depth: u8,
}

// SAFETY: the mapping is only read, by the thread that holds the lock.
unsafe impl Send for Pix {}

/// A release point the relay owes the client.
pub struct Owed {
    pub handle: syncobj::Handle,
    pub point: u64,
    pub xid: u32,
    /// The server said the pixmap is idle (the signal may be held).
    pub idle: bool,
}

#[derive(Default)]
pub struct State {
    pub(crate) fixes: HashMap<u16, Fix>,
    /// Void requests sent as stand-ins (sequence, the client's major and
    /// minor opcode): an error for one names the client's request. Gone
    /// once a later sequence number came back.
    pub(crate) stands: VecDeque<(u16, u8, u8)>,
    pub(crate) present_opcode: Option<u8>,
    pub(crate) pixmaps: HashMap<u32, Pix>,
    pub(crate) syncobjs: HashMap<u32, syncobj::Handle>,
    pub(crate) last_release: HashMap<u32, u64>,
    /// Per pixmap, the release point of its newest synced present, until
    /// it is signalled.
    pub owed: HashMap<u32, Owed>,
    pub(crate) presents: u64,
    pub releases: u64,
    /// `--never-release`: release points are signalled only when the
    /// client goes, and a pixmap presented again before is no misuse.
    pub never_release: bool,
    pub errors: u64,
}

pub type Shared = Arc<Mutex<State>>;

/// A release point to signal `at` (the relay's releaser thread).
pub struct Due {
    pub at: Instant,
    pub pixmap: u32,
    pub state: Shared,
}

pub struct Relay {
    pub node: Arc<Node>,
    pub state: Shared,
    pub server: UnixStream,
    pub side: RustConnection,
    pub side_gcs: HashMap<u8, u32>,
    pub id: u64,
}

pub(crate) fn error(st: &mut State, id: u64, what: String) {
    st.errors += 1;
    println!("x11-proxy[{id}]: error: {what}");
}

/// Signals a release point the relay owes (if it still does).
pub fn release(node: &Node, st: &mut State, id: u64, pixmap: u32) {
    if let Some(o) = st.owed.remove(&pixmap) {
        match node.fd.syncobj_timeline_signal(&[o.handle], &[o.point]) {
            Ok(()) => {
                st.releases += 1;
                println!(
                    "x11-proxy[{id}]: release pixmap={pixmap:#x} syncobj={:#x} point={}",
                    o.xid, o.point
                );
            }
            Err(e) => error(st, id, format!("signalling release point {}: {e}", o.point)),
        }
    }
}

pub(crate) fn reply_header(seq: u16, extra_words: u32) -> Vec<u8> {
    let mut r = vec![0u8; 32];
    r[0] = 1;
    r[2..4].copy_from_slice(&seq.to_le_bytes());
    r[4..8].copy_from_slice(&extra_words.to_le_bytes());
    r
}

pub(crate) const GET_INPUT_FOCUS: [u8; 4] = [43, 0, 1, 0];
pub(crate) const NO_OPERATION: [u8; 4] = [127, 0, 1, 0];

impl Relay {
    /// Client to server, until the client goes.
    pub fn requests(&mut self, mut from: Reader) -> std::io::Result<()> {
        let mut seq: u16 = 0;
        loop {
            while let Some(len) = wire::request_len(&from.buf) {
                let req: Vec<u8> = from.buf.drain(..len).collect();
                seq = seq.wrapping_add(1);
                let out = self.request(&req, seq, &mut from);
                if trace() {
                    eprintln!(
                        "x11-proxy[{}]: > seq {seq} request {}.{} ({} bytes) as {}.{}",
                        self.id,
                        req[0],
                        req[1],
                        req.len(),
                        out[0],
                        out[1]
                    );
                }
                wire::send(&self.server, &out, &[])?;
            }
            if !from.fill()? {
                return Ok(());
            }
        }
    }

    pub(crate) fn fix(&self, seq: u16, fix: Fix) {
        self.state.lock().unwrap().fixes.insert(seq, fix);
    }

    /// What goes to the server for `req`.
    fn request(&mut self, req: &[u8], seq: u16, from: &mut Reader) -> Vec<u8> {
        let (major, minor) = (req[0], req[1]);
        let present = self.state.lock().unwrap().present_opcode;
        if major == QUERY_EXTENSION && req.len() >= 8 {
            let n = u16_at(req, 4) as usize;
            let name = req.get(8..8 + n).unwrap_or_default().to_vec();
            if name == b"DRI3" || name == b"Present" {
                self.fix(seq, Fix::QueryExtension(name));
            }
            return req.to_vec();
        }
        if major == DRI3_OPCODE {
            return self.dri3(req, seq, from);
        }
        if Some(major) == present {
            match minor {
                0 => self.fix(seq, Fix::PresentVersion(u32_at(req, 4), u32_at(req, 8))),
                4 => self.fix(seq, Fix::PresentCaps),
                1 => self.pixmap_implicit(req),
                5 => return self.pixmap_synced(req, seq, major),
                _ => {}
            }
            return req.to_vec();
        }
        if major == FREE_PIXMAP {
            self.state.lock().unwrap().pixmaps.remove(&u32_at(req, 4));
        }
        req.to_vec()
    }
}

/// `X11_PROXY_TRACE=1`: every request and answer on stderr.
pub(crate) fn trace() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("X11_PROXY_TRACE").is_some())
}

pub(crate) fn monotonic_ns() -> i64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec * 1_000_000_000 + t.tv_nsec
}
