//! An outside observer of a process's dma-bufs, as a compositor or X
//! server sees them: for the guest tests that prove the render fence is in
//! the buffer the window system holds.

use super::Output;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use VkLayer_syncbridge::kernel::{DmaBuf, SyncAccess};

/// Watches the dma-bufs a process holds, as a compositor would see them:
/// returns how many samples found a buffer whose write fence was pending.
pub fn watch_write_fences(pid: u32, until: impl Fn() -> bool) -> (usize, usize) {
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid as i32).expect("pid"),
        rustix::process::PidfdFlags::empty(),
    )
    .expect("pidfd_open");
    let (mut pending, mut samples) = (0, 0);
    let start = Instant::now();
    while !until() && start.elapsed() < Duration::from_secs(200) {
        let dir = format!("/proc/{pid}/fd");
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(link) = std::fs::read_link(entry.path()) else {
                continue;
            };
            if !link.to_string_lossy().contains("dmabuf") {
                continue;
            }
            let Ok(n) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            // The process's own file, not a reopen through /proc.
            let Ok(fd) = rustix::process::pidfd_getfd(
                pidfd.as_fd(),
                rustix::fd::RawFd::from(n),
                rustix::process::PidfdGetfdFlags::empty(),
            ) else {
                continue;
            };
            let buf = DmaBuf::from_fd(fd);
            samples += 1;
            // Readable (POLLIN) = no pending write fence.
            if !buf
                .poll_ready(SyncAccess::Read, Duration::ZERO)
                .unwrap_or(true)
            {
                pending += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (pending, samples)
}

/// Runs `cmd` while watching its dma-bufs: its output, the samples that
/// found a pending write fence, and all samples.
pub fn run_and_watch(mut cmd: Command) -> (Output, usize, usize) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("probe");
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            watch_write_fences(pid, move || done.load(std::sync::atomic::Ordering::SeqCst))
        })
    };
    let out = child.wait_with_output().expect("wait");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (pending, samples) = watcher.join().expect("watcher");
    let out = Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    (out, pending, samples)
}
