//! The DRI3 1.4 relay (`dri3-syncobj-proxy`, a binary of
//! `tests/conformance-compositor`) in front of a real Xvfb: the X server
//! with explicit sync that the X11 tests of the guest run against. Its
//! lines are parsed as the conformance compositor's are (`x11-proxy[N]: `
//! taken off, then `kind key=value...`).

use super::conformance::{crate_dir, Line};
use super::{child_command_of, test_exe, Manifests, Output, Xvfb};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn exe() -> PathBuf {
    crate_dir().join("target/debug/dri3-syncobj-proxy")
}

/// Xvfb (on the display it picks) and the relay in front of it, until
/// dropped.
pub struct Relay {
    proxy: Child,
    // Dropped after the relay: the relay's connections go first.
    _xvfb: Xvfb,
    pub log: Log,
    pub display: String,
}

/// The relay's output from some line on.
pub struct Log {
    path: PathBuf,
    from: usize,
}

impl Log {
    /// The relay `tests/guest/compositor.sh --x11-relay` started (outside
    /// the chroot), from its current end on: its display and its log.
    pub fn from_env() -> (String, Log) {
        let display =
            std::env::var("DISPLAY").expect("DISPLAY: run under compositor.sh --x11-relay");
        let path = PathBuf::from(
            std::env::var("SYNCBRIDGE_X11_RELAY_LOGFILE")
                .expect("SYNCBRIDGE_X11_RELAY_LOGFILE: run under compositor.sh --x11-relay"),
        );
        let mut log = Log { path, from: 0 };
        log.from = log.all().lines().count();
        (display, log)
    }

    fn all(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }

    /// What it printed since `from`.
    pub fn text(&self) -> String {
        self.all()
            .lines()
            .skip(self.from)
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// Its lines, `x11-proxy[N]: ` taken off.
    pub fn lines(&self) -> Vec<Line> {
        self.text()
            .lines()
            .map(|l| Line::parse(l.split_once(": ").map_or(l, |(_, rest)| rest)))
            .collect()
    }

    /// Waits (`limit` at most) until `count` client connections have
    /// ended, so that their last lines are written.
    pub fn wait_for_clients(&self, count: usize, limit: Duration) -> bool {
        wait_for(limit, || {
            self.lines()
                .iter()
                .filter(|l| l.kind == "client_done")
                .count()
                >= count
        })
    }
}

fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Relay {
    /// Starts both (the relay with `args`, on the first display from 50 up
    /// with no socket), each waited for.
    pub fn start(args: &[&str]) -> Relay {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let xvfb = Xvfb::start();
        let upstream = xvfb.display.trim_start_matches(':').to_string();
        let dir = Path::new("/tmp/.X11-unix");
        let n = (50 + NEXT.fetch_add(1, Ordering::SeqCst)..)
            .find(|n| !dir.join(format!("X{n}")).exists())
            .unwrap();
        let log = std::env::temp_dir().join(format!("sb-x11-relay-{}-{n}.log", std::process::id()));
        let proxy = Command::new(exe())
            .args(["--display", &n.to_string(), "--upstream", &upstream])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start dri3-syncobj-proxy (cargo build --manifest-path tests/conformance-compositor/Cargo.toml)");
        let r = Relay {
            proxy,
            _xvfb: xvfb,
            log: Log { path: log, from: 0 },
            display: format!(":{n}"),
        };
        assert!(
            wait_for(Duration::from_secs(30), || r
                .log
                .text()
                .contains("listening on")),
            "the relay did not start:\n{}",
            r.log.text()
        );
        r
    }

    /// Kills the relay (the X server as the client sees it).
    pub fn kill(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

/// The X11 test client (`tests/x11.rs`, `SB_MODE=mode`: `clear` is 30
/// magenta frames, then the window read back with `GetImage`) through the
/// layer on `display` (the relay's, or any X server's), with the dma-buf
/// path asked for unless `env` says otherwise.
pub fn client(
    m: &Manifests,
    display: &str,
    mode: &str,
    env: &[(&str, &str)],
) -> std::process::Command {
    let mut cmd = child_command_of(test_exe("x11"), "child_client", m);
    m.enable_layer(&mut cmd);
    cmd.env("DISPLAY", display)
        .env("SYNCBRIDGE_LOG", "info")
        .env("SYNCBRIDGE_BUFFERS", "dmabuf")
        .env("SB_WSI", "xcb")
        .env("SB_MODE", mode);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The explicit-sync path on X11, as the relay saw it: the timelines
/// imported once per image and freed at the end, `frames` synced presents
/// or more, each read after its acquire point with the client's colour
/// (magenta) at the centre, every release point signalled, no protocol
/// misuse; and the window showed the frames (`PIXELS OK`). Returns the
/// presents.
pub fn assert_synced_presents(out: &Output, lines: &[Line], frames: usize) -> Vec<Line> {
    let text: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
    out.assert_success();
    assert!(out.stdout.contains("PIXELS OK"), "{out}\n{text}");
    assert!(
        out.stderr
            .contains("on xcb: DmaBuf buffers, present ExplicitSyncobj"),
        "the layer did not plan explicit sync on X11:\n{out}"
    );
    assert!(
        out.stderr
            .contains("PresentPixmapSynced with syncobj timeline points"),
        "the X11 backend did not take DRI3 1.4:\n{out}"
    );
    assert!(!out.stderr.contains("syncbridge: error"), "{out}");
    let count = |kind: &str| lines.iter().filter(|l| l.kind == kind).count();
    assert!(!text.contains("error:"), "the relay saw misuse:\n{text}");
    let images = count("pixmap_from_buffers");
    assert!(images >= 2, "{text}");
    assert_eq!(count("import_syncobj"), 2 * images, "{text}");
    assert_eq!(count("free_syncobj"), 2 * images, "{text}");
    assert_eq!(count("present_implicit"), 0, "{text}");
    let presents: Vec<Line> = lines
        .iter()
        .filter(|l| l.kind == "present_synced")
        .cloned()
        .collect();
    assert!(
        presents.len() >= frames,
        "{} synced presents:\n{text}",
        presents.len()
    );
    for p in &presents {
        assert_eq!(
            centre(p).map(|c| c & 0xff_ffff),
            Some(0xff00ff),
            "{}",
            p.text
        );
    }
    // Every point released (the last ones when the client went).
    assert_eq!(count("release"), presents.len(), "{text}");
    for done in lines.iter().filter(|l| l.kind == "client_done") {
        assert_eq!(done.number("errors"), Some(0), "{text}");
    }
    presents
}

/// `centre=0xAARRGGBB` of a present line.
pub fn centre(l: &Line) -> Option<u32> {
    l.get("centre")
        .and_then(|c| c.strip_prefix("0x"))
        .and_then(|c| u32::from_str_radix(c, 16).ok())
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill();
    }
}
