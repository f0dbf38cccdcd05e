//! Host side of the kernel test tier: boots the test guest
//! (`tests/guest/run.sh`) and runs the `kernel` test binary's guest-only
//! (ignored) tests in it.
//!
//! Needs `tests/guest/setup.sh` to have been run once; fails with a clear
//! message otherwise, unless `SYNCBRIDGE_SKIP_GUEST=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The newest built `kernel-<hash>` test executable next to this one
/// (`cargo test` builds every test target before running any).
fn kernel_test_exe() -> PathBuf {
    let me = std::env::current_exe().unwrap();
    let deps = me.parent().unwrap();
    std::fs::read_dir(deps)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("kernel-") && !n.contains('.') && is_executable(p)
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| {
            panic!(
                "no kernel test binary in {}: run `cargo test --test kernel --no-run`",
                deps.display()
            )
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// How many ignored (guest) tests the binary has.
fn count_guest_tests(exe: &Path) -> usize {
    let out = Command::new(exe)
        .args(["--ignored", "--list"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(": test"))
        .count()
}

fn guest_is_set_up() -> Result<(), String> {
    let dir = std::env::var_os("SYNCBRIDGE_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/syncbridge-guest")
        });
    let ver = std::fs::read_to_string(dir.join("kernel-version"))
        .map_err(|_| format!("no guest kernel in {}", dir.display()))?;
    let ver = ver.trim();
    let kernel = dir.join("K/boot").join(format!("vmlinuz-{ver}"));
    if !kernel.exists() {
        return Err(format!("{} is missing", kernel.display()));
    }
    if !Path::new("/lib/modules").join(ver).exists() {
        return Err(format!("/lib/modules/{ver} is missing"));
    }
    Ok(())
}

#[test]
fn kernel_tests_pass_in_the_guest() {
    if std::env::var("SYNCBRIDGE_SKIP_GUEST").as_deref() == Ok("1") {
        eprintln!("SYNCBRIDGE_SKIP_GUEST=1: the guest kernel tests were skipped");
        return;
    }
    if let Err(why) = guest_is_set_up() {
        panic!(
            "the test guest is not set up ({why}): run tests/guest/setup.sh once \
             (or set SYNCBRIDGE_SKIP_GUEST=1 to skip the guest tests)"
        );
    }
    let exe = kernel_test_exe();
    let expected = count_guest_tests(&exe);
    assert!(expected > 0, "no guest tests listed by {}", exe.display());

    let out = Command::new(repo().join("tests/guest/run.sh"))
        .current_dir(repo())
        // virtio-gpu gives the guest a node with timeline syncobjs.
        .env("SYNCBRIDGE_EXPECT_SYNCOBJ", "1")
        .arg("--virtio-gpu")
        .arg("--")
        .arg(&exe)
        .args(["--ignored", "--test-threads=1"])
        .output()
        .expect("run tests/guest/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");

    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("test result:"))
        .unwrap_or_else(|| {
            panic!(
                "the guest printed no test result (exit {:?})",
                out.status.code()
            )
        });
    assert!(
        summary.starts_with(&format!("test result: ok. {expected} passed; 0 failed")),
        "guest test run: {summary:?}, expected {expected} passed and 0 failed"
    );
    assert!(
        out.status.success(),
        "run.sh exited with {:?}",
        out.status.code()
    );
}
