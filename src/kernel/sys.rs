//! Kernel UAPI structures and ioctl numbers (from `linux/sync_file.h`,
//! `linux/dma-buf.h`, `linux/dma-heap.h`, `linux/udmabuf.h`, `drm/drm.h`,
//! `drm/vgem_drm.h`). Sizes are checked at compile time.
#![allow(dead_code)]

use std::os::fd::BorrowedFd;

use rustix::io::Errno;
use rustix::ioctl::{opcode, Opcode, Updater};

// ---- sync_file.h ----
#[repr(C)]
#[derive(Default)]
pub struct SyncMergeData {
    pub name: [u8; 32],
    pub fd2: i32,
    pub fence: i32,
    pub flags: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct SyncFenceInfo {
    pub obj_name: [u8; 32],
    pub driver_name: [u8; 32],
    pub status: i32,
    pub flags: u32,
    pub timestamp_ns: u64,
}

#[repr(C)]
#[derive(Default)]
pub struct SyncFileInfo {
    pub name: [u8; 32],
    pub status: i32,
    pub flags: u32,
    pub num_fences: u32,
    pub pad: u32,
    pub sync_fence_info: u64,
}

pub const SYNC_IOC_MERGE: Opcode = opcode::read_write::<SyncMergeData>(b'>', 3);
pub const SYNC_IOC_FILE_INFO: Opcode = opcode::read_write::<SyncFileInfo>(b'>', 4);

// ---- dma-buf.h ----
#[repr(C)]
#[derive(Default)]
pub struct DmaBufSync {
    pub flags: u64,
}
pub const DMA_BUF_SYNC_READ: u64 = 1;
pub const DMA_BUF_SYNC_WRITE: u64 = 2;
pub const DMA_BUF_SYNC_START: u64 = 0;
pub const DMA_BUF_SYNC_END: u64 = 1 << 2;

#[repr(C)]
#[derive(Default)]
pub struct DmaBufSyncFile {
    pub flags: u32,
    pub fd: i32,
}

pub const DMA_BUF_IOCTL_SYNC: Opcode = opcode::write::<DmaBufSync>(b'b', 0);
pub const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: Opcode = opcode::read_write::<DmaBufSyncFile>(b'b', 2);
pub const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: Opcode = opcode::write::<DmaBufSyncFile>(b'b', 3);

// ---- dma-heap.h ----
#[repr(C)]
#[derive(Default)]
pub struct DmaHeapAllocationData {
    pub len: u64,
    pub fd: u32,
    pub fd_flags: u32,
    pub heap_flags: u64,
}
pub const DMA_HEAP_IOCTL_ALLOC: Opcode = opcode::read_write::<DmaHeapAllocationData>(b'H', 0);

// ---- udmabuf.h ----
#[repr(C)]
#[derive(Default)]
pub struct UdmabufCreate {
    pub memfd: u32,
    pub flags: u32,
    pub offset: u64,
    pub size: u64,
}
pub const UDMABUF_FLAGS_CLOEXEC: u32 = 1;
pub const UDMABUF_CREATE: Opcode = opcode::write::<UdmabufCreate>(b'u', 0x42);

// ---- drm.h ----
#[repr(C)]
pub struct DrmVersion {
    pub version_major: i32,
    pub version_minor: i32,
    pub version_patchlevel: i32,
    pub name_len: usize,
    pub name: *mut u8,
    pub date_len: usize,
    pub date: *mut u8,
    pub desc_len: usize,
    pub desc: *mut u8,
}

#[repr(C)]
#[derive(Default)]
pub struct DrmGetCap {
    pub capability: u64,
    pub value: u64,
}
pub const DRM_CAP_DUMB_BUFFER: u64 = 0x1;
pub const DRM_CAP_PRIME: u64 = 0x5;
pub const DRM_CAP_SYNCOBJ: u64 = 0x13;
pub const DRM_CAP_SYNCOBJ_TIMELINE: u64 = 0x14;

#[repr(C)]
#[derive(Default)]
pub struct DrmGemClose {
    pub handle: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Default)]
pub struct DrmPrimeHandle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
}
pub const DRM_CLOEXEC: u32 = 0o2000000;
pub const DRM_RDWR: u32 = 0o2;

#[repr(C)]
#[derive(Default)]
pub struct DrmModeCreateDumb {
    pub height: u32,
    pub width: u32,
    pub bpp: u32,
    pub flags: u32,
    pub handle: u32,
    pub pitch: u32,
    pub size: u64,
}

#[repr(C)]
#[derive(Default)]
pub struct DrmSyncobjCreate {
    pub handle: u32,
    pub flags: u32,
}
pub const DRM_SYNCOBJ_CREATE_SIGNALED: u32 = 1;

#[repr(C)]
#[derive(Default)]
pub struct DrmSyncobjDestroy {
    pub handle: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Default)]
pub struct DrmSyncobjHandle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
    pub pad: u32,
}
pub const DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE: u32 = 1;
pub const DRM_SYNCOBJ_HANDLE_TO_FD_FLAGS_EXPORT_SYNC_FILE: u32 = 1;

#[repr(C)]
#[derive(Default)]
pub struct DrmSyncobjTransfer {
    pub src_handle: u32,
    pub dst_handle: u32,
    pub src_point: u64,
    pub dst_point: u64,
    pub flags: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Default)]
pub struct DrmSyncobjTimelineWait {
    pub handles: u64,
    pub points: u64,
    pub timeout_nsec: i64,
    pub count_handles: u32,
    pub flags: u32,
    pub first_signaled: u32,
    pub pad: u32,
}
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL: u32 = 1;
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT: u32 = 2;
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE: u32 = 4;

#[repr(C)]
#[derive(Default)]
pub struct DrmSyncobjArray {
    pub handles: u64,
    pub count_handles: u32,
    pub pad: u32,
}

#[repr(C)]
#[derive(Default)]
pub struct DrmSyncobjTimelineArray {
    pub handles: u64,
    pub points: u64,
    pub count_handles: u32,
    pub flags: u32,
}

#[repr(C)]
#[derive(Default)]
pub struct DrmSyncobjEventfd {
    pub handle: u32,
    pub flags: u32,
    pub point: u64,
    pub fd: i32,
    pub pad: u32,
}

const fn drm_iowr<T>(nr: u8) -> Opcode {
    opcode::read_write::<T>(b'd', nr)
}
const fn drm_iow<T>(nr: u8) -> Opcode {
    opcode::write::<T>(b'd', nr)
}

pub const DRM_IOCTL_VERSION: Opcode = drm_iowr::<DrmVersion>(0x00);
pub const DRM_IOCTL_GEM_CLOSE: Opcode = drm_iow::<DrmGemClose>(0x09);
pub const DRM_IOCTL_GET_CAP: Opcode = drm_iowr::<DrmGetCap>(0x0c);
pub const DRM_IOCTL_PRIME_HANDLE_TO_FD: Opcode = drm_iowr::<DrmPrimeHandle>(0x2d);
pub const DRM_IOCTL_MODE_CREATE_DUMB: Opcode = drm_iowr::<DrmModeCreateDumb>(0xb2);
pub const DRM_IOCTL_SYNCOBJ_CREATE: Opcode = drm_iowr::<DrmSyncobjCreate>(0xbf);
pub const DRM_IOCTL_SYNCOBJ_DESTROY: Opcode = drm_iowr::<DrmSyncobjDestroy>(0xc0);
pub const DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD: Opcode = drm_iowr::<DrmSyncobjHandle>(0xc1);
pub const DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE: Opcode = drm_iowr::<DrmSyncobjHandle>(0xc2);
pub const DRM_IOCTL_SYNCOBJ_RESET: Opcode = drm_iowr::<DrmSyncobjArray>(0xc4);
pub const DRM_IOCTL_SYNCOBJ_SIGNAL: Opcode = drm_iowr::<DrmSyncobjArray>(0xc5);
pub const DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT: Opcode = drm_iowr::<DrmSyncobjTimelineWait>(0xca);
pub const DRM_IOCTL_SYNCOBJ_QUERY: Opcode = drm_iowr::<DrmSyncobjTimelineArray>(0xcb);
pub const DRM_IOCTL_SYNCOBJ_TRANSFER: Opcode = drm_iowr::<DrmSyncobjTransfer>(0xcc);
pub const DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL: Opcode = drm_iowr::<DrmSyncobjTimelineArray>(0xcd);
pub const DRM_IOCTL_SYNCOBJ_EVENTFD: Opcode = drm_iowr::<DrmSyncobjEventfd>(0xcf);

// ---- vgem_drm.h ----
#[repr(C)]
#[derive(Default)]
pub struct DrmVgemFenceAttach {
    pub handle: u32,
    pub flags: u32,
    pub out_fence: u32,
    pub pad: u32,
}
pub const VGEM_FENCE_WRITE: u32 = 1;

#[repr(C)]
#[derive(Default)]
pub struct DrmVgemFenceSignal {
    pub fence: u32,
    pub flags: u32,
}
const DRM_COMMAND_BASE: u8 = 0x40;
pub const DRM_IOCTL_VGEM_FENCE_ATTACH: Opcode =
    drm_iowr::<DrmVgemFenceAttach>(DRM_COMMAND_BASE + 1);
pub const DRM_IOCTL_VGEM_FENCE_SIGNAL: Opcode = drm_iow::<DrmVgemFenceSignal>(DRM_COMMAND_BASE + 2);

// The UAPI sizes, as the kernel headers define them.
const _: () = {
    assert!(size_of::<SyncMergeData>() == 48);
    assert!(size_of::<SyncFenceInfo>() == 80);
    assert!(size_of::<SyncFileInfo>() == 56);
    assert!(size_of::<DmaBufSyncFile>() == 8);
    assert!(size_of::<DmaHeapAllocationData>() == 24);
    assert!(size_of::<UdmabufCreate>() == 24);
    assert!(size_of::<DrmVersion>() == 64);
    assert!(size_of::<DrmPrimeHandle>() == 12);
    assert!(size_of::<DrmModeCreateDumb>() == 32);
    assert!(size_of::<DrmSyncobjHandle>() == 16);
    assert!(size_of::<DrmSyncobjTransfer>() == 32);
    assert!(size_of::<DrmSyncobjTimelineWait>() == 40);
    assert!(size_of::<DrmSyncobjEventfd>() == 24);
    assert!(size_of::<DrmVgemFenceAttach>() == 16);
};

/// Issue an ioctl whose argument is read and/or written by the kernel,
/// retrying on `EINTR`/`EAGAIN` like libdrm's `drmIoctl`.
///
/// # Safety
/// `OP` must be an ioctl that takes a pointer to a `T` (with the kernel's
/// layout for that ioctl), and every pointer stored inside `arg` must be
/// valid for what the kernel does with it.
pub unsafe fn ioctl<const OP: Opcode, T>(fd: BorrowedFd<'_>, arg: &mut T) -> Result<(), Errno> {
    loop {
        // SAFETY: forwarded from the caller: `OP` takes a `*mut T`.
        let r = unsafe { rustix::ioctl::ioctl(fd, Updater::<OP, T>::new(arg)) };
        match r {
            Err(Errno::INTR) | Err(Errno::AGAIN) => continue,
            r => return r,
        }
    }
}

/// A NUL-terminated C string in a fixed array, as text.
pub fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// A name into a fixed, NUL-terminated C array (truncated).
pub fn c_name<const N: usize>(name: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let n = name.len().min(N - 1);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}
