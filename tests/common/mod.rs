//! Helpers for tests that drive the real Vulkan loader: where the built layer
//! is, layer manifests in a scratch directory, child processes with their own
//! environment, and commands with a time limit.
//!
//! Environment variables are process-wide and the test harness runs tests on
//! several threads, so every Vulkan scenario runs in a child process: the
//! test binary itself, re-executed for one `#[ignore]`d child test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const LAYER_NAME: &str = "VK_LAYER_SYNCBRIDGE_wsi";
pub const LIB_NAME: &str = "libVkLayer_syncbridge.so";
const VALIDATION_MANIFEST: &str = "VkLayer_khronos_validation.json";

/// The newest built `<target>-<hash>` test executable next to this one
/// (`cargo test` builds every test target before running any).
pub fn test_exe(target: &str) -> PathBuf {
    let me = std::env::current_exe().unwrap();
    let deps = me.parent().unwrap();
    std::fs::read_dir(deps)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&format!("{target}-")) && !n.contains('.') && is_executable(p)
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| {
            panic!(
                "no {target} test binary in {}: run `cargo test --test {target} --no-run`",
                deps.display()
            )
        })
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Set in the environment of a child process; child tests do nothing without it.
pub const CHILD_ENV: &str = "SB_TEST_CHILD";
/// Lines a child prints for its parent start with this marker.
pub const MARK: &str = "@@ ";

/// The repository root.
pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The probe (`examples/wsi_probe.rs`), which `cargo test` builds.
pub fn probe_exe() -> PathBuf {
    let p = profile_dir().join("examples/wsi_probe");
    assert!(
        p.exists(),
        "{} is not built (cargo test builds the examples)",
        p.display()
    );
    p
}

/// Cargo's output directory for this profile (`target/debug`): the test
/// executable lives in its `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("the test binary's directory");
    deps.parent().expect("the profile directory").to_path_buf()
}

/// The layer library cargo built with this test.
///
/// `cargo test` builds the cdylib into `target/debug/deps/` without copying
/// it to `target/debug/` (only `cargo build` does), so the newer of the two
/// is the one built from the sources under test.
pub fn layer_library() -> PathBuf {
    let dir = profile_dir();
    let newest = [dir.join("deps").join(LIB_NAME), dir.join(LIB_NAME)]
        .into_iter()
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p);
    let lib = newest.unwrap_or_else(|| {
        panic!(
            "{LIB_NAME} was not built in {} (cargo builds the cdylib with the tests)",
            dir.display()
        )
    });
    lib.canonicalize().expect("canonical layer path")
}

/// The layer as it ships, for the scenarios that report numbers: the
/// release build (`cargo build --release --lib`, which `tests/run.sh`
/// makes) where there is one, else [`layer_library`].
pub fn shipped_layer_library() -> PathBuf {
    profile_dir()
        .parent()
        .map(|target| target.join("release").join(LIB_NAME))
        .filter(|p| p.exists())
        .and_then(|p| p.canonicalize().ok())
        .unwrap_or_else(layer_library)
}

/// A scratch directory under cargo's target tmp dir (or, where that is
/// read-only as in the test guest, the system's), removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = [
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
            std::env::temp_dir(),
        ]
        .into_iter()
        .map(|base| base.join(&name))
        .find(|dir| {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir).is_ok()
        })
        .expect("create scratch dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The manifest templates of `manifest/`, filled in for one library path.
pub fn manifest_text(implicit: bool, library: &Path) -> String {
    let template = if implicit {
        include_str!("../../manifest/VkLayer_syncbridge_implicit.json.in")
    } else {
        include_str!("../../manifest/VkLayer_syncbridge.json.in")
    };
    assert!(template.contains("@LIBRARY_PATH@"));
    template.replace("@LIBRARY_PATH@", library.to_str().expect("utf-8 path"))
}

/// The layer manifests written into a scratch directory, pointing at the
/// library cargo built.
pub struct Manifests {
    pub dir: TempDir,
    pub library: PathBuf,
}

impl Manifests {
    pub fn new() -> Self {
        Self::for_library(layer_library())
    }

    /// The manifests for `library`.
    pub fn for_library(library: PathBuf) -> Self {
        let dir = TempDir::new("manifests");
        let explicit = dir.path().join("explicit_layer.d");
        // The loader looks for implicit layers in $XDG_CONFIG_HOME/vulkan
        // (first of all its search paths); 1.3.239 has no
        // VK_IMPLICIT_LAYER_PATH.
        let implicit = dir.path().join("xdg/vulkan/implicit_layer.d");
        std::fs::create_dir_all(&explicit).unwrap();
        std::fs::create_dir_all(&implicit).unwrap();
        std::fs::create_dir_all(dir.path().join("empty")).unwrap();
        std::fs::write(
            explicit.join("VkLayer_syncbridge.json"),
            manifest_text(false, &library),
        )
        .unwrap();
        std::fs::write(
            implicit.join("VkLayer_syncbridge.json"),
            manifest_text(true, &library),
        )
        .unwrap();
        Self { dir, library }
    }

    /// `VK_LAYER_PATH`: the syncbridge manifest, then the system's
    /// validation layer (VK_LAYER_PATH replaces the loader's own search).
    pub fn layer_path(&self) -> String {
        join_paths(&[self.dir.path().join("explicit_layer.d")], true)
    }

    /// Enables the layer in `cmd` the way a user does: its explicit
    /// manifest on `VK_LAYER_PATH`, and `VK_INSTANCE_LAYERS`.
    pub fn enable_layer(&self, cmd: &mut Command) {
        cmd.env("VK_LAYER_PATH", self.layer_path())
            .env("VK_INSTANCE_LAYERS", LAYER_NAME);
    }

    /// `XDG_CONFIG_HOME` under which the implicit manifest is found.
    pub fn implicit_home(&self) -> PathBuf {
        self.dir.path().join("xdg")
    }

    /// An empty directory, for `XDG_CONFIG_HOME`/`XDG_DATA_HOME` when no
    /// implicit manifest should be seen (keeps a per-user install out).
    pub fn empty_home(&self) -> PathBuf {
        self.dir.path().join("empty")
    }
}

impl Default for Manifests {
    fn default() -> Self {
        Self::new()
    }
}

/// `dirs` joined with ':', plus the system's validation layer directory.
pub fn join_paths(dirs: &[PathBuf], with_validation: bool) -> String {
    let mut all: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    if with_validation {
        if let Some(v) = validation_layer_dir() {
            all.push(v.display().to_string());
        }
    }
    all.join(":")
}

/// The directory holding the Khronos validation layer's manifest.
pub fn validation_layer_dir() -> Option<PathBuf> {
    [
        "/usr/share/vulkan/explicit_layer.d",
        "/usr/local/share/vulkan/explicit_layer.d",
        "/etc/vulkan/explicit_layer.d",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|d| d.join(VALIDATION_MANIFEST).is_file())
}

/// lavapipe's ICD manifest: the tests use the software driver everywhere so
/// they behave the same on machines with and without a GPU.
pub fn lavapipe_icd() -> PathBuf {
    for dir in ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("lvp_icd") && name.ends_with(".json") {
                    return e.path();
                }
            }
        }
    }
    panic!("lavapipe (mesa-vulkan-drivers) is not installed; run tests/install-deps.sh");
}

/// A command with the Vulkan environment cleared of anything inherited:
/// no `VK_*`, `SYNCBRIDGE_*`, `ENABLE_/DISABLE_SYNCBRIDGE`, display or
/// user-installed layers; lavapipe as the only driver.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>, m: &Manifests) -> Command {
    clean_command_in(program, &m.empty_home())
}

/// [`clean_command`] with `empty_home` (an empty directory) as the user's
/// config and data homes, so that no per-user layer is seen.
pub fn clean_command_in(program: impl AsRef<std::ffi::OsStr>, empty_home: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("VK_")
            || k.starts_with("SYNCBRIDGE_")
            || k == "ENABLE_SYNCBRIDGE"
            || k == "DISABLE_SYNCBRIDGE"
            || k == "DISPLAY"
            || k == "WAYLAND_DISPLAY"
            || k == "RUST_TEST_THREADS"
        {
            cmd.env_remove(&*k);
        }
    }
    let icd = lavapipe_icd();
    cmd.env("VK_DRIVER_FILES", &icd)
        .env("VK_ICD_FILENAMES", &icd)
        .env("XDG_CONFIG_HOME", empty_home)
        .env("XDG_DATA_HOME", empty_home)
        .stdin(Stdio::null());
    cmd
}

/// The test binary, re-executed to run only the child test `name`.
pub fn child_command(name: &str, m: &Manifests) -> Command {
    child_command_of(std::env::current_exe().expect("current_exe"), name, m)
}

/// Test binary `exe`, running only its (ignored) test `name`, with a clean
/// environment.
pub fn child_command_of(exe: impl AsRef<std::ffi::OsStr>, name: &str, m: &Manifests) -> Command {
    let mut cmd = clean_command(exe, m);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1");
    cmd
}

/// The environment that turns on the Khronos validation layer's
/// synchronization validation: `VK_LAYER_ENABLES` (read by bookworm's
/// 1.3.239 and trixie's 1.4.309) and the 1.4 setting's own variable.
/// `PROBE_SYNC_HAZARD=1` makes the probe record a write-after-write hazard,
/// which shows that it is on.
pub const SYNC_VALIDATION: [(&str, &str); 2] = [
    (
        "VK_LAYER_ENABLES",
        "VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT",
    ),
    ("VK_KHRONOS_VALIDATION_VALIDATE_SYNC", "true"),
];

/// The environment that puts the validation layer above the layer under
/// test (it checks the application's own calls); the probe then only
/// listens (`PROBE_VALIDATION_IN_ENV`).
pub const VALIDATION_ABOVE: [(&str, &str); 2] = [
    (
        "VK_INSTANCE_LAYERS",
        "VK_LAYER_KHRONOS_validation:VK_LAYER_SYNCBRIDGE_wsi",
    ),
    ("PROBE_VALIDATION_IN_ENV", "1"),
];

/// `extra` with synchronization validation on ([`SYNC_VALIDATION`]), and
/// the validation layer placed above the layer under test when `above`
/// ([`VALIDATION_ABOVE`]; below it otherwise, as the probe enables it).
pub fn sync_validation_env<'a>(
    extra: &[(&'a str, &'a str)],
    above: bool,
) -> Vec<(&'a str, &'a str)> {
    let mut env = extra.to_vec();
    env.extend(SYNC_VALIDATION);
    if above {
        env.extend(VALIDATION_ABOVE);
    }
    env
}

/// Whether synchronization validation reported the write-after-write
/// hazard `PROBE_SYNC_HAZARD=1` makes: 1.3.239 names it by its id
/// (`SYNC-HAZARD-WRITE-AFTER-WRITE`), 1.4.309 in its text
/// ("WRITE_AFTER_WRITE hazard detected").
pub fn reports_write_after_write(out: &Output) -> bool {
    out.stdout.contains("SYNC-HAZARD-WRITE-AFTER-WRITE")
        || out.stdout.contains("WRITE_AFTER_WRITE hazard")
}

/// The probe scenarios valgrind memcheck runs over (`tests/reliability.rs`
/// on the host, `tests/guest_real.rs` on the core path): a few frames, and
/// the bad-input scenario.
pub const MEMCHECK_SCENARIOS: [&[&str]; 2] = [
    &[
        "frames",
        "--frames",
        "5",
        "--mode",
        "immediate",
        "--size",
        "64x64",
    ],
    &["bad-input", "--frames", "2", "--size", "64x64"],
];

/// Gives `cmd` (a `valgrind` command) memcheck's options: any memory error
/// (invalid read or write, use of uninitialised values, bad free) or a
/// definite or indirect leak makes it exit 99. "Possibly lost" blocks are
/// shown, not counted: hashbrown's tables in the layer's process-wide
/// registries are held through interior pointers, which memcheck calls
/// "possibly lost". `supps`: suppression files under the repository
/// `repo`.
pub fn memcheck(cmd: &mut Command, repo: &Path, supps: &[&str]) {
    cmd.args([
        "--leak-check=full",
        "--show-leak-kinds=definite,indirect,possible",
        "--errors-for-leak-kinds=definite,indirect",
        "--error-exitcode=99",
        "--num-callers=30",
    ]);
    for s in supps {
        cmd.arg(format!("--suppressions={}", repo.join(s).display()));
    }
}

/// The probe's `early-acquire` scenario on an IMMEDIATE swapchain, with
/// the compositor `pid` stopped and continued (host and guest tests add
/// their own options).
pub fn early_acquire_args(pid: &str) -> Vec<&str> {
    vec![
        "early-acquire",
        "--mode",
        "immediate",
        "--frames",
        "10",
        "--stop-pid",
        pid,
    ]
}

/// What a finished process printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Values of the `@@ key=value` lines a child printed.
    pub fn values(&self, key: &str) -> Vec<String> {
        let prefix = format!("{MARK}{key}=");
        self.stdout
            .lines()
            // libtest may print "test child_x ... " before the first line.
            .filter_map(|l| l.find(&prefix).map(|i| &l[i + prefix.len()..]))
            .map(str::to_string)
            .collect()
    }

    /// The single value of `key`; panics (with the output) otherwise.
    pub fn value(&self, key: &str) -> String {
        let v = self.values(key);
        assert_eq!(v.len(), 1, "expected one {key}= line\n{self}");
        v[0].clone()
    }

    /// The value of the first `probe: key=value` line the probe printed
    /// (up to the first blank).
    /// The value of `key=` among the words of the probe's `probe:` lines
    /// (first match; several values may share a line); panics if absent.
    pub fn probe_word(&self, key: &str) -> String {
        let pat = format!("{key}=");
        self.stdout
            .lines()
            .filter(|l| l.starts_with("probe: "))
            .flat_map(|l| l.split_whitespace())
            .find_map(|w| w.strip_prefix(&pat))
            .unwrap_or_else(|| panic!("no {key}= in the probe's output\n{self}"))
            .to_string()
    }

    /// The probe's `bad-input` scenario ran its 29 checks and each got the
    /// answer it expects (an error, not a crash).
    pub fn assert_bad_input_checks_ok(&self) {
        let checks: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| l.starts_with("probe: check_"))
            .collect();
        assert_eq!(checks.len(), 29, "{self}");
        assert!(checks.iter().all(|l| l.contains("=ok ")), "{self}");
    }

    /// [`Output::probe_word`] as a number.
    pub fn probe_number(&self, key: &str) -> u64 {
        self.probe_word(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number\n{self}"))
    }

    pub fn probe_value(&self, key: &str) -> Option<String> {
        let prefix = format!("probe: {key}=");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
    }

    /// The probe's `early-acquire` scenario (compositor stopped, then
    /// continued) handed out a replaced image, its fence signalled only
    /// after the compositor ran again, and the frame rendered into it was
    /// presented (the host and the guest tests).
    pub fn assert_replaced_image_handed_out_early(&self) {
        let early = self.probe_value("early_acquire").unwrap_or_default();
        assert!(early.starts_with("Ok("), "no image handed out:\n{self}");
        assert_eq!(
            self.probe_value("fence_while_stopped").as_deref(),
            Some("Ok(false)"),
            "the fence signalled before the compositor released the image:\n{self}"
        );
        for (key, value) in [
            ("fence_after_continue", "Ok(())"),
            ("early_present", "Ok(false)"),
        ] {
            assert_eq!(
                self.probe_value(key).as_deref(),
                Some(value),
                "{key}\n{self}"
            );
        }
    }

    /// The probe's `early-acquire-queued` scenario handed out the image on
    /// screen early, its fence signalled only after a queued frame
    /// replaced it, and the frame rendered into it was presented (the host
    /// and the guest tests; `what` names the case in a failure).
    pub fn assert_on_screen_image_handed_out_early(&self, what: &str) {
        assert_eq!(
            self.probe_value("early_acquire").as_deref(),
            Some("Ok(0)"),
            "{what}: the image on screen was not handed out\n{self}"
        );
        let queued = self.probe_value("fence_while_queued").unwrap_or_default();
        assert!(
            queued.starts_with("Ok(false)"),
            "{what}: the fence signalled before the image was released\n{self}"
        );
        let after = self.probe_value("fence_after").unwrap_or_default();
        assert!(after.starts_with("Ok(())"), "{what}\n{self}");
        assert_eq!(
            self.probe_value("early_present").as_deref(),
            Some("Ok(false)"),
            "{what}\n{self}"
        );
    }

    /// A run under [`memcheck`] found no memory error and no definite or
    /// indirect leak (`what` names it in a failure).
    pub fn assert_memcheck_clean(&self, what: &str) {
        assert!(
            self.status.code() != Some(99),
            "memcheck found errors in {what}\n{}",
            self.stderr
                .lines()
                .filter(|l| l.starts_with("=="))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            self.stderr.contains("definitely lost: 0 bytes"),
            "{what}: {}",
            self.stderr
        );
    }

    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "process failed: {}\n{self}",
            self.status
        );
        self
    }

    /// Whether the layer's log line for `vkCreateInstance` was printed.
    pub fn layer_created_an_instance(&self) -> bool {
        self.stderr.contains("syncbridge: info: instance created")
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` (its stdout and stderr piped) to exit after its
/// compositor was killed, and checks that it failed with
/// `VK_ERROR_SURFACE_LOST_KHR` or `VK_ERROR_OUT_OF_DATE_KHR`; a client
/// still running after `limit` is killed and the test fails: it hung.
/// Returns how long it took, the client's stdout and its stderr.
pub fn assert_error_after_compositor_death(
    mut child: std::process::Child,
    limit: Duration,
) -> (Duration, String, String) {
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("the client hung after the compositor died");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = t0.elapsed();
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !status.success(),
        "the client kept going without a compositor"
    );
    assert!(
        stdout.contains("error=ERROR_SURFACE_LOST_KHR")
            || stdout.contains("error=ERROR_OUT_OF_DATE_KHR"),
        "expected SURFACE_LOST or OUT_OF_DATE:\n{stdout}\n{stderr}"
    );
    (took, stdout, stderr)
}

/// Runs `cmd` to completion, killing it after `limit`.
pub fn run(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{:?} did not finish within {limit:?}:\n--- stdout ---\n{}\n--- stderr ---\n{}",
                cmd.get_program(),
                out.join().unwrap_or_default(),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Runs the child test `name` with the extra environment `env`.
pub fn run_child(name: &str, m: &Manifests, env: &[(&str, &str)]) -> Output {
    let mut cmd = child_command(name, m);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, Duration::from_secs(60))
}

/// Whether this process runs as a child; child tests return early otherwise
/// (so `cargo test -- --ignored` does not run them without their setup).
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Whether `library` is mapped into this process.
pub fn is_mapped(library: &Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    let name = library.to_string_lossy();
    maps.lines().any(|l| l.ends_with(&*name))
}

/// An Xvfb server on a free display number, killed on drop.
pub struct Xvfb {
    child: Option<Child>,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Self {
        // -displayfd: the server picks a free display and writes its number.
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "640x480x24",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start Xvfb (package xvfb; run tests/install-deps.sh)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = Self {
            child: Some(child),
            display: String::new(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("Xvfb did not report its display within 30 s");
        let n: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb reported no display number: {line:?}"));
        server.display = format!(":{n}");
        server
    }

    /// Ends the server the way a session ends: SIGTERM (Xvfb then closes
    /// its clients and removes its socket), SIGKILL if it is still there
    /// after 5 s.
    pub fn kill(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        // SAFETY: signalling our own child, which has not been reaped.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(st) = c.try_wait().ok().flatten() {
                eprintln!("Xvfb {}: {st:?}", self.display);
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.kill();
    }
}

pub mod conformance;
pub mod fence_watch;
pub mod image;
pub mod stats;
pub mod vkapp;
pub mod weston;
pub mod x11_relay;
