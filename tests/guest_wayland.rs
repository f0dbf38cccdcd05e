//! The layer's dma-buf path against a real compositor in the test guest.
//!
//! These tests run inside the guest (`tests/guest.rs` starts them with
//! `tests/guest/run.sh tests/guest/compositor.sh --sway`), where the kernel
//! makes dma-bufs and vgem fences and sway (wlroots 0.18, gles2 on
//! llvmpipe) imports linux-dmabuf buffers. On the host they are ignored.
//!
//! The `explicit_` tests start their own compositor instead: the
//! conformance compositor (`tests/common/conformance.rs`), the one here that
//! offers `wp_linux_drm_syncobj_manager_v1`, on virtio-gpu's render node
//! (`tests/guest.rs` runs them in a guest booted with `--virtio-gpu`).
//! bookworm's lavapipe exports no SYNC_FD, so the layer's GPU waiter
//! signals the acquire points.

mod common;

use common::{clean_command, probe_exe, run, Manifests, Output};
use std::process::Command;
use std::time::Duration;

const GUEST: &str = "needs the test guest with a compositor (tests/guest.rs runs it)";

/// The probe through the layer on the guest's compositor.
fn probe_command(m: &Manifests, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = clean_command(probe_exe(), m);
    for k in ["WAYLAND_DISPLAY", "XDG_RUNTIME_DIR"] {
        let v = std::env::var(k)
            .unwrap_or_else(|_| panic!("{k} is not set: run under tests/guest/compositor.sh"));
        cmd.env(k, v);
    }
    m.enable_layer(&mut cmd);
    cmd.env("SYNCBRIDGE_LOG", "info").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn assert_ok(out: &Output) {
    out.assert_success();
    assert!(out.stdout.contains("probe: result=ok"), "{out}");
}

#[test]
#[ignore = "needs the test guest with a compositor (tests/guest.rs runs it)"]
fn dma_buf_swapchain_on_a_real_compositor() {
    let _ = GUEST;
    let m = Manifests::new();
    let stats = std::env::temp_dir().join(format!("sb-stats-{}.jsonl", std::process::id()));
    // Validation above the layer checks the application's use of the
    // layer's swapchain.
    let cmd = probe_command(
        &m,
        &["frames", "--frames", "20", "--validation"],
        &[
            ("SYNCBRIDGE_STATS", stats.to_str().unwrap()),
            (
                "VK_INSTANCE_LAYERS",
                "VK_LAYER_KHRONOS_validation:VK_LAYER_SYNCBRIDGE_wsi",
            ),
            ("PROBE_VALIDATION_IN_ENV", "1"),
        ],
    );
    let out = run(cmd, Duration::from_secs(240));
    assert_ok(&out);
    assert!(out.stdout.contains("probe: validation_messages=0"), "{out}");
    // The plan: dma-buf images the compositor imports, and the render
    // fence bridged into the dma-buf by a kernel fence (lavapipe cannot
    // export a sync_file itself).
    assert!(
        out.stderr
            .contains("on wayland: DmaBuf buffers, present ImplicitSoftFence"),
        "the layer did not take the implicit dma-buf path:\n{out}"
    );
    assert!(!out.stderr.contains("syncbridge: error"), "{out}");
    let line = std::fs::read_to_string(&stats).expect("stats");
    assert!(line.contains("\"sync\":\"implicit-soft-fence\""), "{line}");
    assert!(line.contains("\"buffers\":\"DmaBuf\""), "{line}");
    let _ = std::fs::remove_file(&stats);
}

fn run_and_watch(args: &[&str], env: &[(&str, &str)]) -> (Output, usize, usize) {
    let m = Manifests::new();
    common::fence_watch::run_and_watch(probe_command(&m, args, env))
}

#[test]
#[ignore = "needs the test guest with a compositor (tests/guest.rs runs it)"]
fn write_fence_is_on_the_buffer_the_compositor_holds_until_the_gpu_is_done() {
    // The worker signals each frame's fence 400 ms after the GPU finished
    // (a slower GPU): meanwhile the compositor already has the buffer, and
    // the buffer carries the pending write fence that keeps it from
    // reading. Every frame still completes: the fence is signalled.
    let (out, pending, samples) = run_and_watch(
        &["frames", "--frames", "6"],
        &[("SYNCBRIDGE_DEBUG_FENCE_DELAY_MS", "800")],
    );
    assert_ok(&out);
    assert!(out.stderr.contains("present ImplicitSoftFence"), "{out}");
    assert!(samples > 0, "no dma-buf seen in the probe\n{out}");
    assert!(
        pending > 0,
        "no pending write fence seen in {samples} samples\n{out}"
    );
}

#[test]
#[ignore = "needs the test guest with a compositor (tests/guest.rs runs it)"]
fn the_worker_wait_path_hands_over_only_finished_buffers() {
    // The control: with SYNCBRIDGE_SYNC=cpu the buffer goes to the
    // compositor only after the GPU is done, and carries no fence.
    let (out, pending, samples) =
        run_and_watch(&["frames", "--frames", "6"], &[("SYNCBRIDGE_SYNC", "cpu")]);
    assert_ok(&out);
    assert!(
        out.stderr.contains("DmaBuf buffers, present WorkerWait"),
        "{out}"
    );
    assert!(samples > 0, "no dma-buf seen in the probe\n{out}");
    assert_eq!(
        pending, 0,
        "a write fence was pending on the worker-wait path\n{out}"
    );
}

/// The process id of the guest's compositor.
fn compositor_pid() -> String {
    for name in ["sway", "weston"] {
        let out = Command::new("pgrep")
            .args(["-o", "-x", name])
            .output()
            .expect("pgrep (procps)");
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !pid.is_empty() {
            return pid;
        }
    }
    panic!("no compositor process found");
}

#[test]
#[ignore = "needs the test guest with a compositor (tests/guest.rs runs it)"]
fn early_acquire_on_the_dma_buf_path_waits_for_the_release_on_the_gpu() {
    // With the compositor stopped, every image presented and none released,
    // a zero-timeout acquire still hands out a replaced image, and its fence
    // signals only after the compositor runs again, releases the buffer and
    // its reads of the dma-buf are done. Validation below the layer sees
    // the layer's timeline submissions.
    let m = Manifests::new();
    let pid = compositor_pid();
    let mut args = common::early_acquire_args(&pid);
    args.push("--validation");
    let out = run(probe_command(&m, &args, &[]), Duration::from_secs(240));
    assert_ok(&out);
    assert!(out.stderr.contains("on wayland: DmaBuf buffers"), "{out}");
    assert_eq!(
        out.probe_value("validation_messages").as_deref(),
        Some("0"),
        "{out}"
    );
    out.assert_replaced_image_handed_out_early();
}

#[test]
#[ignore = "needs the test guest with a compositor (tests/guest.rs runs it)"]
fn a_queued_frame_lets_acquire_hand_out_the_image_on_screen_on_the_dma_buf_path() {
    // The host test of the same name, on dma-buf images under sway. On the
    // worker-wait path (SYNCBRIDGE_SYNC=cpu) a frame stays in the layer
    // until its rendering is done, here 600 ms longer
    // (SYNCBRIDGE_DEBUG_FENCE_DELAY_MS): with one frame on screen and the
    // other images' frames held, a zero-timeout IMMEDIATE acquire hands out
    // the image on screen, and its fence signals only after a held frame
    // replaced it, sway released the buffer and its reads of the dma-buf
    // were done. Validation below the layer stays quiet.
    let m = Manifests::new();
    let out = run(
        probe_command(
            &m,
            &[
                "early-acquire-queued",
                "--mode",
                "immediate",
                "--frames",
                "2",
                "--validation",
            ],
            &[
                ("SYNCBRIDGE_SYNC", "cpu"),
                ("SYNCBRIDGE_DEBUG_FENCE_DELAY_MS", "600"),
            ],
        ),
        Duration::from_secs(240),
    );
    assert_ok(&out);
    assert!(
        out.stderr.contains("DmaBuf buffers, present WorkerWait"),
        "{out}"
    );
    assert_eq!(
        out.probe_value("validation_messages").as_deref(),
        Some("0"),
        "{out}"
    );
    out.assert_on_screen_image_handed_out_early("dma-buf, worker wait");
}

/// mutter 48 (`compositor.sh --mutter --outside`: mutter on the real path,
/// this client on the guest's bookworm userland) waits on each buffer's
/// implicit fences before it uses it. On the soft-fence path (bookworm's
/// lavapipe has no SYNC_FD) each frame's buffer goes to mutter at present
/// with a vgem write fence, which the worker signals 1.5 s after the GPU
/// finished (`SYNCBRIDGE_DEBUG_FENCE_DELAY_MS`): mutter's presentation
/// feedback must say each frame it showed came no sooner than that, while
/// the application's presents return at once (four IMMEDIATE frames on
/// five images need no release, so the loop's time is the presents').
/// mutter has no screenshot tool here: its feedback is the evidence.
#[test]
#[ignore = "needs the test guest with mutter (tests/guest.rs runs it)"]
fn mutter_shows_a_frame_only_after_its_write_fence_signals() {
    assert_eq!(
        std::env::var("SYNCBRIDGE_COMPOSITOR").as_deref(),
        Ok("mutter"),
        "run under tests/guest/compositor.sh --mutter --outside"
    );
    let m = Manifests::new();
    let tmp = common::TempDir::new("mutter-fence");
    let delay_ms = 1500.0;
    // The control first: without the delay mutter shows the frames sooner
    // than the delay, so the bound below tells waiting from slowness.
    let mut p50 = Vec::new();
    for delay in ["0", "1500"] {
        let stats = tmp.path().join(format!("stats-{delay}.jsonl"));
        let out = run(
            probe_command(
                &m,
                &[
                    "frames",
                    "--frames",
                    "4",
                    "--mode",
                    "immediate",
                    "--size",
                    "64x64",
                ],
                &[
                    ("SYNCBRIDGE_DEBUG_FENCE_DELAY_MS", delay),
                    ("SYNCBRIDGE_STATS", stats.to_str().unwrap()),
                    ("PROBE_HOLD_MS", "3000"),
                ],
            ),
            Duration::from_secs(300),
        );
        assert_ok(&out);
        assert!(
            out.stderr
                .contains("DmaBuf buffers, present ImplicitSoftFence"),
            "{out}"
        );
        let lines = common::stats::stats_lines(&stats);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        eprintln!("mutter statistics, delay {delay} ms: {line}");
        let shown = common::stats::json_number(line, "frames_displayed");
        assert!(shown >= 1.0, "mutter showed no frame: {line}");
        let at = line
            .find("\"display_latency_us\":")
            .expect("display_latency_us");
        p50.push(common::stats::json_number(&line[at..], "p50"));
        let fps: f64 = out.probe_value("fps").expect("fps").parse().expect("fps");
        assert!(
            fps > 4.0 / (3.0 * delay_ms / 1000.0),
            "the presents waited for the fences: {fps} fps\n{out}"
        );
        eprintln!(
            "@@ wayland name=mutter-write-fence delay_ms={delay} shown={shown} latency_p50_us={} fps={fps}",
            p50.last().unwrap()
        );
    }
    assert!(
        p50[0] < delay_ms * 1000.0,
        "without a delay mutter took {} us to show a frame: too slow to tell",
        p50[0]
    );
    assert!(
        p50[1] >= delay_ms * 1000.0,
        "mutter showed frames {} us after their present, before their fence signalled ({delay_ms} ms)",
        p50[1]
    );
}
/// Synchronization validation (bookworm's 1.3.239) on the soft-fence path
/// against mutter (`compositor.sh --mutter --outside`): below the layer
/// (it checks the layer's submissions, the worker's vgem fence being the
/// kernel's side) and above it, over the probe's resize storm (FIFO,
/// MAILBOX, IMMEDIATE in turn, random sizes), and with an acquire fence
/// (early acquire). The control first: a hazard the probe records on
/// purpose is reported, so synchronization validation is on.
#[test]
#[ignore = "needs the test guest with mutter (tests/guest.rs runs it)"]
fn mutter_syncval_is_quiet_on_the_soft_fence_path() {
    assert_eq!(
        std::env::var("SYNCBRIDGE_COMPOSITOR").as_deref(),
        Ok("mutter"),
        "run under tests/guest/compositor.sh --mutter --outside"
    );
    let m = Manifests::new();
    let control = common::sync_validation_env(&[("PROBE_SYNC_HAZARD", "1")], false);
    let out = run(
        probe_command(&m, &["frames", "--frames", "3", "--validation"], &control),
        Duration::from_secs(180),
    );
    assert_ok(&out);
    assert!(
        common::reports_write_after_write(&out),
        "synchronization validation is not on\n{out}"
    );
    for (name, extra, above) in [
        ("below", &[][..], false),
        ("above", &[][..], true),
        ("acquire-fence", &[("PROBE_ACQUIRE_FENCE", "1")][..], false),
    ] {
        let env = common::sync_validation_env(extra, above);
        let out = run(
            probe_command(&m, &["resize-storm", "--frames", "6", "--validation"], &env),
            Duration::from_secs(300),
        );
        assert_ok(&out);
        assert!(
            out.stderr
                .contains("DmaBuf buffers, present ImplicitSoftFence"),
            "{name}: not the soft-fence path\n{out}"
        );
        assert!(!out.stderr.contains("syncbridge: error"), "{name}\n{out}");
        assert_eq!(out.probe_number("storm_recreations"), 6, "{name}\n{out}");
        assert_eq!(
            out.probe_value("validation_messages").as_deref(),
            Some("0"),
            "{name}\n{out}"
        );
        eprintln!("@@ wayland name=mutter-syncval-{name} messages=0");
    }
}

// ---- explicit sync (wp_linux_drm_syncobj_v1) on the conformance compositor

use common::conformance::{Fixture, Line, Log};

const EXPLICIT: &str =
    "needs the test guest with virtio-gpu and the conformance compositor (tests/guest.rs runs it)";

/// The probe through the layer on the conformance compositor `cc`.
fn explicit_probe(m: &Manifests, cc: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = clean_command(probe_exe(), m);
    cc.client_env(&mut cmd);
    m.enable_layer(&mut cmd);
    cmd.env("SYNCBRIDGE_LOG", "info").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Every commit of `log` went with sync points, was read after its
/// acquire point, and showed `pixel` at the centre and the corners; the
/// compositor saw no protocol misuse and no failed wait.
fn assert_explicit_commits(log: &Log, pixel: &str) -> usize {
    assert!(log.success, "the compositor failed:\n{log}");
    assert_eq!(log.summary("errors"), 0, "{log}");
    let commits = log.commits();
    assert!(!commits.is_empty(), "no commit:\n{log}");
    assert_eq!(log.summary("explicit"), commits.len() as u64, "{log}");
    assert_eq!(log.summary("implicit_waits"), 0, "{log}");
    for c in &commits {
        assert_eq!(c.get("kind"), Some("dmabuf"), "{}", c.text);
        assert_eq!(c.get("wait"), Some("point"), "{}", c.text);
        assert!(c.number("acquire_point").is_some(), "{}", c.text);
        assert!(c.number("release_point").is_some(), "{}", c.text);
        assert_eq!(c.get("pixel"), Some(pixel), "{}", c.text);
        let corners = c.get("corners").unwrap_or_default();
        assert!(
            corners.split(',').all(|p| p == pixel),
            "corners {corners} are not {pixel}: {}",
            c.text
        );
    }
    commits.len()
}

fn assert_explicit_plan(out: &Output) {
    assert!(
        out.stderr
            .contains("on wayland: DmaBuf buffers, present ExplicitSyncobj, acquire QueueSignal"),
        "the layer did not take explicit sync:\n{out}"
    );
    assert!(
        out.stderr
            .contains("acquire points: signalled by a worker thread"),
        "{out}"
    );
    assert!(!out.stderr.contains("syncbridge: error"), "{out}");
}

#[test]
#[ignore = "needs the test guest with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_frames_reach_the_compositor_with_their_colour() {
    let _ = EXPLICIT;
    let m = Manifests::new();
    let cc = Fixture::start(&[]);
    let stats = cc.runtime_dir.join("stats.jsonl");
    let cmd = explicit_probe(
        &m,
        &cc,
        &[
            "frames",
            "--frames",
            "20",
            "--color",
            "1,0,0",
            "--validation",
        ],
        &[
            ("SYNCBRIDGE_STATS", stats.to_str().unwrap()),
            (
                "VK_INSTANCE_LAYERS",
                "VK_LAYER_KHRONOS_validation:VK_LAYER_SYNCBRIDGE_wsi",
            ),
            ("PROBE_VALIDATION_IN_ENV", "1"),
        ],
    );
    let out = run(cmd, Duration::from_secs(240));
    let line = std::fs::read_to_string(&stats).unwrap_or_default();
    let log = Log::of(cc);
    assert_ok(&out);
    assert!(out.stdout.contains("probe: validation_messages=0"), "{out}");
    assert_explicit_plan(&out);
    assert!(line.contains("\"sync\":\"explicit\""), "{line}");
    // Every frame (the last may still wait for its frame event when the
    // probe destroys the swapchain), every buffer given back by its
    // release point but the one on screen when the client went.
    let n = assert_explicit_commits(&log, "0xffff0000");
    assert!(n >= 19, "{n} commits of 20 frames:\n{log}");
    assert!(log.summary("released") >= n as u64 - 1, "{log}");
}

#[test]
#[ignore = "needs the test guest with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_acquire_points_delayed_and_the_compositor_reads_after() {
    let m = Manifests::new();
    let cc = Fixture::start(&[]);
    let cmd = explicit_probe(
        &m,
        &cc,
        &["frames", "--frames", "5", "--color", "0,1,0"],
        &[("SYNCBRIDGE_DEBUG_FENCE_DELAY_MS", "800")],
    );
    let out = run(cmd, Duration::from_secs(240));
    let log = Log::of(cc);
    assert_ok(&out);
    assert_explicit_plan(&out);
    assert!(assert_explicit_commits(&log, "0xff00ff00") >= 4, "{log}");
    // The buffer went to the compositor at once; it waited for the point
    // the layer's worker held back 800 ms after the GPU was done, less the
    // time the commit took to reach it (under TCG up to ~150 ms, and once
    // ~500 ms for a first frame while lavapipe compiled its clear).
    let waits: Vec<u64> = log
        .commits()
        .iter()
        .map(|c| c.number("waited_us").expect("waited_us"))
        .collect();
    assert!(waits.iter().all(|&w| w >= 250_000), "{waits:?}\n{log}");
    assert!(
        waits.iter().filter(|&&w| w >= 500_000).count() >= waits.len() - 1,
        "{waits:?}\n{log}"
    );
    eprintln!("acquire points 800 ms late: the compositor waited {waits:?} us");
}

#[test]
#[ignore = "needs the test guest with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_release_points_gate_reuse() {
    let m = Manifests::new();
    // Releases held back until SIGUSR1, 1.5 s after the third commit (one
    // per image of FIFO's three).
    let cc = Fixture::start(&["--hold-release"]);
    let cmd = explicit_probe(&m, &cc, &["frames", "--frames", "8"], &[]);
    let out = std::thread::scope(|scope| {
        scope.spawn(|| {
            cc.wait_for(Duration::from_secs(120), |lines: &[Line]| {
                lines.iter().filter(|l| l.kind == "commit").count() >= 3
            });
            std::thread::sleep(Duration::from_millis(1500));
            cc.signal(libc::SIGUSR1);
        });
        run(cmd, Duration::from_secs(240))
    });
    let log = Log::of(cc);
    assert_ok(&out);
    assert_explicit_plan(&out);
    let images = out.probe_number("images") as usize;
    assert!(assert_explicit_commits(&log, "0xffff0000") >= 7, "{log}");
    // Before the releases, only one commit per image: no buffer is
    // committed again before its release point signalled.
    let hold_off = log.position("hold off").expect("SIGUSR1 seen");
    let before = log.lines[..hold_off]
        .iter()
        .filter(|l| l.kind == "commit")
        .count();
    assert_eq!(before, images, "{log}");
    assert!(
        !out.stderr.contains("SYNCBRIDGE_RELEASE_TIMEOUT_MS"),
        "{out}"
    );
}

#[test]
#[ignore = "needs the test guest with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_release_points_never_signalled_cannot_hang_the_application() {
    let m = Manifests::new();
    let cc = Fixture::start(&["--hold-release"]);
    let cmd = explicit_probe(
        &m,
        &cc,
        &["frames", "--frames", "10"],
        &[("SYNCBRIDGE_RELEASE_TIMEOUT_MS", "500")],
    );
    let t = std::time::Instant::now();
    let out = run(cmd, Duration::from_secs(240));
    let took = t.elapsed();
    let log = Log::of(cc);
    assert_ok(&out);
    assert_explicit_plan(&out);
    assert!(
        out.stderr.contains("SYNCBRIDGE_RELEASE_TIMEOUT_MS"),
        "no release-timeout line:\n{out}"
    );
    assert_eq!(log.summary("released"), 0, "{log}");
    assert_eq!(log.summary("errors"), 0, "{log}");
    // Images were reused after the timeout (more commits than images;
    // the last frame may still wait for its image's release when the
    // swapchain goes).
    // Released by the timeout (one line for the swapchain), not because a
    // wait on a point not yet submitted failed.
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
    let images = out.probe_number("images") as usize;
    assert!(log.commits().len() >= 9, "{log}");
    assert!(log.commits().len() > images, "{log}");
    // Each frame past the images waited about the timeout, never the
    // probe's 20 s acquire timeout.
    assert!(took < Duration::from_secs(120), "{took:?}\n{out}");
    eprintln!("10 frames with releases never signalled: {took:?}");
}

/// The compositor killed (SIGKILL) mid-stream on the explicit path: the
/// application gets `VK_ERROR_SURFACE_LOST_KHR` or
/// `VK_ERROR_OUT_OF_DATE_KHR` within a bounded time (no wait on a release
/// point that will never come), and once it destroys the swapchain every
/// fd the layer opened for it is closed (the render node the timelines
/// live on stays open: a process-wide cache).
#[test]
#[ignore = "needs the test guest with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_compositor_killed_mid_stream() {
    let m = Manifests::new();
    let cc = Fixture::start(&[]);
    let mut cmd = explicit_probe(&m, &cc, &["frames", "--frames", "1000000"], &[]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("probe");
    let flowing = cc.wait_for(Duration::from_secs(180), |lines: &[Line]| {
        lines.iter().filter(|l| l.kind == "commit").count() >= 10
    });
    cc.signal(libc::SIGKILL);
    assert!(flowing, "fewer than 10 commits in 180 s:\n{}", cc.text());
    let (took, stdout, stderr) =
        common::assert_error_after_compositor_death(child, Duration::from_secs(30));
    assert!(
        stderr.contains("present ExplicitSyncobj"),
        "not the explicit path:\n{stderr}"
    );
    let left = stdout
        .lines()
        .find_map(|l| l.strip_prefix("probe: new_fds_after_error="))
        .unwrap_or_else(|| panic!("no new_fds_after_error line:\n{stdout}"));
    assert!(
        left == "none"
            || left.split(',').all(|fd| fd
                .split_once(':')
                .is_some_and(|(_, t)| t.starts_with("/dev/dri/"))),
        "fds left after the swapchain was destroyed: {left}\n{stdout}\n{stderr}"
    );
    eprintln!("explicit, compositor killed: error after {took:?}, fds left {left}");
}

#[test]
#[ignore = "needs the test guest with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_recreation_and_destruction_with_points_outstanding() {
    let m = Manifests::new();
    let cc = Fixture::start(&[]);
    // Acquire points held back, so swapchains are retired and destroyed
    // with points the compositor still waits for.
    let delay = [("SYNCBRIDGE_DEBUG_FENCE_DELAY_MS", "150")];
    let recreate = run(
        explicit_probe(&m, &cc, &["recreate", "--frames", "20"], &delay),
        Duration::from_secs(300),
    );
    let destroy = run(
        explicit_probe(&m, &cc, &["destroy-in-flight", "--frames", "6"], &delay),
        Duration::from_secs(120),
    );
    let log = Log::of(cc);
    assert_ok(&recreate);
    assert_ok(&destroy);
    assert_explicit_plan(&recreate);
    assert_explicit_plan(&destroy);
    // One syncobj surface per wl_surface across 21 swapchains (a second
    // would be the surface_exists error), every commit with its points.
    let n = assert_explicit_commits(&log, "0xffff0000");
    assert!(n >= 21, "{n} commits:\n{log}");
}

#[test]
#[ignore = "needs the test guest with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_fds_stay_flat_over_recreations() {
    let m = Manifests::new();
    let cc = Fixture::start(&[]);
    let out = run(
        explicit_probe(&m, &cc, &["leak-recreate", "--frames", "200"], &[]),
        Duration::from_secs(500),
    );
    let log = Log::of(cc);
    assert_ok(&out);
    assert_explicit_plan(&out);
    let (fds100, fds_end) = (out.probe_number("fds_100"), out.probe_number("fds_end"));
    assert_eq!(out.probe_word("settled"), "true", "{out}");
    assert_eq!(out.probe_value("new_fds").as_deref(), Some("none"), "{out}");
    assert_eq!(fds100, fds_end, "fds grew over 100 recreations:\n{out}");
    assert_eq!(log.summary("errors"), 0, "{log}");
    assert!(log.success, "{log}");
}

#[test]
#[ignore = "needs the test guest with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_or_implicit_forced_by_syncbridge_sync() {
    let m = Manifests::new();
    // Implicit on a compositor that offers explicit sync.
    let cc = Fixture::start(&[]);
    let out = run(
        explicit_probe(
            &m,
            &cc,
            &["frames", "--frames", "5", "--color", "0,0,1"],
            &[("SYNCBRIDGE_SYNC", "implicit")],
        ),
        Duration::from_secs(240),
    );
    let log = Log::of(cc);
    assert_ok(&out);
    assert!(
        out.stderr.contains("present ImplicitSoftFence")
            && out.stderr.contains("SYNCBRIDGE_SYNC=implicit"),
        "{out}"
    );
    assert_eq!(log.summary("explicit"), 0, "{log}");
    assert_eq!(log.summary("errors"), 0, "{log}");
    assert!(
        log.commits()
            .iter()
            .all(|c| c.get("pixel") == Some("0xff0000ff")),
        "{log}"
    );
    // Explicit asked for where the compositor does not offer it: one line.
    let cc = Fixture::start(&["--no-syncobj"]);
    let out = run(
        explicit_probe(
            &m,
            &cc,
            &["recreate", "--frames", "3"],
            &[("SYNCBRIDGE_SYNC", "explicit")],
        ),
        Duration::from_secs(240),
    );
    let log = Log::of(cc);
    assert_ok(&out);
    assert_eq!(
        out.stderr
            .matches("SYNCBRIDGE_SYNC=explicit: explicit sync is not available")
            .count(),
        1,
        "{out}"
    );
    assert!(
        out.stderr.contains("wp_linux_drm_syncobj_manager_v1"),
        "{out}"
    );
    assert_eq!(log.summary("errors"), 0, "{log}");
}

/// A timeline the kernel refuses (`SYNCBRIDGE_DEBUG_FAULTS=syncobj`: the
/// layer's check imports an eventfd as the timeline's fd, and
/// `DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE` refuses it for real): one error line,
/// and the swapchain takes the implicit path on the same compositor, every
/// frame read back after its implicit fence, no sync point, no protocol
/// error (no syncobj surface is left for a commit without points).
#[test]
#[ignore = "needs the test guest with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_timeline_the_kernel_refuses_gives_one_error_and_implicit_sync() {
    let m = Manifests::new();
    let cc = Fixture::start(&[]);
    let out = run(
        explicit_probe(
            &m,
            &cc,
            &["frames", "--frames", "5", "--color", "0,0,1"],
            &[("SYNCBRIDGE_DEBUG_FAULTS", "syncobj")],
        ),
        Duration::from_secs(240),
    );
    let log = Log::of(cc);
    assert_ok(&out);
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("syncbridge: error"))
        .collect();
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].contains("the kernel refused the swapchain's timelines")
            && errors[0].contains("DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("on wayland: DmaBuf buffers, present ImplicitSoftFence"),
        "{out}"
    );
    assert!(log.success, "{log}");
    assert_eq!(log.summary("errors"), 0, "{log}");
    assert_eq!(log.summary("explicit"), 0, "{log}");
    let commits = log.commits();
    assert!(commits.len() >= 4, "{log}");
    for c in &commits {
        assert_eq!(c.get("kind"), Some("dmabuf"), "{}", c.text);
        assert_eq!(c.get("acquire_point"), Some("none"), "{}", c.text);
        assert_eq!(c.get("pixel"), Some("0xff0000ff"), "{}", c.text);
    }
}

#[test]
#[ignore = "needs the test guest with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_syncbridge_info_says_explicit_and_why() {
    let m = Manifests::new();
    let cc = Fixture::start(&[]);
    let mut cmd = clean_command(env!("CARGO_BIN_EXE_syncbridge-info"), &m);
    cc.client_env(&mut cmd);
    cmd.arg("--json");
    let out = run(cmd, Duration::from_secs(120));
    let log = Log::of(cc);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let wl = &v["wayland"];
    assert_eq!(wl["wp_linux_drm_syncobj_manager_v1"], 1, "{out}");
    let node = wl["explicit_sync"].as_str().unwrap_or_default();
    assert!(
        node.contains("renderD") && node.contains("virtio_gpu"),
        "{out}"
    );
    assert!(
        wl["layer_uses"]
            .as_array()
            .is_some_and(|a| a.iter().any(|g| g == "wp_linux_drm_syncobj_manager_v1 v1")),
        "{out}"
    );
    let path = &v["layer_would_take"]["wayland"][0];
    assert_eq!(path["present"], "explicit", "{out}");
    assert!(
        path["reason"]
            .as_str()
            .is_some_and(|r| r.contains("speaks explicit sync")),
        "{out}"
    );
    assert!(log.success, "{log}");
}
