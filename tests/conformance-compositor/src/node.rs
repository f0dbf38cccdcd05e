//! The DRM node the fixture imports timelines on and names as the
//! dma-buf main device.
//!
//! `wp_linux_drm_syncobj_v1` timelines are DRM syncobjs: the compositor
//! imports each client's timeline fd on a DRM node of its own and waits on
//! points with `DRM_IOCTL_SYNCOBJ_EVENTFD` (what smithay's blocker uses), so
//! the node must have `DRM_CAP_SYNCOBJ_TIMELINE` and the eventfd ioctl
//! (kernel 6.6+). In the test guest virtio-gpu's render node has both;
//! vgem's has no timelines. Syncobj fds are not tied to the node that made
//! them, so a client may create its timeline on any node.

use smithay::backend::drm::DrmDeviceFd;
use smithay::reexports::drm::{Device, DriverCapability};
use smithay::reexports::rustix::fs::{self, Mode, OFlags};
use smithay::utils::DeviceFd;
use std::path::{Path, PathBuf};

/// An opened DRM node and what it can do.
pub struct Node {
    pub path: PathBuf,
    pub fd: DrmDeviceFd,
    pub dev: libc::dev_t,
    pub driver: String,
    pub timelines: bool,
    pub eventfd: bool,
}

impl Node {
    pub fn open(path: &Path) -> Result<Node, String> {
        let owned = fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        let fd = DrmDeviceFd::new(DeviceFd::from(owned));
        let dev = fd
            .dev_id()
            .map_err(|e| format!("fstat {}: {e}", path.display()))?;
        let driver = fd
            .get_driver()
            .map(|d| d.name().to_string_lossy().into_owned())
            .unwrap_or_else(|_| "unknown".to_string());
        let timelines = matches!(
            fd.get_driver_capability(DriverCapability::TimelineSyncObj),
            Ok(v) if v != 0
        );
        let eventfd = timelines && smithay::wayland::drm_syncobj::supports_syncobj_eventfd(&fd);
        Ok(Node {
            path: path.to_path_buf(),
            fd,
            dev,
            driver,
            timelines,
            eventfd,
        })
    }

    /// Whether smithay's syncobj global can work on this node.
    pub fn syncobj_ready(&self) -> bool {
        self.timelines && self.eventfd
    }

    /// `major:minor` of the node.
    pub fn dev_name(&self) -> String {
        format!("{}:{}", libc::major(self.dev), libc::minor(self.dev))
    }

    /// The first `/dev/dri/renderD*` (in name order) that can import and
    /// wait on timelines; `Err` lists what each node lacked.
    pub fn find_timeline_node() -> Result<Node, String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
            .map_err(|e| format!("/dev/dri: {e}"))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("renderD"))
            })
            .collect();
        paths.sort();
        let mut why = Vec::new();
        for p in paths {
            match Node::open(&p) {
                Ok(n) if n.syncobj_ready() => return Ok(n),
                Ok(n) => why.push(format!(
                    "{} ({}): timelines={} eventfd={}",
                    p.display(),
                    n.driver,
                    n.timelines as u8,
                    n.eventfd as u8
                )),
                Err(e) => why.push(e),
            }
        }
        if why.is_empty() {
            why.push("no /dev/dri/renderD* node".to_string());
        }
        Err(why.join("; "))
    }
}
