//! The present benchmark: the driver's own WSI against the syncbridge layer,
//! on the same compositor, with the same client, frame count, window size
//! and present mode.
//!
//! `cargo bench --bench present [-- --frames N --reps R --fifo-frames N
//!  --mailbox-frames N --size WxH --no-write]`
//!
//! Builds the layer and the `wsi_probe` example (release), starts a
//! headless weston (pixman renderer) on a private socket, runs the probe's
//! `bench` scenario without any layer (lavapipe's Mesa WSI) and through the
//! layer, alternately, prints a summary and rewrites `BENCHMARKS.md` and
//! `BENCHMARKS-frametimes.png` at the repository root.

// The tests' helpers: the weston fixture and a clean Vulkan environment
// (lavapipe only, nothing inherited).
#[path = "../tests/common/mod.rs"]
mod common;

#[path = "present/paced.rs"]
mod paced;

use common::weston::Weston;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LAYER_NAME: &str = "VK_LAYER_SYNCBRIDGE_wsi";
/// Allowed RSS growth between the checkpoint and the end of a run.
const RSS_TOLERANCE_KB: i64 = 256;

struct Args {
    frames: u32,
    reps: u32,
    fifo_frames: u32,
    mailbox_frames: u32,
    size: String,
    checkpoint: u32,
    write: bool,
    /// The paced-client and copy-path tables (`--no-paced` leaves them out).
    paced: bool,
}

fn args() -> Args {
    let mut a = Args {
        frames: 100_000,
        reps: 3,
        fifo_frames: 600,
        mailbox_frames: 20_000,
        size: "64x64".into(),
        checkpoint: 1000,
        write: true,
        paced: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut num = |what: &str| -> u32 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number"))
        };
        match k.as_str() {
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            "--frames" => a.frames = num("--frames"),
            "--reps" => a.reps = num("--reps").max(1),
            "--fifo-frames" => a.fifo_frames = num("--fifo-frames"),
            "--mailbox-frames" => a.mailbox_frames = num("--mailbox-frames"),
            "--checkpoint" => a.checkpoint = num("--checkpoint"),
            "--size" => a.size = it.next().expect("--size WxH"),
            "--no-write" => a.write = false,
            "--no-paced" => a.paced = false,
            other => panic!("unknown option {other}"),
        }
    }
    a
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or `target/`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_relative() { repo().join(p) } else { p })
        .unwrap_or_else(|| repo().join("target"))
}

fn build() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: building the layer and wsi_probe (release)");
    let st = Command::new(cargo)
        .current_dir(repo())
        .args(["build", "--release", "--lib", "--example", "wsi_probe"])
        .status()
        .expect("cargo");
    assert!(st.success(), "cargo build failed");
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Config {
    Driver,
    Layer,
}

impl Config {
    fn name(self) -> &'static str {
        match self {
            Config::Driver => "driver (Mesa WSI)",
            Config::Layer => "syncbridge layer",
        }
    }
}

/// One probe run.
struct Run {
    config: Config,
    mode: &'static str,
    values: BTreeMap<String, String>,
    /// Per frame: acquire, present, interval since the previous present (ns).
    samples: Vec<[u32; 3]>,
    stats: Option<serde_json::Value>,
}

impl Run {
    fn get(&self, key: &str) -> f64 {
        self.values
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("the probe printed no {key}: {:?}", self.values))
    }

    fn stat(&self, key: &str) -> Option<f64> {
        self.stats.as_ref()?.get(key)?.as_f64()
    }

    /// `key.sub` of the layer's statistics, e.g. `layer_cpu_us.p50`.
    fn stat2(&self, key: &str, sub: &str) -> Option<f64> {
        self.stats.as_ref()?.get(key)?.get(sub)?.as_f64()
    }
}

/// `probe: a=1 b=2` → a=1, a.b=2; `probe: name p50=1` → name.p50=1.
fn parse_probe(stdout: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("probe: ") else {
            continue;
        };
        let mut toks = rest.split_whitespace();
        let Some(first) = toks.next() else { continue };
        let prefix = match first.split_once('=') {
            Some((k, v)) => {
                m.insert(k.to_string(), v.to_string());
                k
            }
            None => first,
        };
        for t in toks {
            if let Some((k, v)) = t.split_once('=') {
                m.insert(format!("{prefix}.{k}"), v.to_string());
            }
        }
    }
    m
}

struct Env {
    probe: PathBuf,
    layers: PathBuf,
    scratch: PathBuf,
}

fn run_probe(
    env: &Env,
    w: &Weston,
    config: Config,
    mode: &'static str,
    frames: u32,
    a: &Args,
    tag: &str,
) -> Run {
    let times = env.scratch.join(format!("times-{tag}.txt"));
    let stats = env.scratch.join(format!("stats-{tag}.jsonl"));
    let _ = std::fs::remove_file(&times);
    let _ = std::fs::remove_file(&stats);
    let mut cmd = common::clean_command_in(&env.probe, &env.scratch.join("empty"));
    w.env(&mut cmd);
    cmd.args(["bench", "--frames", &frames.to_string(), "--mode", mode])
        .args(["--size", &a.size])
        .env("PROBE_TIMES_OUT", &times)
        .env("PROBE_CHECKPOINT", a.checkpoint.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if config == Config::Layer {
        cmd.env("VK_LAYER_PATH", &env.layers)
            .env("VK_INSTANCE_LAYERS", LAYER_NAME)
            .env("SYNCBRIDGE_STATS", &stats);
    }
    let mut child = cmd.spawn().expect("wsi_probe");
    let mut err_pipe = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let st = child.wait().unwrap();
    let err = err.join().unwrap_or_default();
    assert!(
        st.success() && out.contains("probe: result=ok"),
        "wsi_probe failed ({config:?} {mode}):\n{out}\n{err}"
    );
    if config == Config::Layer {
        assert!(
            err.is_empty() || !err.contains("syncbridge: error"),
            "layer errors:\n{err}"
        );
    }
    let samples = std::fs::read_to_string(&times)
        .expect("probe times")
        .lines()
        .map(|l| {
            let mut v = l.split(' ').map(|x| x.parse::<u32>().unwrap_or(0));
            [
                v.next().unwrap_or(0),
                v.next().unwrap_or(0),
                v.next().unwrap_or(0),
            ]
        })
        .collect();
    let stats = std::fs::read_to_string(&stats)
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| serde_json::from_str(l).ok()));
    if config == Config::Layer {
        assert!(stats.is_some(), "the layer wrote no statistics:\n{err}");
    }
    let _ = std::fs::remove_file(&times);
    Run {
        config,
        mode,
        values: parse_probe(&out),
        samples,
        stats,
    }
}

/// Nearest-rank percentile of unsorted values.
fn pct(v: &[u32], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    if s.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1] as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        0.0
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine(first: &Run) -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1048576.0))
        .unwrap_or_default();
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|s| s.trim_matches('"').to_string())
        .unwrap_or_default();
    let dpkg = |p: &str| sh("dpkg-query", &["-W", "-f", "${Version}", p]);
    vec![
        (
            "CPU".into(),
            format!("{model} ({} cores, `nproc`)", sh("nproc", &[])),
        ),
        ("memory".into(), mem),
        ("kernel".into(), sh("uname", &["-sr"])),
        ("OS".into(), os),
        (
            "Vulkan driver".into(),
            format!(
                "lavapipe, Mesa {} (`mesa-vulkan-drivers` {}); `{}`",
                dpkg("mesa-vulkan-drivers")
                    .split(['-', '+'])
                    .next()
                    .unwrap_or_default(),
                dpkg("mesa-vulkan-drivers"),
                first
                    .values
                    .get("device")
                    .cloned()
                    .unwrap_or_default()
                    .replace('_', " ")
            ),
        ),
        (
            "Vulkan loader".into(),
            format!("libvulkan1 {}", dpkg("libvulkan1")),
        ),
        (
            "compositor".into(),
            format!(
                "weston {} (headless backend, `--use-pixman`)",
                dpkg("weston")
            ),
        ),
        ("rustc".into(), sh("rustc", &["--version"])),
    ]
}

fn main() {
    let a = args();
    let t_all = Instant::now();
    build();
    let target = target_dir();
    let scratch = target.join("bench-present");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("layers")).unwrap();
    std::fs::create_dir_all(scratch.join("empty")).unwrap();
    let lib = target
        .join("release/libVkLayer_syncbridge.so")
        .canonicalize()
        .expect("the release layer");
    let manifest = std::fs::read_to_string(repo().join("manifest/VkLayer_syncbridge.json.in"))
        .unwrap()
        .replace("@LIBRARY_PATH@", lib.to_str().unwrap());
    std::fs::write(scratch.join("layers/VkLayer_syncbridge.json"), manifest).unwrap();
    let env = Env {
        probe: target.join("release/examples/wsi_probe"),
        layers: scratch.join("layers"),
        scratch: scratch.clone(),
    };
    let w = Weston::start();

    let mut runs: Vec<Run> = Vec::new();
    for r in 0..a.reps {
        // Alternate so drift (thermal, other load) hits both alike.
        let order = if r % 2 == 0 {
            [Config::Driver, Config::Layer]
        } else {
            [Config::Layer, Config::Driver]
        };
        for c in order {
            let t = Instant::now();
            let run = run_probe(
                &env,
                &w,
                c,
                "immediate",
                a.frames,
                &a,
                &format!("imm-{r}-{c:?}"),
            );
            eprintln!(
                "bench: IMMEDIATE {:<18} run {}: {:>8.1} fps ({:.1} s)",
                c.name(),
                r + 1,
                run.get("fps"),
                t.elapsed().as_secs_f64()
            );
            runs.push(run);
        }
    }
    for (mode, frames) in [("fifo", a.fifo_frames), ("mailbox", a.mailbox_frames)] {
        for c in [Config::Driver, Config::Layer] {
            let run = run_probe(&env, &w, c, mode, frames, &a, &format!("{mode}-{c:?}"));
            eprintln!(
                "bench: {:<9} {:<18}: {:>8.1} fps",
                mode.to_uppercase(),
                c.name(),
                run.get("fps")
            );
            runs.push(run);
        }
    }
    let paced = if a.paced {
        paced::run(&env, &w)
    } else {
        String::new()
    };
    drop(w);
    let total = t_all.elapsed();

    let mut report = Report::new(&a, &runs, total);
    report.summary.push_str(&format!("\n{paced}"));
    report.md_body.push_str(&format!("\n{paced}"));
    println!("{}", report.summary);
    if a.write {
        let root = repo();
        plot(&runs, &root.join("BENCHMARKS-frametimes.png"));
        std::fs::write(
            root.join("BENCHMARKS.md"),
            report.markdown(&machine(&runs[0])),
        )
        .expect("BENCHMARKS.md");
        eprintln!("bench: wrote BENCHMARKS.md and BENCHMARKS-frametimes.png");
    }
}

/// The figures of one configuration.
struct Figures {
    fps: Vec<f64>,
    fps_median: f64,
    fifo_fps: f64,
    mailbox_fps: f64,
    /// Frames the compositor showed in the MAILBOX run (its presentation
    /// feedback; the rest were replaced first), per second of the run, and
    /// their present-to-display p50 in ms.
    mailbox_shown: Option<(f64, f64, f64)>,
    acq_p50: f64,
    acq_p99: f64,
    pres_p50: f64,
    pres_p99: f64,
    both_p50: f64,
    both_p99: f64,
    interval_p50: f64,
    interval_p99: f64,
    slow_acquires: Vec<f64>,
    slow_presents: Vec<f64>,
    acquire_waits: Vec<f64>,
    early_acquires: Vec<f64>,
    /// The layer's own CPU time per frame on the app thread, p50 and p99
    /// of each run (from its statistics).
    layer_cpu: Vec<(f64, f64, f64)>,
    /// The mean over every frame of each run.
    layer_cpu_mean: Vec<f64>,
    images: f64,
    min_image_count: f64,
    fds: (f64, f64),
    rss: (f64, f64),
    rss_growth_max: f64,
    fds_equal: bool,
    release_p50: Option<f64>,
    frame_event_timeouts: Option<f64>,
}

fn figures(runs: &[Run], c: Config) -> Figures {
    let imm: Vec<&Run> = runs
        .iter()
        .filter(|r| r.config == c && r.mode == "immediate")
        .collect();
    let fifo = runs
        .iter()
        .find(|r| r.config == c && r.mode == "fifo")
        .expect("fifo run");
    let mailbox = runs
        .iter()
        .find(|r| r.config == c && r.mode == "mailbox")
        .expect("mailbox run");
    let col = |k: usize| -> Vec<u32> {
        imm.iter()
            .flat_map(|r| r.samples.iter().skip(1).map(move |s| s[k]))
            .collect()
    };
    let both: Vec<u32> = imm
        .iter()
        .flat_map(|r| r.samples.iter().skip(1).map(|s| s[0].saturating_add(s[1])))
        .collect();
    let (acq, pres, intv) = (col(0), col(1), col(2));
    let fps: Vec<f64> = imm.iter().map(|r| r.get("fps")).collect();
    let first = imm[0];
    let fds_equal = imm
        .iter()
        .all(|r| r.get("checkpoint.fds") == r.get("end.fds"));
    let rss_growth_max = imm
        .iter()
        .map(|r| r.get("end.rss_kb") - r.get("checkpoint.rss_kb"))
        .fold(f64::MIN, f64::max);
    Figures {
        fps_median: median(fps.clone()),
        fps,
        fifo_fps: fifo.get("fps"),
        mailbox_fps: mailbox.get("fps"),
        mailbox_shown: mailbox.stat("frames_displayed").map(|n| {
            let secs = mailbox.samples.len() as f64 / mailbox.get("fps").max(1e-9);
            (
                n,
                n / secs,
                mailbox
                    .stat2("display_latency_us", "p50")
                    .unwrap_or(f64::NAN)
                    / 1000.0,
            )
        }),
        acq_p50: pct(&acq, 50.0) / 1000.0,
        acq_p99: pct(&acq, 99.0) / 1000.0,
        pres_p50: pct(&pres, 50.0) / 1000.0,
        pres_p99: pct(&pres, 99.0) / 1000.0,
        both_p50: pct(&both, 50.0) / 1000.0,
        both_p99: pct(&both, 99.0) / 1000.0,
        interval_p50: pct(&intv, 50.0) / 1e6,
        interval_p99: pct(&intv, 99.0) / 1e6,
        slow_acquires: imm.iter().map(|r| r.get("slow_acquires")).collect(),
        slow_presents: imm.iter().map(|r| r.get("slow_presents")).collect(),
        acquire_waits: imm.iter().filter_map(|r| r.stat("acquire_waits")).collect(),
        early_acquires: imm
            .iter()
            .filter_map(|r| r.stat("early_acquires"))
            .collect(),
        layer_cpu: imm
            .iter()
            .filter_map(|r| {
                Some((
                    r.stat2("layer_cpu_us", "p50")?,
                    r.stat2("layer_cpu_us", "p90")?,
                    r.stat2("layer_cpu_us", "p99")?,
                ))
            })
            .collect(),
        layer_cpu_mean: imm
            .iter()
            .filter_map(|r| r.stat2("layer_cpu_us", "mean"))
            .collect(),
        images: first.get("images"),
        min_image_count: first.get("images.min_image_count"),
        fds: (first.get("checkpoint.fds"), first.get("end.fds")),
        rss: (first.get("checkpoint.rss_kb"), first.get("end.rss_kb")),
        rss_growth_max,
        fds_equal,
        release_p50: first
            .stats
            .as_ref()
            .and_then(|s| s.get("release_latency_us")?.get("p50")?.as_f64()),
        frame_event_timeouts: first.stat("frame_event_timeouts"),
    }
}

struct Report {
    summary: String,
    md_body: String,
    command: String,
}

fn list(v: &[f64], prec: usize) -> String {
    v.iter()
        .map(|x| format!("{x:.prec$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn yes(b: bool) -> &'static str {
    if b {
        "**met**"
    } else {
        "**not met**"
    }
}

impl Report {
    fn new(a: &Args, runs: &[Run], total: Duration) -> Self {
        let d = figures(runs, Config::Driver);
        let l = figures(runs, Config::Layer);
        let ratio = l.fps_median / d.fps_median;
        let fifo_ratio = l.fifo_fps / d.fifo_fps;
        let diff50 = l.both_p50 - d.both_p50;
        let diff99 = l.both_p99 - d.both_p99;
        let rss_ok = l.rss_growth_max <= RSS_TOLERANCE_KB as f64;
        let mut command = String::from("cargo bench --bench present");
        let defaults = a.frames == 100_000
            && a.reps == 3
            && a.fifo_frames == 600
            && a.mailbox_frames == 20_000
            && a.size == "64x64";
        if !defaults {
            let _ = write!(
                command,
                " -- --frames {} --reps {} --fifo-frames {} --mailbox-frames {} --size {}",
                a.frames, a.reps, a.fifo_frames, a.mailbox_frames, a.size
            );
        }

        let mut t = String::new();
        let row = |t: &mut String, what: &str, dv: String, lv: String, note: String| {
            let _ = writeln!(t, "| {what} | {dv} | {lv} | {note} |");
        };
        let _ = writeln!(
            t,
            "| | driver (Mesa WSI) | syncbridge layer | layer vs driver |"
        );
        let _ = writeln!(t, "| --- | ---: | ---: | --- |");
        row(
            &mut t,
            "swapchain images made (the client asks for `minImageCount`)",
            format!("{:.0} (asked {:.0})", d.images, d.min_image_count),
            format!("{:.0} (asked {:.0})", l.images, l.min_image_count),
            String::new(),
        );
        row(
            &mut t,
            "IMMEDIATE fps, median of runs",
            format!("{:.0}", d.fps_median),
            format!("{:.0}", l.fps_median),
            format!(
                "ratio **{ratio:.3}** (target ≥ 0.99: {})",
                yes(ratio >= 0.99)
            ),
        );
        row(
            &mut t,
            "IMMEDIATE fps, each run",
            list(&d.fps, 0),
            list(&l.fps, 0),
            String::new(),
        );
        row(
            &mut t,
            "FIFO fps",
            format!("{:.1}", d.fifo_fps),
            format!("{:.1}", l.fifo_fps),
            format!("ratio {fifo_ratio:.3}"),
        );
        row(
            &mut t,
            "MAILBOX fps (layer: frames shown, per second, present-to-display p50)",
            format!("{:.0}", d.mailbox_fps),
            format!(
                "{:.0} ({})",
                l.mailbox_fps,
                l.mailbox_shown.map_or("?".into(), |(n, per_s, ms)| format!(
                    "{n:.0} shown, {per_s:.1}/s, {ms:.1} ms"
                ))
            ),
            format!("ratio {:.3}", l.mailbox_fps / d.mailbox_fps),
        );
        row(
            &mut t,
            "acquire, p50 / p99 (µs)",
            format!("{:.1} / {:.1}", d.acq_p50, d.acq_p99),
            format!("{:.1} / {:.1}", l.acq_p50, l.acq_p99),
            format!(
                "{:+.1} / {:+.1}",
                l.acq_p50 - d.acq_p50,
                l.acq_p99 - d.acq_p99
            ),
        );
        row(
            &mut t,
            "present, p50 / p99 (µs)",
            format!("{:.1} / {:.1}", d.pres_p50, d.pres_p99),
            format!("{:.1} / {:.1}", l.pres_p50, l.pres_p99),
            format!(
                "{:+.1} / {:+.1}",
                l.pres_p50 - d.pres_p50,
                l.pres_p99 - d.pres_p99
            ),
        );
        row(
            &mut t,
            "acquire + present per frame, p50 / p99 (µs)",
            format!("{:.1} / {:.1}", d.both_p50, d.both_p99),
            format!("{:.1} / {:.1}", l.both_p50, l.both_p99),
            format!("{diff50:+.1} / {diff99:+.1}"),
        );
        let cpu_max_p50 = l.layer_cpu.iter().map(|c| c.0).fold(f64::NAN, f64::max);
        row(
            &mut t,
            "layer's own CPU time per frame on the app thread, p50 / p90 / p99 per run (µs)",
            "—".into(),
            l.layer_cpu
                .iter()
                .map(|(a, b, c)| format!("{a:.1} / {b:.1} / {c:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            format!(
                "largest p50 **{cpu_max_p50:.1} µs** (target < 20 µs: {})",
                yes(cpu_max_p50 < 20.0)
            ),
        );
        let cpu_max_mean = l.layer_cpu_mean.iter().copied().fold(f64::NAN, f64::max);
        row(
            &mut t,
            "layer's own CPU time per frame on the app thread, mean over each run (µs)",
            "—".into(),
            list(&l.layer_cpu_mean, 1),
            format!(
                "largest mean **{cpu_max_mean:.1} µs** (target < 20 µs: {})",
                yes(cpu_max_mean < 20.0)
            ),
        );
        row(
            &mut t,
            "frame interval p50 / p99 (ms)",
            format!("{:.3} / {:.3}", d.interval_p50, d.interval_p99),
            format!("{:.3} / {:.3}", l.interval_p50, l.interval_p99),
            String::new(),
        );
        row(
            &mut t,
            "acquires > 1 ms, per run (app clock)",
            list(&d.slow_acquires, 0),
            list(&l.slow_acquires, 0),
            String::new(),
        );
        row(
            &mut t,
            "presents > 1 ms, per run (app clock)",
            list(&d.slow_presents, 0),
            list(&l.slow_presents, 0),
            String::new(),
        );
        row(
            &mut t,
            "acquires that blocked in the layer until a release, per run (`acquire_waits`)",
            "—".into(),
            list(&l.acquire_waits, 0),
            String::new(),
        );
        row(
            &mut t,
            "acquires that handed out an image the compositor still held instead, the GPU waiting for its release (`early_acquires`)",
            "—".into(),
            list(&l.early_acquires, 0),
            String::new(),
        );
        row(
            &mut t,
            &format!("open fds after {} / {} frames", a.checkpoint, a.frames),
            format!("{:.0} / {:.0}", d.fds.0, d.fds.1),
            format!("{:.0} / {:.0}", l.fds.0, l.fds.1),
            format!("equal in every run: {}", yes(l.fds_equal)),
        );
        row(
            &mut t,
            &format!("VmRSS after {} / {} frames (kB)", a.checkpoint, a.frames),
            format!("{:.0} / {:.0}", d.rss.0, d.rss.1),
            format!("{:.0} / {:.0}", l.rss.0, l.rss.1),
            format!(
                "largest growth in a run: layer {:+.0} kB, driver {:+.0} kB (tolerance {RSS_TOLERANCE_KB} kB: {})",
                l.rss_growth_max,
                d.rss_growth_max,
                yes(rss_ok)
            ),
        );
        if let (Some(r), Some(fe)) = (l.release_p50, l.frame_event_timeouts) {
            row(
                &mut t,
                "layer stats: release latency p50 (µs), frame-event timeouts",
                "—".into(),
                format!("{r:.0}, {fe:.0}"),
                String::new(),
            );
        }
        let summary = format!(
            "present benchmark ({} frames x {} runs per config, {} IMMEDIATE; FIFO {} frames; {:.0} s)\n\n{t}",
            a.frames,
            a.reps,
            a.size,
            a.fifo_frames,
            total.as_secs_f64()
        );
        let md_body = format!(
            "Each configuration ran {reps} times × {frames} frames, IMMEDIATE, {size}, \
             alternating driver and layer; FIFO once × {fifo} frames, MAILBOX once × {mailbox} frames. \
             Whole bench: {secs:.0} s.\n\n{t}",
            reps = a.reps,
            frames = a.frames,
            size = a.size,
            fifo = a.fifo_frames,
            mailbox = a.mailbox_frames,
            secs = total.as_secs_f64()
        );
        Report {
            summary,
            md_body,
            command,
        }
    }

    fn markdown(&self, machine: &[(String, String)]) -> String {
        let date = sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
        let mut m = String::new();
        let _ = writeln!(m, "# Benchmarks\n");
        let _ = writeln!(
            m,
            "The layer against the driver's own WSI (lavapipe's Mesa WSI, no layer), \
             on the same compositor with the same client, window size, frame count \
             and present mode. This file and `BENCHMARKS-frametimes.png` are written \
             by the benchmark; the *Findings* section is kept by hand in \
             `benches/present-findings.md`.\n"
        );
        let _ = writeln!(m, "## Command\n\n```sh\n{}\n```\n", self.command);
        let _ = writeln!(
            m,
            "It builds the layer and `examples/wsi_probe.rs` (release), starts \
             `weston --backend=headless-backend.so --use-pixman` on a private socket, \
             and runs `wsi_probe bench` with lavapipe as the only driver: once with no \
             layer, once with `VK_INSTANCE_LAYERS={LAYER_NAME}` and a generated manifest \
             pointing at `target/release/libVkLayer_syncbridge.so`. Options after `--`: \
             `--frames N --reps R --fifo-frames N --mailbox-frames N --size WxH --checkpoint N --no-write`.\n"
        );
        let _ = writeln!(m, "## Machine\n\nRun on {date}.\n");
        let _ = writeln!(m, "| | |\n| --- | --- |");
        for (k, v) in machine {
            let _ = writeln!(m, "| {k} | {v} |");
        }
        let _ = writeln!(m, "\n## Results\n\n{}", self.md_body);
        let _ = writeln!(m, "{}", METHOD);
        let _ = writeln!(m, "![frame intervals](BENCHMARKS-frametimes.png)\n");
        m.push_str(FINDINGS);
        m
    }
}

const METHOD: &str = "\
What the rows mean:

- **fps**: frames presented by the client divided by the wall time of the
  frame loop (the probe keeps two frames in flight, waiting on its own
  per-frame fence before each acquire; each image's clear is recorded once).
- **acquire / present**: the wall time the application thread spends inside
  `vkAcquireNextImageKHR` and `vkQueuePresentKHR`, per frame, from all
  IMMEDIATE runs together (the first frame of each run left out). Wall time
  is an upper bound on the CPU time of the calls (it includes preemption on
  this 2-core machine).
- **layer's own CPU time**: measured by the layer itself
  (`layer_cpu_us` in its statistics): the thread CPU time
  (`CLOCK_THREAD_CPUTIME_ID`) of each frame's `vkAcquireNextImageKHR` and
  `vkQueuePresentKHR` minus the CPU time of the driver calls the layer
  makes in them on the application's behalf (the present submission and
  the acquire-semaphore signal, which the driver's own WSI makes too).
  Sleeping is not CPU time: blocked acquires are counted separately. The
  percentiles are over the last 16,384 frames of a run, the mean over all
  of them.
- **acquires > 1 ms** is measured by the client for both configurations;
  **acquire_waits** is counted by the layer (an acquire that found no free
  image, and none it could hand out early, and waited on its condition
  variable, as the driver's own WSI waits for the release); **early_acquires**
  are acquires that found no free image and handed out one the compositor
  had replaced but not yet released (or, outside FIFO, the one on screen
  while a newer frame was on its way), their fence signalled on the GPU
  when the release came (they do not block). The benchmark's client
  passes a semaphore and no fence, as most applications do, so it gets no
  early acquires: a binary semaphore may not wait for a signal not yet
  submitted.
- **MAILBOX fps** counts the frames the client presented; the compositor is
  given only the newest at each refresh (the count in brackets, from the
  layer's statistics).
- **fds / VmRSS** are read by the client from `/proc/self/fd` and
  `/proc/self/status` after the checkpoint frame and after the last one.
  The client's own per-frame sample buffers are allocated and touched before
  the first frame, so they do not count as growth.
- **frame interval**: time between the returns of two consecutive
  `vkQueuePresentKHR` calls.

The plot shows every frame interval of the first IMMEDIATE run of each
configuration and of the FIFO runs (log scale, a pixel's brightness is the
number of frames in it; the white line is the median).
";

const FINDINGS: &str = include_str!("present-findings.md");

// ---------------------------------------------------------------------------
// The plot: 2×2 panels, drawn by hand into an RGB buffer.

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<[u8; 3]>,
}

/// 3×5 glyphs, rows top to bottom, `#` is on.
fn glyph(c: char) -> [&'static str; 5] {
    match c.to_ascii_uppercase() {
        '0' => ["###", "#.#", "#.#", "#.#", "###"],
        '1' => [".#.", "##.", ".#.", ".#.", "###"],
        '2' => ["###", "..#", "###", "#..", "###"],
        '3' => ["###", "..#", ".##", "..#", "###"],
        '4' => ["#.#", "#.#", "###", "..#", "..#"],
        '5' => ["###", "#..", "###", "..#", "###"],
        '6' => ["###", "#..", "###", "#.#", "###"],
        '7' => ["###", "..#", "..#", ".#.", ".#."],
        '8' => ["###", "#.#", "###", "#.#", "###"],
        '9' => ["###", "#.#", "###", "..#", "###"],
        '.' => ["...", "...", "...", "...", ".#."],
        'A' => [".#.", "#.#", "###", "#.#", "#.#"],
        'B' => ["##.", "#.#", "##.", "#.#", "##."],
        'C' => [".##", "#..", "#..", "#..", ".##"],
        'D' => ["##.", "#.#", "#.#", "#.#", "##."],
        'E' => ["###", "#..", "##.", "#..", "###"],
        'F' => ["###", "#..", "##.", "#..", "#.."],
        'G' => [".##", "#..", "#.#", "#.#", ".##"],
        'H' => ["#.#", "#.#", "###", "#.#", "#.#"],
        'I' => ["###", ".#.", ".#.", ".#.", "###"],
        'J' => ["..#", "..#", "..#", "#.#", ".#."],
        'K' => ["#.#", "#.#", "##.", "#.#", "#.#"],
        'L' => ["#..", "#..", "#..", "#..", "###"],
        'M' => ["#.#", "###", "###", "#.#", "#.#"],
        'N' => ["##.", "#.#", "#.#", "#.#", "#.#"],
        'O' => [".#.", "#.#", "#.#", "#.#", ".#."],
        'P' => ["##.", "#.#", "##.", "#..", "#.."],
        'Q' => [".#.", "#.#", "#.#", "##.", ".##"],
        'R' => ["##.", "#.#", "##.", "#.#", "#.#"],
        'S' => [".##", "#..", ".#.", "..#", "##."],
        'T' => ["###", ".#.", ".#.", ".#.", ".#."],
        'U' => ["#.#", "#.#", "#.#", "#.#", "###"],
        'V' => ["#.#", "#.#", "#.#", "#.#", ".#."],
        'W' => ["#.#", "#.#", "###", "###", "#.#"],
        'X' => ["#.#", "#.#", ".#.", "#.#", "#.#"],
        'Y' => ["#.#", "#.#", ".#.", ".#.", ".#."],
        'Z' => ["###", "..#", ".#.", "#..", "###"],
        '-' => ["...", "...", "###", "...", "..."],
        '/' => ["..#", "..#", ".#.", "#..", "#.."],
        '(' => [".#.", "#..", "#..", "#..", ".#."],
        ')' => [".#.", "..#", "..#", "..#", ".#."],
        ',' => ["...", "...", "...", ".#.", "#.."],
        _ => ["...", "...", "...", "...", "..."],
    }
}

const SCALE: usize = 2;

impl Canvas {
    fn new(w: usize, h: usize, bg: [u8; 3]) -> Self {
        Self {
            w,
            h,
            px: vec![bg; w * h],
        }
    }

    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            self.px[y as usize * self.w + x as usize] = c;
        }
    }

    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: [u8; 3]) {
        for y in y0..=y1 {
            for x in x0..=x1 {
                self.set(x, y, c);
            }
        }
    }

    fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3]) {
        for (n, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            let ox = x + (n * 4 * SCALE) as i64;
            for (r, row) in g.iter().enumerate() {
                for (k, b) in row.bytes().enumerate() {
                    if b == b'#' {
                        let (px, py) = (ox + (k * SCALE) as i64, y + (r * SCALE) as i64);
                        self.rect(px, py, px + SCALE as i64 - 1, py + SCALE as i64 - 1, c);
                    }
                }
            }
        }
    }

    fn text_width(s: &str) -> i64 {
        (s.chars().count() * 4 * SCALE) as i64
    }

    fn save(&self, path: &Path) {
        let f = std::fs::File::create(path).expect("png file");
        let mut e = png::Encoder::new(std::io::BufWriter::new(f), self.w as u32, self.h as u32);
        e.set_color(png::ColorType::Rgb);
        e.set_depth(png::BitDepth::Eight);
        let mut wr = e.write_header().expect("png header");
        let data: Vec<u8> = self.px.iter().flatten().copied().collect();
        wr.write_image_data(&data).expect("png data");
    }
}

/// Decades of the y axis (ms).
const Y_MIN_LOG: f64 = -2.0;
const Y_MAX_LOG: f64 = 2.0;

/// One panel at `(x0, y0)` of size `(pw, ph)`.
fn panel(
    cv: &mut Canvas,
    (x0, y0, pw, ph): (i64, i64, i64, i64),
    title: &str,
    run: &Run,
    color: [u8; 3],
) {
    let grid = [60, 60, 70];
    let axis = [200, 200, 200];
    cv.text(x0, y0 - 16, title, [240, 240, 240]);
    // The plot area.
    let (ax, ay, aw, ah) = (x0 + 56, y0, pw - 64, ph - 30);
    cv.rect(ax, ay, ax + aw, ay + ah, [20, 20, 26]);
    let ylog = |ms: f64| -> i64 {
        let l = ms.max(1e-9).log10().clamp(Y_MIN_LOG, Y_MAX_LOG);
        ay + ah - ((l - Y_MIN_LOG) / (Y_MAX_LOG - Y_MIN_LOG) * ah as f64).round() as i64
    };
    for d in 0..=((Y_MAX_LOG - Y_MIN_LOG) as i32) {
        let ms = 10f64.powi(Y_MIN_LOG as i32 + d);
        let y = ylog(ms);
        for x in ax..=ax + aw {
            cv.set(x, y, grid);
        }
        let label = if ms < 1.0 {
            format!("{ms}")
        } else {
            format!("{ms:.0}")
        };
        cv.text(ax - 8 - Canvas::text_width(&label), y - 5, &label, axis);
        cv.rect(ax - 5, y, ax - 1, y, axis);
    }
    cv.text(x0, ay + ah / 2 - 5, "MS", axis);
    let n = run.samples.len().max(2) as f64;
    for q in 0..=4 {
        let f = (n - 1.0) * q as f64 / 4.0;
        let x = ax + (f / (n - 1.0) * aw as f64).round() as i64;
        cv.rect(x, ay + ah + 1, x, ay + ah + 5, axis);
        // Rounded to two significant digits of the frame count.
        let step = 10f64.powi(((n - 1.0).log10().floor() as i32 - 1).max(0));
        let label = format!("{:.0}", (f / step).round() * step);
        let lw = Canvas::text_width(&label);
        cv.text(
            (x - lw / 2).clamp(ax - 20, ax + aw - lw),
            ay + ah + 9,
            &label,
            axis,
        );
    }
    // Density: frames per pixel.
    let mut count = vec![0u32; ((aw + 1) * (ah + 1)) as usize];
    let mut intervals: Vec<u32> = Vec::new();
    for (f, s) in run.samples.iter().enumerate().skip(1) {
        let ms = s[2] as f64 / 1e6;
        intervals.push(s[2]);
        let x = (f as f64 / (n - 1.0) * aw as f64).round() as i64;
        let y = ylog(ms) - ay;
        count[(y * (aw + 1) + x) as usize] += 1;
    }
    let my = ylog(pct(&intervals, 50.0) / 1e6);
    for x in (ax..=ax + aw).filter(|x| x % 8 < 4) {
        cv.set(x, my, [255, 255, 255]);
    }
    let max = count.iter().copied().max().unwrap_or(1).max(1) as f64;
    for y in 0..=ah {
        for x in 0..=aw {
            let k = count[(y * (aw + 1) + x) as usize];
            if k > 0 {
                // At least 45 % brightness, log-scaled up to full.
                let t = 0.45 + 0.55 * ((k as f64).ln_1p() / max.ln_1p());
                let c = color.map(|v| (v as f64 * t).round() as u8);
                cv.set(ax + x, ay + y, c);
            }
        }
    }
    let med = pct(&intervals, 50.0) / 1e6;
    let my = ylog(med);
    let label = format!("MEDIAN {med:.3} MS");
    cv.text(
        ax + aw - Canvas::text_width(&label) - 4,
        my - 14,
        &label,
        [255, 255, 255],
    );
    for (x, y) in [(ax, ay), (ax + aw, ay)] {
        for yy in y..=y + ah {
            cv.set(x, yy, axis);
        }
    }
    for x in ax..=ax + aw {
        cv.set(x, ay + ah, axis);
    }
}

fn plot(runs: &[Run], path: &Path) {
    let (w, h) = (1400usize, 900usize);
    let mut cv = Canvas::new(w, h, [34, 34, 40]);
    cv.text(
        20,
        14,
        "FRAME INTERVALS (MS, LOG SCALE) - DRIVER (MESA WSI) VS SYNCBRIDGE LAYER, WESTON HEADLESS, LAVAPIPE",
        [255, 255, 255],
    );
    let pick = |c: Config, mode: &str| {
        runs.iter()
            .find(|r| r.config == c && r.mode == mode)
            .expect("a run")
    };
    let (pw, ph) = ((w as i64 - 60) / 2, (h as i64 - 120) / 2);
    let driver_c = [90, 160, 255];
    let layer_c = [255, 160, 60];
    let cells = [
        (
            0,
            0,
            Config::Driver,
            "immediate",
            "IMMEDIATE - DRIVER (MESA WSI)",
            driver_c,
        ),
        (
            1,
            0,
            Config::Layer,
            "immediate",
            "IMMEDIATE - SYNCBRIDGE LAYER",
            layer_c,
        ),
        (
            0,
            1,
            Config::Driver,
            "fifo",
            "FIFO - DRIVER (MESA WSI)",
            driver_c,
        ),
        (
            1,
            1,
            Config::Layer,
            "fifo",
            "FIFO - SYNCBRIDGE LAYER",
            layer_c,
        ),
    ];
    for (cx, cy, c, mode, title, color) in cells {
        let run = pick(c, mode);
        let title = format!(
            "{title} - {} FRAMES - {:.0} FPS",
            run.samples.len(),
            run.get("fps")
        );
        panel(
            &mut cv,
            (20 + cx * (pw + 20), 70 + cy * (ph + 40), pw, ph),
            &title,
            run,
            color,
        );
    }
    cv.text(20, h as i64 - 18, "X AXIS: FRAME NUMBER", [200, 200, 200]);
    cv.save(path);
}
