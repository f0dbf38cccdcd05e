//! A connection on the application's own `wl_display`, with a private
//! event queue, and event dispatch that always has a timeout.
//!
//! `Backend::from_foreign_display` creates a libwayland event queue for the
//! layer; every object the layer creates (also children of the application's
//! `wl_surface`, through a proxy wrapper) delivers its events there, never
//! to the application's queue.

use ash::vk;
use rustix::event::{poll, PollFd, PollFlags};
use std::os::fd::BorrowedFd;
use std::time::Instant;
use wayland_backend::client::{Backend, ObjectId, WaylandError};
use wayland_client::{Connection, EventQueue, Proxy};

/// Opens the layer's view of the application's display.
///
/// # Safety
/// `display` must be a live `wl_display` that outlives the connection.
pub unsafe fn connect(display: *mut std::ffi::c_void) -> Connection {
    // SAFETY: forwarded from the caller.
    let backend = unsafe { Backend::from_foreign_display(display.cast()) };
    Connection::from_backend(backend)
}

/// The layer's proxy object for one of the application's objects.
///
/// # Safety
/// `ptr` must be a live `wl_proxy` of interface `I` on `conn`'s display.
pub unsafe fn foreign<I: Proxy>(
    conn: &Connection,
    ptr: *mut std::ffi::c_void,
) -> Result<I, vk::Result> {
    // SAFETY: forwarded from the caller.
    let id = unsafe { ObjectId::from_ptr(I::interface(), ptr.cast()) }.map_err(|_| {
        log::error!("the {} handed to the layer is not one", I::interface().name);
        vk::Result::ERROR_SURFACE_LOST_KHR
    })?;
    I::from_id(conn, id).map_err(|_| vk::Result::ERROR_SURFACE_LOST_KHR)
}

fn lost(e: impl std::fmt::Display) -> vk::Result {
    log::warn!("wayland connection: {e}");
    vk::Result::ERROR_SURFACE_LOST_KHR
}

/// Waits, at most `limit`, until the socket takes every request still in
/// libwayland's buffer (`false`: it did not in time). While the compositor
/// does not read, each request that carries an fd holds libwayland's dup
/// of it (libwayland 1.23 grows its buffer instead of failing): a
/// swapchain's buffers and timelines are queued only once the requests
/// before went, so a slow compositor does not make the fds pile up (a
/// client recreating its swapchain while the compositor read nothing
/// reached the fd limit of 1,024 so, and libwayland failed the
/// connection with EMFILE). A compositor that reads nothing at all still
/// gets them, at most one swapchain's worth per `limit`. A broken
/// connection counts as drained: the next call reports it.
pub fn drain(conn: &Connection, limit: std::time::Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        match conn.flush() {
            Err(WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => return true,
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let backend = conn.backend();
        let fd = backend.poll_fd();
        let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
        let timeout = rustix::time::Timespec::try_from(left).ok();
        if let Err(e) = poll(&mut fds, timeout.as_ref()) {
            if e != rustix::io::Errno::INTR {
                return true;
            }
        }
    }
}

/// What ended a [`dispatch_until`].
#[derive(Debug, PartialEq, Eq)]
pub enum Woken {
    Done,
    Wake,
    Deadline,
}

/// Dispatches the layer's queue until `done(state)`, one of `wake` (the
/// swapchain's wake eventfd, release-point eventfds) becomes readable, or
/// `deadline` passes. A broken connection is `VK_ERROR_SURFACE_LOST_KHR`.
pub fn dispatch_until<S>(
    queue: &mut EventQueue<S>,
    state: &mut S,
    wake: &[BorrowedFd<'_>],
    deadline: Option<Instant>,
    mut done: impl FnMut(&S) -> bool,
) -> Result<Woken, vk::Result> {
    loop {
        queue.dispatch_pending(state).map_err(lost)?;
        if done(state) {
            return Ok(Woken::Done);
        }
        match queue.flush() {
            Ok(()) => {}
            Err(WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(lost(e)),
        }
        let Some(guard) = queue.prepare_read() else {
            continue;
        };
        let timeout = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Ok(Woken::Deadline);
                }
                rustix::time::Timespec::try_from(d - now).ok()
            }
            None => None,
        };
        let (wl_ready, wake_ready) = {
            let wl_fd = guard.connection_fd();
            let mut fds = vec![PollFd::new(&wl_fd, PollFlags::IN)];
            fds.extend(wake.iter().map(|w| PollFd::new(w, PollFlags::IN)));
            match poll(&mut fds, timeout.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(lost(e)),
            }
            let bad = PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL;
            let wl = fds[0].revents();
            if wl.intersects(bad) && !wl.contains(PollFlags::IN) {
                return Err(lost("the compositor closed the connection"));
            }
            (
                wl.contains(PollFlags::IN),
                fds[1..].iter().any(|f| f.revents().contains(PollFlags::IN)),
            )
        };
        if wl_ready {
            match guard.read() {
                Ok(_) => {}
                Err(WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(lost(e)),
            }
        } else {
            drop(guard);
        }
        if wake_ready {
            queue.dispatch_pending(state).map_err(lost)?;
            return Ok(if done(state) {
                Woken::Done
            } else {
                Woken::Wake
            });
        }
    }
}
