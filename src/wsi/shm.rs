//! Shared memory for swapchain images: a sealed-size memfd mapped into the
//! layer, shared with the window system by fd.

use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

/// A shared, writable mapping that is unmapped when dropped.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; the layer hands out raw
// pointers only to Vulkan, which has its own synchronization rules.
unsafe impl Send for Mapping {}
// SAFETY: as above; the type offers no interior mutation itself.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` shared and read-write.
    pub fn new(fd: BorrowedFd<'_>, len: usize) -> rustix::io::Result<Self> {
        // SAFETY: a fresh mapping at an address the kernel picks; nothing
        // else refers to it until we hand out the pointer.
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let ptr = NonNull::new(ptr.cast()).ok_or(rustix::io::Errno::NOMEM)?;
        Ok(Self { ptr, len })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapped bytes, for reading back a frame (tests, screenshots).
    ///
    /// # Safety
    /// Nothing may write the memory while the slice lives.
    pub unsafe fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is valid for `len` bytes; the caller rules
        // out concurrent writers.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the range this object mapped; no
        // reference to it outlives the object.
        let _ = unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A memfd of a fixed size, mapped.
pub struct ShmFile {
    fd: OwnedFd,
    map: Mapping,
}

impl ShmFile {
    pub fn new(name: &str, size: usize) -> rustix::io::Result<Self> {
        let fd = memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        ftruncate(&fd, size as u64)?;
        // The window system maps this too: forbid shrinking it under them.
        let _ = rustix::fs::fcntl_add_seals(
            &fd,
            rustix::fs::SealFlags::SHRINK | rustix::fs::SealFlags::SEAL,
        );
        let map = Mapping::new(fd.as_fd(), size)?;
        Ok(Self { fd, map })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn mapping(&self) -> &Mapping {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_file_is_mapped_and_sized() {
        let f = ShmFile::new("test", 8192).unwrap();
        assert_eq!(f.mapping().len(), 8192);
        // SAFETY: the mapping is private to this test.
        unsafe { f.mapping().as_ptr().write(7) };
        assert_eq!(unsafe { f.mapping().bytes() }[0], 7);
        let st = rustix::fs::fstat(f.fd()).unwrap();
        assert_eq!(st.st_size, 8192);
        // Sealed against shrinking.
        assert!(ftruncate(f.fd(), 10).is_err());
    }
}
