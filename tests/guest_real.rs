//! The layer's core path end to end, in the test guest: trixie's lavapipe
//! (SYNC_FD export and import, dma-buf export and import with modifiers)
//! as root in the trixie chroot, on weston 14 GL, which reads the layer's
//! dma-bufs through Mesa's swrast path (its DRM nodes left unreadable).
//! `tests/guest.rs` runs these tests inside the chroot with
//! `tests/guest/run.sh tests/guest/compositor.sh --real`, one guest boot
//! and one compositor for all of them; on the host they are ignored.
//!
//! Each check prints `@@ real name=... seconds=...` with what it measured
//! (`RUST_TEST_NOCAPTURE=1` shows it). Screenshots are kept in
//! `target/<profile>/guest-shots/` when that folder is writable (guest.rs
//! shares it read-write with the guest).

mod common;

use common::image::{is_cube_grey, is_logo_teal, Rgb};
use common::stats::json_number;
use common::{clean_command, probe_exe, profile_dir, run, x11_relay, Manifests, Output, TempDir};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The plan of the core path: the render semaphore's sync_file on the
/// dma-buf at present, the released dma-buf's sync_file in the
/// application's semaphore and fence at acquire.
const CORE_PLAN: &str =
    "on wayland: DmaBuf buffers, present ImplicitSyncFile, acquire ImportSyncFile";

fn env(key: &str) -> String {
    std::env::var(key)
        .unwrap_or_else(|_| panic!("{key} is not set: run under tests/guest/compositor.sh --real"))
}

/// `program` through the layer on the guest's compositor, as root in the
/// chroot (trixie's lavapipe then offers SYNC_FD).
fn client(program: impl AsRef<std::ffi::OsStr>, m: &Manifests, layer: bool) -> Command {
    assert_eq!(
        std::env::var("SYNCBRIDGE_REAL_PATH").as_deref(),
        Ok("1"),
        "run under tests/guest/compositor.sh --real"
    );
    let mut cmd = clean_command(program, m);
    for k in ["WAYLAND_DISPLAY", "XDG_RUNTIME_DIR"] {
        cmd.env(k, env(k));
    }
    if layer {
        m.enable_layer(&mut cmd);
    }
    cmd.env("SYNCBRIDGE_LOG", "info");
    cmd
}

fn probe(m: &Manifests, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = client(probe_exe(), m, true);
    cmd.args(args).envs(env.iter().copied());
    cmd
}

/// A screenshot of the compositor's output, through compositor.sh's script.
fn screenshot(dir: &Path, name: &str) -> PathBuf {
    let shot = dir.join(format!("{name}.png"));
    let mut cmd = Command::new(env("SYNCBRIDGE_SCREENSHOT"));
    cmd.arg(&shot);
    let out = run(cmd, Duration::from_secs(90));
    assert!(out.status.success(), "screenshot failed\n{out}");
    let keep = profile_dir().join("guest-shots");
    if keep.is_dir() {
        let _ = std::fs::copy(&shot, keep.join(format!("{name}.png")));
    }
    shot
}

/// Runs `cmd`; once a line of its stdout or stderr satisfies `ready`,
/// waits `settle` and takes a screenshot while it still runs; while `shown`
/// does not hold for it and the client runs, another one every 2 s (six
/// at most: under TCG weston may show the first frames late). Then it
/// closes the client's stdin: a probe holding its last frame
/// (`PROBE_HOLD_UNTIL_EOF`) ends its hold there. Everything bounded by
/// `limit`.
fn run_with_screenshot(
    mut cmd: Command,
    ready: impl Fn(&str) -> bool,
    settle: Duration,
    dir: &Path,
    name: &str,
    limit: Duration,
    shown: impl Fn(&Path) -> bool,
) -> (Output, PathBuf, Duration) {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PROBE_HOLD_UNTIL_EOF", "1");
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    let (tx, rx) = mpsc::channel::<String>();
    let pipe = |r: Box<dyn std::io::Read + Send>, tx: mpsc::Sender<String>| {
        std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(r).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        })
    };
    let out = pipe(Box::new(child.stdout.take().unwrap()), tx.clone());
    let err = pipe(Box::new(child.stderr.take().unwrap()), tx);
    let kill = |child: &mut std::process::Child, why: &str| -> ! {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{why}");
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if ready(&line) => break,
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.wait();
                panic!(
                    "{name}: the client ended before it was ready\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    out.join().unwrap_or_default(),
                    err.join().unwrap_or_default()
                );
            }
        }
        if t0.elapsed() > limit {
            kill(&mut child, &format!("{name}: not ready within {limit:?}"));
        }
    }
    std::thread::sleep(settle);
    let mut shot = screenshot(dir, name);
    for _ in 0..5 {
        if shown(&shot) || child.try_wait().ok().flatten().is_some() {
            break;
        }
        eprintln!("{name}: not on the screenshot yet; another in 2 s");
        std::thread::sleep(Duration::from_secs(2));
        shot = screenshot(dir, name);
    }
    drop(child.stdin.take());
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > limit {
            kill(
                &mut child,
                &format!("{name}: did not finish within {limit:?}"),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    (output, shot, t0.elapsed())
}

fn stats_line(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one swapchain's statistics expected: {text}"
    );
    lines[0].to_string()
}

/// The mean of the layer's own CPU time per frame from a statistics line.
fn layer_cpu_mean(line: &str) -> f64 {
    let at = line.find("\"layer_cpu_us\":").expect("layer_cpu_us");
    json_number(&line[at..], "mean")
}

/// Validation said nothing but what trixie's lavapipe makes it say about
/// images with `VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT` (the driver- and
/// imported-dma-buf paths): Mesa 25.0.7 fills
/// `VkDrmFormatModifierPropertiesListEXT` (LINEAR, features 0xdd83,
/// TRANSFER_DST among them) but answers an empty
/// `VkDrmFormatModifierPropertiesList2EXT`, which validation 1.4.309 reads
/// on a 1.3 device, so it sees no format features at all and reports the
/// application's clear (`VUID-vkCmdClearColorImage-image-01993`, "which
/// have VkFormatFeatureFlags2 (VkFormatFeatureFlags2(0))"). Measured in the
/// guest with both queries side by side. Any other message fails. Returns
/// how many of those it let pass.
fn assert_validation_quiet(out: &Output) -> usize {
    let messages: Vec<&str> = out
        .stdout
        .lines()
        // (A test child's first line follows libtest's `test NAME ... `.)
        .filter_map(|l| l.split_once("probe: validation_message=").map(|(_, m)| m))
        .collect();
    let lavapipe_list2 = |m: &&str| {
        m.contains("vkCmdClearColorImage()")
            && m.contains("VK_IMAGE_TILING_DRM_FORMAT_MODIFIER_EXT")
            && m.contains("(VkFormatFeatureFlags2(0))")
    };
    let others: Vec<&&str> = messages.iter().filter(|m| !lavapipe_list2(m)).collect();
    assert!(others.is_empty(), "validation: {others:#?}\n{out}");
    assert_eq!(
        out.probe_value("validation_messages"),
        Some(messages.len().to_string()),
        "{out}"
    );
    messages.len()
}

fn report(name: &str, took: Duration, what: &str) {
    eprintln!(
        "@@ real name={name} seconds={:.1} {what}",
        took.as_secs_f64()
    );
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn lavapipe_offers_sync_fd_and_the_layer_would_take_the_core_path() {
    // What a user asks first: does this driver export and import SYNC_FD,
    // and what would the layer do on this compositor.
    let m = Manifests::new();
    let t = Instant::now();
    let out = run(
        client(profile_dir().join("syncbridge-info"), &m, false),
        Duration::from_secs(120),
    );
    out.assert_success();
    let text = &out.stdout;
    for want in [
        "semaphore_sync_fd_export               yes",
        "semaphore_sync_fd_import               yes",
        "fence_sync_fd_import                   yes",
        "external_memory_dma_buf                yes",
        "drm_format_modifiers                   yes",
        "dma_buf_sync_file_ioctls               supported",
        "zwp_linux_dmabuf_v1                    3",
        "present                                implicit",
        "acquire                                ImportSyncFile",
        "buffers                                DmaBuf",
    ] {
        assert!(text.contains(want), "no {want:?} in\n{out}");
    }
    report("info", t.elapsed(), "sync_fd=yes");
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn vkcube_on_the_sync_file_path_shows_the_cube() {
    let m = Manifests::new();
    let tmp = TempDir::new("real-vkcube");
    let stats = tmp.path().join("stats.jsonl");
    let frames = 100;
    let mut cmd = client("vkcube", &m, true);
    cmd.args(["--wsi", "wayland", "--c", &frames.to_string()])
        .env("SYNCBRIDGE_STATS", &stats);
    // The swapchain is made: let the cube turn a few frames, then look.
    let (out, shot, took) = run_with_screenshot(
        cmd,
        |l| l.contains(" on wayland: "),
        Duration::from_secs(6),
        tmp.path(),
        "vkcube-sync-file",
        Duration::from_secs(240),
        |shot| cube_shares(&Rgb::load(shot)).0 > 0.10,
    );
    assert!(out.status.success(), "vkcube failed\n{out}");
    assert!(out.stderr.contains(CORE_PLAN), "not the core path\n{out}");
    assert!(!out.stderr.contains("syncbridge: error"), "{out}");
    let line = stats_line(&stats);
    assert!(line.contains("\"sync\":\"implicit\""), "{line}");
    assert_eq!(
        json_number(&line, "frames_presented"),
        frames as f64,
        "{line}"
    );
    let (grey, teal) = cube_shares(&Rgb::load(&shot));
    assert!(
        grey > 0.10 && teal > 0.02,
        "no cube on the screenshot (grey {grey:.3}, teal {teal:.3})"
    );
    report(
        "vkcube",
        took,
        &format!(
            "frames={} fps={:.1} layer_cpu_us={:.0} grey={grey:.3} teal={teal:.3}",
            json_number(&line, "frames_presented"),
            json_number(&line, "fps"),
            layer_cpu_mean(&line)
        ),
    );
}

/// The shares of vkcube's grey faces and teal logo in the middle of the
/// output (its 500x500 window, centred by weston's kiosk shell).
fn cube_shares(img: &Rgb) -> (f64, f64) {
    let (cx, cy) = (img.width / 2, img.height / 2);
    (
        img.share(cx - 150, cy - 150, cx + 150, cy + 150, is_cube_grey),
        img.share(cx - 150, cy - 150, cx + 150, cy + 150, is_logo_teal),
    )
}

/// The probe clears a 320x240 window to `rgb` for 30 frames through the
/// layer with `SYNCBRIDGE_IMAGES=images` and validation above it; the
/// colour must cover exactly the window on weston's screenshot, and the
/// plan and the statistics must name the image path `stat_images`.
fn colour_on_the_core_path(images: &str, rgb: [u8; 3], stat_images: &str, log_images: &str) {
    colour_on_the_real_path(images, rgb, stat_images, log_images, &[], CORE_PLAN, images);
}

/// [`colour_on_the_core_path`] with more settings (`env`) and the plan
/// they lead to; `name` names the screenshot and the report.
fn colour_on_the_real_path(
    images: &str,
    rgb: [u8; 3],
    stat_images: &str,
    log_images: &str,
    env: &[(&str, &str)],
    plan: &str,
    name: &str,
) {
    let (out, _) = colour_run(images, rgb, stat_images, log_images, env, plan, name);
    assert!(!out.stderr.contains("syncbridge: error"), "{out}");
}

/// [`colour_on_the_real_path`] without its check for the layer's error
/// lines; returns the probe's output and the swapchain's statistics line.
fn colour_run(
    images: &str,
    rgb: [u8; 3],
    stat_images: &str,
    log_images: &str,
    env: &[(&str, &str)],
    plan: &str,
    name: &str,
) -> (Output, String) {
    let m = Manifests::new();
    let tmp = TempDir::new("real-colour");
    let stats = tmp.path().join("stats.jsonl");
    let colour = rgb.map(|c| if c > 0 { "1" } else { "0" }).join(",");
    let mut cmd = probe(
        &m,
        &[
            "frames",
            "--frames",
            "30",
            "--color",
            &colour,
            "--size",
            "320x240",
            "--validation",
        ],
        &[
            ("SYNCBRIDGE_IMAGES", images),
            ("SYNCBRIDGE_STATS", stats.to_str().unwrap()),
            ("PROBE_HOLD_MS", "12000"),
        ],
    );
    cmd.envs(env.iter().copied());
    let name = format!("probe-{name}");
    let (out, shot, took) = run_with_screenshot(
        cmd,
        |l| l.starts_with("probe: fps="),
        Duration::from_millis(300),
        tmp.path(),
        &name,
        Duration::from_secs(180),
        |shot| {
            let img = Rgb::load(shot);
            img.share(0, 0, img.width, img.height, |p| p == rgb) > 0.05
        },
    );
    out.assert_success();
    assert!(out.stdout.contains("probe: result=ok"), "{out}");
    let known = assert_validation_quiet(&out);
    if images == "copy" {
        // Optimal-tiled images: nothing for validation to say.
        assert_eq!(known, 0, "{out}");
    }
    assert!(out.stderr.contains(plan), "not the plan {plan:?}\n{out}");
    assert!(
        out.stderr.contains(&format!("; images {log_images}")),
        "not the {images} image path\n{out}"
    );
    assert_eq!(out.probe_value("new_fds").as_deref(), Some("none"), "{out}");
    let line = stats_line(&stats);
    assert!(
        line.contains(&format!("\"images\":\"{stat_images}\"")),
        "{line}"
    );
    assert_eq!(json_number(&line, "frames_presented"), 30.0, "{line}");
    let img = Rgb::load(&shot);
    let exact = img.share(0, 0, img.width, img.height, |p| p == rgb);
    let window = (320.0 * 240.0) / (img.width as f64 * img.height as f64);
    assert!(
        (exact - window).abs() < 0.002,
        "{name}: {rgb:?} covers {exact:.4} of the output, the window {window:.4}"
    );
    report(
        &name,
        took,
        &format!(
            "frames=30 fps={} layer_cpu_us={:.0} pixels={:.0} lavapipe_list2_messages={known}",
            out.probe_value("fps").unwrap_or_default(),
            layer_cpu_mean(&line),
            exact * (img.width * img.height) as f64
        ),
    );
    (out, line)
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn probe_colour_on_the_default_image_path() {
    colour_on_the_core_path("auto", [255, 0, 0], "driver-dma-buf", "driver-dma-buf");
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn probe_colour_on_driver_exported_dma_bufs() {
    colour_on_the_core_path(
        "export",
        [0, 255, 0],
        "driver-dma-buf",
        "driver-dma-buf (SYNCBRIDGE_IMAGES",
    );
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn probe_colour_on_imported_dma_bufs() {
    colour_on_the_core_path(
        "import",
        [0, 0, 255],
        "imported-dma-buf",
        "imported-dma-buf (SYNCBRIDGE_IMAGES)",
    );
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn probe_colour_on_the_copy_path() {
    colour_on_the_core_path("copy", [255, 0, 255], "copy", "copy (SYNCBRIDGE_IMAGES)");
}

/// The other plans on the same driver and compositor, each with the
/// probe's colour on exactly its window and validation quiet: the worker
/// waits for the GPU before the dma-buf goes to weston and the acquire is
/// signalled by a queue submission (`SYNCBRIDGE_SYNC=cpu`); the core path
/// with early acquire off; shared memory (`SYNCBRIDGE_BUFFERS=shm`).
/// Trixie's validation layers (1.4.309, above the layer) check that a
/// binary semaphore's wait depends only on signals already submitted: the
/// layer hands out an image early only to an acquire with a fence and no
/// semaphore, so the queue-signal plans are quiet with early acquire on.
#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn probe_colour_on_the_other_plans() {
    colour_on_the_real_path(
        "auto",
        [0, 255, 255],
        "driver-dma-buf",
        "driver-dma-buf",
        &[("SYNCBRIDGE_SYNC", "cpu")],
        "on wayland: DmaBuf buffers, present WorkerWait, acquire QueueSignal",
        "cpu-wait",
    );
    colour_on_the_real_path(
        "auto",
        [255, 255, 0],
        "driver-dma-buf",
        "driver-dma-buf",
        &[("SYNCBRIDGE_EARLY_ACQUIRE", "off")],
        CORE_PLAN,
        "no-early-acquire",
    );
    colour_on_the_real_path(
        "auto",
        [255, 0, 0],
        "host-memory",
        "host-memory",
        &[("SYNCBRIDGE_BUFFERS", "shm")],
        "on wayland: Shm buffers, present WorkerWait, acquire QueueSignal",
        "shm",
    );
}

/// Bad input reaching the sync_file path (`SYNCBRIDGE_DEBUG_FAULTS`): the
/// kernel refusing a sync_file that is not one (`sync-file`) or ioctls on
/// an fd that is not a dma-buf (`dma-buf`), and the driver failing
/// `vkGetSemaphoreFdKHR`, `vkImportSemaphoreFdKHR` or `vkImportFenceFdKHR`.
/// Each run breaks the present side and the acquire side once: each side
/// gives one error line and takes the next path down for the rest of the
/// swapchain (worker wait; a CPU wait for the reads and a queue
/// submission), every frame still shows the probe's colour on exactly its
/// window, validation stays quiet, and no fd is left open.
#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn faults_on_the_sync_file_path_step_down_with_one_error_line() {
    for (faults, rgb, present_why, acquire_why, acquire_fence) in [
        (
            "sync-file,semaphore-import",
            [255, 0, 255],
            "the render sync_file into the dma-buf",
            "vkImportSemaphoreFdKHR: ERROR_INVALID_EXTERNAL_HANDLE",
            false,
        ),
        (
            "semaphore-export,fence-import",
            [0, 0, 255],
            "vkGetSemaphoreFdKHR: ERROR_TOO_MANY_OBJECTS",
            "vkImportFenceFdKHR: ERROR_INVALID_EXTERNAL_HANDLE",
            true,
        ),
        (
            "dma-buf",
            [0, 255, 0],
            "the render sync_file into the dma-buf",
            "exporting the release fences of image",
            false,
        ),
    ] {
        let mut env = vec![("SYNCBRIDGE_DEBUG_FAULTS", faults)];
        if acquire_fence {
            env.push(("PROBE_ACQUIRE_FENCE", "1"));
        }
        let name = format!("fault-{}", faults.replace(',', "-"));
        let (out, line) = colour_run(
            "auto",
            rgb,
            "driver-dma-buf",
            "driver-dma-buf",
            &env,
            CORE_PLAN,
            &name,
        );
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("syncbridge: error"))
            .collect();
        assert_eq!(errors.len(), 2, "{faults}: {errors:#?}\n{out}");
        assert!(
            errors
                .iter()
                .any(|l| l.contains("failed at present") && l.contains(present_why)),
            "{faults}: {errors:#?}"
        );
        assert!(
            errors
                .iter()
                .any(|l| l.contains("failed at acquire") && l.contains(acquire_why)),
            "{faults}: {errors:#?}"
        );
        assert!(
            line.contains("\"sync\":\"worker-wait\""),
            "{faults}: {line}"
        );
        assert!(
            line.contains("\"fallback\":\"present: ") && line.contains("; acquire: "),
            "{faults}: {line}"
        );
    }
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn mesa_own_wsi_next_to_the_layer() {
    // The same client without the layer: lavapipe's own Wayland WSI on
    // the same compositor in the same run, for the ratio (not asserted:
    // speed claims belong in the benchmark).
    let m = Manifests::new();
    let mut fps = Vec::new();
    for layer in [false, true] {
        let mut cmd = client(probe_exe(), &m, layer);
        cmd.args(["frames", "--frames", "60", "--size", "320x240"]);
        let t = Instant::now();
        let out = run(cmd, Duration::from_secs(180));
        out.assert_success();
        assert_eq!(
            out.stderr.contains(CORE_PLAN),
            layer,
            "the layer's path only with the layer\n{out}"
        );
        let f = out.probe_value("fps").expect("fps");
        report(
            if layer {
                "probe-layer"
            } else {
                "probe-mesa-wsi"
            },
            t.elapsed(),
            &format!("frames=60 fps={f}"),
        );
        fps.push(f);
    }
}

/// Synchronization validation (trixie's 1.4.309) below the layer, where it
/// checks the layer's own submissions (the present's, the acquire's signal
/// or the release fences imported into the application's semaphore and
/// fence, the copy path's copy, early acquire's wait on the release
/// timeline), on every plan of the core path, in every present mode through
/// resizes and recreations (the probe's resize storm: FIFO, MAILBOX and
/// IMMEDIATE in turn, random sizes down to 1×1); and above the layer on the
/// core plan. Nothing is reported but lavapipe's empty format-feature list
/// (see [`assert_validation_quiet`]). First the control: a hazard the probe
/// records on purpose is reported, so synchronization validation is on.
#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn syncval_is_quiet_on_every_plan_mode_and_resize() {
    let m = Manifests::new();
    let t = Instant::now();
    let control = common::sync_validation_env(&[("PROBE_SYNC_HAZARD", "1")], false);
    let out = run(
        probe(&m, &["frames", "--frames", "3", "--validation"], &control),
        Duration::from_secs(180),
    );
    out.assert_success();
    assert!(
        common::reports_write_after_write(&out),
        "synchronization validation is not on\n{out}"
    );
    // (name, settings, the plan they lead to, validation above the layer)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, bool);
    let cases: [Case; 7] = [
        ("core", &[], CORE_PLAN, false),
        ("core-above", &[], CORE_PLAN, true),
        (
            "core-acquire-fence",
            &[("PROBE_ACQUIRE_FENCE", "1")],
            CORE_PLAN,
            false,
        ),
        (
            "no-early-acquire",
            &[("SYNCBRIDGE_EARLY_ACQUIRE", "off")],
            CORE_PLAN,
            false,
        ),
        ("copy", &[("SYNCBRIDGE_IMAGES", "copy")], CORE_PLAN, false),
        (
            "cpu-wait",
            &[("SYNCBRIDGE_SYNC", "cpu")],
            "on wayland: DmaBuf buffers, present WorkerWait, acquire QueueSignal",
            false,
        ),
        (
            "shm",
            &[("SYNCBRIDGE_BUFFERS", "shm")],
            "on wayland: Shm buffers, present WorkerWait, acquire QueueSignal",
            false,
        ),
    ];
    let mut known = Vec::new();
    for (name, env, plan, validation_above) in cases {
        eprintln!("syncval: case {name}");
        let env = common::sync_validation_env(env, validation_above);
        let out = run(
            probe(&m, &["resize-storm", "--frames", "6", "--validation"], &env),
            Duration::from_secs(300),
        );
        out.assert_success();
        assert!(
            out.stderr.contains(plan),
            "{name}: not the plan {plan:?}\n{out}"
        );
        assert!(!out.stderr.contains("syncbridge: error"), "{name}\n{out}");
        assert_eq!(out.probe_number("storm_recreations"), 6, "{name}\n{out}");
        known.push(format!("{name}:{}", assert_validation_quiet(&out)));
    }
    report(
        "syncval",
        t.elapsed(),
        &format!("cases=7 lavapipe_list2_messages={}", known.join(",")),
    );
}

/// vkmark's default benchmark list (vkmark 2025.01), each shortened to
/// `VKMARK_SECONDS` under the guest's emulated CPU.
const VKMARK_BENCHMARKS: [&str; 13] = [
    "vertex:device-local=true",
    "vertex:device-local=false",
    "texture:anisotropy=0",
    "texture:anisotropy=16",
    "shading:shading=gouraud",
    "shading:shading=blinn-phong-inf",
    "shading:shading=phong",
    "shading:shading=cel",
    "effect2d:kernel=edge",
    "effect2d:kernel=blur",
    "desktop",
    "cube",
    "clear",
];
const VKMARK_SECONDS: &str = "4";

/// Which build of the layer `m` points at.
fn layer_build(m: &Manifests) -> &'static str {
    if m.library.components().any(|c| c.as_os_str() == "release") {
        "release"
    } else {
        "debug"
    }
}

/// The `FPS:` of each benchmark line vkmark printed
/// (`[scene] options: FPS: N FrameTime: T ms`), and its score.
fn vkmark_results(stdout: &str) -> (Vec<(String, f64)>, Option<f64>) {
    let fps = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('['))
        .filter_map(|l| {
            let (name, rest) = l.trim().split_once(": FPS: ")?;
            let n = rest.split_whitespace().next()?.parse().ok()?;
            Some((name.to_string(), n))
        })
        .collect();
    let score = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("vkmark Score: "))
        .and_then(|v| v.trim().parse().ok());
    (fps, score)
}

/// vkmark (trixie's 2025.01: its Wayland window-system plugin, a MAILBOX
/// swapchain) runs every scene of its default
/// list through the layer on the sync_file path, and with Mesa's own WSI on
/// the same compositor in the same run for the scores side by side (not
/// asserted: speed claims belong in the benchmark).
#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn vkmark_runs_every_scene_through_the_layer() {
    // The scores stand next to Mesa's optimised WSI: the layer as it ships.
    let m = Manifests::for_library(common::shipped_layer_library());
    let tmp = TempDir::new("real-vkmark");
    let stats = tmp.path().join("stats.jsonl");
    assert!(
        Path::new("/usr/bin/vkmark").exists(),
        "no vkmark in the chroot: rerun tests/guest/setup-compositor.sh"
    );
    let mut scores = Vec::new();
    for layer in [false, true] {
        let mut cmd = client("vkmark", &m, layer);
        cmd.args(["--winsys", "wayland", "-s", "200x150"]);
        for b in VKMARK_BENCHMARKS {
            cmd.arg("-b").arg(format!("{b}:duration={VKMARK_SECONDS}"));
        }
        if layer {
            cmd.env("SYNCBRIDGE_STATS", &stats);
        }
        let t = Instant::now();
        let out = run(cmd, Duration::from_secs(400));
        assert!(
            out.status.success(),
            "vkmark failed (layer: {layer})\n{out}"
        );
        assert_eq!(
            out.stderr.contains(CORE_PLAN),
            layer,
            "the layer's path only with the layer\n{out}"
        );
        assert!(!out.stderr.contains("syncbridge: error"), "{out}");
        let (fps, score) = vkmark_results(&out.stdout);
        assert_eq!(
            fps.len(),
            VKMARK_BENCHMARKS.len(),
            "one result per benchmark (layer: {layer}): {fps:?}\n{out}"
        );
        // Every scene ran to its end, in order. Under TCG some scenes
        // render less than a frame a second (llvmpipe compiles their
        // shaders on an emulated CPU), which vkmark prints as `FPS: 0`, so
        // frames are counted over the run instead.
        for (b, (name, _)) in VKMARK_BENCHMARKS.iter().zip(&fps) {
            let scene = b.split(':').next().expect("a scene");
            assert!(
                name.starts_with(&format!("[{scene}]")),
                "{b}: {name} (layer: {layer})\n{out}"
            );
        }
        let total: f64 = fps.iter().map(|(_, n)| n).sum();
        assert!(total > 0.0, "no frames (layer: {layer})\n{out}");
        let score = score.unwrap_or_else(|| panic!("no vkmark Score (layer: {layer})\n{out}"));
        report(
            if layer {
                "vkmark-layer"
            } else {
                "vkmark-mesa-wsi"
            },
            t.elapsed(),
            &format!(
                "score={score} layer_build={} scenes={} fps={}",
                layer_build(&m),
                fps.len(),
                fps.iter()
                    .map(|(_, n)| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
        scores.push(score);
    }
    let lines = std::fs::read_to_string(&stats).unwrap_or_default();
    let presented: f64 = lines
        .lines()
        .map(|l| json_number(l, "frames_presented"))
        .sum();
    assert!(
        lines.lines().all(|l| l.contains("\"sync\":\"implicit\"")),
        "{lines}"
    );
    assert!(presented >= VKMARK_BENCHMARKS.len() as f64, "{lines}");
    report(
        "vkmark",
        Duration::ZERO,
        &format!(
            "mesa_wsi={} layer={} ratio={:.3} frames_presented={presented}",
            scores[0],
            scores[1],
            scores[1] / scores[0]
        ),
    );
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn early_acquire_on_the_core_path_waits_for_the_release_on_the_gpu() {
    // The acquire half: with weston stopped, every image presented and
    // none released, a zero-timeout acquire hands out a replaced image;
    // its fence (the released dma-buf's sync_file, imported) signals only
    // after weston runs again and releases the buffer.
    let m = Manifests::new();
    let pid = env("SYNCBRIDGE_COMPOSITOR_PID");
    let mut args = common::early_acquire_args(&pid);
    args.push("--validation");
    let t = Instant::now();
    let out = run(probe(&m, &args, &[]), Duration::from_secs(240));
    out.assert_success();
    assert!(out.stdout.contains("probe: result=ok"), "{out}");
    assert!(out.stderr.contains(CORE_PLAN), "not the core path\n{out}");
    assert_validation_quiet(&out);
    out.assert_replaced_image_handed_out_early();
    report("early-acquire", t.elapsed(), "ok");
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn a_queued_frame_lets_acquire_hand_out_the_image_on_screen() {
    // The host test of the same name, on trixie's lavapipe and weston 14
    // GL. On the worker-wait path (SYNCBRIDGE_SYNC=cpu) a frame stays in
    // the layer until its rendering is done, here 600 ms longer
    // (SYNCBRIDGE_DEBUG_FENCE_DELAY_MS): with one frame on screen and the
    // other images' frames held, a zero-timeout IMMEDIATE acquire with a
    // fence hands out the image on screen, and its fence signals only
    // after a held frame replaced it and weston released the buffer.
    let m = Manifests::new();
    let t = Instant::now();
    let out = run(
        probe(
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
    out.assert_success();
    assert!(out.stdout.contains("probe: result=ok"), "{out}");
    assert!(
        out.stderr
            .contains("on wayland: DmaBuf buffers, present WorkerWait, acquire QueueSignal"),
        "{out}"
    );
    assert_validation_quiet(&out);
    out.assert_on_screen_image_handed_out_early("dma-buf, worker wait, trixie");
    report("early-acquire-queued", t.elapsed(), "ok");
}

/// valgrind memcheck (trixie's, in the chroot) over the probe on the core
/// path, as `tests/reliability.rs` runs it on the host: frames, and the
/// bad-input scenario. A memory error in the layer, the loader or the
/// driver fails the run, and so does a definite or indirect leak; two
/// findings of lavapipe 25.0.7 itself are suppressed
/// (`tests/guest/valgrind-trixie.supp`). Slow under TCG (about ten minutes
/// a run), so `tests/guest.rs` runs it only with
/// `SYNCBRIDGE_GUEST_VALGRIND=1`.
#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn valgrind_memcheck_is_clean_on_the_sync_file_path() {
    let m = Manifests::new();
    let repo = profile_dir()
        .ancestors()
        .nth(2)
        .expect("the repository above target/<profile>")
        .to_path_buf();
    for args in common::MEMCHECK_SCENARIOS {
        let mut cmd = client("valgrind", &m, true);
        common::memcheck(
            &mut cmd,
            &repo,
            &["tests/valgrind.supp", "tests/guest/valgrind-trixie.supp"],
        );
        cmd.arg(probe_exe()).args(args);
        let t = Instant::now();
        let out = run(cmd, Duration::from_secs(900));
        let took = t.elapsed();
        out.assert_memcheck_clean(&format!("{args:?}"));
        out.assert_success();
        assert_eq!(out.probe_word("result"), "ok", "{out}");
        assert!(out.stderr.contains(CORE_PLAN), "not the core path\n{out}");
        report(&format!("valgrind-{}", args[0]), took, "clean");
    }
}

// The reliability scenarios of tests/reliability.rs on the core path.

/// Runs a reliability scenario of the probe on the core path; returns its
/// output after checking it ended `result=ok` with no layer error.
fn scenario(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    scenario_with(name, args, env, false)
}

/// [`scenario`]; `bad_input`: the layer's error lines are expected.
fn scenario_with(name: &str, args: &[&str], env: &[(&str, &str)], bad_input: bool) -> Output {
    let m = Manifests::new();
    let t = Instant::now();
    let out = run(probe(&m, args, env), Duration::from_secs(300));
    out.assert_success();
    assert_eq!(out.probe_word("result"), "ok", "{out}");
    assert!(out.stderr.contains(CORE_PLAN), "not the core path\n{out}");
    assert!(
        bad_input || !out.stderr.contains("syncbridge: error"),
        "{out}"
    );
    report(name, t.elapsed(), "result=ok");
    out
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn reliability_threads_on_one_queue() {
    let out = scenario(
        "threads",
        &["threads", "--threads", "3", "--frames", "60"],
        &[],
    );
    assert_eq!(out.probe_number("presented"), 180, "{out}");
    assert_eq!(out.probe_number("errors"), 0, "{out}");
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn reliability_resize_storm() {
    let out = scenario("resize-storm", &["resize-storm", "--frames", "200"], &[]);
    assert_eq!(out.probe_number("storm_recreations"), 200, "{out}");
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn reliability_recreate_destroy_in_flight_and_acquire_timeouts() {
    scenario("recreate", &["recreate", "--frames", "20"], &[]);
    scenario("destroy-in-flight", &["destroy-in-flight"], &[]);
    scenario("acquire-timeouts", &["acquire-timeouts"], &[]);
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn reliability_device_destroyed_under_live_swapchains() {
    let out = scenario(
        "destroy-device-alive",
        &["destroy-device-alive", "--frames", "10"],
        &[],
    );
    assert!(
        out.stderr
            .contains("vkDestroyDevice: 2 swapchain(s) still alive; destroying them"),
        "{out}"
    );
    assert_eq!(
        out.probe_number("fds_before"),
        out.probe_number("fds_after"),
        "{out}"
    );
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn reliability_bad_input_leaves_no_fd() {
    // Every check answers an error, not a crash, and no fd the scenario's
    // swapchains opened outlives them (the layer's vgem node, for one, is
    // open only while a swapchain uses it).
    let out = scenario_with("bad-input", &["bad-input", "--frames", "10"], &[], true);
    out.assert_bad_input_checks_ok();
    assert_eq!(out.probe_value("new_fds").as_deref(), Some("none"), "{out}");
}

#[test]
#[ignore = "needs the test guest with the real path (tests/guest.rs runs it)"]
fn reliability_no_fd_or_rss_growth() {
    let out = scenario(
        "leak",
        &[
            "leak",
            "--frames",
            "3000",
            "--mode",
            "immediate",
            "--size",
            "64x64",
        ],
        &[NO_SHADER_CACHE],
    );
    let (fd0, fd1) = (out.probe_number("fds_1000"), out.probe_number("fds_end"));
    let (rss0, rss1) = (
        out.probe_number("rss_kib_1000"),
        out.probe_number("rss_kib_end"),
    );
    eprintln!("@@ real name=leak-numbers fds {fd0}->{fd1} rss_kib {rss0}->{rss1}");
    assert_eq!(fd0, fd1, "{out}");
    assert_no_memory_growth(&out, "1000", 2000);
    let out = scenario(
        "leak-recreate",
        &[
            "leak-recreate",
            "--frames",
            "200",
            "--mode",
            "immediate",
            "--size",
            "64x64",
        ],
        &[NO_SHADER_CACHE],
    );
    let (fd0, fd1) = (out.probe_number("fds_100"), out.probe_number("fds_end"));
    eprintln!("@@ real name=leak-recreate-numbers fds {fd0}->{fd1}");
    assert_eq!(fd0, fd1, "{out}");
    assert_no_memory_growth(&out, "100", 100);
}

/// The leak scenarios' environment: Mesa's shader cache off. Its writer
/// thread allocates on its own schedule: 100 recreations grew the heap in
/// use by 10 and 14 KiB with the cache (two runs, 1 vCPU) and by 4 KiB
/// without it, in the same build.
const NO_SHADER_CACHE: (&str, &str) = ("MESA_SHADER_CACHE_DISABLE", "true");

/// The leak scenarios' memory between their first count (`at`: after the
/// 1,000th frame or the 100th recreation) and the end, `steps` frames or
/// recreations later: malloc's bytes in use grow by less than 128 bytes a
/// step, and no mapping is left behind. RSS is reported, not bounded: it
/// steps with the allocator (one run grew by 4,200 KiB of anonymous memory
/// at one frame between the 2,500th and the 3,000th, with the heap in use
/// and the mappings unchanged; one CI run by 18 MiB over 2,000 frames),
/// which says nothing of a leak. A swapchain image, a staging buffer or a
/// frame's bookkeeping left behind grows the heap in use (lavapipe's memory
/// is malloc'd), or the mappings (a dma-buf or shm buffer mapped), or the
/// fds, which the callers compare. The scenarios run without Mesa's shader
/// cache ([`NO_SHADER_CACHE`]).
fn assert_no_memory_growth(out: &Output, at: &str, steps: u64) {
    let heap = (
        out.probe_number(&format!("heap_kib_{at}")),
        out.probe_number("heap_kib_end"),
    );
    let maps = (
        out.probe_number(&format!("maps_{at}")),
        out.probe_number("maps_end"),
    );
    eprintln!(
        "@@ real heap_kib {}->{} maps {}->{}",
        heap.0, heap.1, maps.0, maps.1
    );
    assert!(
        heap.1 <= heap.0 + steps * 128 / 1024,
        "the heap in use grew {} -> {} KiB over {steps}\n{out}",
        heap.0,
        heap.1
    );
    assert_eq!(maps.0, maps.1, "mappings left behind\n{out}");
}

/// mutter 48 headless (`compositor.sh --mutter`, which `tests/guest.rs`
/// runs these `mutter_` tests under) reads the layer's dma-bufs on the
/// core path and shows them: the plan, every frame presented, and
/// mutter's own reports that it put frames on its output (presentation
/// feedback and frame callbacks). mutter waits on each buffer's implicit
/// fences before it uses it; it has no screenshot tool here, so the
/// feedback is what says the frames reached the output.
#[test]
#[ignore = "needs the test guest with mutter (tests/guest.rs runs it)"]
fn mutter_shows_frames_from_the_core_path() {
    assert_eq!(env("SYNCBRIDGE_COMPOSITOR"), "mutter");
    let m = Manifests::new();
    let tmp = TempDir::new("mutter-vkcube");
    let stats = tmp.path().join("stats.jsonl");
    let frames = 60;
    let mut cmd = client("vkcube", &m, true);
    cmd.args(["--wsi", "wayland", "--c", &frames.to_string()])
        .env("SYNCBRIDGE_STATS", &stats);
    let t0 = Instant::now();
    let out = run(cmd, Duration::from_secs(300));
    let took = t0.elapsed();
    assert!(out.status.success(), "vkcube failed\n{out}");
    assert!(out.stderr.contains(CORE_PLAN), "not the core path\n{out}");
    assert!(!out.stderr.contains("syncbridge: error"), "{out}");
    // vkcube remakes its swapchain when mutter configures the window: one
    // statistics line per swapchain, every one on the core path.
    let text = std::fs::read_to_string(&stats).unwrap_or_default();
    eprintln!("mutter statistics:\n{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines.is_empty(), "no statistics");
    for l in &lines {
        assert!(l.contains("\"images\":\"driver-dma-buf\""), "{l}");
        assert!(l.contains("\"sync\":\"implicit\""), "{l}");
    }
    let sum = |key: &str| lines.iter().map(|l| json_number(l, key)).sum::<f64>();
    assert_eq!(sum("frames_presented"), frames as f64, "{text}");
    // Shown by mutter's own account (presentation feedback), and paced by
    // its frame callbacks rather than the layer's fallback timer.
    let shown = sum("frames_displayed");
    let callbacks_missed = sum("frame_event_timeouts");
    assert!(
        shown >= frames as f64 / 2.0 && callbacks_missed < frames as f64 / 2.0,
        "mutter reported {shown} frames shown and missed {callbacks_missed} frame callbacks\n{text}"
    );
    let line = lines.last().expect("a line");
    report(
        "mutter-vkcube",
        took,
        &format!(
            "frames={frames} shown={shown} fps={:.1} layer_cpu_us={:.0}",
            json_number(line, "fps"),
            layer_cpu_mean(line)
        ),
    );
}

/// FIFO on mutter 48, which offers `wp_fifo_v1`: the layer hands each
/// frame over with FIFO's barrier and waits for no frame callback, so the
/// compositor paces the frames (at most one per refresh), and a window
/// mutter does not draw (minimized) keeps presenting at the layer's own
/// pace instead of the four frames a second of the frame-callback
/// fallback (250 ms each), and does not stall.
#[test]
#[ignore = "needs the test guest with mutter (tests/guest.rs runs it)"]
fn mutter_fifo_is_paced_by_the_compositor_even_for_a_minimized_window() {
    assert_eq!(env("SYNCBRIDGE_COMPOSITOR"), "mutter");
    let m = Manifests::new();
    let tmp = TempDir::new("mutter-fifo");
    let frames = 120;
    let mut fps = Vec::new();
    for (name, extra) in [("visible", &[][..]), ("minimized", &["--minimize"][..])] {
        let stats = tmp.path().join(format!("{name}.jsonl"));
        let n = frames.to_string();
        let mut args = vec!["frames", "--frames", &n, "--size", "64x64"];
        args.extend_from_slice(extra);
        let t = Instant::now();
        let out = run(
            probe(&m, &args, &[("SYNCBRIDGE_STATS", stats.to_str().unwrap())]),
            Duration::from_secs(300),
        );
        out.assert_success();
        assert_eq!(out.probe_word("result"), "ok", "{out}");
        assert!(out.stderr.contains(CORE_PLAN), "not the core path\n{out}");
        assert!(
            out.stderr
                .contains("FIFO: the compositor paces commits (wp_fifo_v1)"),
            "{name}: FIFO without wp_fifo_v1\n{out}"
        );
        let line = stats_line(&stats);
        assert_eq!(
            json_number(&line, "frames_presented"),
            frames as f64,
            "{line}"
        );
        assert_eq!(json_number(&line, "frame_event_timeouts"), 0.0, "{line}");
        let f: f64 = out
            .probe_value("fps")
            .expect("fps")
            .parse()
            .expect("a number");
        report(
            &format!("mutter-fifo-{name}"),
            t.elapsed(),
            &format!(
                "frames={frames} fps={f:.1} shown={} layer_cpu_us={:.0}",
                json_number(&line, "frames_displayed"),
                layer_cpu_mean(&line)
            ),
        );
        fps.push(f);
    }
    // Paced: mutter's virtual monitor refreshes at 60 Hz.
    assert!(fps[0] <= 75.0, "visible FIFO ran at {} fps", fps[0]);
    // Not stalled: above the frame-callback fallback's four a second, and
    // still paced by the layer.
    assert!(
        (8.0..=135.0).contains(&fps[1]),
        "minimized FIFO ran at {} fps",
        fps[1]
    );
}

/// `SYNCBRIDGE_FPS_LIMIT` kept by mutter 48's `wp_commit_timing_v1`: the
/// layer commits each IMMEDIATE frame when it is ready, stamped
/// with its slot (one every 1/5 s here: under TCG mutter repaints about
/// eight times a second), and mutter holds it until then.
/// Asserted: the protocol is taken (its log line); the limit holds (the
/// client's rate at most 15 a second, and not stalled); no frame shown
/// before its time by presentation feedback (`frames_shown_early`: the
/// compositor keeps the stamps, the layer is not the one pacing); and
/// every frame handed over, none left in the layer when the swapchain
/// goes (where the layer holds frames for the limit itself, those not due
/// yet are dropped then). A FIFO swapchain keeps the limit in the layer:
/// with timed commits mutter 48 stopped releasing its buffers (see
/// `commit_timing.rs`).
#[test]
#[ignore = "needs the test guest with mutter (tests/guest.rs runs it)"]
fn mutter_fps_limit_is_kept_by_the_compositor_commit_timing() {
    assert_eq!(env("SYNCBRIDGE_COMPOSITOR"), "mutter");
    let m = Manifests::new();
    let tmp = TempDir::new("mutter-commit-timing");
    let frames = 40;
    let limit = 5.0;
    let mode = "immediate";
    let stats = tmp.path().join(format!("{mode}.jsonl"));
    let n = frames.to_string();
    let t = Instant::now();
    let out = run(
        probe(
            &m,
            &["frames", "--frames", &n, "--size", "64x64", "--mode", mode],
            &[
                ("SYNCBRIDGE_STATS", stats.to_str().unwrap()),
                ("SYNCBRIDGE_FPS_LIMIT", "5"),
            ],
        ),
        Duration::from_secs(300),
    );
    out.assert_success();
    assert_eq!(out.probe_word("result"), "ok", "{out}");
    assert!(out.stderr.contains(CORE_PLAN), "not the core path\n{out}");
    assert!(
        out.stderr.contains(
            "SYNCBRIDGE_FPS_LIMIT: the compositor holds each commit until its time (wp_commit_timing_v1)"
        ),
        "{mode}: the limit not kept by commit timing\n{out}"
    );
    let line = stats_line(&stats);
    assert_eq!(
        json_number(&line, "frames_presented"),
        frames as f64,
        "{mode}: every frame handed over\n{line}"
    );
    assert_eq!(
        json_number(&line, "frames_shown_early"),
        0.0,
        "{mode}: shown before the commit's time\n{line}"
    );
    // Under TCG mutter paints its first frame late: the frames whose
    // time came before it are replaced (discarded) or their feedback
    // comes after the layer stopped waiting (4 and 3 of 40 in a run).
    let shown = json_number(&line, "frames_displayed");
    assert!(
        shown >= f64::from(frames) * 0.75,
        "{mode}: {shown} shown\n{line}"
    );

    let fps: f64 = out
        .probe_value("fps")
        .expect("fps")
        .parse()
        .expect("a number");
    // The first frames go before the compositor's stamps throttle the
    // client (its images), so the rate over 40 frames is a little
    // above the limit at most.
    assert!(
        (limit * 0.5..=limit * 1.25).contains(&fps),
        "{mode}: {fps} frames a second with a limit of {limit}\n{out}"
    );
    report(
        &format!("mutter-commit-timing-{mode}"),
        t.elapsed(),
        &format!(
            "frames={frames} fps={fps:.1} shown={shown} discarded={} feedback_timeouts={} shown_early=0 display_latency_p50_us={} layer_cpu_us={:.0}",
            json_number(&line, "frames_discarded"),
            json_number(&line, "feedback_timeouts"),
            common::stats::json_percentile(&line, "display_latency_us", "p50"),
            layer_cpu_mean(&line)
        ),
    );
}

/// Last of the `mutter_` tests (it stops the compositor): mutter killed
/// while the probe presents on the core path. The application gets
/// `VK_ERROR_SURFACE_LOST_KHR` or `VK_ERROR_OUT_OF_DATE_KHR` within a
/// bounded time, never a hang.
#[test]
#[ignore = "needs the test guest with mutter (tests/guest.rs runs it)"]
fn mutter_then_killed_mid_stream_gives_an_error_not_a_hang() {
    assert_eq!(env("SYNCBRIDGE_COMPOSITOR"), "mutter");
    let pid = env("SYNCBRIDGE_COMPOSITOR_PID");
    let m = Manifests::new();
    let mut cmd = probe(&m, &["frames", "--frames", "1000000"], &[]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("probe");
    // Under TCG the probe needs a while to make its swapchain: wait for
    // frames to flow, then kill.
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the probe ended before mutter was killed"
    );
    let killed = Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -KILL {pid}");
    let (took, _, stderr) =
        common::assert_error_after_compositor_death(child, Duration::from_secs(30));
    assert!(stderr.contains(CORE_PLAN), "not the core path\n{stderr}");
    report(
        "mutter-killed",
        took,
        &format!("error after {} ms", took.as_millis()),
    );
}

// ---- explicit sync (wp_linux_drm_syncobj_v1) with trixie's lavapipe

/// The conformance compositor's lines printed since `from` (its log file,
/// `compositor.sh --real --conformance`), as they stand now.
fn conformance_lines_since(from: usize) -> Vec<common::conformance::Line> {
    let text = std::fs::read_to_string(env("SYNCBRIDGE_COMPOSITOR_LOGFILE")).unwrap_or_default();
    text.lines()
        .skip(from)
        .map(common::conformance::Line::parse)
        .collect()
}

/// Explicit sync against the conformance compositor
/// (`tests/guest/compositor.sh --real --conformance`: it runs outside the
/// chroot as root on virtio-gpu's render node, `tests/guest.rs` boots this
/// guest with `--virtio-gpu`): trixie's lavapipe exports SYNC_FD, so the
/// render semaphore's sync_file is imported into each acquire point, and
/// the release point's sync_file goes into the application's acquire
/// semaphore and fence.
#[test]
#[ignore = "needs the test guest's trixie chroot with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_sync_file_in_the_acquire_point() {
    assert_eq!(
        std::env::var("SYNCBRIDGE_COMPOSITOR").as_deref(),
        Ok("conformance"),
        "run under tests/guest/compositor.sh --real --conformance"
    );
    let from = conformance_lines_since(0).len();
    let m = Manifests::new();
    let tmp = TempDir::new("explicit");
    let stats = tmp.path().join("stats.jsonl");
    let out = run(
        probe(
            &m,
            &[
                "frames",
                "--frames",
                "30",
                "--color",
                "0,1,0",
                "--validation",
            ],
            &[("SYNCBRIDGE_STATS", stats.to_str().unwrap())],
        ),
        Duration::from_secs(300),
    );
    let line = std::fs::read_to_string(&stats).unwrap_or_default();
    // A second client: 500 recreations, the compositor stopped for the
    // last 60 (it reads nothing: a slow compositor at its worst). A
    // request libwayland still buffers holds a dup of each fd it carries,
    // 3 dma-bufs and 6 timelines per recreation here, until it is sent: a
    // loaded CI machine once counted fds 25 -> 106 so, and before a new
    // swapchain waited for the socket to take the requests before it
    // (`conn::drain`), a compositor that fell behind over 400
    // recreations and then stopped for 100 brought them past the limit of
    // 1,024 (libwayland failed the connection with EMFILE). Stopped, each
    // recreation past a full socket waits 1 s and then queues its fds
    // (`fds_stopped`). The fds are counted once the compositor has read
    // every request; any kind of fd more at the end than at the 100th
    // recreation is listed.
    let pid = env("SYNCBRIDGE_COMPOSITOR_PID");
    let leak = run(
        probe(
            &m,
            &[
                "leak-recreate",
                "--frames",
                "500",
                "--stop-pid",
                &pid,
                "--stop-last",
                "60",
            ],
            &[],
        ),
        Duration::from_secs(400),
    );
    let lines = conformance_lines_since(from);
    let text: String = lines.iter().map(|l| format!("{}\n", l.text)).collect();
    out.assert_success();
    assert!(out.stdout.contains("probe: result=ok"), "{out}");
    assert_validation_quiet(&out);
    assert!(
        out.stderr.contains(
            "on wayland: DmaBuf buffers, present ExplicitSyncobj, acquire ImportSyncFile"
        ),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("acquire points: the render semaphore's sync_file"),
        "{out}"
    );
    assert!(!out.stderr.contains("syncbridge: error"), "{out}");
    assert!(line.contains("\"sync\":\"explicit\""), "{line}");
    leak.assert_success();
    assert_eq!(leak.probe_word("settled"), "true", "{leak}");
    assert_eq!(
        leak.probe_value("new_fds").as_deref(),
        Some("none"),
        "{leak}"
    );
    assert_eq!(
        leak.probe_number("fds_100"),
        leak.probe_number("fds_end"),
        "{leak}"
    );
    assert!(
        !lines.iter().any(|l| l.kind == "error"),
        "the compositor saw errors:\n{text}"
    );
    let commits: Vec<_> = lines.iter().filter(|l| l.kind == "commit").collect();
    // The first client's 30 frames (the last may be dropped with its
    // swapchain), and of leak-recreate's 500 one-frame swapchains those
    // whose frame reached the compositor before the swapchain went (73
    // and 79 of 150 in two runs).
    assert!(
        commits.len() >= 29 + 30,
        "{} commits:\n{text}",
        commits.len()
    );
    let green = commits
        .iter()
        .filter(|c| c.get("pixel") == Some("0xff00ff00"))
        .count();
    assert!(green >= 29, "{green} green commits:\n{text}");
    for c in &commits {
        assert_eq!(c.get("wait"), Some("point"), "{}", c.text);
        assert_eq!(c.get("kind"), Some("dmabuf"), "{}", c.text);
        assert!(c.number("acquire_point").is_some(), "{}", c.text);
    }
    println!(
        "@@ real name=explicit_sync_file commits={} fds_100={} fds_stopped={} fds_end={}",
        commits.len(),
        leak.probe_number("fds_100"),
        leak.probe_number("fds_stopped"),
        leak.probe_number("fds_end")
    );
}

/// Explicit sync over many frames (the conformance compositor, trixie's
/// lavapipe, as above): 10,000 IMMEDIATE frames on one swapchain, each
/// committed with its acquire and release points and read back by the
/// compositor; fds and RSS counted after the 1,000th and the last, once
/// the compositor has read every request. No fd more at the end (per
/// frame the layer makes a sync_file for the acquire point, one for the
/// acquire semaphore and an eventfd for the release point), RSS within
/// an allocator's step.
#[test]
#[ignore = "needs the test guest's trixie chroot with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_fds_flat_over_10000_frames() {
    assert_eq!(
        std::env::var("SYNCBRIDGE_COMPOSITOR").as_deref(),
        Ok("conformance"),
        "run under tests/guest/compositor.sh --real --conformance"
    );
    let from = conformance_lines_since(0).len();
    let m = Manifests::new();
    let t = std::time::Instant::now();
    let out = run(
        probe(
            &m,
            &[
                "leak",
                "--frames",
                "10000",
                "--mode",
                "immediate",
                "--size",
                "64x64",
            ],
            &[NO_SHADER_CACHE],
        ),
        Duration::from_secs(540),
    );
    let took = t.elapsed();
    let lines = conformance_lines_since(from);
    out.assert_success();
    assert!(
        out.stderr
            .contains("present ExplicitSyncobj, acquire ImportSyncFile"),
        "{out}"
    );
    assert!(!out.stderr.contains("syncbridge: error"), "{out}");
    assert_eq!(out.probe_word("settled"), "true", "{out}");
    assert_eq!(out.probe_value("new_fds").as_deref(), Some("none"), "{out}");
    let (fd0, fd1) = (out.probe_number("fds_1000"), out.probe_number("fds_end"));
    let (rss0, rss1) = (
        out.probe_number("rss_kib_1000"),
        out.probe_number("rss_kib_end"),
    );
    assert_eq!(fd0, fd1, "{out}");
    assert_no_memory_growth(&out, "1000", 9_000);
    let commits = lines.iter().filter(|l| l.kind == "commit").count();
    assert!(
        !lines.iter().any(|l| l.kind == "error"),
        "the compositor saw errors"
    );
    // IMMEDIATE hands every frame over and the compositor applies (reads)
    // each commit in order: all 10,000 in the one run measured; the last
    // few may still be on their way when the swapchain goes.
    assert!(commits >= 9_990, "{commits} commits of 10,000 frames");
    println!(
        "@@ real name=explicit_10000_frames took_s={} commits={commits} fds {fd0}->{fd1} rss_kib {rss0}->{rss1}",
        took.as_secs()
    );
}

/// The system calls per frame of a `bench` client on `sync` (the layer's
/// `SYNCBRIDGE_SYNC`): its application thread's and the whole process's
/// (the layer's threads and the driver's too), from two runs under
/// `strace -ff` of 30 and 90 frames, the difference divided by 60, so
/// start-up and teardown do not count.
fn syscalls_per_frame(m: &Manifests, tmp: &Path, sync: &str, args: &[&str]) -> (f64, f64) {
    syscalls_per_frame_of(tmp, sync, 0, |frames| {
        let mut cmd = client("strace", m, true);
        cmd.arg(probe_exe())
            .args(["bench", "--frames", &frames.to_string()])
            .args(args)
            .env("SYNCBRIDGE_SYNC", sync);
        (cmd, "probe: result=ok")
    })
}

/// [`syscalls_per_frame`] of any client: `make(frames)` gives `strace`
/// with the client after it (its `-o` arguments are put first) and what
/// its output must say; `app` is the rank, by thread id, of the thread
/// that presents (0: the main thread).
fn syscalls_per_frame_of(
    tmp: &Path,
    tag: &str,
    app: usize,
    make: impl Fn(u32) -> (Command, &'static str),
) -> (f64, f64) {
    let count = |frames: u32| -> (f64, f64) {
        let dir = tmp.join(format!("strace-{tag}-{frames}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (client, ok) = make(frames);
        let mut cmd = Command::new(client.get_program());
        cmd.args(["-ff", "-qq", "-o"])
            .arg(dir.join("t"))
            .args(client.get_args());
        cmd.env_clear();
        for (k, v) in client.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        let out = run(cmd, Duration::from_secs(300));
        out.assert_success();
        assert!(out.stdout.contains(ok), "{out}");
        let mut files: Vec<(u32, usize)> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                let tid = e.file_name().to_str()?.strip_prefix("t.")?.parse().ok()?;
                Some((tid, std::fs::read_to_string(e.path()).ok()?.lines().count()))
            })
            .collect();
        files.sort();
        let main = files.get(app).expect("strace output").1 as f64;
        let all = files.iter().map(|f| f.1).sum::<usize>() as f64;
        (main, all)
    };
    let (a, b) = (count(30), count(90));
    ((b.0 - a.0) / 60.0, (b.1 - a.1) / 60.0)
}

/// `SYNCBRIDGE_SYNC` values the benchmarks compare, and the plan each gives
/// with trixie's lavapipe.
const SYNC_PLANS: [(&str, &str); 2] = [
    (
        "explicit",
        "present ExplicitSyncobj, acquire ImportSyncFile",
    ),
    (
        "implicit",
        "present ImplicitSyncFile, acquire ImportSyncFile",
    ),
];

/// DRI3 1.4 explicit sync on X11 with trixie's lavapipe (SYNC_FD): the X11
/// test client through the layer on the relay `compositor.sh --x11-relay`
/// starts in front of Xvfb, outside the chroot. The render semaphore's
/// sync_file goes into each acquire point, the release point's sync_file
/// into the application's semaphore and fence; validation (below the
/// layer) quiet.
#[test]
#[ignore = "needs the test guest's trixie chroot with virtio-gpu and the X11 relay (tests/guest.rs runs it)"]
fn explicit_x11_sync_file_in_the_acquire_point() {
    let (display, log) = x11_relay::Log::from_env();
    let m = Manifests::new();
    let out = run(
        x11_relay::client(&m, &display, "clear", &[("SB_VALIDATION", "1")]),
        Duration::from_secs(300),
    );
    let done = log.wait_for_clients(2, Duration::from_secs(20));
    let lines = log.lines();
    assert!(
        done,
        "the relay did not see the connections end:\n{}\n{out}",
        log.text()
    );
    x11_relay::assert_synced_presents(&out, &lines, 30);
    assert!(
        out.stderr
            .contains("on xcb: DmaBuf buffers, present ExplicitSyncobj, acquire ImportSyncFile"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("acquire points: the render semaphore's sync_file"),
        "{out}"
    );
    assert_validation_quiet(&out);
}

/// The benchmark of DRI3 1.4 explicit sync against implicit sync on one X
/// server (the relay in front of Xvfb, `compositor.sh --x11-relay`):
/// the X11 test client, FIFO at Xvfb's 60 Hz, 320x240, with each forced
/// by `SYNCBRIDGE_SYNC`; the system calls per frame of the thread that
/// presents (libtest runs the client's test on a thread of its own, the
/// second by id) and of the whole process, and the layer's CPU time per
/// frame (its statistics, a 300-frame run without strace). The numbers go
/// to BENCHMARKS.md.
#[test]
#[ignore = "needs the test guest's trixie chroot with virtio-gpu and the X11 relay (tests/guest.rs runs it)"]
fn explicit_x11_against_implicit_syscalls_and_layer_cpu() {
    let (display, log) = x11_relay::Log::from_env();
    let m = Manifests::for_library(common::shipped_layer_library());
    let tmp = TempDir::new("explicit-x11-bench");
    let mut report = String::new();
    for (sync, plan) in SYNC_PLANS {
        let stats = tmp.path().join(format!("x11-{sync}.jsonl"));
        let env = |frames: u32, stats: Option<&Path>| {
            let frames = frames.to_string();
            let mut e: Vec<(String, String)> = vec![
                ("SYNCBRIDGE_SYNC".into(), sync.into()),
                ("SB_FRAMES".into(), frames),
            ];
            if let Some(s) = stats {
                e.push(("SYNCBRIDGE_STATS".into(), s.display().to_string()));
            }
            e
        };
        let client = |frames: u32, stats: Option<&Path>| {
            let e = env(frames, stats);
            let refs: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            x11_relay::client(&m, &display, "frames", &refs)
        };
        let out = run(client(300, Some(&stats)), Duration::from_secs(300));
        out.assert_success();
        assert!(out.stdout.contains("FRAMES 300"), "{out}");
        assert!(out.stderr.contains(plan), "{sync}: {out}");
        let line = std::fs::read_to_string(&stats).unwrap_or_default();
        assert!(line.contains(&format!("\"sync\":\"{sync}\"")), "{line}");
        let (main, all) = syscalls_per_frame_of(tmp.path(), &format!("x11-{sync}"), 1, |frames| {
            let c = client(frames, None);
            let mut s = Command::new("strace");
            s.arg(c.get_program()).args(c.get_args());
            for (k, v) in c.get_envs() {
                if let Some(v) = v {
                    s.env(k, v);
                }
            }
            s.env("PATH", "/usr/bin:/bin");
            (s, "FRAMES ")
        });
        assert!(
            main > 0.0 && all >= main,
            "{sync}: {main} / {all} syscalls per frame"
        );
        report.push_str(&format!(
            " {sync}_syscalls_app={main:.1} {sync}_syscalls_process={all:.1} {sync}_layer_cpu_mean={} {sync}_layer_cpu_p99={} {sync}_fps={}",
            json_number(&line[line.find("\"layer_cpu_us\"").unwrap_or(0)..], "mean"),
            common::stats::json_percentile(&line, "layer_cpu_us", "p99"),
            json_number(&line, "fps"),
        ));
    }
    let text = log.text();
    assert!(!text.contains("error:"), "the relay saw misuse:\n{text}");
    println!(
        "@@ real name=explicit_x11_vs_implicit layer_build={}{report}",
        layer_build(&m)
    );
}

/// The benchmark of explicit against implicit sync on one compositor (the
/// conformance compositor, trixie's lavapipe with SYNC_FD): the same
/// client, IMMEDIATE at 30 frames a second, 64x64, once with each forced
/// by `SYNCBRIDGE_SYNC`. Per frame: the system calls of the application
/// thread and of the whole process (`strace -ff`), and the layer's CPU
/// time on the application thread (its statistics, a 300-frame run
/// without strace). Asserts that each run took the path it was given and
/// printed its numbers; the numbers go to BENCHMARKS.md.
#[test]
#[ignore = "needs the test guest's trixie chroot with virtio-gpu and the conformance compositor (tests/guest.rs runs it)"]
fn explicit_against_implicit_syscalls_and_layer_cpu() {
    assert_eq!(
        std::env::var("SYNCBRIDGE_COMPOSITOR").as_deref(),
        Ok("conformance"),
        "run under tests/guest/compositor.sh --real --conformance"
    );
    let m = Manifests::for_library(common::shipped_layer_library());
    let tmp = TempDir::new("explicit-bench");
    let args = ["--mode", "immediate", "--size", "64x64", "--pace-fps", "30"];
    let mut report = String::new();
    for (sync, plan) in SYNC_PLANS {
        let stats = tmp.path().join(format!("{sync}.jsonl"));
        let mut full = vec!["bench", "--frames", "300"];
        full.extend_from_slice(&args);
        let out = run(
            probe(
                &m,
                &full,
                &[
                    ("SYNCBRIDGE_SYNC", sync),
                    ("SYNCBRIDGE_STATS", stats.to_str().unwrap()),
                ],
            ),
            Duration::from_secs(300),
        );
        out.assert_success();
        assert!(out.stdout.contains("probe: result=ok"), "{out}");
        assert!(out.stderr.contains(plan), "{sync}: {out}");
        let line = std::fs::read_to_string(&stats).unwrap_or_default();
        assert!(line.contains(&format!("\"sync\":\"{sync}\"")), "{line}");
        let (main, all) = syscalls_per_frame(&m, tmp.path(), sync, &args);
        assert!(
            main > 0.0 && all >= main,
            "{sync}: {main} / {all} syscalls per frame"
        );
        report.push_str(&format!(
            " {sync}_syscalls_app={main:.1} {sync}_syscalls_process={all:.1} {sync}_layer_cpu_mean={} {sync}_layer_cpu_p99={} {sync}_handoff_cpu_mean={} {sync}_fps={}",
            json_number(&line[line.find("\"layer_cpu_us\"").unwrap_or(0)..], "mean"),
            common::stats::json_percentile(&line, "layer_cpu_us", "p99"),
            json_number(&line[line.find("\"handoff_cpu_us\"").unwrap_or(0)..], "mean"),
            out.probe_value("fps").unwrap_or_default(),
        ));
    }
    println!(
        "@@ real name=explicit_vs_implicit layer_build={}{report}",
        layer_build(&m)
    );
}
