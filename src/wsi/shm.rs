//! Shared memory for swapchain images: a sealed-size memfd mapped into the
//! layer, shared with the window system by fd.

pub use crate::kernel::Mapping;
use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

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
        assert_eq!(f.mapping().as_slice()[0], 7);
        let st = rustix::fs::fstat(f.fd()).unwrap();
        assert_eq!(st.st_size, 8192);
        // Sealed against shrinking.
        assert!(ftruncate(f.fd(), 10).is_err());
    }
}
