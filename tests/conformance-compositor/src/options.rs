//! The command line. Hand-parsed: the fixture has a handful of flags and
//! no reason to build an argument-parser crate in CI.

use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str =
    "usage: conformance-compositor --socket NAME [--drm-node PATH] [--no-syncobj]
       [--dmabuf-v3] [--no-presentation] [--frames N] [--hold-release] [--acquire-timeout-ms MS] [--frame-hz HZ]
       [--exit-on-error]";

/// What the fixture was asked to do (README.md lists every flag).
#[derive(Debug, Clone)]
pub struct Options {
    /// The socket's name under `$XDG_RUNTIME_DIR` (`WAYLAND_DISPLAY`).
    pub socket: String,
    /// The DRM node for timelines and the dma-buf main device; the first
    /// render node with `DRM_CAP_SYNCOBJ_TIMELINE` when not given.
    pub drm_node: Option<PathBuf>,
    /// Offer no `wp_linux_drm_syncobj_manager_v1` (the implicit path on the
    /// same compositor, for comparisons).
    pub no_syncobj: bool,
    /// Offer `zwp_linux_dmabuf_v1` version 3 only (no feedback).
    pub dmabuf_v3: bool,
    /// Offer no `wl_output` and `wp_presentation`.
    pub no_presentation: bool,
    /// Exit after this many commits with a buffer.
    pub frames: Option<u64>,
    /// Start with releases held back (SIGUSR1 lets them go, SIGUSR2 holds again).
    pub hold_release: bool,
    /// How long a commit may wait for its acquire point or implicit fences.
    pub acquire_timeout: Duration,
    /// The rate of frame callbacks.
    pub frame_hz: f64,
    /// Exit (status 1) at the first error instead of at the end.
    pub exit_on_error: bool,
}

impl Options {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut o = Options {
            socket: String::new(),
            drm_node: None,
            no_syncobj: false,
            dmabuf_v3: false,
            no_presentation: false,
            frames: None,
            hold_release: false,
            acquire_timeout: Duration::from_secs(10),
            frame_hz: 60.0,
            exit_on_error: false,
        };
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
            match a.as_str() {
                "--socket" => o.socket = value("--socket")?,
                "--drm-node" => o.drm_node = Some(PathBuf::from(value("--drm-node")?)),
                "--no-syncobj" => o.no_syncobj = true,
                "--dmabuf-v3" => o.dmabuf_v3 = true,
                "--no-presentation" => o.no_presentation = true,
                "--frames" => o.frames = Some(number(&value("--frames")?, "--frames")?),
                "--hold-release" => o.hold_release = true,
                "--acquire-timeout-ms" => {
                    let ms = number(&value("--acquire-timeout-ms")?, "--acquire-timeout-ms")?;
                    o.acquire_timeout = Duration::from_millis(ms);
                }
                "--frame-hz" => {
                    let v = value("--frame-hz")?;
                    o.frame_hz = v
                        .parse::<f64>()
                        .ok()
                        .filter(|hz| *hz > 0.0 && *hz <= 1000.0)
                        .ok_or_else(|| format!("--frame-hz {v}: not a rate in (0, 1000]"))?;
                }
                "--exit-on-error" => o.exit_on_error = true,
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        if o.socket.is_empty() {
            return Err(format!("--socket is required\n{USAGE}"));
        }
        if o.socket.contains('/') {
            return Err("--socket is a name under $XDG_RUNTIME_DIR, not a path".to_string());
        }
        Ok(o)
    }
}

fn number(v: &str, name: &str) -> Result<u64, String> {
    v.parse().map_err(|_| format!("{name} {v}: not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Options, String> {
        Options::parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags() {
        let o = parse(&[
            "--socket",
            "w",
            "--frames",
            "3",
            "--hold-release",
            "--acquire-timeout-ms",
            "250",
        ])
        .unwrap();
        assert_eq!(o.socket, "w");
        assert_eq!(o.frames, Some(3));
        assert!(o.hold_release);
        assert_eq!(o.acquire_timeout, Duration::from_millis(250));
        assert!(parse(&[]).is_err());
        assert!(parse(&["--socket", "/tmp/x"]).is_err());
        assert!(parse(&["--socket", "w", "--frames", "x"]).is_err());
        assert!(parse(&["--socket", "w", "--bogus"]).is_err());
    }
}
