//! The error type of the kernel layer.

use std::fmt;

use rustix::io::Errno;

/// Why a kernel operation failed.
///
/// `Unsupported` is the one callers are expected to branch on: it means the
/// running kernel (or the machine) lacks the feature, which is a supported
/// configuration with a fallback, never a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelError {
    /// The kernel or the machine does not offer this feature (for example
    /// `ENOTTY` from the dma-buf sync_file ioctls on kernels before 6.0, or
    /// no vgem / DRM syncobj device).
    Unsupported(&'static str),
    /// The kernel rejected the arguments (`EINVAL`), e.g. sync flags of 0.
    InvalidArgument(&'static str),
    /// A file descriptor was invalid (negative other than -1, or `EBADF`).
    InvalidFd,
    /// A bounded wait ran out of time.
    Timeout,
    /// Any other error from the kernel.
    Io(Errno),
}

impl KernelError {
    /// True for [`KernelError::Unsupported`].
    pub fn is_unsupported(&self) -> bool {
        matches!(self, KernelError::Unsupported(_))
    }

    /// Map an errno from an ioctl: `ENOTTY` means the ioctl does not exist
    /// for this file (or this kernel), `EINVAL` that its arguments were
    /// rejected, `EBADF` an invalid fd.
    pub(crate) fn from_ioctl(errno: Errno, what: &'static str) -> Self {
        match errno {
            Errno::NOTTY | Errno::NOSYS | Errno::OPNOTSUPP => KernelError::Unsupported(what),
            Errno::INVAL => KernelError::InvalidArgument(what),
            Errno::BADF => KernelError::InvalidFd,
            Errno::TIME | Errno::TIMEDOUT => KernelError::Timeout,
            e => KernelError::Io(e),
        }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::Unsupported(what) => {
                write!(f, "not supported by this kernel or machine: {what}")
            }
            KernelError::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            KernelError::InvalidFd => f.write_str("invalid file descriptor"),
            KernelError::Timeout => f.write_str("timed out"),
            KernelError::Io(e) => write!(f, "kernel error: {e}"),
        }
    }
}

impl std::error::Error for KernelError {}

impl From<Errno> for KernelError {
    fn from(e: Errno) -> Self {
        match e {
            Errno::BADF => KernelError::InvalidFd,
            e => KernelError::Io(e),
        }
    }
}

impl From<KernelError> for std::io::Error {
    fn from(e: KernelError) -> Self {
        match e {
            KernelError::Io(errno) => errno.into(),
            KernelError::Unsupported(_) => std::io::Error::new(std::io::ErrorKind::Unsupported, e),
            KernelError::InvalidArgument(_) | KernelError::InvalidFd => {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
            }
            KernelError::Timeout => std::io::Error::new(std::io::ErrorKind::TimedOut, e),
        }
    }
}

/// Result of a kernel operation.
pub type Result<T> = std::result::Result<T, KernelError>;
