//! The conformance compositor (`tests/conformance-compositor/`, a smithay
//! fixture that offers `wp_linux_drm_syncobj_manager_v1`, reads every
//! committed buffer on the CPU once its acquire point signalled, and prints
//! one line per commit) started for one test, on a socket of its own, and
//! its lines read back.

use super::TempDir;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The fixture's binary: `SYNCBRIDGE_CONFORMANCE_BIN`, or the crate's debug
/// build (`cargo build --manifest-path tests/conformance-compositor/Cargo.toml`),
/// both relative to the current directory (the repository: in the trixie
/// chroot it is bind-mounted at another path).
pub fn binary() -> PathBuf {
    let p = std::env::var_os("SYNCBRIDGE_CONFORMANCE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from("tests/conformance-compositor/target/debug/conformance-compositor")
        });
    let p = std::env::current_dir().expect("current dir").join(p);
    assert!(
        p.exists(),
        "{} is not built: cargo build --manifest-path tests/conformance-compositor/Cargo.toml",
        p.display()
    );
    p
}

/// A running conformance compositor.
pub struct Compositor {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    pub runtime_dir: TempDir,
    pub socket: String,
}

/// What the compositor printed, once stopped.
pub struct Log {
    pub lines: Vec<String>,
    pub success: bool,
}

impl Compositor {
    /// Starts it with `args` (its flags, beyond `--socket`) and waits
    /// (bounded) for its `ready` line.
    pub fn start(args: &[&str]) -> Compositor {
        let runtime_dir = TempDir::new("cc");
        let socket = "sb-cc".to_string();
        let mut child = Command::new(binary())
            .args(["--socket", &socket])
            .args(args)
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the conformance compositor");
        let lines = Arc::new(Mutex::new(Vec::new()));
        {
            let (out, lines) = (child.stdout.take().expect("stdout"), lines.clone());
            std::thread::spawn(move || {
                for l in BufReader::new(out).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(l);
                }
            });
        }
        let c = Compositor {
            child: Some(child),
            lines,
            runtime_dir,
            socket,
        };
        let t = Instant::now();
        while !c.lines().iter().any(|l| l.starts_with("ready ")) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the conformance compositor did not get ready:\n{}",
                c.lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The lines as they come, for a thread that watches them.
    pub fn live_lines(&self) -> Arc<Mutex<Vec<String>>> {
        self.lines.clone()
    }

    /// Points `cmd` at this compositor.
    pub fn client(&self, cmd: &mut Command) {
        cmd.env("XDG_RUNTIME_DIR", self.runtime_dir.path())
            .env("WAYLAND_DISPLAY", &self.socket);
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Sends `sig` (SIGUSR1: held releases go; SIGUSR2: hold again).
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("pid");
        rustix::process::kill_process(pid, sig).expect("kill");
    }

    /// SIGTERM, then the lines (its summary last) and whether it exited 0.
    pub fn stop(mut self) -> Log {
        let mut child = self.child.take().expect("running");
        self.signal_child(&child, rustix::process::Signal::TERM);
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break Some(s);
            }
            if t.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread sees EOF after the exit.
        let t = Instant::now();
        while !self.lines().iter().any(|l| l.starts_with("summary "))
            && t.elapsed() < Duration::from_secs(2)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        Log {
            lines: self.lines(),
            success: status.is_some_and(|s| s.success()),
        }
    }

    fn signal_child(&self, child: &Child, sig: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }
}

impl Drop for Compositor {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Log {
    /// The `commit ...` lines.
    pub fn commits(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| l.starts_with("commit "))
            .map(String::as_str)
            .collect()
    }

    /// The value of `key=` in the summary line.
    pub fn summary(&self, key: &str) -> u64 {
        let line = self
            .lines
            .iter()
            .find(|l| l.starts_with("summary "))
            .unwrap_or_else(|| panic!("no summary line:\n{}", self.lines.join("\n")));
        word(line, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line}"))
    }

    /// The index of the first line that starts with `prefix`.
    pub fn position(&self, prefix: &str) -> Option<usize> {
        self.lines.iter().position(|l| l.starts_with(prefix))
    }
}

impl std::fmt::Display for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "--- conformance compositor (exit ok: {})", self.success)?;
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

/// The value of `key=` in one of the compositor's lines.
pub fn word<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}
