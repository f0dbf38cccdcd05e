//! The benchmark's second part: paced clients and the copy image path.
//!
//! - **Paced clients** (FIFO, and IMMEDIATE/MAILBOX with the client starting
//!   a frame every 1/60 s and sleeping in between, as a game's frame limiter
//!   does) at 64×64, 500×500 and 1920×1080: the application thread's CPU
//!   time inside acquire and present with the driver's own WSI and through
//!   the layer (`wsi_cpu_us`, measured by the client), the layer's own CPU
//!   time and what its blocking waits cost (`layer_cpu_us`, `wait_cpu_us`,
//!   measured by the layer), and the system calls the application thread
//!   makes per frame (two runs under `strace -ff` of different lengths, the
//!   difference divided by the difference in frames, so start-up does not
//!   count).
//! - **The copy path**: the same unpaced IMMEDIATE client through the layer
//!   with its images in host memory and with `SYNCBRIDGE_IMAGES=copy`; the
//!   copy's cost is the difference of the frame times.

use super::{parse_probe, Env, LAYER_NAME};
use crate::common::weston::Weston;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Stdio;

/// One probe run's printed values and the layer's statistics line.
struct Out {
    values: BTreeMap<String, String>,
    stats: Option<serde_json::Value>,
}

impl Out {
    fn get(&self, key: &str) -> f64 {
        self.values
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }

    fn stat2(&self, key: &str, sub: &str) -> f64 {
        self.stats
            .as_ref()
            .and_then(|s| s.get(key)?.get(sub)?.as_f64())
            .unwrap_or(f64::NAN)
    }
}

/// Runs the probe's bench scenario (through the layer when `layer`), with
/// `args` and `env`, optionally under `strace -ff -o PREFIX`.
fn probe(
    env: &Env,
    w: &Weston,
    layer: bool,
    args: &[&str],
    extra_env: &[(&str, &str)],
    strace: Option<&str>,
) -> Out {
    let stats = env.scratch.join("paced-stats.jsonl");
    let _ = std::fs::remove_file(&stats);
    let mut cmd = match strace {
        Some(prefix) => {
            let mut c = crate::common::clean_command_in("strace", &env.scratch.join("empty"));
            c.args(["-ff", "-qq", "-o", prefix]).arg(&env.probe);
            c
        }
        None => crate::common::clean_command_in(&env.probe, &env.scratch.join("empty")),
    };
    w.env(&mut cmd);
    cmd.arg("bench").args(args).stdin(Stdio::null());
    if layer {
        cmd.env("VK_LAYER_PATH", &env.layers)
            .env("VK_INSTANCE_LAYERS", LAYER_NAME)
            .env("SYNCBRIDGE_STATS", &stats);
    }
    cmd.envs(extra_env.iter().copied());
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("wsi_probe");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("probe: result=ok"),
        "wsi_probe {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = std::fs::read_to_string(&stats)
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| serde_json::from_str(l).ok()));
    Out {
        values: parse_probe(&stdout),
        stats,
    }
}

/// System calls the application's main thread makes per frame: the
/// difference between a long and a short run under strace.
fn syscalls_per_frame(
    env: &Env,
    w: &Weston,
    layer: bool,
    args: &[&str],
    frames: (u32, u32),
) -> f64 {
    let count = |n: u32| -> f64 {
        let dir = env.scratch.join(format!("strace-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let prefix = dir.join("t");
        let n_s = n.to_string();
        let mut a: Vec<&str> = vec!["--frames", &n_s];
        a.extend_from_slice(args);
        probe(env, w, layer, &a, &[], Some(prefix.to_str().unwrap()));
        // strace names each thread's file t.<tid>; the lowest tid is the
        // process's main thread (the probe's frame loop).
        let main = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let tid: u64 = name.strip_prefix("t.")?.parse().ok()?;
                Some((tid, e.path()))
            })
            .min_by_key(|(tid, _)| *tid)
            .map(|(_, p)| p)
            .expect("strace output");
        std::fs::read_to_string(main).unwrap().lines().count() as f64
    };
    let (a, b) = frames;
    (count(b) - count(a)) / f64::from(b - a)
}

/// The paced and copy-path tables, as markdown.
pub fn run(env: &Env, w: &Weston) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "### Paced clients\n\n\
         Each row: one run with the driver's own WSI and one through the layer, \
         600 frames (FIFO: 480); the client paces IMMEDIATE and MAILBOX at 60 \
         frames a second itself. `wsi_cpu_us` is the application thread's CPU \
         time inside acquire and present, whoever implements them (the client \
         measures it); `layer_cpu_us` is the layer's own code (driver calls, \
         blocking waits and the measurement's own clock reads excluded), \
         `handoff_cpu_us` the part of it that hands the frame to another of the \
         layer's threads (the wake-up of the GPU waiter or the presenter), and \
         `wait_cpu_us` the CPU time of going to sleep and waking up in the \
         layer's blocking acquires (the layer measures all three); syscalls are \
         those of the application thread per frame.\n"
    );
    let _ = writeln!(
        t,
        "| mode | size | wsi_cpu_us mean driver / layer | layer_cpu_us mean / p99 | of which handoff_cpu_us mean / p99 | layer_cpu_us without the hand-off, mean | wait_cpu_us mean | syscalls per frame driver / layer | fps driver / layer |"
    );
    let _ = writeln!(
        t,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (mode, pace, frames) in [
        ("fifo", "0", 480),
        ("immediate", "60", 600),
        ("mailbox", "60", 600),
    ] {
        for size in ["64x64", "500x500", "1920x1080"] {
            let n = frames.to_string();
            let args = ["--mode", mode, "--size", size, "--pace-fps", pace];
            let mut full: Vec<&str> = vec!["--frames", &n];
            full.extend_from_slice(&args);
            let d = probe(env, w, false, &full, &[], None);
            let l = probe(env, w, true, &full, &[], None);
            let sd = syscalls_per_frame(env, w, false, &args, (30, 90));
            let sl = syscalls_per_frame(env, w, true, &args, (30, 90));
            eprintln!(
                "bench: paced {mode:<9} {size:>9}: wsi_cpu {:.1} / {:.1} us, layer_cpu {:.1} us, syscalls {sd:.1} / {sl:.1}",
                d.get("wsi_cpu_us.mean"),
                l.get("wsi_cpu_us.mean"),
                l.stat2("layer_cpu_us", "mean"),
            );
            let _ = writeln!(
                t,
                "| {} | {size} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} | {:.1} | {sd:.1} / {sl:.1} | {:.1} / {:.1} |",
                if pace == "0" { mode.to_uppercase() } else { format!("{} at 60 fps", mode.to_uppercase()) },
                d.get("wsi_cpu_us.mean"),
                l.get("wsi_cpu_us.mean"),
                l.stat2("layer_cpu_us", "mean"),
                l.stat2("layer_cpu_us", "p99"),
                l.stat2("handoff_cpu_us", "mean"),
                l.stat2("handoff_cpu_us", "p99"),
                l.stat2("layer_cpu_us", "mean") - l.stat2("handoff_cpu_us", "mean"),
                l.stat2("wait_cpu_us", "mean"),
                d.get("fps"),
                l.get("fps"),
            );
        }
    }
    let _ = writeln!(
        t,
        "\n### The copy path\n\n\
         IMMEDIATE, 500×500, 20,000 frames, unpaced, through the layer: images in \
         host memory (the default on lavapipe) and `SYNCBRIDGE_IMAGES=copy` (images \
         in the driver's layout, copied into the `wl_shm` buffer by the present \
         submission).\n"
    );
    let _ = writeln!(
        t,
        "| images | fps | frame time (µs) | layer_cpu_us mean / p99 |\n| --- | ---: | ---: | ---: |"
    );
    let mut frame_us = Vec::new();
    for (name, images) in [("host-memory", "host"), ("copy", "copy")] {
        let o = probe(
            env,
            w,
            true,
            &[
                "--frames",
                "20000",
                "--mode",
                "immediate",
                "--size",
                "500x500",
            ],
            &[("SYNCBRIDGE_IMAGES", images)],
            None,
        );
        let fps = o.get("fps");
        frame_us.push(1e6 / fps);
        eprintln!("bench: images {name:<11}: {fps:.1} fps");
        let _ = writeln!(
            t,
            "| {name} | {fps:.0} | {:.1} | {:.1} / {:.1} |",
            1e6 / fps,
            o.stat2("layer_cpu_us", "mean"),
            o.stat2("layer_cpu_us", "p99"),
        );
    }
    let _ = writeln!(
        t,
        "\nThe copy costs **{:.1} µs** a frame at 500×500 here (lavapipe copies on the CPU; a GPU's copy engine does it asynchronously).\n",
        frame_us[1] - frame_us[0]
    );
    t
}
