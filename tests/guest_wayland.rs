//! The layer's dma-buf path against a real compositor in the test guest.
//!
//! These tests run inside the guest (`tests/guest.rs` starts them with
//! `tests/guest/run.sh tests/guest/compositor.sh --sway`), where the kernel
//! makes dma-bufs and vgem fences and sway (wlroots 0.18, gles2 on
//! llvmpipe) imports linux-dmabuf buffers. On the host they are ignored.

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
        &[("SYNCBRIDGE_DEBUG_FENCE_DELAY_MS", "400")],
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
