//! Kernel-level tests of the sync core on a real kernel with dma-bufs:
//! they need the test guest (udmabuf, the system dma-buf heap, vgem).
//!
//!     tests/guest/run-tests.sh kernel
//!
//! On the host `cargo test` reports them as ignored. They cover what the
//! kernel's own dma-buf sync_file selftests cover, for udmabuf, dma-heap and
//! vgem buffers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use VkLayer_syncbridge::kernel::alloc::{available_sources, ALLOC_ORDER};
use VkLayer_syncbridge::kernel::dma_buf::{probe_sync_file_support_with, sync_file_support};
use VkLayer_syncbridge::kernel::{
    list_drm_nodes, DmaBuf, DmaBufSource, FenceStatus, KernelError, SoftFence, SyncAccess,
    SyncFile, SyncFileSupport, SyncobjDevice, Vgem,
};

const NOW: Duration = Duration::ZERO;
const SOON: Duration = Duration::from_secs(2);

fn vgem() -> Arc<Vgem> {
    Vgem::shared().expect("vgem (modprobe vgem)")
}

fn signaled(s: &SyncFile) -> bool {
    s.is_signaled().unwrap()
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn guest_offers_every_dma_buf_source() {
    assert_eq!(available_sources(), &ALLOC_ORDER[..]);
    assert_eq!(sync_file_support(), SyncFileSupport::Supported);
    let buf = DmaBuf::allocate(1).unwrap();
    assert_eq!(buf.source(), DmaBufSource::SystemHeap);
    assert_eq!(buf.size().unwrap(), 4096);
    assert_eq!(
        probe_sync_file_support_with(&buf),
        SyncFileSupport::Supported
    );
    let nodes = list_drm_nodes();
    assert!(nodes.iter().any(|n| n.driver == "vgem"), "{nodes:?}");
    eprintln!("DRM nodes: {nodes:?}");
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn export_before_and_after_write_fence_signaled() {
    let bo = vgem().create_bo(4096).unwrap();
    let buf = bo.export().unwrap();
    // No fences: both exports are signaled sync_files (real fds).
    for a in [SyncAccess::Read, SyncAccess::Write, SyncAccess::ReadWrite] {
        let s = buf.export_sync_file(a).unwrap();
        assert!(!s.is_signaled_form());
        assert!(signaled(&s));
    }
    let fence = bo.fence_attach(true).unwrap();
    let read = buf.export_sync_file(SyncAccess::Read).unwrap();
    let write = buf.export_sync_file(SyncAccess::Write).unwrap();
    let rw = buf.export_sync_file(SyncAccess::ReadWrite).unwrap();
    assert!(!signaled(&read) && !signaled(&write) && !signaled(&rw));
    assert!(!buf.poll_ready(SyncAccess::Read, NOW).unwrap());
    assert!(!buf.poll_ready(SyncAccess::Write, NOW).unwrap());
    assert!(fence.signal().unwrap());
    assert!(read.wait(SOON).unwrap() && write.wait(SOON).unwrap() && rw.wait(SOON).unwrap());
    assert!(buf.poll_ready(SyncAccess::ReadWrite, SOON).unwrap());
    // Export after signal: signaled.
    assert!(signaled(
        &buf.export_sync_file(SyncAccess::ReadWrite).unwrap()
    ));
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn pending_reader_blocks_write_export_not_read_export() {
    let bo = vgem().create_bo(4096).unwrap();
    let buf = bo.export().unwrap();
    let reader = bo.fence_attach(false).unwrap();
    let read = buf.export_sync_file(SyncAccess::Read).unwrap();
    let write = buf.export_sync_file(SyncAccess::Write).unwrap();
    assert!(signaled(&read), "a reader does not block readers");
    assert!(!signaled(&write), "a reader blocks writers");
    assert!(
        buf.poll_ready(SyncAccess::Read, NOW).unwrap(),
        "POLLIN: no pending writer"
    );
    assert!(
        !buf.poll_ready(SyncAccess::Write, NOW).unwrap(),
        "POLLOUT: a pending fence"
    );
    // vgem refuses a writer while a reader is pending.
    assert_eq!(
        bo.fence_attach(true).unwrap_err(),
        KernelError::Io(rustix::io::Errno::BUSY)
    );
    reader.signal().unwrap();
    assert!(write.wait(SOON).unwrap());
    assert!(buf.poll_ready(SyncAccess::Write, SOON).unwrap());
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn export_with_several_fences_attached() {
    let bo = vgem().create_bo(4096).unwrap();
    let buf = bo.export().unwrap();
    let fences: Vec<_> = (0..3).map(|_| bo.fence_attach(false).unwrap()).collect();
    let write = buf.export_sync_file(SyncAccess::Write).unwrap();
    let info = write.info().unwrap();
    assert_eq!(info.status, FenceStatus::Active);
    assert_eq!(info.fences.len(), 3, "{info:?}");
    assert!(
        info.fences
            .iter()
            .all(|f| f.driver_name == "vgem" && f.status == FenceStatus::Active),
        "{info:?}"
    );
    fences[0].signal().unwrap();
    fences[2].signal().unwrap();
    assert!(!write.wait(Duration::from_millis(50)).unwrap());
    fences[1].signal().unwrap();
    assert!(write.wait(SOON).unwrap());
    let info = write.info().unwrap();
    assert_eq!(info.status, FenceStatus::Signaled);
    assert!(
        info.fences
            .iter()
            .all(|f| f.status == FenceStatus::Signaled && f.timestamp_ns > 0),
        "{info:?}"
    );
}

fn for_each_source(f: impl Fn(DmaBuf)) {
    for src in ALLOC_ORDER {
        let buf = DmaBuf::allocate_from(src, 64 * 1024).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert_eq!(buf.source(), src);
        eprintln!("  on {src:?}");
        f(buf);
    }
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn import_write_fence_then_export_sees_it() {
    for_each_source(|buf| {
        assert!(buf.poll_ready(SyncAccess::ReadWrite, NOW).unwrap());
        let soft = SoftFence::new().unwrap();
        buf.import_sync_file(SyncAccess::Write, &soft.sync_file().unwrap())
            .unwrap();
        let read = buf.export_sync_file(SyncAccess::Read).unwrap();
        let write = buf.export_sync_file(SyncAccess::Write).unwrap();
        assert!(!signaled(&read) && !signaled(&write));
        assert!(!buf.poll_ready(SyncAccess::Read, NOW).unwrap());
        assert!(!buf.poll_ready(SyncAccess::Write, NOW).unwrap());
        soft.signal().unwrap();
        assert!(read.wait(SOON).unwrap() && write.wait(SOON).unwrap());
        assert!(buf.poll_ready(SyncAccess::Read, SOON).unwrap());
        assert!(buf.poll_ready(SyncAccess::Write, SOON).unwrap());
    });
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn import_read_fences_block_writers_only() {
    for_each_source(|buf| {
        let a = SoftFence::new().unwrap();
        let b = SoftFence::new().unwrap();
        buf.import_sync_file(SyncAccess::Read, &a.sync_file().unwrap())
            .unwrap();
        buf.import_sync_file(SyncAccess::Read, &b.sync_file().unwrap())
            .unwrap();
        assert!(signaled(&buf.export_sync_file(SyncAccess::Read).unwrap()));
        let write = buf.export_sync_file(SyncAccess::Write).unwrap();
        assert_eq!(write.info().unwrap().fences.len(), 2);
        assert!(buf.poll_ready(SyncAccess::Read, NOW).unwrap());
        assert!(!buf.poll_ready(SyncAccess::Write, NOW).unwrap());
        a.signal().unwrap();
        assert!(!write.wait(Duration::from_millis(20)).unwrap());
        b.signal().unwrap();
        assert!(write.wait(SOON).unwrap());
        assert!(buf.poll_ready(SyncAccess::Write, SOON).unwrap());
    });
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn import_several_write_fences() {
    for_each_source(|buf| {
        let fences: Vec<_> = (0..4).map(|_| SoftFence::new().unwrap()).collect();
        for f in &fences {
            buf.import_sync_file(SyncAccess::Write, &f.sync_file().unwrap())
                .unwrap();
        }
        let read = buf.export_sync_file(SyncAccess::Read).unwrap();
        assert_eq!(read.info().unwrap().fences.len(), 4);
        for f in &fences[..3] {
            f.signal().unwrap();
        }
        assert!(!signaled(&read));
        assert!(!buf.poll_ready(SyncAccess::Read, NOW).unwrap());
        fences[3].signal().unwrap();
        assert!(read.wait(SOON).unwrap());
        assert!(buf.poll_ready(SyncAccess::Read, SOON).unwrap());
    });
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn import_over_existing_shared_and_exclusive_fences() {
    // Over a pending reader (shared fence): a write import adds to it.
    let bo = vgem().create_bo(4096).unwrap();
    let buf = bo.export().unwrap();
    let reader = bo.fence_attach(false).unwrap();
    let soft = SoftFence::new().unwrap();
    buf.import_sync_file(SyncAccess::Write, &soft.sync_file().unwrap())
        .unwrap();
    let read = buf.export_sync_file(SyncAccess::Read).unwrap();
    let write = buf.export_sync_file(SyncAccess::Write).unwrap();
    soft.signal().unwrap();
    assert!(
        read.wait(SOON).unwrap(),
        "readers wait for the imported writer only"
    );
    assert!(!signaled(&write), "writers still wait for the vgem reader");
    reader.signal().unwrap();
    assert!(write.wait(SOON).unwrap());

    // Over a pending writer (exclusive fence): neither import replaces it.
    let bo = vgem().create_bo(4096).unwrap();
    let buf = bo.export().unwrap();
    let writer = bo.fence_attach(true).unwrap();
    let soft_w = SoftFence::new().unwrap();
    let soft_r = SoftFence::new().unwrap();
    buf.import_sync_file(SyncAccess::Write, &soft_w.sync_file().unwrap())
        .unwrap();
    buf.import_sync_file(SyncAccess::Read, &soft_r.sync_file().unwrap())
        .unwrap();
    let read = buf.export_sync_file(SyncAccess::Read).unwrap();
    let write = buf.export_sync_file(SyncAccess::Write).unwrap();
    assert_eq!(
        read.info().unwrap().fences.len(),
        2,
        "vgem writer + imported writer"
    );
    assert_eq!(write.info().unwrap().fences.len(), 3);
    soft_w.signal().unwrap();
    assert!(!signaled(&read), "the vgem writer is still there");
    writer.signal().unwrap();
    assert!(read.wait(SOON).unwrap());
    assert!(!signaled(&write), "the imported reader is still pending");
    soft_r.signal().unwrap();
    assert!(write.wait(SOON).unwrap());
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn enotty_and_einval_paths() {
    for_each_source(|buf| {
        assert_eq!(
            buf.export_sync_file_raw(0).unwrap_err(),
            KernelError::InvalidArgument("DMA_BUF_IOCTL_EXPORT_SYNC_FILE")
        );
        assert!(matches!(
            buf.export_sync_file_raw(0x100 | 1).unwrap_err(),
            KernelError::InvalidArgument(_)
        ));
        let soft = SoftFence::new().unwrap();
        let s = soft.sync_file().unwrap();
        assert!(matches!(
            buf.import_sync_file_raw(0, s.as_fd().unwrap()).unwrap_err(),
            KernelError::InvalidArgument(_)
        ));
        // Importing something that is not a sync_file.
        let memfd = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let e = buf
            .import_sync_file_raw(2, std::os::fd::AsFd::as_fd(&memfd))
            .unwrap_err();
        assert!(matches!(e, KernelError::InvalidArgument(_)), "{e:?}");
        // The dma-buf ioctls on a sync_file (not a dma-buf): ENOTTY.
        let not_buf = DmaBuf::from_fd(s.as_fd().unwrap().try_clone_to_owned().unwrap());
        assert!(not_buf
            .export_sync_file(SyncAccess::Read)
            .unwrap_err()
            .is_unsupported());
        // And sync_file ioctls on a dma-buf: ENOTTY too.
        let fake = SyncFile::from_fd(buf.try_clone().unwrap().into_fd());
        assert!(fake.info().unwrap_err().is_unsupported());
    });
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn merge_and_info_of_pending_fences() {
    let a = SoftFence::new().unwrap();
    let b = SoftFence::new().unwrap();
    let sa = a.sync_file().unwrap();
    let info = sa.info().unwrap();
    assert_eq!(info.status, FenceStatus::Active);
    assert_eq!(info.fences.len(), 1);
    assert_eq!(info.fences[0].driver_name, "vgem");
    assert_eq!(info.fences[0].timestamp_ns, 0);
    let m = SyncFile::merge(&sa, &b.sync_file().unwrap(), "syncbridge-merge").unwrap();
    let info = m.info().unwrap();
    assert_eq!(info.name, "syncbridge-merge");
    assert_eq!(info.fences.len(), 2);
    assert_eq!(info.status, FenceStatus::Active);
    // Merge with the signaled form keeps the pending fence.
    let m2 = SyncFile::merge(&SyncFile::Signaled, &m, "x").unwrap();
    assert_eq!(m2.info().unwrap().fences.len(), 2);
    a.signal().unwrap();
    assert!(signaled(&sa));
    assert!(!signaled(&m) && !signaled(&m2));
    b.signal().unwrap();
    assert!(m.wait(SOON).unwrap() && m2.wait(SOON).unwrap());
    let info = m.info().unwrap();
    assert_eq!(info.status, FenceStatus::Signaled);
    assert!(info.fences.iter().all(|f| f.timestamp_ns > 0));
    // Raw-fd round trip of a real sync_file.
    let raw = m.into_raw_fd();
    // SAFETY: `raw` was just given away by `into_raw_fd`.
    let back = unsafe { SyncFile::from_raw_fd(raw) }.unwrap();
    assert!(signaled(&back));
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn soft_fence_signal_and_drop_signals() {
    let f = SoftFence::new().unwrap();
    let s = f.sync_file().unwrap();
    assert!(!f.is_signaled().unwrap() && !signaled(&s));
    assert!(f.signal().unwrap());
    assert!(!f.signal().unwrap(), "second signal is a no-op");
    assert!(signaled(&s) && f.is_signaled().unwrap());

    let f = SoftFence::new().unwrap();
    let s = f.sync_file().unwrap();
    assert!(!signaled(&s));
    drop(f);
    assert!(
        s.wait(SOON).unwrap(),
        "dropping an unsignaled SoftFence signals it"
    );
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn soft_fence_signalled_from_a_worker_thread() {
    let f = Arc::new(SoftFence::new().unwrap());
    let s = f.sync_file().unwrap();
    let worker = {
        let f = Arc::clone(&f);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            f.signal().unwrap()
        })
    };
    let t = Instant::now();
    assert!(s.wait(Duration::from_secs(5)).unwrap());
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert!(worker.join().unwrap());
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn wait_timeout_returns() {
    let f = SoftFence::new().unwrap();
    let s = f.sync_file().unwrap();
    let t = Instant::now();
    assert!(!s.wait(Duration::from_millis(200)).unwrap());
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(
        s.wait_or_timeout(Duration::from_millis(10)).unwrap_err(),
        KernelError::Timeout
    );
    let buf = DmaBuf::allocate(4096).unwrap();
    buf.import_sync_file(SyncAccess::Write, &s).unwrap();
    let t = Instant::now();
    assert!(!buf
        .poll_ready(SyncAccess::Read, Duration::from_millis(200))
        .unwrap());
    assert!(t.elapsed() >= Duration::from_millis(190));
}

/// vgem signals a fence by itself after VGEM_FENCE_TIMEOUT (10 s): a
/// forgotten soft fence never hangs a compositor forever.
#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn vgem_fence_signals_itself_after_its_timeout() {
    let f = SoftFence::new().unwrap();
    let s = f.sync_file().unwrap();
    let t = Instant::now();
    assert!(s.wait(Duration::from_secs(30)).unwrap());
    let took = t.elapsed();
    eprintln!("vgem fence timed out after {took:?}");
    assert!(
        took > Duration::from_secs(5) && took < Duration::from_secs(20),
        "{took:?}"
    );
    assert!(!f.signal().unwrap(), "the kernel already signaled it");
    let info = s.info().unwrap();
    eprintln!("after timeout: {info:?}");
    assert!(info.status.is_signaled());
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn mmap_and_cpu_access() {
    for_each_source(|buf| {
        let mut m = buf.mmap().unwrap();
        assert_eq!(m.len() as u64, buf.size().unwrap());
        {
            let _w = buf.cpu_access(SyncAccess::Write).unwrap();
            m.as_mut_slice().fill(0xa5);
        }
        let m2 = buf.mmap().unwrap();
        let _r = buf.cpu_access(SyncAccess::Read).unwrap();
        assert!(m2.as_slice().iter().all(|&b| b == 0xa5));
    });
}

#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn no_fd_leaks() {
    // Process-wide caches open their fds once: warm them first.
    let _ = vgem();
    let _ = available_sources();
    let _ = SyncobjDevice::shared();
    let before = fd_count();
    for _ in 0..3 {
        for src in ALLOC_ORDER {
            let buf = DmaBuf::allocate_from(src, 8192).unwrap();
            let soft = SoftFence::new().unwrap();
            buf.import_sync_file(SyncAccess::Write, &soft.sync_file().unwrap())
                .unwrap();
            let a = buf.export_sync_file(SyncAccess::Read).unwrap();
            let b = buf.export_sync_file(SyncAccess::Write).unwrap();
            let m = SyncFile::merge(&a, &b, "m").unwrap();
            let _ = m.info().unwrap();
            let _map = buf.mmap().unwrap();
            let _ = buf.poll_ready(SyncAccess::Read, NOW).unwrap();
            let _ = buf.export_sync_file_raw(0).unwrap_err();
            drop(soft);
            assert!(m.wait(SOON).unwrap());
        }
        let bo = vgem().create_bo(4096).unwrap();
        let _f = bo.fence_attach(true).unwrap();
        let _ = bo.export().unwrap();
    }
    assert_eq!(fd_count(), before);
}

/// Timeline syncobjs: the guest's vgem has none, so the probe must answer
/// Unsupported; when a node does offer them (e.g. virtio_gpu on a newer
/// kernel), exercise them.
#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn syncobj_probe_and_use() {
    let nodes = list_drm_nodes();
    let dev = match SyncobjDevice::open() {
        Err(e) => {
            eprintln!("no syncobj device among {nodes:?}: {e}");
            assert!(e.is_unsupported());
            if std::env::var_os("SYNCBRIDGE_EXPECT_SYNCOBJ").is_some() {
                panic!("SYNCBRIDGE_EXPECT_SYNCOBJ set but no syncobj device");
            }
            return;
        }
        Ok(d) => d,
    };
    eprintln!(
        "syncobj device: {} ({})",
        dev.path().display(),
        dev.driver()
    );
    let obj = dev.create(false).unwrap();
    assert_eq!(obj.query().unwrap(), 0);
    assert!(!obj
        .wait(1, Duration::from_millis(50), false)
        .unwrap_or(false));
    obj.signal(1).unwrap();
    assert_eq!(obj.query().unwrap(), 1);
    assert!(obj.wait(1, SOON, false).unwrap());
    // Sync_file into point 2, then export it back.
    let soft = SoftFence::new().unwrap();
    obj.import_sync_file(2, &soft.sync_file().unwrap()).unwrap();
    let out = obj.export_sync_file(2).unwrap();
    assert!(!signaled(&out));
    assert!(!obj.wait(2, Duration::from_millis(50), false).unwrap());
    match obj.eventfd(2, false) {
        Ok(efd) => {
            eprintln!("DRM_IOCTL_SYNCOBJ_EVENTFD: supported");
            soft.signal().unwrap();
            let e = SyncFile::from_fd(efd);
            assert!(e.wait(SOON).unwrap());
        }
        Err(e) => {
            eprintln!("DRM_IOCTL_SYNCOBJ_EVENTFD: {e}");
            assert!(e.is_unsupported());
            soft.signal().unwrap();
        }
    }
    assert!(out.wait(SOON).unwrap());
    assert!(obj.wait(2, SOON, false).unwrap());
    assert_eq!(obj.query().unwrap(), 2);
    // Export / import of the syncobj itself.
    let fd = obj.export_fd().unwrap();
    let again = dev.import(std::os::fd::AsFd::as_fd(&fd)).unwrap();
    assert_eq!(again.query().unwrap(), 2);
    let other = dev.create(false).unwrap();
    other.transfer_from(5, &obj, 2, false).unwrap();
    assert!(other.wait(5, SOON, false).unwrap());
}

/// The explicit-sync timelines of a swapchain (`sync::explicit`) on the
/// node the layer would pick, seen from both sides: the compositor's side
/// imports the fds the layer sends with `import_timeline`, waits for the
/// acquire point and signals the release point.
#[test]
#[ignore = "needs the test guest (tests/guest/run.sh)"]
fn explicit_sync_timelines_from_both_sides() {
    use std::os::fd::AsFd;
    use VkLayer_syncbridge::sync::explicit::{AcquirePoint, ExplicitSync};
    let dev = match SyncobjDevice::preferred(None) {
        Ok(d) => d,
        Err(e) => {
            assert!(e.is_unsupported(), "{e}");
            assert!(
                std::env::var_os("SYNCBRIDGE_EXPECT_SYNCOBJ").is_none(),
                "SYNCBRIDGE_EXPECT_SYNCOBJ set but no syncobj device: {e}"
            );
            return;
        }
    };
    // The compositor's main device names its card node; the layer takes
    // the render node of the same device.
    let card = list_drm_nodes()
        .into_iter()
        .find(|n| n.driver == dev.driver() && n.path.to_string_lossy().contains("card"))
        .expect("the syncobj device's card node");
    let rdev = rustix::fs::stat(&card.path).unwrap().st_rdev;
    let main = SyncobjDevice::preferred(Some(rdev)).unwrap();
    assert!(
        main.path().to_string_lossy().contains("renderD"),
        "{:?} for {:?}",
        main.path(),
        card.path
    );
    assert_eq!(main.driver(), dev.driver());
    // A dev_t that is no DRM device here: any node with timelines.
    assert!(SyncobjDevice::preferred(Some(u64::MAX)).is_ok());

    let before = fd_count();
    for round in 0..20 {
        let ex = ExplicitSync::new(main.clone(), 3, AcquirePoint::SyncFile, true).unwrap();
        let (acq_fd, rel_fd) = ex.timeline_fds().unwrap().swap_remove(1);
        let compositor_acq = main.import(acq_fd.as_fd()).unwrap();
        let compositor_rel = main.import(rel_fd.as_fd()).unwrap();
        drop((acq_fd, rel_fd));
        // Frame 1 of image 1: the render fence (a soft fence standing in
        // for the driver's sync_file) into acquire point 1.
        let a = ex.next_acquire(1);
        assert_eq!((a, ex.acquire_point(1), ex.acquire_point(0)), (1, 1, 0));
        let soft = SoftFence::new().unwrap();
        ex.import_acquire(1, a, &soft.sync_file().unwrap()).unwrap();
        assert!(!compositor_acq.wait(a, NOW, true).unwrap());
        soft.signal().unwrap();
        assert!(compositor_acq.wait(a, SOON, true).unwrap());
        // The worker's way: the next point signalled from the CPU.
        let a2 = ex.next_acquire(1);
        assert!(!compositor_acq.wait(a2, NOW, true).unwrap());
        ex.signal_acquire(1, a2).unwrap();
        assert!(compositor_acq.wait(a2, SOON, true).unwrap());
        // The commit's release point: nothing yet, then a pending fence
        // (the compositor's GPU still reads), then signalled.
        assert!(ex.released(1), "no commit yet");
        let r = ex.next_release(1);
        assert_eq!(r, 1);
        assert!(!ex.released(1));
        assert!(!ex.release_ready(1, r, true).unwrap());
        // Not submitted yet: not released, and not an error (the look
        // passes WAIT_FOR_SUBMIT; without it the kernel says EINVAL).
        assert!(!ex.release_ready(1, r, false).unwrap());
        assert!(!ex.wait_released(1, NOW).unwrap());
        // A release the layer gave up on (the release timeout) has no
        // fence yet: its sync_file is the signalled form.
        assert!(signaled(&ex.export_release(1).unwrap()));
        let efd = ex.release_eventfd(1, r, true);
        let reading = SoftFence::new().unwrap();
        compositor_rel
            .import_sync_file(r, &reading.sync_file().unwrap())
            .unwrap();
        assert!(ex.release_ready(1, r, true).unwrap(), "available");
        assert!(!ex.release_ready(1, r, false).unwrap(), "not signalled");
        assert!(!ex.released(1));
        if let Ok(efd) = efd {
            let e = SyncFile::from_fd(efd);
            assert!(e.wait(SOON).unwrap(), "the eventfd woke for the fence");
        }
        let released = ex.export_release(1).unwrap();
        assert!(!signaled(&released));
        reading.signal().unwrap();
        assert!(released.wait(SOON).unwrap());
        assert!(ex.released(1));
        assert!(ex.release_ready(1, r, false).unwrap());
        if round == 0 {
            eprintln!(
                "explicit timelines on {}: both sides agree",
                ex.node().display()
            );
        }
    }
    assert_eq!(fd_count(), before, "fds left by 20 swapchains' timelines");
}
