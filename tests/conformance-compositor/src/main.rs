//! conformance-compositor: a Wayland compositor for syncbridge's tests.
//!
//! No compositor available to the tests offers `wp_linux_drm_syncobj_v1`
//! (weston has no syncobj code; wlroots and mutter offer it only with a
//! renderer that has native fence sync on a DRM node). This one, built on
//! smithay, offers it on a DRM node with timelines, together with
//! `zwp_linux_dmabuf_v1`, `wl_shm` and `xdg_wm_base`, and instead of
//! rendering it reads every committed buffer on the CPU once the buffer is
//! ready (its acquire point signalled, or its implicit fences) and prints
//! one line per commit: what was waited on, for how long, and the pixels.
//! A test asserts on those lines. It releases a buffer (release point or
//! `wl_buffer.release`) when the next commit replaced it, can hold
//! releases back (`--hold-release`, SIGUSR1/SIGUSR2), answers frame
//! callbacks at 60 Hz, and exits non-zero after any protocol error or
//! failed wait. README.md lists the flags and the output.

mod acquire;
mod node;
mod options;
mod readback;
mod signals;
mod state;
mod syncobj;

use node::Node;
use options::Options;
use smithay::backend::allocator::{Format, Fourcc, Modifier};
use smithay::output::{Mode as OutputMode, Output, PhysicalProperties, Subpixel};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::calloop::{EventLoop, Interest, Mode, PostAction};
use smithay::reexports::wayland_server::protocol::wl_shm;
use smithay::reexports::wayland_server::Display;
use smithay::wayland::compositor::CompositorState;
use smithay::wayland::dmabuf::{DmabufFeedbackBuilder, DmabufState};
use smithay::wayland::drm_syncobj::DrmSyncobjState;
use smithay::wayland::presentation::PresentationState;
use smithay::wayland::shell::xdg::XdgShellState;
use smithay::wayland::shm::ShmState;
use smithay::wayland::socket::ListeningSocketSource;
use state::App;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("conformance-compositor: {e}");
            return ExitCode::from(2);
        }
    };
    match run(opts) {
        Ok(code) => code,
        Err(e) => {
            println!("fatal {e}");
            eprintln!("conformance-compositor: {e}");
            ExitCode::from(3)
        }
    }
}

/// The dma-buf formats offered: 32-bit RGB in both byte orders, LINEAR.
fn dmabuf_formats() -> Vec<Format> {
    [
        Fourcc::Argb8888,
        Fourcc::Xrgb8888,
        Fourcc::Abgr8888,
        Fourcc::Xbgr8888,
    ]
    .into_iter()
    .map(|code| Format {
        code,
        modifier: Modifier::Linear,
    })
    .collect()
}

fn run(opts: Options) -> Result<ExitCode, String> {
    // Before anything else, so no thread runs with the signals unblocked.
    let sigs = signals::SignalFd::new(&[libc::SIGTERM, libc::SIGINT, libc::SIGUSR1, libc::SIGUSR2])
        .map_err(|e| format!("signalfd: {e}"))?;
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        return Err("XDG_RUNTIME_DIR is not set (the socket goes there)".to_string());
    }

    let mut event_loop: EventLoop<'static, App> =
        EventLoop::try_new().map_err(|e| format!("event loop: {e}"))?;
    let display: Display<App> = Display::new().map_err(|e| format!("wayland display: {e}"))?;
    let dh = display.handle();

    // The DRM node: named, or the first render node with timelines.
    let node = match &opts.drm_node {
        Some(p) => Some(Node::open(p)?),
        None if opts.no_syncobj && opts.dmabuf_v3 => None,
        None => match Node::find_timeline_node() {
            Ok(n) => Some(n),
            Err(why) => {
                println!("no-timeline-node {why}");
                None
            }
        },
    };
    if let Some(n) = &node {
        println!(
            "drm-node path={} driver={} dev={} timelines={} eventfd={}",
            n.path.display(),
            n.driver,
            n.dev_name(),
            n.timelines as u8,
            n.eventfd as u8
        );
    }

    let compositor = CompositorState::new::<App>(&dh);
    let shm = ShmState::new::<App>(
        &dh,
        vec![wl_shm::Format::Abgr8888, wl_shm::Format::Xbgr8888],
    );
    let xdg = XdgShellState::new::<App>(&dh);
    let mut dmabuf = DmabufState::new();
    let (dmabuf_global, dmabuf_version) = match &node {
        Some(n) if !opts.dmabuf_v3 => {
            let feedback = DmabufFeedbackBuilder::new(n.dev, dmabuf_formats())
                .build()
                .map_err(|e| format!("dma-buf feedback: {e}"))?;
            (
                dmabuf.create_global_with_default_feedback::<App>(&dh, &feedback),
                5,
            )
        }
        _ => (dmabuf.create_global::<App>(&dh, dmabuf_formats()), 3),
    };
    let syncobj = match &node {
        _ if opts.no_syncobj => None,
        Some(n) if n.syncobj_ready() => Some(DrmSyncobjState::new::<App>(&dh, n.fd.clone())),
        Some(n) if opts.drm_node.is_some() => {
            return Err(format!(
            "{} ({}) cannot wait on timelines (DRM_CAP_SYNCOBJ_TIMELINE={}, syncobj eventfd={}); \
                 pass another --drm-node or --no-syncobj",
            n.path.display(),
            n.driver,
            n.timelines as u8,
            n.eventfd as u8
        ))
        }
        _ => None,
    };

    // One 1024x768 output at --frame-hz, for wp_presentation's feedback
    // (it names the output a frame was shown on).
    let output = (!opts.no_presentation).then(|| {
        let output = Output::new(
            "conformance-0".to_string(),
            PhysicalProperties {
                size: (0, 0).into(),
                subpixel: Subpixel::Unknown,
                make: "syncbridge".to_string(),
                model: "conformance-compositor".to_string(),
            },
        );
        let mode = OutputMode {
            size: (1024, 768).into(),
            refresh: (opts.frame_hz * 1000.0) as i32,
        };
        output.change_current_state(Some(mode), None, None, Some((0, 0).into()));
        output.set_preferred(mode);
        output.create_global::<App>(&dh);
        PresentationState::new::<App>(&dh, libc::CLOCK_MONOTONIC as u32);
        output
    });

    let socket = ListeningSocketSource::with_name(&opts.socket)
        .map_err(|e| format!("socket {}: {e}", opts.socket))?;
    let handle = event_loop.handle();
    handle
        .insert_source(socket, |stream, _, app: &mut App| {
            let data = app.new_client_state();
            if let Err(e) = app.dh.insert_client(stream, data) {
                app.error(&format!("kind=insert-client error={e}"));
            }
        })
        .map_err(|e| format!("socket source: {}", e.error))?;
    handle
        .insert_source(
            Generic::new(display, Interest::READ, Mode::Level),
            |_, display, app: &mut App| {
                // SAFETY: the display is not dropped while the loop runs it.
                if let Err(e) = unsafe { display.get_mut().dispatch_clients(app) } {
                    app.error(&format!("kind=dispatch error={e}"));
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| format!("display source: {}", e.error))?;
    handle
        .insert_source(
            Generic::new(sigs, Interest::READ, Mode::Level),
            |_, sigs, app: &mut App| {
                while let Some(sig) = sigs.read() {
                    match sig {
                        libc::SIGUSR1 => app.hold_off(),
                        libc::SIGUSR2 => app.hold_on(),
                        _ => {
                            println!(
                                "signal {}",
                                if sig == libc::SIGTERM {
                                    "SIGTERM"
                                } else {
                                    "SIGINT"
                                }
                            );
                            app.stop = true;
                        }
                    }
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| format!("signal source: {}", e.error))?;
    let period = Duration::from_secs_f64(1.0 / opts.frame_hz);
    handle
        .insert_source(
            Timer::from_duration(period),
            move |deadline, _, app: &mut App| {
                app.tick();
                TimeoutAction::ToInstant((deadline + period).max(Instant::now()))
            },
        )
        .map_err(|e| format!("frame timer: {}", e.error))?;

    let mut app = App {
        dh: dh.clone(),
        handle: handle.clone(),
        holding: opts.hold_release,
        opts,
        compositor,
        shm,
        xdg,
        seat: smithay::input::SeatState::new(),
        dmabuf,
        _dmabuf_global: dmabuf_global,
        syncobj_offered: syncobj.is_some(),
        syncobj,
        stats: Default::default(),
        errors: Arc::new(AtomicU64::new(0)),
        next_client: 0,
        held_back: Vec::new(),
        on_screen: HashMap::new(),
        frame_callbacks: Vec::new(),
        presentation_offered: output.is_some(),
        output,
        feedback: HashMap::new(),
        ticks: 0,
        syncobj_surfaces: HashMap::new(),
        start: Instant::now(),
        stop: false,
    };
    println!(
        "ready socket={} dmabuf_version={} syncobj={} presentation={} hold_release={} pid={}",
        app.opts.socket,
        dmabuf_version,
        app.syncobj_offered as u8,
        app.presentation_offered as u8,
        app.holding as u8,
        std::process::id()
    );

    while !app.stop {
        event_loop
            .dispatch(Some(Duration::from_millis(100)), &mut app)
            .map_err(|e| format!("event loop: {e}"))?;
        let _ = app.dh.flush_clients();
    }
    let _ = app.dh.flush_clients();
    println!("{}", app.summary());
    Ok(if app.errors.load(Ordering::SeqCst) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
