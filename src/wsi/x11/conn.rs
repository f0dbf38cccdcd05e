//! The layer's view of the application's xcb connection, and replies,
//! errors and Present events read with a timeout.
//!
//! Every request the layer sends through x11rb is *checked*, so an X error
//! it causes is kept for the layer and never reaches the application's event
//! queue. x11rb only waits for replies without a bound, so the layer reads
//! them itself with `xcb_poll_for_reply64` and `poll(2)` on the connection
//! fd. The application may be reading the same socket on its own thread (in
//! `xcb_wait_for_event`); libxcb then sorts our replies into place, so the
//! fd wait is cut into short slices and the reply looked up again after each.

use ash::vk;
use rustix::event::{poll, PollFd, PollFlags};
use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_void};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};
use x11rb::x11_utils::TryParse;
use x11rb::xcb_ffi::XCBConnection;

/// How long the layer waits for the X server to answer.
pub const ROUNDTRIP_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest single `poll(2)` on the shared connection fd (another thread
/// may consume what woke it).
pub const SLICE: Duration = Duration::from_millis(2);

/// libxcb's `xcb_extension_t`.
#[repr(C)]
pub struct XcbExtension {
    name: *const c_char,
    global_id: c_int,
}

/// An extension record libxcb fills in (`global_id`) on first use, under its
/// own lock.
pub struct ExtCell(UnsafeCell<XcbExtension>);
// SAFETY: only libxcb writes the cell, under its global extension lock; the
// name is a 'static C string.
unsafe impl Sync for ExtCell {}

/// The Present extension as libxcb names it (the layer does not link
/// libxcb-present; `xcb_register_for_special_xge` only needs the name).
pub static PRESENT_EXT: ExtCell = ExtCell(UnsafeCell::new(XcbExtension {
    name: c"Present".as_ptr(),
    global_id: 0,
}));

impl ExtCell {
    pub fn as_ptr(&self) -> *mut XcbExtension {
        self.0.get()
    }
}

#[link(name = "xcb")]
extern "C" {
    fn xcb_poll_for_reply64(
        c: *mut c_void,
        request: u64,
        reply: *mut *mut c_void,
        error: *mut *mut c_void,
    ) -> c_int;
    fn xcb_discard_reply64(c: *mut c_void, sequence: u64);
    fn xcb_connection_has_error(c: *mut c_void) -> c_int;
    fn xcb_register_for_special_xge(
        c: *mut c_void,
        ext: *mut XcbExtension,
        eid: u32,
        stamp: *mut u32,
    ) -> *mut c_void;
    fn xcb_unregister_for_special_event(c: *mut c_void, se: *mut c_void);
    fn xcb_poll_for_special_event(c: *mut c_void, se: *mut c_void) -> *mut u8;
}

/// Why a request did not get its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XErr {
    /// The server did not answer in time.
    Timeout,
    /// An X error with this code (and major opcode).
    Error { code: u8, major: u8 },
    /// The connection is broken.
    Conn,
}

impl XErr {
    /// The Vulkan result the application sees. The window or the
    /// connection being gone (or the server not answering) all mean the
    /// surface is lost.
    pub fn vk(self, what: &str) -> vk::Result {
        match self {
            XErr::Error { code, major } => {
                log::warn!("x11: {what}: X error {code} (request {major})")
            }
            XErr::Timeout => {
                log::warn!("x11: {what}: no answer from the X server within {ROUNDTRIP_TIMEOUT:?}")
            }
            XErr::Conn => log::warn!("x11: {what}: the X connection is broken"),
        }
        vk::Result::ERROR_SURFACE_LOST_KHR
    }
}

/// `BadWindow` and `BadDrawable`: the window is gone.
pub fn window_gone(e: XErr) -> bool {
    matches!(e, XErr::Error { code: 3 | 9, .. })
}

/// Wraps the application's connection (never a second one).
///
/// # Safety
/// `ptr` must be a live `xcb_connection_t` that outlives the returned value.
pub unsafe fn wrap(ptr: *mut c_void) -> Result<XCBConnection, vk::Result> {
    if ptr.is_null() {
        return Err(vk::Result::ERROR_INITIALIZATION_FAILED);
    }
    // SAFETY: forwarded from the caller; `false`: the application keeps
    // ownership.
    unsafe { XCBConnection::from_raw_xcb_connection(ptr, false) }.map_err(|e| {
        log::error!("x11: cannot use the application's xcb connection: {e}");
        vk::Result::ERROR_INITIALIZATION_FAILED
    })
}

pub fn raw(conn: &XCBConnection) -> *mut c_void {
    conn.get_raw_xcb_connection()
}

pub fn broken(conn: &XCBConnection) -> bool {
    // SAFETY: a live connection (the wrapper's invariant).
    unsafe { xcb_connection_has_error(raw(conn)) != 0 }
}

/// Whether `ptr` is a live connection without an error.
///
/// # Safety
/// `ptr` must be null or a valid `xcb_connection_t`.
pub unsafe fn ptr_alive(ptr: *mut c_void) -> bool {
    // SAFETY: forwarded from the caller.
    !ptr.is_null() && unsafe { xcb_connection_has_error(ptr) } == 0
}

/// A reply or error buffer malloc'ed by libxcb.
struct CBuf(*mut u8);

impl Drop for CBuf {
    fn drop(&mut self) {
        // SAFETY: libxcb allocates replies, errors and events with malloc
        // and hands ownership to the caller.
        unsafe { libc::free(self.0.cast()) }
    }
}

/// Waits until `deadline` for the answer to request `seq`: `Ok(Some(reply
/// bytes))`, `Ok(None)` for a void request without error.
fn wait_raw(conn: &XCBConnection, seq: u64, deadline: Instant) -> Result<Option<Vec<u8>>, XErr> {
    let c = raw(conn);
    loop {
        let mut reply: *mut c_void = std::ptr::null_mut();
        let mut error: *mut c_void = std::ptr::null_mut();
        // SAFETY: a live connection; `seq` is a request the layer sent and
        // has not consumed.
        let found = unsafe { xcb_poll_for_reply64(c, seq, &mut reply, &mut error) };
        if found != 0 {
            if !error.is_null() {
                let e = CBuf(error.cast());
                // SAFETY: xcb_generic_error_t is 32 bytes: code at 1, major
                // opcode at 10.
                let (code, major) = unsafe { (*e.0.add(1), *e.0.add(10)) };
                return Err(XErr::Error { code, major });
            }
            if reply.is_null() {
                return Ok(None);
            }
            let r = CBuf(reply.cast());
            // SAFETY: a reply is at least 32 bytes, with its extra length
            // in 4-byte units at offset 4.
            let bytes = unsafe {
                let len = u32::from_ne_bytes(*r.0.add(4).cast::<[u8; 4]>()) as usize;
                std::slice::from_raw_parts(r.0, 32 + 4 * len).to_vec()
            };
            return Ok(Some(bytes));
        }
        if broken(conn) {
            return Err(XErr::Conn);
        }
        let now = Instant::now();
        if now >= deadline {
            // SAFETY: as above; libxcb drops the answer when it comes.
            unsafe { xcb_discard_reply64(c, seq) };
            return Err(XErr::Timeout);
        }
        let _ = conn_readable(conn, None, &[], (deadline - now).min(SLICE));
    }
}

/// Waits (bounded) for the reply to a request and parses it.
pub fn wait_reply<R: TryParse>(
    conn: &XCBConnection,
    seq: u64,
    deadline: Instant,
) -> Result<R, XErr> {
    let bytes = wait_raw(conn, seq, deadline)?.ok_or(XErr::Conn)?;
    R::try_parse(&bytes).map(|(r, _)| r).map_err(|e| {
        log::warn!("x11: malformed reply ({} bytes): {e}", bytes.len());
        XErr::Conn
    })
}

/// The outcome of a checked void request. Only call it after a reply to a
/// later request arrived (then it never waits).
pub fn void_result(conn: &XCBConnection, seq: u64) -> Result<(), XErr> {
    wait_raw(conn, seq, Instant::now() + ROUNDTRIP_TIMEOUT).map(|_| ())
}

/// Sends a request with a reply and waits (bounded) for it.
pub fn roundtrip<R: TryParse>(
    conn: &XCBConnection,
    cookie: Result<x11rb::cookie::Cookie<'_, XCBConnection, R>, x11rb::errors::ConnectionError>,
) -> Result<R, XErr> {
    let cookie = cookie.map_err(|_| XErr::Conn)?;
    let seq = cookie.sequence_number();
    // The layer reads the answer itself (with a timeout).
    std::mem::forget(cookie);
    flush(conn)?;
    let start = Instant::now();
    let r = wait_reply(conn, seq, start + ROUNDTRIP_TIMEOUT);
    let took = start.elapsed();
    if took > Duration::from_secs(1) {
        log::info!("x11: the X server took {took:?} to answer");
    }
    r
}

/// The sequence number of a checked void request whose outcome the layer
/// reads with [`void_result`].
pub fn keep(cookie: x11rb::cookie::VoidCookie<'_, XCBConnection>) -> u64 {
    let seq = cookie.sequence_number();
    std::mem::forget(cookie);
    seq
}

pub fn flush(conn: &XCBConnection) -> Result<(), XErr> {
    use x11rb::connection::Connection;
    conn.flush().map_err(|_| XErr::Conn)
}

/// Polls the connection fd (and `wake`, and `extra`) for at most
/// `timeout`. Returns `(conn_readable_or_hung_up, woken)`: `woken` when
/// `wake` or one of `extra` is readable.
pub fn conn_readable(
    conn: &XCBConnection,
    wake: Option<BorrowedFd<'_>>,
    extra: &[BorrowedFd<'_>],
    timeout: Duration,
) -> (bool, bool) {
    use std::os::fd::AsFd;
    let fd = conn.as_fd();
    let mut fds = vec![PollFd::new(&fd, PollFlags::IN)];
    if let Some(w) = &wake {
        fds.push(PollFd::new(w, PollFlags::IN));
    }
    fds.extend(extra.iter().map(|f| PollFd::new(f, PollFlags::IN)));
    let ts = rustix::time::Timespec::try_from(timeout).ok();
    if poll(&mut fds, ts.as_ref()).is_err() {
        return (false, false);
    }
    (
        !fds[0].revents().is_empty(),
        fds[1..].iter().any(|f| !f.revents().is_empty()),
    )
}

/// Polls `wake` (and `extra`) for at most `timeout` (or forever with
/// `None`). Returns whether one became readable.
pub fn wait_wake(
    wake: BorrowedFd<'_>,
    extra: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> bool {
    let mut fds = vec![PollFd::new(&wake, PollFlags::IN)];
    fds.extend(extra.iter().map(|f| PollFd::new(f, PollFlags::IN)));
    let ts = timeout.and_then(|t| rustix::time::Timespec::try_from(t).ok());
    matches!(poll(&mut fds, ts.as_ref()), Ok(n) if n > 0)
}

/// A registration for the Present events of one event id, read by the layer
/// and never seen by the application (`xcb_register_for_special_xge`).
pub struct SpecialEvents {
    conn: usize,
    se: usize,
    stamp: *mut u32,
}

// SAFETY: libxcb's special-event queue is used under the connection's lock;
// the stamp is only written by libxcb.
unsafe impl Send for SpecialEvents {}

impl SpecialEvents {
    /// Call after the Present extension is known to be there (the
    /// registration looks up its opcode with a round trip).
    pub fn register(conn: &XCBConnection, eid: u32) -> Option<Self> {
        let stamp = Box::into_raw(Box::new(0u32));
        // SAFETY: a live connection, libxcb's extension record, and a stamp
        // that lives until unregistration.
        let se =
            unsafe { xcb_register_for_special_xge(raw(conn), PRESENT_EXT.as_ptr(), eid, stamp) };
        if se.is_null() {
            // SAFETY: the stamp from Box::into_raw above, unused by libxcb.
            drop(unsafe { Box::from_raw(stamp) });
            return None;
        }
        Some(Self {
            conn: raw(conn) as usize,
            se: se as usize,
            stamp,
        })
    }

    /// The next queued event (its bytes without xcb's inserted
    /// `full_sequence`), reading the socket if nobody else is.
    pub fn poll(&self) -> Option<Vec<u8>> {
        // SAFETY: a live connection and registration.
        let ev = unsafe { xcb_poll_for_special_event(self.conn as *mut _, self.se as *mut _) };
        if ev.is_null() {
            return None;
        }
        let ev = CBuf(ev);
        // SAFETY: a generic event: 32 bytes, then xcb's 4-byte
        // full_sequence, then `length` 4-byte units.
        let bytes = unsafe {
            let len = u32::from_ne_bytes(*ev.0.add(4).cast::<[u8; 4]>()) as usize;
            let mut v = std::slice::from_raw_parts(ev.0, 32).to_vec();
            v.extend_from_slice(std::slice::from_raw_parts(ev.0.add(36), 4 * len));
            v
        };
        Some(bytes)
    }
}

impl Drop for SpecialEvents {
    fn drop(&mut self) {
        // SAFETY: the registration made in `register`; the stamp is freed
        // only after libxcb forgot it.
        unsafe {
            xcb_unregister_for_special_event(self.conn as *mut _, self.se as *mut _);
            drop(Box::from_raw(self.stamp));
        }
    }
}
