//! `DmaBuf`: an owned dma-buf fd, its implicit fences as sync_files
//! (`DMA_BUF_IOCTL_EXPORT_SYNC_FILE` / `IMPORT_SYNC_FILE`), poll, mmap and
//! CPU-access brackets.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::fs::SeekFrom;
use rustix::mm::{MapFlags, ProtFlags};

use super::error::{KernelError, Result};
use super::sync_file::{poll_fd, SyncFile};
use super::sys;

/// Where a [`DmaBuf`] came from (the allocators are in `alloc.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DmaBufSource {
    /// `/dev/dma_heap/system` (`DMA_HEAP_IOCTL_ALLOC`).
    SystemHeap,
    /// `/dev/udmabuf` over a sealed memfd (`UDMABUF_CREATE`).
    Udmabuf,
    /// A vgem dumb buffer exported with PRIME.
    Vgem,
    /// Received from elsewhere ([`DmaBuf::from_fd`]).
    Imported,
}

/// Which implicit fences an operation is about.
///
/// For export: `Read` gives the fences a reader must wait for (the
/// writers), `Write` and `ReadWrite` the fences a writer must wait for (all
/// of them). For import: `Read` adds a reader fence, `Write`/`ReadWrite` a
/// writer fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncAccess {
    Read,
    Write,
    ReadWrite,
}

impl SyncAccess {
    fn flags(self) -> u64 {
        match self {
            SyncAccess::Read => sys::DMA_BUF_SYNC_READ,
            SyncAccess::Write => sys::DMA_BUF_SYNC_WRITE,
            SyncAccess::ReadWrite => sys::DMA_BUF_SYNC_READ | sys::DMA_BUF_SYNC_WRITE,
        }
    }

    fn poll_flags(self) -> PollFlags {
        match self {
            SyncAccess::Read => PollFlags::IN,
            SyncAccess::Write | SyncAccess::ReadWrite => PollFlags::OUT,
        }
    }
}

/// An owned dma-buf fd.
#[derive(Debug)]
pub struct DmaBuf {
    fd: OwnedFd,
    source: DmaBufSource,
}

impl DmaBuf {
    /// Wrap a dma-buf fd received from elsewhere (a Vulkan driver, a
    /// compositor). It is not checked: on another kind of fd the dma-buf
    /// ioctls fail with `KernelError::Unsupported` (`ENOTTY`).
    pub fn from_fd(fd: OwnedFd) -> Self {
        DmaBuf {
            fd,
            source: DmaBufSource::Imported,
        }
    }

    pub(crate) fn from_fd_with_source(fd: OwnedFd, source: DmaBufSource) -> Self {
        DmaBuf { fd, source }
    }

    /// Where this buffer came from.
    pub fn source(&self) -> DmaBufSource {
        self.source
    }

    /// Give the fd away.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Duplicate the fd (same buffer).
    pub fn try_clone(&self) -> Result<Self> {
        Ok(DmaBuf {
            fd: self
                .fd
                .try_clone()
                .map_err(super::sync_file::io_to_kernel)?,
            source: self.source,
        })
    }

    /// Size in bytes (`lseek(SEEK_END)`, which dma-bufs support).
    pub fn size(&self) -> Result<u64> {
        Ok(rustix::fs::seek(&self.fd, SeekFrom::End(0))?)
    }

    /// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`: a sync_file holding the buffer's
    /// current implicit fences for `access` (see [`SyncAccess`]). A buffer
    /// without such fences gives a signaled sync_file (a real fd).
    ///
    /// `ENOTTY` (kernel before 6.0, or not a dma-buf) is
    /// `KernelError::Unsupported`, `EINVAL` `KernelError::InvalidArgument`.
    pub fn export_sync_file(&self, access: SyncAccess) -> Result<SyncFile> {
        self.export_sync_file_raw(access.flags() as u32)
    }

    /// Export with raw flags (for tests of the kernel's argument checks).
    #[doc(hidden)]
    pub fn export_sync_file_raw(&self, flags: u32) -> Result<SyncFile> {
        let mut arg = sys::DmaBufSyncFile { flags, fd: -1 };
        // SAFETY: DMA_BUF_IOCTL_EXPORT_SYNC_FILE takes a
        // `struct dma_buf_export_sync_file`.
        unsafe {
            sys::ioctl::<{ sys::DMA_BUF_IOCTL_EXPORT_SYNC_FILE }, _>(self.fd.as_fd(), &mut arg)
        }
        .map_err(|e| KernelError::from_ioctl(e, "DMA_BUF_IOCTL_EXPORT_SYNC_FILE"))?;
        // SAFETY: on success the kernel installed a new fd that we now own.
        Ok(SyncFile::Fd(unsafe { OwnedFd::from_raw_fd(arg.fd) }))
    }

    /// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`: add the fences of `sync_file` to the
    /// buffer's implicit fences, as a reader (`Read`) or writer fence. The
    /// signaled form is a no-op.
    pub fn import_sync_file(&self, access: SyncAccess, sync_file: &SyncFile) -> Result<()> {
        match sync_file.as_fd() {
            None => Ok(()),
            Some(fd) => self.import_sync_file_raw(access.flags() as u32, fd),
        }
    }

    /// Import with raw flags and fd (for tests of the kernel's checks).
    #[doc(hidden)]
    pub fn import_sync_file_raw(&self, flags: u32, sync_file: BorrowedFd<'_>) -> Result<()> {
        let mut arg = sys::DmaBufSyncFile {
            flags,
            fd: sync_file.as_raw_fd(),
        };
        // SAFETY: DMA_BUF_IOCTL_IMPORT_SYNC_FILE takes a
        // `struct dma_buf_import_sync_file`; the kernel only reads it.
        unsafe {
            sys::ioctl::<{ sys::DMA_BUF_IOCTL_IMPORT_SYNC_FILE }, _>(self.fd.as_fd(), &mut arg)
        }
        .map_err(|e| KernelError::from_ioctl(e, "DMA_BUF_IOCTL_IMPORT_SYNC_FILE"))
    }

    /// Poll the dma-buf fd itself: `Read` is ready when no writer is
    /// pending (POLLIN), `Write`/`ReadWrite` when no fence at all is pending
    /// (POLLOUT). `Ok(false)` when `timeout` ran out.
    pub fn poll_ready(&self, access: SyncAccess, timeout: Duration) -> Result<bool> {
        poll_fd(self.fd.as_fd(), access.poll_flags(), timeout)
    }

    /// Map the whole buffer shared, for reading and writing.
    pub fn mmap(&self) -> Result<Mapping> {
        let len = self.size()? as usize;
        if len == 0 {
            return Err(KernelError::InvalidArgument("mmap of an empty dma-buf"));
        }
        Mapping::new(self.fd.as_fd(), len)
            .map_err(|e| KernelError::from_ioctl(e, "mmap of the dma-buf"))
    }

    /// `DMA_BUF_IOCTL_SYNC` START: begin CPU access (cache coherency and
    /// waiting on the implicit fences). Prefer [`DmaBuf::cpu_access`].
    pub fn begin_cpu_access(&self, access: SyncAccess) -> Result<()> {
        self.sync_ioctl(access.flags() | sys::DMA_BUF_SYNC_START)
    }

    /// `DMA_BUF_IOCTL_SYNC` END: end CPU access.
    pub fn end_cpu_access(&self, access: SyncAccess) -> Result<()> {
        self.sync_ioctl(access.flags() | sys::DMA_BUF_SYNC_END)
    }

    /// Begin CPU access; it ends when the guard is dropped.
    pub fn cpu_access(&self, access: SyncAccess) -> Result<CpuAccess<'_>> {
        self.begin_cpu_access(access)?;
        Ok(CpuAccess { buf: self, access })
    }

    fn sync_ioctl(&self, flags: u64) -> Result<()> {
        let mut arg = sys::DmaBufSync { flags };
        // SAFETY: DMA_BUF_IOCTL_SYNC takes a `struct dma_buf_sync`.
        unsafe { sys::ioctl::<{ sys::DMA_BUF_IOCTL_SYNC }, _>(self.fd.as_fd(), &mut arg) }
            .map_err(|e| KernelError::from_ioctl(e, "DMA_BUF_IOCTL_SYNC"))
    }
}

impl AsFd for DmaBuf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<DmaBuf> for OwnedFd {
    fn from(b: DmaBuf) -> OwnedFd {
        b.fd
    }
}

/// A CPU access bracket; ends the access on drop.
#[derive(Debug)]
pub struct CpuAccess<'a> {
    buf: &'a DmaBuf,
    access: SyncAccess,
}

impl Drop for CpuAccess<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.buf.end_cpu_access(self.access) {
            log::warn!("DMA_BUF_IOCTL_SYNC end failed: {e}");
        }
    }
}

/// A shared mapping of a dma-buf; unmapped on drop. Its bytes may be
/// changed by devices or other processes at any time: bracket CPU access
/// with [`DmaBuf::cpu_access`].
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, not tied to a thread.
unsafe impl Send for Mapping {}
// SAFETY: `&Mapping` only gives out shared access to the bytes.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of `fd` (a dma-buf or a memfd) shared,
    /// for reading and writing.
    pub fn new(fd: BorrowedFd<'_>, len: usize) -> rustix::io::Result<Mapping> {
        // SAFETY: a fresh shared mapping at an address the kernel picks; no
        // existing memory is affected.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(rustix::io::Errno::FAULT)?;
        Ok(Mapping { ptr, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is a live mapping of `len` readable bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is a live mapping of `len` writable bytes until drop,
        // and `&mut self` makes this the only slice of it in this process.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `Mapping::new`,
        // and no slice of it outlives `self`.
        if let Err(e) = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) } {
            log::warn!("munmap of a dma-buf mapping failed: {e}");
        }
    }
}

/// Whether the running kernel has the dma-buf sync_file ioctls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncFileSupport {
    /// `EXPORT_SYNC_FILE` worked on a real dma-buf.
    Supported,
    /// A real dma-buf answered `ENOTTY` (kernel before 6.0).
    Unsupported,
    /// No dma-buf could be made to ask the kernel (no heap, udmabuf or
    /// vgem), and none was offered through [`probe_sync_file_support_with`].
    Unknown,
}

static ALLOC_PROBE: OnceLock<SyncFileSupport> = OnceLock::new();
static OBSERVED: OnceLock<SyncFileSupport> = OnceLock::new();
static PROBE_RUNS: AtomicUsize = AtomicUsize::new(0);

fn probe_buf(buf: &DmaBuf) -> SyncFileSupport {
    match buf.export_sync_file(SyncAccess::Read) {
        Ok(_) => SyncFileSupport::Supported,
        Err(KernelError::Unsupported(_)) => SyncFileSupport::Unsupported,
        Err(e) => {
            log::warn!("dma-buf sync_file probe: unexpected error {e}");
            SyncFileSupport::Unknown
        }
    }
}

/// Process-wide, cached: does the kernel have the dma-buf sync_file ioctls?
/// The first call allocates a one-page dma-buf (heap, udmabuf or vgem) to
/// ask; later calls return the cached answer. A result obtained with
/// [`probe_sync_file_support_with`] on a real dma-buf takes precedence.
pub fn sync_file_support() -> SyncFileSupport {
    if let Some(s) = OBSERVED.get() {
        return *s;
    }
    *ALLOC_PROBE.get_or_init(|| {
        PROBE_RUNS.fetch_add(1, Ordering::Relaxed);
        match DmaBuf::allocate(4096) {
            Ok(buf) => probe_buf(&buf),
            Err(_) => SyncFileSupport::Unknown,
        }
    })
}

/// Probe with a dma-buf the caller knows to be real (for example one a
/// Vulkan driver exported) and remember the answer process-wide if it is
/// conclusive and nothing was remembered yet. Returns the cached answer.
pub fn probe_sync_file_support_with(buf: &DmaBuf) -> SyncFileSupport {
    if let Some(s) = OBSERVED.get() {
        return *s;
    }
    let s = probe_buf(buf);
    if s != SyncFileSupport::Unknown {
        let _ = OBSERVED.set(s);
    }
    sync_file_support()
}

/// How many times the allocation probe has run (0 or 1).
#[doc(hidden)]
pub fn sync_file_probe_runs() -> usize {
    PROBE_RUNS.load(Ordering::Relaxed)
}
