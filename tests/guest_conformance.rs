//! The conformance compositor (`tests/conformance-compositor`) in the test
//! guest: its own smoke client first (explicit sync with late acquire
//! points, held releases, implicit fences, a timeout, six protocol
//! violations), then the layer's probe through the real loader on it, on
//! the dma-buf and shared-memory paths, with the compositor's readback of
//! every frame checked.
//!
//! `tests/guest.rs` builds the fixture on the host and runs these in the
//! guest with `--virtio-gpu` (virtio-gpu's render node has timelines); on
//! the host they are ignored.

mod common;

use common::conformance::{self, Fixture, Line};
use common::{clean_command, probe_exe, run, Manifests};
use std::process::Command;
use std::time::Duration;

const GUEST: &str = "needs the test guest (tests/guest.rs runs it)";

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn the_fixture_passes_its_own_smoke_scenarios() {
    let _ = GUEST;
    let out = Command::new(conformance::crate_dir().join("smoke.sh"))
        .output()
        .expect("run smoke.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "smoke.sh failed:\n{stdout}");
    assert!(stdout.contains("smoke.sh: 7 of 7 scenarios ok"), "{stdout}");
}

/// The probe (`frames`, one colour) through the layer on the fixture;
/// returns the fixture's lines after it stopped.
fn probe_on_fixture(colour: &str, env: &[(&str, &str)]) -> Vec<Line> {
    let fixture = Fixture::start(&[]);
    let m = Manifests::new();
    let mut cmd = clean_command(probe_exe(), &m);
    m.enable_layer(&mut cmd);
    fixture.client_env(&mut cmd);
    cmd.env("SYNCBRIDGE_LOG", "info")
        .args(["frames", "--frames", "20", "--color", colour]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(cmd, Duration::from_secs(240));
    let (lines, status) = fixture.stop();
    let text: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
    out.assert_success();
    assert!(out.stdout.contains("probe: result=ok"), "{out}");
    assert!(status.success(), "the fixture exited {status:?}:\n{text}");
    lines
}

/// Every commit the fixture read: `n` at least, of `kind`, each frame's
/// pixels the probe's colour. (The probe presents 20 frames in FIFO and
/// destroys its swapchain at once: frames still queued for a frame
/// callback are dropped, one in each run measured, at most all but one of
/// its images.)
fn assert_commits(lines: &[Line], kind: &str, pixel: u32, n: usize) {
    let text: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
    let commits: Vec<&Line> = lines.iter().filter(|l| l.kind == "commit").collect();
    assert!(
        commits.len() >= n,
        "{} commits, expected {n}:\n{text}",
        commits.len()
    );
    for c in &commits {
        assert_eq!(c.get("kind"), Some(kind), "{}", c.text);
        assert_eq!(c.pixel(), Some(pixel), "{}", c.text);
        assert_eq!(
            c.get("corners"),
            Some(format!("0x{pixel:08x},0x{pixel:08x},0x{pixel:08x},0x{pixel:08x}").as_str()),
            "{}",
            c.text
        );
        assert_eq!(c.get("size"), Some("320x240"), "{}", c.text);
    }
    let summary = lines.iter().find(|l| l.kind == "summary").expect("summary");
    assert_eq!(summary.number("errors"), Some(0), "{text}");
}

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn the_layer_dma_bufs_are_read_back_by_the_fixture_after_their_fences() {
    // Implicit sync forced: the fixture offers wp_linux_drm_syncobj_v1,
    // which the layer would take (the `explicit_` tests of guest_wayland
    // cover that path).
    let lines = probe_on_fixture("0,1,0", &[("SYNCBRIDGE_SYNC", "implicit")]);
    assert_commits(&lines, "dmabuf", 0xff00ff00, 16);
    // bookworm's lavapipe exports no sync_file: the layer bridges the
    // render fence with a vgem fence in the dma-buf (ImplicitSoftFence) or
    // hands the buffer over once rendering is done (WorkerWait); either
    // way no commit may outlive the fixture's wait.
    for l in lines.iter().filter(|l| l.kind == "commit") {
        assert!(
            matches!(l.get("wait"), Some("none" | "implicit")),
            "{}",
            l.text
        );
    }
}

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn the_layer_shm_buffers_are_read_back_by_the_fixture() {
    let lines = probe_on_fixture("0,0,1", &[("SYNCBRIDGE_BUFFERS", "shm")]);
    assert_commits(&lines, "shm", 0xff0000ff, 16);
}
