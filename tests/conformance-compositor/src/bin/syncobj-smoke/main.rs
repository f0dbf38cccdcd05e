//! syncobj-smoke: a Wayland client that proves the conformance compositor
//! waits before it reads and releases when it should, with no Vulkan in
//! the way. Each frame's colour is written into the buffer only AFTER the
//! commit, just before the client signals the buffer ready (the acquire
//! point, or the vgem fence in the dma-buf); a compositor that read early
//! would print the previous colour. The client prints `smoke: frame=N
//! colour=0x...` for each frame, the test compares them with the
//! compositor's `commit ... pixel=` lines.
//!
//! `syncobj-smoke SCENARIO [--frames N] [--delay-ms MS] [--node PATH]
//!  [--compositor-pid PID]`
//!
//! - `explicit`: udmabufs, one acquire timeline, a release timeline per
//!   buffer; a buffer is written again only once its release point
//!   signalled; at the end the surface is destroyed and the last release
//!   point must signal. With `--compositor-pid` (a compositor started with
//!   `--hold-release`) the first release must NOT signal within 1 s, then
//!   SIGUSR1 lets it go.
//! - `implicit`: vgem buffers with a vgem write fence attached before
//!   the commit and signalled after the delay; a buffer is reused after
//!   its `wl_buffer.release`.
//! - `timeout`: an acquire point that is never signalled (the compositor,
//!   run with a short `--acquire-timeout-ms`, must report it).
//! - `misuse-no-buffer`, `misuse-no-release`, `misuse-no-points`,
//!   `misuse-conflicting`, `misuse-shm-points`, `misuse-surface-exists`:
//!   one protocol violation each; the client checks that the compositor
//!   raised the protocol's error for it.
//!
//! Prints `smoke: key=value` lines and `smoke: result=ok` on success;
//! exits non-zero otherwise.

mod sys;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use sys::{Card, Shared, Timeline};
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_registry, wl_shm, wl_shm_pool, wl_surface,
};
use wayland_client::{Connection, Dispatch, EventQueue, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1, zwp_linux_dmabuf_v1,
};
use wayland_protocols::wp::linux_drm_syncobj::v1::client::{
    wp_linux_drm_syncobj_manager_v1, wp_linux_drm_syncobj_surface_v1,
    wp_linux_drm_syncobj_timeline_v1,
};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};

/// How long the client waits for anything the compositor owes it (a
/// configure, a release, a frame callback, a protocol error): generous, so
/// a loaded machine is not mistaken for a compositor that never answers.
const LIMIT: Duration = Duration::from_secs(30);
const W: i32 = 64;
const H: i32 = 48;
const XRGB8888: u32 = u32::from_le_bytes(*b"XR24");

#[derive(Default)]
struct St {
    compositor: Option<wl_compositor::WlCompositor>,
    wm: Option<xdg_wm_base::XdgWmBase>,
    shm: Option<wl_shm::WlShm>,
    dmabuf: Option<zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1>,
    syncobj: Option<wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1>,
    configured: bool,
    /// wl_buffer.release events, by the buffer's index (its user data).
    released: Vec<u32>,
    frames_done: u32,
}

impl Dispatch<wl_registry::WlRegistry, ()> for St {
    fn event(
        s: &mut Self,
        r: &wl_registry::WlRegistry,
        ev: wl_registry::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            name,
            interface,
            version,
        } = ev
        {
            match interface.as_str() {
                "wl_compositor" => s.compositor = Some(r.bind(name, version.min(4), qh, ())),
                "xdg_wm_base" => s.wm = Some(r.bind(name, 1, qh, ())),
                "wl_shm" => s.shm = Some(r.bind(name, 1, qh, ())),
                "zwp_linux_dmabuf_v1" => s.dmabuf = Some(r.bind(name, 3, qh, ())),
                "wp_linux_drm_syncobj_manager_v1" => s.syncobj = Some(r.bind(name, 1, qh, ())),
                _ => {}
            }
        }
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for St {
    fn event(
        _: &mut Self,
        wm: &xdg_wm_base::XdgWmBase,
        ev: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = ev {
            wm.pong(serial);
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, ()> for St {
    fn event(
        s: &mut Self,
        xs: &xdg_surface::XdgSurface,
        ev: xdg_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = ev {
            xs.ack_configure(serial);
            s.configured = true;
        }
    }
}

impl Dispatch<wl_buffer::WlBuffer, u32> for St {
    fn event(
        s: &mut Self,
        _: &wl_buffer::WlBuffer,
        ev: wl_buffer::Event,
        idx: &u32,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_buffer::Event::Release = ev {
            s.released.push(*idx);
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for St {
    fn event(
        s: &mut Self,
        _: &wl_callback::WlCallback,
        ev: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = ev {
            s.frames_done += 1;
        }
    }
}

wayland_client::delegate_noop!(St: ignore wl_compositor::WlCompositor);
wayland_client::delegate_noop!(St: ignore wl_surface::WlSurface);
wayland_client::delegate_noop!(St: ignore wl_shm::WlShm);
wayland_client::delegate_noop!(St: ignore wl_shm_pool::WlShmPool);
wayland_client::delegate_noop!(St: ignore xdg_toplevel::XdgToplevel);
wayland_client::delegate_noop!(St: ignore zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1);
wayland_client::delegate_noop!(St: ignore zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1);
wayland_client::delegate_noop!(St: ignore wp_linux_drm_syncobj_manager_v1::WpLinuxDrmSyncobjManagerV1);
wayland_client::delegate_noop!(St: ignore wp_linux_drm_syncobj_surface_v1::WpLinuxDrmSyncobjSurfaceV1);
wayland_client::delegate_noop!(St: ignore wp_linux_drm_syncobj_timeline_v1::WpLinuxDrmSyncobjTimelineV1);

struct Opts {
    scenario: String,
    frames: u32,
    delay: Duration,
    node: Option<PathBuf>,
    compositor_pid: Option<i32>,
}

fn parse() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().ok_or("usage: syncobj-smoke SCENARIO [--frames N] [--delay-ms MS] [--node PATH] [--compositor-pid PID]")?;
    let mut o = Opts {
        scenario,
        frames: 6,
        delay: Duration::from_millis(300),
        node: None,
        compositor_pid: None,
    };
    while let Some(a) = args.next() {
        let v = args.next().ok_or_else(|| format!("{a} needs a value"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{a} {v}: not a number"))
        };
        match a.as_str() {
            "--frames" => o.frames = num(&v)?.max(1) as u32,
            "--delay-ms" => o.delay = Duration::from_millis(num(&v)?),
            "--node" => o.node = Some(PathBuf::from(v)),
            "--compositor-pid" => o.compositor_pid = Some(num(&v)? as i32),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    Ok(o)
}

/// A distinct opaque colour per frame.
fn colour(frame: u32) -> u32 {
    0xff00_0000 | (frame.wrapping_mul(0x0029_3a5b).wrapping_add(0x0010_4080) & 0x00ff_ffff)
}

/// The first DRM node (render nodes first, then cards) whose driver is `driver`,
/// or any with timelines when `driver` is None.
fn find_node(driver: Option<&str>, prefix: &str) -> Option<(PathBuf, Card)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    paths.sort();
    for p in paths {
        if !p.file_name()?.to_str()?.starts_with(prefix) {
            continue;
        }
        let Ok(card) = Card::open(&p) else { continue };
        let ok = match driver {
            Some(d) => card.driver() == d,
            None => {
                use smithay::reexports::drm::{Device, DriverCapability};
                matches!(card.get_driver_capability(DriverCapability::TimelineSyncObj), Ok(v) if v != 0)
            }
        };
        if ok {
            return Some((p, card));
        }
    }
    None
}

struct Client {
    conn: Connection,
    queue: EventQueue<St>,
    qh: QueueHandle<St>,
    st: St,
}

impl Client {
    fn connect() -> Result<Client, String> {
        let conn = Connection::connect_to_env().map_err(|e| format!("connect: {e}"))?;
        let mut queue = conn.new_event_queue();
        let qh = queue.handle();
        conn.display().get_registry(&qh, ());
        let mut st = St::default();
        queue
            .roundtrip(&mut st)
            .map_err(|e| format!("roundtrip: {e}"))?;
        Ok(Client {
            conn,
            queue,
            qh,
            st,
        })
    }

    /// Dispatches events until `done` or the timeout; Err on a protocol error.
    fn pump(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&mut St) -> bool,
    ) -> Result<bool, String> {
        let end = Instant::now() + timeout;
        loop {
            self.queue
                .dispatch_pending(&mut self.st)
                .map_err(|e| format!("dispatch: {e}"))?;
            if done(&mut self.st) {
                return Ok(true);
            }
            if Instant::now() >= end {
                return Ok(false);
            }
            self.queue.flush().map_err(|e| format!("flush: {e}"))?;
            if let Some(guard) = self.queue.prepare_read() {
                let cfd = guard.connection_fd();
                let mut fds = [rustix::event::PollFd::new(
                    &cfd,
                    rustix::event::PollFlags::IN,
                )];
                let ts = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 10_000_000,
                };
                let n = rustix::event::poll(&mut fds, Some(&ts)).unwrap_or(0);
                if n > 0 {
                    match guard.read() {
                        Ok(_) => {}
                        Err(wayland_client::backend::WaylandError::Io(e))
                            if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(format!("read: {e}")),
                    }
                }
            }
        }
    }

    fn window(&mut self) -> Result<wl_surface::WlSurface, String> {
        let comp = self.st.compositor.clone().ok_or("no wl_compositor")?;
        let wm = self.st.wm.clone().ok_or("no xdg_wm_base")?;
        let surface = comp.create_surface(&self.qh, ());
        let xs = wm.get_xdg_surface(&surface, &self.qh, ());
        let top = xs.get_toplevel(&self.qh, ());
        top.set_title("syncobj-smoke".into());
        surface.commit();
        if !self.pump(LIMIT, |s| s.configured)? {
            return Err(format!("no xdg configure in {LIMIT:?}"));
        }
        Ok(surface)
    }

    fn dmabuf_buffer(&self, fd: &impl AsFd, idx: u32) -> Result<wl_buffer::WlBuffer, String> {
        let d = self.st.dmabuf.as_ref().ok_or("no zwp_linux_dmabuf_v1")?;
        let params = d.create_params(&self.qh, ());
        params.add(fd.as_fd(), 0, 0, (W * 4) as u32, 0, 0); // LINEAR
        let b = params.create_immed(
            W,
            H,
            XRGB8888,
            zwp_linux_buffer_params_v1::Flags::empty(),
            &self.qh,
            idx,
        );
        params.destroy();
        Ok(b)
    }

    fn frame(&self, surface: &wl_surface::WlSurface) {
        surface.frame(&self.qh, ());
    }
}

fn run(o: &Opts) -> Result<(), String> {
    match o.scenario.as_str() {
        "explicit" => explicit(o),
        "implicit" => implicit(o),
        "timeout" => timeout(o),
        s if s.starts_with("misuse-") => misuse(o, &s["misuse-".len()..]),
        s => Err(format!("unknown scenario {s}")),
    }
}

fn timeline_node(o: &Opts) -> Result<(PathBuf, Card), String> {
    match &o.node {
        Some(p) => Ok((
            p.clone(),
            Card::open(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        None => {
            find_node(None, "renderD").ok_or_else(|| "no render node with timelines".to_string())
        }
    }
}

fn explicit(o: &Opts) -> Result<(), String> {
    let (path, card) = timeline_node(o)?;
    println!(
        "smoke: timeline_node={} driver={}",
        path.display(),
        card.driver()
    );
    let mut c = Client::connect()?;
    let mgr =
        c.st.syncobj
            .clone()
            .ok_or("the compositor offers no wp_linux_drm_syncobj_manager_v1")?;
    let surface = c.window()?;
    let ss = mgr.get_surface(&surface, &c.qh, ());
    let io = |e: std::io::Error| e.to_string();
    let acquire = Timeline::new(&card).map_err(io)?;
    let acquire_tl = mgr.import_timeline(acquire.fd().map_err(io)?.as_fd(), &c.qh, ());
    let bufs: Vec<Shared> = (0..2)
        .map(|_| Shared::udmabuf((W * H * 4) as usize))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    let release: Vec<Timeline> = (0..2)
        .map(|_| Timeline::new(&card))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    let release_tl: Vec<_> = release
        .iter()
        .map(|t| t.fd().map(|fd| mgr.import_timeline(fd.as_fd(), &c.qh, ())))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    let wl: Vec<_> = bufs
        .iter()
        .enumerate()
        .map(|(i, b)| c.dmabuf_buffer(&b.dmabuf, i as u32))
        .collect::<Result<_, _>>()?;
    // Per buffer: the release point of its last commit.
    let mut last_release = [0u64; 2];
    for f in 1..=o.frames {
        let i = (f as usize - 1) % 2;
        // Reuse only after the compositor released the buffer's last use.
        if last_release[i] > 0 {
            let want = last_release[i];
            let t0 = Instant::now();
            if let (3, Some(pid)) = (f, o.compositor_pid) {
                // Held by the compositor: must not signal while it holds.
                let early = c.pump(Duration::from_secs(1), |_| {
                    release[i].signalled().unwrap_or(0) >= want
                })?;
                if early {
                    return Err(format!(
                        "release point {want} signalled while the compositor held releases"
                    ));
                }
                println!(
                    "smoke: held release_point={want} unsignalled_for_ms={}",
                    t0.elapsed().as_millis()
                );
                rustix::process::kill_process(
                    rustix::process::Pid::from_raw(pid).ok_or("bad pid")?,
                    rustix::process::Signal::USR1,
                )
                .map_err(|e| format!("kill: {e}"))?;
            }
            if !c.pump(LIMIT, |_| release[i].signalled().unwrap_or(0) >= want)? {
                return Err(format!(
                    "frame {f}: release point {want} of buffer {i} not signalled in {LIMIT:?}"
                ));
            }
            println!(
                "smoke: frame={f} buffer={i} release_point={want} waited_ms={}",
                t0.elapsed().as_millis()
            );
        }
        let (ap, rp) = (f as u64, last_release[i] + 1);
        ss.set_acquire_point(&acquire_tl, (ap >> 32) as u32, ap as u32);
        ss.set_release_point(&release_tl[i], (rp >> 32) as u32, rp as u32);
        surface.attach(Some(&wl[i]), 0, 0);
        surface.damage_buffer(0, 0, W, H);
        c.frame(&surface);
        surface.commit();
        c.queue.flush().map_err(|e| format!("flush: {e}"))?;
        last_release[i] = rp;
        // The compositor must not read before the point: write the colour
        // now, then signal.
        let frames_before = c.st.frames_done;
        c.pump(o.delay, |_| false)?;
        if c.st.frames_done != frames_before {
            return Err(format!(
                "frame {f}: frame callback before the acquire point signalled"
            ));
        }
        bufs[i].fill((W * H) as usize, colour(f));
        acquire.signal(ap).map_err(io)?;
        println!("smoke: frame={f} buffer={i} colour=0x{:08x} acquire_point={ap} release_point={rp} delay_ms={}", colour(f), o.delay.as_millis());
        if !c.pump(LIMIT, |s| s.frames_done > frames_before)? {
            return Err(format!(
                "frame {f}: no frame callback within {LIMIT:?} of the acquire point"
            ));
        }
    }
    // Destroying the surface ends the compositor's use of the last buffer.
    let i = (o.frames as usize - 1) % 2;
    let want = last_release[i];
    ss.destroy();
    surface.destroy();
    let t0 = Instant::now();
    if !c.pump(LIMIT, |_| release[i].signalled().unwrap_or(0) >= want)? {
        return Err(format!(
            "the last release point {want} not signalled after the surface was destroyed"
        ));
    }
    println!(
        "smoke: last release_point={want} after_destroy_ms={}",
        t0.elapsed().as_millis()
    );
    drop(c.conn);
    Ok(())
}

fn implicit(o: &Opts) -> Result<(), String> {
    let (path, card) =
        find_node(Some("vgem"), "card").ok_or("no vgem card node (modprobe vgem)")?;
    println!("smoke: vgem_node={}", path.display());
    let mut c = Client::connect()?;
    let surface = c.window()?;
    let io = |e: std::io::Error| e.to_string();
    let bufs: Vec<Shared> = (0..2)
        .map(|_| Shared::vgem(&card, W as u32, H as u32))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    let wl: Vec<_> = bufs
        .iter()
        .enumerate()
        .map(|(i, b)| c.dmabuf_buffer(&b.dmabuf, i as u32))
        .collect::<Result<_, _>>()?;
    let mut in_use = [false; 2];
    for f in 1..=o.frames {
        let i = (f as usize - 1) % 2;
        if in_use[i] {
            let t0 = Instant::now();
            if !c.pump(LIMIT, |s| s.released.contains(&(i as u32)))? {
                return Err(format!(
                    "frame {f}: no wl_buffer.release for buffer {i} in {LIMIT:?}"
                ));
            }
            c.st.released.retain(|&b| b != i as u32);
            println!(
                "smoke: frame={f} buffer={i} released waited_ms={}",
                t0.elapsed().as_millis()
            );
        }
        let fence = bufs[i].attach_fence().map_err(io)?;
        surface.attach(Some(&wl[i]), 0, 0);
        surface.damage_buffer(0, 0, W, H);
        c.frame(&surface);
        surface.commit();
        c.queue.flush().map_err(|e| format!("flush: {e}"))?;
        in_use[i] = true;
        let frames_before = c.st.frames_done;
        c.pump(o.delay, |_| false)?;
        if c.st.frames_done != frames_before {
            return Err(format!(
                "frame {f}: frame callback before the fence signalled"
            ));
        }
        bufs[i].fill((W * H) as usize, colour(f));
        bufs[i].signal_fence(fence).map_err(io)?;
        println!(
            "smoke: frame={f} buffer={i} colour=0x{:08x} acquire_point=none delay_ms={}",
            colour(f),
            o.delay.as_millis()
        );
        if !c.pump(LIMIT, |s| s.frames_done > frames_before)? {
            return Err(format!(
                "frame {f}: no frame callback within {LIMIT:?} of the fence"
            ));
        }
    }
    Ok(())
}

fn timeout(o: &Opts) -> Result<(), String> {
    let (_, card) = timeline_node(o)?;
    let mut c = Client::connect()?;
    let mgr =
        c.st.syncobj
            .clone()
            .ok_or("no wp_linux_drm_syncobj_manager_v1")?;
    let surface = c.window()?;
    let ss = mgr.get_surface(&surface, &c.qh, ());
    let io = |e: std::io::Error| e.to_string();
    let tl = Timeline::new(&card).map_err(io)?;
    let tlp = mgr.import_timeline(tl.fd().map_err(io)?.as_fd(), &c.qh, ());
    let buf = Shared::udmabuf((W * H * 4) as usize).map_err(io)?;
    let wl = c.dmabuf_buffer(&buf.dmabuf, 0)?;
    ss.set_acquire_point(&tlp, 0, 1);
    ss.set_release_point(&tlp, 0, 2);
    surface.attach(Some(&wl), 0, 0);
    surface.commit();
    // Never signalled: wait for the compositor to give up.
    c.pump(o.delay, |_| false)?;
    println!(
        "smoke: acquire_point=1 never signalled; waited_ms={}",
        o.delay.as_millis()
    );
    Ok(())
}

/// One protocol violation; the compositor must raise `want` on `iface`.
fn misuse(o: &Opts, what: &str) -> Result<(), String> {
    use wp_linux_drm_syncobj_manager_v1::Error as M;
    use wp_linux_drm_syncobj_surface_v1::Error as S;
    let (_, card) = timeline_node(o)?;
    let mut c = Client::connect()?;
    let mgr =
        c.st.syncobj
            .clone()
            .ok_or("no wp_linux_drm_syncobj_manager_v1")?;
    let surface = c.window()?;
    let ss = mgr.get_surface(&surface, &c.qh, ());
    let io = |e: std::io::Error| e.to_string();
    let tl = Timeline::new(&card).map_err(io)?;
    let tlp = mgr.import_timeline(tl.fd().map_err(io)?.as_fd(), &c.qh, ());
    let buf = Shared::udmabuf((W * H * 4) as usize).map_err(io)?;
    let wl = c.dmabuf_buffer(&buf.dmabuf, 0)?;
    let points = |a: u32, r: u32| {
        ss.set_acquire_point(&tlp, 0, a);
        ss.set_release_point(&tlp, 0, r);
    };
    let (iface, want) = match what {
        "no-buffer" => {
            points(1, 2);
            ("wp_linux_drm_syncobj_surface_v1", S::NoBuffer as u32)
        }
        "no-release" => {
            ss.set_acquire_point(&tlp, 0, 1);
            surface.attach(Some(&wl), 0, 0);
            ("wp_linux_drm_syncobj_surface_v1", S::NoReleasePoint as u32)
        }
        "no-points" => {
            surface.attach(Some(&wl), 0, 0);
            ("wp_linux_drm_syncobj_surface_v1", S::NoAcquirePoint as u32)
        }
        "conflicting" => {
            points(2, 2);
            surface.attach(Some(&wl), 0, 0);
            (
                "wp_linux_drm_syncobj_surface_v1",
                S::ConflictingPoints as u32,
            )
        }
        "shm-points" => {
            let shm = c.st.shm.clone().ok_or("no wl_shm")?;
            let memfd = rustix::fs::memfd_create("smoke-shm", rustix::fs::MemfdFlags::CLOEXEC)
                .map_err(|e| e.to_string())?;
            rustix::fs::ftruncate(&memfd, (W * H * 4) as u64).map_err(|e| e.to_string())?;
            let pool = shm.create_pool(memfd.as_fd(), W * H * 4, &c.qh, ());
            let b = pool.create_buffer(0, W, H, W * 4, wl_shm::Format::Xrgb8888, &c.qh, 9);
            points(1, 2);
            surface.attach(Some(&b), 0, 0);
            (
                "wp_linux_drm_syncobj_surface_v1",
                S::UnsupportedBuffer as u32,
            )
        }
        "surface-exists" => {
            let _second = mgr.get_surface(&surface, &c.qh, ());
            ("wp_linux_drm_syncobj_manager_v1", M::SurfaceExists as u32)
        }
        other => return Err(format!("unknown misuse {other}")),
    };
    surface.commit();
    let conn = c.conn.clone();
    let _ = c.pump(LIMIT, |_| conn.protocol_error().is_some());
    match c.conn.protocol_error() {
        Some(e) => {
            println!(
                "smoke: protocol_error interface={} code={} message={:?}",
                e.object_interface, e.code, e.message
            );
            if e.object_interface == iface && e.code == want {
                Ok(())
            } else {
                Err(format!(
                    "expected {iface} error {want}, got {} {}",
                    e.object_interface, e.code
                ))
            }
        }
        None => Err(format!("no protocol error for misuse-{what} in {LIMIT:?}")),
    }
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("syncobj-smoke: {e}");
            std::process::exit(2);
        }
    };
    match run(&o) {
        Ok(()) => println!("smoke: result=ok scenario={}", o.scenario),
        Err(e) => {
            println!("smoke: result=fail scenario={} error={e}", o.scenario);
            std::process::exit(1);
        }
    }
}
