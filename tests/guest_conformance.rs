//! The conformance compositor (`tests/conformance-compositor`) in the test
//! guest: its own smoke client first (explicit sync with late acquire
//! points, held releases, implicit fences, a timeout, six protocol
//! violations), then the layer's probe through the real loader on it, on
//! the dma-buf and shared-memory paths, with the compositor's readback of
//! every frame checked. Then the `x11_` tests: the X11 test client
//! (`tests/x11.rs`) through the layer on the same crate's DRI3 1.4 relay
//! in front of a real Xvfb (`dri3-syncobj-proxy`, started by
//! `tests/common/x11_relay.rs`), DRI3 1.4 explicit sync checked from the
//! relay's lines and the window's pixels.
//!
//! `tests/guest.rs` builds the fixture on the host and runs these in the
//! guest with `--virtio-gpu` (virtio-gpu's render node has timelines); on
//! the host they are ignored.

mod common;

use common::conformance::{self, Fixture, Line};
use common::{clean_command, probe_exe, run, x11_relay, Manifests, Output};
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

/// The X11 test client (`SB_MODE=mode`) through the layer on the DRI3
/// 1.4 relay in front of Xvfb (`dri3-syncobj-proxy`); the relay's lines
/// once `connections` client connections ended (`clear` makes two: its
/// own, and the one that reads the window back).
fn x11_on_relay(
    relay_args: &[&str],
    mode: &str,
    env: &[(&str, &str)],
    connections: usize,
) -> (Output, Vec<Line>) {
    let relay = x11_relay::Relay::start(relay_args);
    let m = Manifests::new();
    let out = run(
        x11_relay::client(&m, &relay.display, mode, env),
        Duration::from_secs(300),
    );
    let done = relay
        .log
        .wait_for_clients(connections, Duration::from_secs(20));
    let lines = relay.log.lines();
    assert!(
        done,
        "the relay did not see the connections end:\n{}\n{out}",
        relay.log.text()
    );
    (out, lines)
}

fn x11_client_on_relay(relay_args: &[&str], env: &[(&str, &str)]) -> (Output, Vec<Line>) {
    x11_on_relay(relay_args, "clear", env, 2)
}

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn x11_dri3_1_4_frames_go_by_syncobj_points() {
    let (out, lines) = x11_client_on_relay(&[], &[]);
    let presents = x11_relay::assert_synced_presents(&out, &lines, 30);
    // bookworm's lavapipe exports no sync_file: the GPU waiter signals the
    // acquire points, so the buffer goes to the server before rendering
    // is known to be done.
    assert!(
        out.stderr
            .contains("acquire points: signalled by a worker thread"),
        "{out}"
    );
    eprintln!(
        "{} synced presents, {} with the acquire point pending on arrival",
        presents.len(),
        presents
            .iter()
            .filter(|p| p.number("pending_on_arrival") == Some(1))
            .count()
    );
}

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn x11_delayed_acquire_points_are_waited_for_by_the_server() {
    // Each frame's acquire point signals 150 ms after the render fence:
    // the request reaches the server first, and the server reads the
    // pixmap only after the point (the relay's wait, and the colour it
    // read).
    let (out, lines) = x11_client_on_relay(&[], &[("SYNCBRIDGE_DEBUG_FENCE_DELAY_MS", "150")]);
    let presents = x11_relay::assert_synced_presents(&out, &lines, 30);
    let pending: Vec<&Line> = presents
        .iter()
        .filter(|p| p.number("pending_on_arrival") == Some(1))
        .collect();
    assert!(
        pending.len() * 2 >= presents.len(),
        "{} of {} presents came before their acquire point",
        pending.len(),
        presents.len()
    );
    for p in &pending {
        let waited: f64 = p
            .get("waited_ms")
            .and_then(|w| w.parse().ok())
            .unwrap_or(0.0);
        assert!(waited > 0.0, "{}", p.text);
    }
}

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn x11_release_points_gate_the_next_present_of_an_image() {
    // The relay signals each release point 100 ms after the server is done
    // with the pixmap, and reports a pixmap presented again before its
    // point signalled (assert_synced_presents finds no such line).
    let (out, lines) = x11_client_on_relay(&["--hold-release-ms", "100"], &[]);
    x11_relay::assert_synced_presents(&out, &lines, 30);
}

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn x11_a_refused_timeline_gives_one_error_line_and_implicit_sync() {
    // SYNCBRIDGE_DEBUG_FAULTS=syncobj: the kernel refuses the layer's
    // check import of a timeline for real; the swapchain takes the
    // implicit path on the same server (plain PresentPixmap, the dma-buf's
    // fences, IdleNotify).
    let (out, lines) = x11_client_on_relay(&[], &[("SYNCBRIDGE_DEBUG_FAULTS", "syncobj")]);
    let text: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
    out.assert_success();
    assert!(out.stdout.contains("PIXELS OK"), "{out}\n{text}");
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("syncbridge: error"))
        .collect();
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].contains("the kernel refused the swapchain's timelines"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("on xcb: DmaBuf buffers, present ImplicitSoftFence"),
        "{out}"
    );
    assert!(
        out.stderr.contains("PresentPixmap, released on IdleNotify"),
        "{out}"
    );
    assert!(!text.contains("error:"), "{text}");
    let count = |kind: &str| lines.iter().filter(|l| l.kind == kind).count();
    assert_eq!(count("import_syncobj"), 0, "{text}");
    assert_eq!(count("present_synced"), 0, "{text}");
    let presents: Vec<&Line> = lines
        .iter()
        .filter(|l| l.kind == "present_implicit")
        .collect();
    assert!(presents.len() >= 30, "{text}");
    for p in presents {
        assert_eq!(
            x11_relay::centre(p).map(|c| c & 0xff_ffff),
            Some(0xff00ff),
            "{}",
            p.text
        );
    }
}

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn x11_release_points_never_signalled_cannot_hang_the_application() {
    let t = std::time::Instant::now();
    let (out, lines) = x11_client_on_relay(
        &["--never-release"],
        &[("SYNCBRIDGE_RELEASE_TIMEOUT_MS", "500")],
    );
    let took = t.elapsed();
    let text: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
    out.assert_success();
    assert!(out.stdout.contains("PIXELS OK"), "{out}\n{text}");
    assert_eq!(
        out.stderr
            .matches("has not released a replaced buffer in 500 ms")
            .count(),
        1,
        "{out}"
    );
    assert!(
        !out.stderr.contains("waiting for the release point"),
        "{out}"
    );
    assert!(!text.contains("error:"), "{text}");
    let count = |kind: &str| lines.iter().filter(|l| l.kind == kind).count();
    assert!(count("present_synced") >= 30, "{text}");
    // Images reused after the timeout, their points still unsignalled.
    assert!(count("reuse_before_release") >= 20, "{text}");
    // Each frame past the images waited about the timeout, never the
    // client's own acquire timeout.
    assert!(took < Duration::from_secs(120), "{took:?}");
    eprintln!("30 frames with releases never signalled: {took:?}");
}

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn x11_resize_recreates_the_timelines_with_points_outstanding() {
    // SB_MODE=resize: the window grows at frame 10, the swapchain goes out
    // of date and is recreated (the old one retired with its last points
    // outstanding), 20 frames at 400x300, the window read back.
    let (out, lines) = x11_on_relay(&[], "resize", &[], 2);
    assert!(out.stdout.contains("RECREATED 400x300"), "{out}");
    x11_relay::assert_synced_presents(&out, &lines, 30);
    let sizes: Vec<&str> = lines
        .iter()
        .filter(|l| l.kind == "pixmap_from_buffers")
        .filter_map(|l| l.text.split(' ').nth(2))
        .collect();
    assert!(
        sizes.contains(&"320x240") && sizes.contains(&"400x300"),
        "{sizes:?}"
    );
}

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn x11_server_killed_mid_stream_is_an_error_not_a_hang() {
    use std::io::{BufRead, BufReader};
    let mut relay = x11_relay::Relay::start(&[]);
    let m = Manifests::new();
    let mut cmd = x11_relay::client(&m, &relay.display, "forever", &[]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let mut child = cmd.spawn().expect("start the X11 client");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = false;
    for l in lines.by_ref() {
        if l.unwrap_or_default() == "FRAME 30" {
            seen = true;
            break;
        }
    }
    if !seen {
        let _ = child.kill();
        panic!("the client did not reach 30 frames:\n{}", relay.log.text());
    }
    let killed = std::time::Instant::now();
    relay.kill();
    let reader = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if killed.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the client hangs after the server died");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest = reader.join().unwrap();
    eprintln!(
        "client ended {:?} after the server died: {status:?}, {:?}",
        killed.elapsed(),
        rest.iter().rev().take(2).collect::<Vec<_>>()
    );
    assert!(rest.iter().any(|l| l.starts_with("ERROR")), "{rest:?}");
}

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn x11_fds_stay_flat_over_200_recreations_on_dri3_1_4() {
    // 200 swapchains in turn, each with a frame: three dma-bufs and six
    // timelines go to the server per swapchain (x11rb closes its copies
    // once sent); the client's fds are the same after the 50th and the
    // last, and the relay saw every timeline freed.
    let (out, lines) = x11_on_relay(&[], "recreate", &[("SB_RECREATE", "200")], 1);
    let text: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
    out.assert_success();
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.split_once("RECREATED ").map(|(_, r)| r.to_string()))
        .unwrap_or_else(|| panic!("no RECREATED line:\n{out}"));
    let field = |k: &str| {
        line.split(' ')
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse::<u64>().ok())
    };
    assert_eq!(field("fds_50="), field("fds_end="), "{line}\n{out}");
    assert!(field("fds_50=").is_some_and(|n| n > 0), "{line}");
    assert!(out.stderr.contains("present ExplicitSyncobj"), "{out}");
    assert!(!out.stderr.contains("syncbridge: error"), "{out}");
    assert!(!text.contains("error:"), "{text}");
    let count = |kind: &str| lines.iter().filter(|l| l.kind == kind).count();
    assert_eq!(count("import_syncobj"), count("free_syncobj"), "{text}");
    assert!(count("import_syncobj") >= 2 * 201 * 2, "{text}");
    eprintln!(
        "X11 recreations: {line}, {} timelines imported and freed",
        count("import_syncobj")
    );
}

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn x11_syncbridge_info_reports_dri3_explicit_sync() {
    let relay = x11_relay::Relay::start(&[]);
    let m = Manifests::new();
    let mut cmd = clean_command(common::profile_dir().join("syncbridge-info"), &m);
    cmd.env("DISPLAY", &relay.display)
        .env("SYNCBRIDGE_BUFFERS", "dmabuf")
        .arg("--json");
    let out = run(cmd, Duration::from_secs(120));
    out.assert_success();
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"));
    let x11 = &v["x11"];
    assert_eq!(x11["dri3"], "1.4", "{x11}");
    assert_eq!(x11["present"], "1.4", "{x11}");
    assert!(
        x11["explicit_sync"].as_str().is_some_and(|s| s
            .starts_with("DRI3 1.4 syncobjs (PresentPixmapSynced), timelines on /dev/dri/renderD")),
        "{x11}"
    );
    assert_eq!(
        v["layer_would_take"]["x11"][0]["present"], "explicit",
        "{v}"
    );
}

#[test]
#[ignore = "needs the test guest (tests/guest.rs runs it)"]
fn x11_every_present_mode_goes_by_syncobj_points() {
    // The client asks for FIFO; SYNCBRIDGE_PRESENT_MODE makes it each of
    // the others. IMMEDIATE goes with PresentOptionAsync, every frame to
    // the server; FIFO_RELAXED too, async only once a vblank has passed;
    // MAILBOX hands over only the newest frame the presenter has when it
    // gets to it (12 and 14 of 30 in two runs), the replaced ones never reach the
    // server, and none is async.
    for mode in ["immediate", "mailbox", "fifo_relaxed"] {
        let (out, lines) = x11_client_on_relay(&[], &[("SYNCBRIDGE_PRESENT_MODE", mode)]);
        let at_least = if mode == "mailbox" { 2 } else { 30 };
        let presents = x11_relay::assert_synced_presents(&out, &lines, at_least);
        let asynced = presents
            .iter()
            .filter(|p| p.number("options").is_some_and(|o| o & 1 != 0))
            .count();
        match mode {
            "immediate" => assert_eq!(asynced, presents.len(), "{mode}: {out}"),
            "mailbox" => assert_eq!(asynced, 0, "{mode}: {out}"),
            _ => {}
        }
        eprintln!(
            "{mode}: {} synced presents, {asynced} async",
            presents.len()
        );
    }
}
