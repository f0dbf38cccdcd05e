//! The compositor's state and smithay's handlers: what happens on each
//! commit (wait, read, report, release) lives here.

use crate::acquire::{CommitBook, PointValue, Wait, WaitBlocker, WaitKind};
use crate::options::Options;
use crate::readback::{self, Sample};
use smithay::backend::allocator::dmabuf::Dmabuf;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::calloop::{EventSource, Interest, LoopHandle};
use smithay::reexports::wayland_protocols::wp::linux_drm_syncobj::v1::server::wp_linux_drm_syncobj_surface_v1::{
    self, WpLinuxDrmSyncobjSurfaceV1,
};
use smithay::reexports::wayland_server::backend::{ClientData, ClientId, DisconnectReason, ObjectId};
use smithay::reexports::wayland_server::protocol::{
    wl_buffer::WlBuffer, wl_callback::WlCallback, wl_seat, wl_surface::WlSurface,
};
use smithay::reexports::wayland_server::{Client, DisplayHandle, Resource, Weak as WlWeak};
use smithay::input::{SeatHandler, SeatState};
use smithay::output::Output;
use smithay::reexports::rustix;
use smithay::reexports::wayland_protocols::wp::presentation_time::server::wp_presentation_feedback;
use smithay::wayland::output::OutputHandler;
use smithay::wayland::presentation::{
    PresentationFeedbackCachedState, PresentationFeedbackCallback, Refresh,
};
use smithay::utils::Serial;
use smithay::wayland::buffer::BufferHandler;
use smithay::wayland::compositor::{
    self, BufferAssignment, CompositorClientState, CompositorHandler, CompositorState, SurfaceAttributes,
};
use smithay::wayland::dmabuf::{get_dmabuf, DmabufGlobal, DmabufHandler, DmabufState, ImportNotifier};
use smithay::wayland::drm_syncobj::{DrmSyncPoint, DrmSyncobjCachedState, DrmSyncobjHandler, DrmSyncobjState};
use smithay::wayland::shell::xdg::{PopupSurface, PositionerState, ToplevelSurface, XdgShellHandler, XdgShellState};
use smithay::wayland::shm::{ShmHandler, ShmState};
use smithay::backend::renderer::sync::Fence;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts for the summary line.
#[derive(Debug, Default)]
pub struct Stats {
    pub commits: u64,
    pub dmabuf: u64,
    pub shm: u64,
    pub explicit: u64,
    pub implicit_waits: u64,
    pub released: u64,
}

/// A buffer the fixture holds (on screen, or replaced but held back by
/// `--hold-release`), with what releasing it takes.
pub struct Held {
    pub seq: u64,
    pub surface: u32,
    pub buffer: WlBuffer,
    pub release_point: Option<DrmSyncPoint>,
    pub release_value: Option<PointValue>,
}

/// Per-client data: smithay's compositor state, and the shared error
/// count so a protocol error seen at disconnection is counted.
pub struct ClientState {
    pub compositor: CompositorClientState,
    pub id: u64,
    pub errors: Arc<AtomicU64>,
}

impl ClientData for ClientState {
    fn initialized(&self, _client_id: ClientId) {
        println!("client-connected client={}", self.id);
    }

    fn disconnected(&self, _client_id: ClientId, reason: DisconnectReason) {
        match reason {
            DisconnectReason::ProtocolError(e) => {
                self.errors.fetch_add(1, Ordering::SeqCst);
                println!(
                    "protocol-error client={} interface={} object={} code={} message={:?}",
                    self.id, e.object_interface, e.object_id, e.code, e.message
                );
            }
            DisconnectReason::ConnectionClosed => println!("client-gone client={}", self.id),
        }
    }
}

pub struct App {
    pub dh: DisplayHandle,
    pub handle: LoopHandle<'static, App>,
    pub opts: Options,
    pub compositor: CompositorState,
    pub shm: ShmState,
    pub xdg: XdgShellState,
    pub seat: SeatState<App>,
    pub dmabuf: DmabufState,
    /// Kept for the life of the compositor (the global's handle).
    pub _dmabuf_global: DmabufGlobal,
    pub syncobj: Option<DrmSyncobjState>,
    pub stats: Stats,
    /// Errors: protocol errors (counted by `ClientState`) and the fixture's own.
    pub errors: Arc<AtomicU64>,
    pub syncobj_offered: bool,
    pub presentation_offered: bool,
    pub next_client: u64,
    /// While set, replaced buffers are held back instead of released.
    pub holding: bool,
    pub held_back: Vec<Held>,
    /// The buffer each surface shows, by the surface's object id.
    pub on_screen: HashMap<ObjectId, Held>,
    /// Frame callbacks to answer at the next tick.
    pub frame_callbacks: Vec<WlCallback>,
    /// The output `wp_presentation` feedback names (None: not offered).
    pub output: Option<Output>,
    /// Each surface's newest applied commit's presentation feedback, to
    /// be presented at the next tick (an older one it replaced was
    /// discarded at once).
    pub feedback: HashMap<ObjectId, Vec<PresentationFeedbackCallback>>,
    pub ticks: u64,
    /// `wp_linux_drm_syncobj_surface_v1` object → its `wl_surface`.
    pub syncobj_surfaces: HashMap<ObjectId, WlWeak<WlSurface>>,
    pub start: Instant,
    pub stop: bool,
}

impl App {
    /// A fixture error: one line, counted, and the exit status says so.
    pub fn error(&mut self, what: &str) {
        self.errors.fetch_add(1, Ordering::SeqCst);
        println!("error {what}");
        if self.opts.exit_on_error {
            self.stop = true;
        }
    }

    pub fn summary(&self) -> String {
        let s = &self.stats;
        format!(
            "summary commits={} dmabuf={} shm={} explicit={} implicit_waits={} released={} held={} errors={}",
            s.commits,
            s.dmabuf,
            s.shm,
            s.explicit,
            s.implicit_waits,
            s.released,
            self.held_back.len() + self.on_screen.len(),
            self.errors.load(Ordering::SeqCst)
        )
    }

    pub fn new_client_state(&mut self) -> Arc<ClientState> {
        self.next_client += 1;
        Arc::new(ClientState {
            compositor: CompositorClientState::default(),
            id: self.next_client,
            errors: self.errors.clone(),
        })
    }

    /// The 60 Hz tick: every frame callback answered, every applied
    /// commit's presentation feedback presented (as shown at this tick,
    /// on the one output, vsync'd).
    pub fn tick(&mut self) {
        self.ticks += 1;
        let t = self.start.elapsed().as_millis() as u32;
        for cb in self.frame_callbacks.drain(..) {
            if cb.is_alive() {
                cb.done(t);
            }
        }
        if let Some(output) = &self.output {
            let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
            let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
            let refresh = Refresh::fixed(Duration::from_secs_f64(1.0 / self.opts.frame_hz));
            for (_, cbs) in self.feedback.drain() {
                for cb in cbs {
                    cb.presented(
                        output,
                        now,
                        refresh,
                        self.ticks,
                        wp_presentation_feedback::Kind::Vsync,
                    );
                }
            }
        }
    }

    /// `--hold-release` off (SIGUSR1): lets every held buffer go.
    pub fn hold_off(&mut self) {
        self.holding = false;
        let held = std::mem::take(&mut self.held_back);
        println!("hold off released={}", held.len());
        for h in held {
            self.let_go(h);
        }
    }

    pub fn hold_on(&mut self) {
        self.holding = true;
        println!("hold on");
    }

    /// The fixture is done with a buffer: signal its release point, or
    /// send `wl_buffer.release` for one committed without points (the
    /// protocol leaves `wl_buffer.release` undefined with points, and the
    /// fixture sends none then, so a client that waits for it is caught).
    fn release(&mut self, h: Held) {
        if self.holding {
            println!("held seq={} surface={}", h.seq, h.surface);
            self.held_back.push(h);
        } else {
            self.let_go(h);
        }
    }

    fn let_go(&mut self, h: Held) {
        match &h.release_point {
            Some(p) => {
                if let Err(e) = p.signal() {
                    self.error(&format!(
                        "kind=release-signal seq={} surface={} error={e}",
                        h.seq, h.surface
                    ));
                    return;
                }
            }
            None => {
                if !h.buffer.is_alive() {
                    return;
                }
                h.buffer.release();
            }
        }
        self.stats.released += 1;
        println!(
            "release seq={} surface={} release_point={}",
            h.seq,
            h.surface,
            point_str(h.release_value)
        );
    }

    /// Pre-commit: checks what smithay does not and makes a commit with a
    /// new buffer wait for it to be ready.
    fn pre_commit(&mut self, surface: &WlSurface) {
        let (buffer, acquire, release_set, syncobj_surface) =
            compositor::with_states(surface, |s| {
                let buffer = match s
                    .cached_state
                    .get::<SurfaceAttributes>()
                    .pending()
                    .buffer
                    .as_ref()
                {
                    Some(BufferAssignment::NewBuffer(b)) => Some(b.clone()),
                    _ => None,
                };
                let mut sync = s.cached_state.get::<DrmSyncobjCachedState>();
                let acquire = sync.pending().acquire_point.clone();
                let release_set = sync.pending().release_point.is_some();
                let syncobj_surface = s
                    .data_map
                    .get::<RefCell<Option<WpLinuxDrmSyncobjSurfaceV1>>>()
                    .and_then(|c| c.borrow().clone());
                (buffer, acquire, release_set, syncobj_surface)
            });
        let Some(buffer) = buffer else { return };
        // "Clients must set both acquire and release points if and only if
        // a non-null buffer is attached": smithay raises the other cases.
        if let Some(ss) = &syncobj_surface {
            if acquire.is_none() && !release_set {
                ss.post_error(
                    wp_linux_drm_syncobj_surface_v1::Error::NoAcquirePoint,
                    "a buffer committed without acquire and release points on a surface with a syncobj surface",
                );
                return;
            }
        }
        let Some(client) = surface.client() else {
            return;
        };
        if let Some(point) = acquire {
            match point.generate_blocker() {
                Ok((_their_blocker, source)) => {
                    self.block(surface, &client, WaitKind::Point, source)
                }
                Err(e) => self.error(&format!(
                    "kind=acquire-eventfd surface={} error={e}",
                    surface.id().protocol_id()
                )),
            }
        } else if let Ok(dmabuf) = get_dmabuf(&buffer) {
            // Already readable: no fence pending, nothing to wait for.
            if let Ok((_their_blocker, source)) = dmabuf.generate_blocker(Interest::READ) {
                self.block(surface, &client, WaitKind::Implicit, source);
            }
        }
    }

    /// Holds the surface's pending state until `source` fires or the
    /// timeout passes.
    fn block<S>(&mut self, surface: &WlSurface, client: &Client, kind: WaitKind, source: S)
    where
        S: EventSource<Event = (), Ret = Result<(), std::io::Error>, Error = std::io::Error>
            + 'static,
    {
        let wait = Wait::new(kind);
        let (w1, c1) = (wait.clone(), client.clone());
        let src = self
            .handle
            .insert_source(source, move |_, _, app: &mut App| {
                if w1.finish() {
                    if let Some(t) = w1.tokens.lock().unwrap().1.take() {
                        app.handle.remove(t);
                    }
                    app.cleared(&c1);
                }
                Ok(())
            });
        let src = match src {
            Ok(t) => t,
            Err(e) => {
                self.error(&format!(
                    "kind=wait-source surface={} error={}",
                    surface.id().protocol_id(),
                    e.error
                ));
                return;
            }
        };
        let (w2, c2, sid) = (wait.clone(), client.clone(), surface.id().protocol_id());
        let weak = surface.downgrade();
        let timeout = self.opts.acquire_timeout;
        let timer =
            self.handle
                .insert_source(Timer::from_duration(timeout), move |_, _, app: &mut App| {
                    if w2.finish() {
                        w2.timed_out.store(true, Ordering::SeqCst);
                        if let Some(t) = w2.tokens.lock().unwrap().0.take() {
                            app.handle.remove(t);
                        }
                        let waited = w2.started.elapsed().as_micros();
                        if weak.upgrade().is_err() {
                            // The client went away with the commit still
                            // waiting (killed mid-frame): not the fixture's
                            // error, and nothing is left to apply.
                            println!(
                                "abandoned surface={sid} wait={} waited_us={waited}",
                                w2.kind.name()
                            );
                        } else {
                            app.error(&format!(
                                "kind=acquire-timeout surface={sid} wait={} waited_us={waited}",
                                w2.kind.name()
                            ));
                            app.cleared(&c2);
                        }
                    }
                    TimeoutAction::Drop
                });
        let timer = timer.ok();
        *wait.tokens.lock().unwrap() = (Some(src), timer);
        compositor::with_states(surface, |s| {
            s.cached_state.get::<CommitBook>().pending().wait = Some(wait.clone());
        });
        compositor::add_blocker(surface, WaitBlocker(wait));
    }

    fn cleared(&mut self, client: &Client) {
        let dh = self.dh.clone();
        if let Some(cs) = client.get_data::<ClientState>() {
            cs.compositor.blocker_cleared(self, &dh);
        }
    }

    /// A commit with a new buffer was applied: read it, report it, release
    /// what it replaced.
    fn show(
        &mut self,
        surface: &WlSurface,
        buffer: WlBuffer,
        book: CommitBook,
        acquire_point: Option<DrmSyncPoint>,
        release_point: Option<DrmSyncPoint>,
    ) {
        self.stats.commits += 1;
        let seq = self.stats.commits;
        let sid = surface.id().protocol_id();
        let (wait_name, waited_us, timed_out) = match &book.wait {
            Some(w) => {
                let t = w.timed_out.load(Ordering::SeqCst);
                (
                    if t { "timeout" } else { w.kind.name() },
                    w.started.elapsed().as_micros(),
                    t,
                )
            }
            None => ("none", 0, false),
        };
        if let Some(p) = &acquire_point {
            self.stats.explicit += 1;
            if !timed_out && !p.is_signaled() {
                self.error(&format!(
                    "kind=acquire-unsignalled seq={seq} surface={sid} acquire_point={}",
                    point_str(book.acquire)
                ));
            }
        }
        if matches!(book.wait.as_ref().map(|w| w.kind), Some(WaitKind::Implicit)) {
            self.stats.implicit_waits += 1;
        }
        let dmabuf: Option<Dmabuf> = get_dmabuf(&buffer).ok().cloned();
        let (kind, sample) = match &dmabuf {
            Some(d) => {
                self.stats.dmabuf += 1;
                let s = if timed_out {
                    Err("not read: the wait timed out".to_string())
                } else {
                    readback::read_dmabuf(d)
                };
                ("dmabuf", s)
            }
            None => {
                self.stats.shm += 1;
                ("shm", readback::read_shm(&buffer))
            }
        };
        println!(
            "commit seq={seq} surface={sid} kind={kind} {} acquire_point={} release_point={} wait={wait_name} waited_us={waited_us} {}",
            match &sample {
                Ok(s) => format!("size={}x{} format={}{}", s.width, s.height, s.format, modifier_str(s)),
                Err(_) => "size=? format=?".to_string(),
            },
            point_str(book.acquire),
            point_str(book.release),
            match &sample {
                Ok(s) => format!(
                    "pixel=0x{:08x} corners=0x{:08x},0x{:08x},0x{:08x},0x{:08x} hash=0x{:016x}",
                    s.centre, s.corners[0], s.corners[1], s.corners[2], s.corners[3], s.hash
                ),
                Err(_) => "pixel=none".to_string(),
            }
        );
        if let Err(e) = &sample {
            if !timed_out {
                self.error(&format!("kind=read seq={seq} surface={sid} error={e:?}"));
            }
        }
        let held = Held {
            seq,
            surface: sid,
            buffer: buffer.clone(),
            release_point,
            release_value: book.release,
        };
        if let Some(prev) = self.on_screen.insert(surface.id(), held) {
            // The same wl_buffer attached again is still in use: only its
            // release point (one per commit) is done.
            if prev.buffer == buffer && prev.release_point.is_none() {
                println!("reattached seq={} surface={sid}", prev.seq);
            } else {
                self.release(prev);
            }
        }
        if self.opts.frames.is_some_and(|n| seq >= n) {
            self.stop = true;
        }
    }
}

fn point_str(p: Option<PointValue>) -> String {
    match p {
        Some(p) => p.value.to_string(),
        None => "none".to_string(),
    }
}

fn modifier_str(s: &Sample) -> String {
    match s.modifier {
        Some(m) => format!(" modifier=0x{m:x}"),
        None => String::new(),
    }
}

impl CompositorHandler for App {
    fn compositor_state(&mut self) -> &mut CompositorState {
        &mut self.compositor
    }

    fn client_compositor_state<'a>(&self, client: &'a Client) -> &'a CompositorClientState {
        &client
            .get_data::<ClientState>()
            .expect("every client is inserted with ClientState")
            .compositor
    }

    fn new_surface(&mut self, surface: &WlSurface) {
        compositor::add_pre_commit_hook::<App, _>(surface, |app, _dh, surface| {
            app.pre_commit(surface)
        });
    }

    fn commit(&mut self, surface: &WlSurface) {
        if let Some(t) = self
            .xdg
            .toplevel_surfaces()
            .iter()
            .find(|t| t.wl_surface() == surface)
        {
            if !t.is_initial_configure_sent() {
                t.send_configure();
            }
        }
        let (assignment, callbacks, acquire_point, release_point, book, feedback) =
            compositor::with_states(surface, |s| {
                let mut attrs = s.cached_state.get::<SurfaceAttributes>();
                let cur = attrs.current();
                let assignment = cur.buffer.take();
                let callbacks = std::mem::take(&mut cur.frame_callbacks);
                drop(attrs);
                // The fixture owns the release point from here: smithay would
                // signal it as soon as the next commit is applied, and
                // --hold-release must be able to keep it.
                let mut sync = s.cached_state.get::<DrmSyncobjCachedState>();
                let acquire_point = sync.current().acquire_point.take();
                let release_point = sync.current().release_point.take();
                drop(sync);
                let book = std::mem::take(s.cached_state.get::<CommitBook>().current());
                let feedback = std::mem::take(
                    &mut s
                        .cached_state
                        .get::<PresentationFeedbackCachedState>()
                        .current()
                        .callbacks,
                );
                (
                    assignment,
                    callbacks,
                    acquire_point,
                    release_point,
                    book,
                    feedback,
                )
            });
        self.frame_callbacks.extend(callbacks);
        if !feedback.is_empty() {
            // A commit applied before the tick showed the last one replaces it.
            if let Some(old) = self.feedback.insert(surface.id(), feedback) {
                old.into_iter().for_each(|cb| cb.discarded());
            }
        }
        match assignment {
            Some(BufferAssignment::NewBuffer(buffer)) => {
                self.show(surface, buffer, book, acquire_point, release_point)
            }
            Some(BufferAssignment::Removed) => {
                println!("unmap surface={}", surface.id().protocol_id());
                if let Some(prev) = self.on_screen.remove(&surface.id()) {
                    self.release(prev);
                }
            }
            None => {}
        }
    }

    fn destroyed(&mut self, surface: &WlSurface) {
        if let Some(cbs) = self.feedback.remove(&surface.id()) {
            cbs.into_iter().for_each(|cb| cb.discarded());
        }
        if let Some(prev) = self.on_screen.remove(&surface.id()) {
            self.release(prev);
        }
    }
}

impl BufferHandler for App {
    fn buffer_destroyed(&mut self, _buffer: &WlBuffer) {}
}

impl ShmHandler for App {
    fn shm_state(&self) -> &ShmState {
        &self.shm
    }
}

impl DmabufHandler for App {
    fn dmabuf_state(&mut self) -> &mut DmabufState {
        &mut self.dmabuf
    }

    fn dmabuf_imported(
        &mut self,
        _global: &DmabufGlobal,
        dmabuf: Dmabuf,
        notifier: ImportNotifier,
    ) {
        // The fixture reads buffers by mmap: one it cannot map is refused
        // here, as a compositor refuses one its renderer cannot import.
        match dmabuf.map_plane(
            0,
            smithay::backend::allocator::dmabuf::DmabufMappingMode::READ,
        ) {
            Ok(_) => {
                let _ = notifier.successful::<App>();
            }
            Err(e) => {
                println!("dmabuf-refused error={e:?}");
                notifier.failed();
            }
        }
    }
}

impl XdgShellHandler for App {
    fn xdg_shell_state(&mut self) -> &mut XdgShellState {
        &mut self.xdg
    }

    fn new_toplevel(&mut self, _surface: ToplevelSurface) {}

    fn new_popup(&mut self, _surface: PopupSurface, _positioner: PositionerState) {}

    fn grab(&mut self, _surface: PopupSurface, _seat: wl_seat::WlSeat, _serial: Serial) {}

    fn reposition_request(
        &mut self,
        _surface: PopupSurface,
        _positioner: PositionerState,
        _token: u32,
    ) {
    }
}

// xdg_shell's handlers name a seat (popup grabs, moves); the fixture
// offers no wl_seat global, so no client ever has one to name.
impl SeatHandler for App {
    type KeyboardFocus = WlSurface;
    type PointerFocus = WlSurface;
    type TouchFocus = WlSurface;

    fn seat_state(&mut self) -> &mut SeatState<App> {
        &mut self.seat
    }
}

impl OutputHandler for App {}

impl DrmSyncobjHandler for App {
    fn drm_syncobj_state(&mut self) -> Option<&mut DrmSyncobjState> {
        self.syncobj.as_mut()
    }
}

smithay::delegate_compositor!(App);
smithay::delegate_shm!(App);
smithay::delegate_xdg_shell!(App);
smithay::delegate_dmabuf!(App);
smithay::delegate_output!(App);
smithay::delegate_presentation!(App);
