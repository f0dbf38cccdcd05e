//! The conformance compositor (`tests/conformance-compositor`, a separate
//! crate on smithay) as a test's compositor: where its binary is, how the
//! host builds it before the guest boots, starting it on a private socket,
//! and its output parsed (one `commit` line per buffer it read; the
//! crate's README.md lists every line).
//!
//! The guest's file system is the host's, read-only: the binary must be
//! built on the host (`build()`, called by `tests/guest.rs`).

use super::repo_dir;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The fixture crate's directory.
pub fn crate_dir() -> PathBuf {
    repo_dir().join("tests/conformance-compositor")
}

/// The built compositor (and, beside it, `syncobj-smoke`).
pub fn exe() -> PathBuf {
    crate_dir().join("target/debug/conformance-compositor")
}

/// Builds the fixture (debug, its own target directory and lock file).
/// Cold, about 2½ minutes on 2 cores (optimised: its Cargo.toml says
/// why); a no-op when fresh.
pub fn build() {
    let t0 = Instant::now();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--locked", "--manifest-path"])
        .arg(crate_dir().join("Cargo.toml"))
        .status()
        .expect("run cargo build for tests/conformance-compositor");
    assert!(
        status.success(),
        "building tests/conformance-compositor failed"
    );
    eprintln!(
        "conformance: fixture built in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
}

/// One `key=value` line of the fixture, by its first word.
#[derive(Debug, Clone)]
pub struct Line {
    pub kind: String,
    pub fields: HashMap<String, String>,
    pub text: String,
}

impl Line {
    pub fn parse(text: &str) -> Line {
        let mut words = text.split(' ');
        let kind = words.next().unwrap_or_default().to_string();
        let fields = words
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Line {
            kind,
            fields,
            text: text.to_string(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// A numeric field (`waited_us`, `seq`, a point); None for `none`.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// `pixel=0xAARRGGBB` as a number.
    pub fn pixel(&self) -> Option<u32> {
        self.get("pixel")
            .and_then(|v| v.strip_prefix("0x"))
            .and_then(|v| u32::from_str_radix(v, 16).ok())
    }
}

/// A running fixture on its own socket in its own runtime directory.
pub struct Fixture {
    child: Option<Child>,
    pub socket: String,
    pub runtime_dir: PathBuf,
    log: PathBuf,
}

impl Fixture {
    /// Starts `conformance-compositor --socket … ARGS` and waits (30 s at
    /// most) for its `ready` line.
    pub fn start(args: &[&str]) -> Fixture {
        let exe = exe();
        assert!(
            exe.exists(),
            "{} is missing: cargo build --manifest-path tests/conformance-compositor/Cargo.toml",
            exe.display()
        );
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let runtime_dir = std::env::temp_dir().join(format!(
            "sb-cc-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&runtime_dir).unwrap();
        let socket = "cc-0".to_string();
        let log = runtime_dir.join("compositor.log");
        let child = Command::new(&exe)
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the conformance compositor");
        let f = Fixture {
            child: Some(child),
            socket,
            runtime_dir,
            log,
        };
        let ready = f.wait_for(Duration::from_secs(30), |lines| {
            lines.iter().any(|l| l.kind == "ready")
        });
        assert!(
            ready,
            "the conformance compositor did not start:\n{}",
            f.text()
        );
        f
    }

    /// The environment a client needs (`WAYLAND_DISPLAY`, `XDG_RUNTIME_DIR`).
    pub fn client_env(&self, cmd: &mut Command) {
        cmd.env("WAYLAND_DISPLAY", &self.socket)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Everything it printed so far.
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn lines(&self) -> Vec<Line> {
        self.text().lines().map(Line::parse).collect()
    }

    /// Waits until `pred` holds for its lines so far, or `limit` passes.
    pub fn wait_for(&self, limit: Duration, pred: impl Fn(&[Line]) -> bool) -> bool {
        let end = Instant::now() + limit;
        loop {
            if pred(&self.lines()) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal (`libc::SIGUSR1` lets held releases go, `SIGUSR2`
    /// holds them again).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    /// SIGTERM, then its summary and exit status (SIGKILL after 10 s).
    pub fn stop(mut self) -> (Vec<Line>, ExitStatus) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() >= end {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (self.lines(), status)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
    }
}

/// A stopped fixture's lines, with what the layer's tests ask of them.
pub struct Log {
    pub lines: Vec<Line>,
    pub success: bool,
}

impl Log {
    /// Stops `fixture` (SIGTERM: its summary line comes last).
    pub fn of(fixture: Fixture) -> Log {
        let (lines, status) = fixture.stop();
        Log {
            lines,
            success: status.success(),
        }
    }

    /// The `commit` lines.
    pub fn commits(&self) -> Vec<&Line> {
        self.lines.iter().filter(|l| l.kind == "commit").collect()
    }

    /// A number of the summary line.
    pub fn summary(&self, key: &str) -> u64 {
        self.lines
            .iter()
            .find(|l| l.kind == "summary")
            .and_then(|l| l.number(key))
            .unwrap_or_else(|| panic!("no summary {key}:\n{self}"))
    }

    /// The index of the first line whose text starts with `prefix`.
    pub fn position(&self, prefix: &str) -> Option<usize> {
        self.lines.iter().position(|l| l.text.starts_with(prefix))
    }
}

impl std::fmt::Display for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "--- conformance compositor (exit ok: {})", self.success)?;
        for l in &self.lines {
            writeln!(f, "{}", l.text)?;
        }
        Ok(())
    }
}
