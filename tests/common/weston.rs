//! A headless weston (pixman renderer, so screenshots work) on a private
//! socket and runtime directory, killed on drop.

use super::{clean_command, Manifests, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Weston {
    child: Option<Child>,
    pub runtime_dir: TempDir,
    pub socket: String,
}

impl Weston {
    pub fn start() -> Self {
        let runtime_dir = TempDir::new("weston");
        // libwayland refuses runtime directories others can read.
        std::fs::set_permissions(
            runtime_dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod runtime dir");
        let socket = "wl-test".to_string();
        let child = Command::new("weston")
            .args([
                "--backend=headless-backend.so",
                "--use-pixman",
                "--width=640",
                "--height=480",
                "--idle-time=0",
                // Allows weston-screenshooter.
                "--debug",
                &format!("--socket={socket}"),
            ])
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start weston (package weston; run tests/install-deps.sh)");
        Self::ready(child, runtime_dir, socket, "weston")
    }

    /// Waits (30 s at most) for the compositor `child` to create its
    /// socket, then a moment more: the shell client starts after the
    /// socket appears, and the first window must not race the desktop
    /// surface.
    fn ready(child: Child, runtime_dir: TempDir, socket: String, what: &str) -> Self {
        let w = Self {
            child: Some(child),
            runtime_dir,
            socket,
        };
        let sock = w.runtime_dir.path().join(&w.socket);
        let start = Instant::now();
        while !sock.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{what} did not create its socket within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        w
    }

    /// weston 14 (trixie) headless with the pixman renderer, run from the
    /// compositor chroot the guest tests use (`tests/guest/setup-compositor.sh`
    /// makes it under `~/.cache/syncbridge-guest/trixie-root`, or
    /// `SYNCBRIDGE_COMPOSITOR_ROOT`), on the host: it offers
    /// `wp_tearing_control_v1`, which bookworm's weston 10 does not. The
    /// runtime directory is bind-mounted at the chroot's `/mnt` in a mount
    /// namespace of its own, so nothing is written into the chroot. Needs
    /// root (chroot, mount).
    #[allow(dead_code)]
    pub fn start_trixie() -> Self {
        let root = std::env::var_os("SYNCBRIDGE_COMPOSITOR_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".cache/syncbridge-guest/trixie-root")
            });
        assert!(
            root.join("usr/bin/weston").exists() && root.join("mnt").is_dir(),
            "no weston in the compositor chroot {}: run tests/guest/setup-compositor.sh once",
            root.display()
        );
        let runtime_dir = TempDir::new("weston14");
        std::fs::set_permissions(
            runtime_dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod runtime dir");
        let socket = "wl-14".to_string();
        let script = format!(
            "mount --bind \"$1\" \"$2/mnt\" && exec chroot \"$2\" env -i XDG_RUNTIME_DIR=/mnt \
             weston --backend=headless --renderer=pixman --width=640 --height=480 \
             --idle-time=0 --socket={socket}"
        );
        let child = Command::new("unshare")
            .args(["-m", "sh", "-c", &script, "sh"])
            .arg(runtime_dir.path())
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare (util-linux)");
        Self::ready(child, runtime_dir, socket, "weston 14")
    }

    /// Points `cmd` at this compositor.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("XDG_RUNTIME_DIR", self.runtime_dir.path())
            .env("WAYLAND_DISPLAY", &self.socket);
    }

    /// The compositor's process id (for tests that stop it for a while).
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("weston is running").id()
    }

    /// Kills the compositor now (for tests of a compositor going away).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Takes a screenshot of the whole output into `dir`; returns the PNG.
    pub fn screenshot(&self, dir: &Path) -> PathBuf {
        let before: Vec<PathBuf> = pngs(dir);
        let mut cmd = Command::new("weston-screenshooter");
        self.env(&mut cmd);
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let out = super::run(cmd, Duration::from_secs(20));
        assert!(out.status.success(), "weston-screenshooter failed\n{out}");
        pngs(dir)
            .into_iter()
            .find(|p| !before.contains(p))
            .expect("weston-screenshooter wrote no PNG")
    }
}

fn pngs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "png"))
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for Weston {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A command for `program` through the layer on `weston`.
pub fn through_layer(program: impl AsRef<std::ffi::OsStr>, m: &Manifests, w: &Weston) -> Command {
    let mut cmd = clean_command(program, m);
    w.env(&mut cmd);
    m.enable_layer(&mut cmd);
    cmd
}
