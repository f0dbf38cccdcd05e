//! Minimal DRM device access: node discovery by driver name, caps, dumb
//! buffers, GEM close and PRIME export.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use super::error::{KernelError, Result};
use super::sys;

/// A DRM node and the name of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrmNodeInfo {
    pub path: PathBuf,
    pub driver: String,
}

/// All DRM nodes in `/dev/dri` (`card*` first, then `renderD*`) whose
/// driver could be asked its name. Empty when there is no DRM.
pub fn list_drm_nodes() -> Vec<DrmNodeInfo> {
    node_paths()
        .into_iter()
        .filter_map(|path| {
            DrmDevice::open(&path).ok().map(|d| DrmNodeInfo {
                path,
                driver: d.driver,
            })
        })
        .collect()
}

fn node_paths() -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir("/dev/dri") else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = dir
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("card") || n.starts_with("renderD")
        })
        .collect();
    // card* before renderD*, then by number.
    paths.sort_by_key(|p| {
        let n = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        let render = n.starts_with("renderD");
        let num: u32 = n
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap_or(0);
        (render, num)
    });
    paths
}

/// An open DRM node.
#[derive(Debug)]
pub(crate) struct DrmDevice {
    fd: OwnedFd,
    pub path: PathBuf,
    pub driver: String,
}

impl DrmDevice {
    pub fn open(path: &Path) -> Result<Self> {
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
        let driver = driver_name(fd.as_fd())?;
        Ok(DrmDevice {
            fd,
            path: path.to_owned(),
            driver,
        })
    }

    /// The first node whose driver is `driver`; render nodes first when
    /// `prefer_render`.
    pub fn open_driver(driver: &str, prefer_render: bool) -> Result<Self> {
        let mut paths = node_paths();
        if prefer_render {
            paths.sort_by_key(|p| !p.to_string_lossy().contains("renderD"));
        }
        paths
            .iter()
            .filter_map(|p| DrmDevice::open(p).ok())
            .find(|d| d.driver == driver)
            .ok_or(KernelError::Unsupported(
                "no DRM node with the wanted driver",
            ))
    }

    /// The device (in sysfs) this node belongs to: a card node and its
    /// render node name the same one.
    pub fn sysfs_device(&self) -> Option<PathBuf> {
        let name = self.path.file_name()?.to_str()?;
        std::fs::canonicalize(Path::new("/sys/class/drm").join(name).join("device")).ok()
    }

    /// Every node that opens, in discovery order.
    pub fn open_all() -> Vec<DrmDevice> {
        node_paths()
            .iter()
            .filter_map(|p| DrmDevice::open(p).ok())
            .collect()
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn get_cap(&self, capability: u64) -> Result<u64> {
        let mut arg = sys::DrmGetCap {
            capability,
            value: 0,
        };
        // SAFETY: DRM_IOCTL_GET_CAP takes a `struct drm_get_cap`.
        unsafe { sys::ioctl::<{ sys::DRM_IOCTL_GET_CAP }, _>(self.fd(), &mut arg) }
            .map_err(|e| KernelError::from_ioctl(e, "DRM_IOCTL_GET_CAP"))?;
        Ok(arg.value)
    }

    /// A dumb buffer; returns (GEM handle, size in bytes).
    pub fn create_dumb(&self, width: u32, height: u32, bpp: u32) -> Result<(u32, u64)> {
        let mut arg = sys::DrmModeCreateDumb {
            width,
            height,
            bpp,
            ..Default::default()
        };
        // SAFETY: DRM_IOCTL_MODE_CREATE_DUMB takes a `struct drm_mode_create_dumb`.
        unsafe { sys::ioctl::<{ sys::DRM_IOCTL_MODE_CREATE_DUMB }, _>(self.fd(), &mut arg) }
            .map_err(|e| KernelError::from_ioctl(e, "DRM_IOCTL_MODE_CREATE_DUMB"))?;
        Ok((arg.handle, arg.size))
    }

    pub fn gem_close(&self, handle: u32) {
        let mut arg = sys::DrmGemClose { handle, pad: 0 };
        // SAFETY: DRM_IOCTL_GEM_CLOSE takes a `struct drm_gem_close`.
        if let Err(e) =
            unsafe { sys::ioctl::<{ sys::DRM_IOCTL_GEM_CLOSE }, _>(self.fd(), &mut arg) }
        {
            log::warn!("DRM_IOCTL_GEM_CLOSE({handle}) failed: {e}");
        }
    }

    /// PRIME export of a GEM handle as a dma-buf fd (read-write).
    pub fn prime_export(&self, handle: u32) -> Result<OwnedFd> {
        let mut arg = sys::DrmPrimeHandle {
            handle,
            flags: sys::DRM_CLOEXEC | sys::DRM_RDWR,
            fd: -1,
        };
        // SAFETY: DRM_IOCTL_PRIME_HANDLE_TO_FD takes a `struct drm_prime_handle`.
        unsafe { sys::ioctl::<{ sys::DRM_IOCTL_PRIME_HANDLE_TO_FD }, _>(self.fd(), &mut arg) }
            .map_err(|e| KernelError::from_ioctl(e, "DRM_IOCTL_PRIME_HANDLE_TO_FD"))?;
        // SAFETY: on success the kernel installed a new fd that we now own.
        Ok(unsafe { OwnedFd::from_raw_fd(arg.fd) })
    }
}

/// The device (in sysfs) of a DRM node given as a `dev_t` (as
/// linux-dmabuf feedback names the compositor's main device).
pub(crate) fn sysfs_device_of(dev: u64) -> Option<PathBuf> {
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    std::fs::canonicalize(format!("/sys/dev/char/{major}:{minor}/device")).ok()
}

fn driver_name(fd: BorrowedFd<'_>) -> Result<String> {
    let mut name = [0u8; 64];
    let mut arg = sys::DrmVersion {
        version_major: 0,
        version_minor: 0,
        version_patchlevel: 0,
        name_len: name.len(),
        name: name.as_mut_ptr(),
        date_len: 0,
        date: std::ptr::null_mut(),
        desc_len: 0,
        desc: std::ptr::null_mut(),
    };
    // SAFETY: DRM_IOCTL_VERSION takes a `struct drm_version`; `name` points
    // at `name_len` writable bytes that outlive the call, and the zero-length
    // date/desc buffers are not written.
    unsafe { sys::ioctl::<{ sys::DRM_IOCTL_VERSION }, _>(fd, &mut arg) }
        .map_err(|e| KernelError::from_ioctl(e, "DRM_IOCTL_VERSION"))?;
    let n = arg.name_len.min(name.len());
    Ok(sys::c_str(&name[..n]))
}
