//! One swapchain's presentation on a `wl_surface`.

use super::conn::{self, Woken};
use super::formats;
use super::Globals;
use crate::sync::BufferKind;
use crate::wsi::image::SwapImage;
use crate::wsi::platform::{Backend, BackendEvent, BackendParams};
use ash::vk;
use std::os::fd::BorrowedFd;
use std::time::Instant;
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_registry, wl_shm, wl_shm_pool, wl_surface,
};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1, zwp_linux_dmabuf_v1,
};

#[derive(Default)]
pub(super) struct State {
    events: Vec<BackendEvent>,
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
            s.events.push(BackendEvent::Released(*index));
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
            s.events.push(BackendEvent::FrameDone);
        }
    }
}

// Objects whose events the backend has no use for.
wayland_client::delegate_noop!(State: ignore wl_registry::WlRegistry);
wayland_client::delegate_noop!(State: ignore wl_shm::WlShm);
wayland_client::delegate_noop!(State: ignore zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1);
wayland_client::delegate_noop!(State: ignore wl_shm_pool::WlShmPool);

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
    // Keeps the layer's queue alive as long as the objects on it.
    _conn: Connection,
}

impl WaylandBackend {
    /// # Safety
    /// `display` and `surface` must be the application's live objects.
    pub(super) unsafe fn new(
        display: *mut std::ffi::c_void,
        surface: *mut std::ffi::c_void,
        globals: &Globals,
        params: &BackendParams,
    ) -> Result<Self, vk::Result> {
        // SAFETY: forwarded from the caller.
        let conn = unsafe { conn::connect(display) };
        // SAFETY: forwarded from the caller.
        let surface: wl_surface::WlSurface = unsafe { conn::foreign(&conn, surface) }?;
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
        Ok(Self {
            queue,
            state: State::default(),
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

    fn dispatch(
        &mut self,
        wake: BorrowedFd<'_>,
        deadline: Option<Instant>,
        events: &mut Vec<BackendEvent>,
    ) -> Result<(), vk::Result> {
        let r = conn::dispatch_until(
            &mut self.queue,
            &mut self.state,
            Some(wake),
            deadline,
            |s| !s.events.is_empty(),
        );
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
        let _ = self.queue.flush();
    }
}
