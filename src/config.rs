//! Configuration from `SYNCBRIDGE_*` environment variables.
//!
//! Read once per process. An unknown variable or value is never fatal: it
//! gets one clear log line and the default is used.

use log::LevelFilter;
use std::path::PathBuf;
use std::sync::OnceLock;

/// `SYNCBRIDGE_SYNC`: which synchronization path swapchains may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// The best path the system supports (explicit → implicit → cpu).
    Auto,
    /// Explicit sync (DRM syncobj timelines) or fail over to the next path.
    Explicit,
    /// Implicit sync through the dma-buf sync_file ioctls.
    Implicit,
    /// A worker thread waits for the GPU before the buffer is handed over.
    Cpu,
}

/// `SYNCBRIDGE_BUFFERS`: where swapchain images live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferMode {
    /// dma-bufs where the system can make them, else shared memory.
    Auto,
    /// dma-bufs only (swapchain creation fails without them).
    DmaBuf,
    /// Shared memory (`wl_shm` / MIT-SHM) even where dma-bufs exist.
    Shm,
}

/// `SYNCBRIDGE_IMAGES`: what kind of image the application renders into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageMode {
    /// The first path the driver and the window system support, in the
    /// order below.
    Auto,
    /// Images the driver allocates with a DRM format modifier and exports
    /// as dma-bufs.
    Export,
    /// dma-bufs the layer allocates, imported with a linear modifier.
    Import,
    /// Linear images bound to the shared buffer's mapping (host memory).
    Host,
    /// Images in the driver's own layout, copied into the shared buffer at
    /// present.
    Copy,
}

/// A failure `SYNCBRIDGE_DEBUG_FAULTS` makes happen on the sync_file path
/// (or, `syncobj`, on explicit sync), so that the tests reach the fallbacks a broken kernel or driver would
/// take the layer to. Where the real kernel can be made to refuse, it is
/// (the layer hands it an fd of the wrong kind); a driver cannot be made
/// to fail on request, so its calls are answered with the error a failing
/// driver may return, without being made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `sync-file`: the render sync_file the layer puts into a dma-buf is
    /// an eventfd: `DMA_BUF_IOCTL_IMPORT_SYNC_FILE` refuses it.
    SyncFile,
    /// `dma-buf`: the dma-buf ioctls (the write fence's import at present,
    /// the release fences' export at acquire) go to an eventfd: the kernel
    /// refuses them.
    DmaBuf,
    /// `semaphore-export`: `vkGetSemaphoreFdKHR` answers
    /// `VK_ERROR_TOO_MANY_OBJECTS`.
    SemaphoreExport,
    /// `semaphore-import`: `vkImportSemaphoreFdKHR` answers
    /// `VK_ERROR_INVALID_EXTERNAL_HANDLE`.
    SemaphoreImport,
    /// `fence-import`: `vkImportFenceFdKHR` answers
    /// `VK_ERROR_INVALID_EXTERNAL_HANDLE`.
    FenceImport,
    /// `syncobj`: the fd of an explicit-sync timeline the layer checks by
    /// importing it back (as the compositor will) is an eventfd:
    /// `DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE` refuses it.
    Syncobj,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::SyncFile,
        Fault::DmaBuf,
        Fault::SemaphoreExport,
        Fault::SemaphoreImport,
        Fault::FenceImport,
        Fault::Syncobj,
    ];

    /// The name `SYNCBRIDGE_DEBUG_FAULTS` lists it by.
    pub fn name(self) -> &'static str {
        match self {
            Fault::SyncFile => "sync-file",
            Fault::DmaBuf => "dma-buf",
            Fault::SemaphoreExport => "semaphore-export",
            Fault::SemaphoreImport => "semaphore-import",
            Fault::FenceImport => "fence-import",
            Fault::Syncobj => "syncobj",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub log_level: LevelFilter,
    pub sync: SyncMode,
    pub buffers: BufferMode,
    pub images: ImageMode,
    /// `SYNCBRIDGE_PRESENT_MODE`: the present mode every swapchain is made
    /// with, whatever the application asked for (where the surface offers
    /// it), as `MESA_VK_WSI_PRESENT_MODE` does for Mesa's drivers.
    pub present_mode: Option<ash::vk::PresentModeKHR>,
    /// `SYNCBRIDGE_MIN_IMAGE_COUNT`: the fewest images a swapchain has (and
    /// the surface's `minImageCount`), in every present mode.
    pub min_image_count: Option<u32>,
    /// `SYNCBRIDGE_FPS_LIMIT`: at most this many frames a second are shown;
    /// the application is held back by its acquires, not by sleeps on its
    /// thread.
    pub fps_limit: Option<u32>,
    /// `SYNCBRIDGE_STATS`: file to which each swapchain appends its frame
    /// statistics (one JSON object per line) when it is destroyed.
    pub stats_path: Option<PathBuf>,
    /// `SYNCBRIDGE_DEBUG_FENCE_DELAY_MS`: a testing aid that makes the
    /// worker pass each frame on (signal its kernel fence, or hand it to
    /// the presenter) this much later than the GPU finished, as a slower
    /// GPU would. Lets a test observe the pending write fence on a buffer
    /// the compositor already holds, or frames still on their way.
    pub debug_fence_delay_ms: u64,
    /// `SYNCBRIDGE_DEBUG_FAULTS`: the [`Fault`]s to make happen, one bit
    /// each (a testing aid; none by default).
    pub debug_faults: u8,
    /// `SYNCBRIDGE_EARLY_ACQUIRE`: whether `vkAcquireNextImageKHR` may hand
    /// out an image the window system still holds (replaced by a newer
    /// frame, its release on the way), with the application's semaphore
    /// and fence signalled on the GPU when the release arrives, instead of
    /// blocking the application's thread until then.
    pub early_acquire: bool,
    /// `SYNCBRIDGE_RELEASE_TIMEOUT_MS`: how long the layer waits for the
    /// window system to release an image replaced on screen (or handed
    /// out early) before it treats it as released (a stuck compositor
    /// must not hang acquire, nor the GPU).
    pub release_timeout_ms: u64,
    /// Problems found while parsing, logged once the logger is up.
    pub warnings: Vec<String>,
    /// `SYNCBRIDGE_*` names the layer does not read (the project's test
    /// tools use the prefix too), logged at info level.
    pub ignored: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            log_level: LevelFilter::Warn,
            sync: SyncMode::Auto,
            buffers: BufferMode::Auto,
            images: ImageMode::Auto,
            present_mode: None,
            min_image_count: None,
            fps_limit: None,
            stats_path: None,
            debug_fence_delay_ms: 0,
            debug_faults: 0,
            early_acquire: true,
            release_timeout_ms: 5000,
            warnings: Vec::new(),
            ignored: Vec::new(),
        }
    }
}

impl Config {
    /// Whether `SYNCBRIDGE_DEBUG_FAULTS` names `fault`.
    pub fn fault(&self, fault: Fault) -> bool {
        self.debug_faults & fault.bit() != 0
    }

    /// Builds a configuration from `(name, value)` pairs; only names that
    /// start with `SYNCBRIDGE_` are looked at.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut cfg = Config::default();
        for (k, v) in vars {
            let (key, value) = (k.as_ref(), v.as_ref());
            let Some(name) = key.strip_prefix("SYNCBRIDGE_") else {
                continue;
            };
            let mut bad = |what: &str| {
                cfg_warning(&mut cfg.warnings, key, value, what);
            };
            match name {
                "LOG" => match parse_level(value) {
                    Some(l) => cfg.log_level = l,
                    None => bad("error|warn|info|debug|trace|off; using warn"),
                },
                "SYNC" => match value.trim().to_ascii_lowercase().as_str() {
                    "auto" | "" => cfg.sync = SyncMode::Auto,
                    "explicit" => cfg.sync = SyncMode::Explicit,
                    "implicit" => cfg.sync = SyncMode::Implicit,
                    "cpu" => cfg.sync = SyncMode::Cpu,
                    _ => bad("auto|explicit|implicit|cpu; using auto"),
                },
                "BUFFERS" => match value.trim().to_ascii_lowercase().as_str() {
                    "auto" | "" => cfg.buffers = BufferMode::Auto,
                    "dmabuf" | "dma-buf" => cfg.buffers = BufferMode::DmaBuf,
                    "shm" => cfg.buffers = BufferMode::Shm,
                    _ => bad("auto|dmabuf|shm; using auto"),
                },
                "IMAGES" => match value.trim().to_ascii_lowercase().as_str() {
                    "auto" | "" => cfg.images = ImageMode::Auto,
                    "export" => cfg.images = ImageMode::Export,
                    "import" => cfg.images = ImageMode::Import,
                    "host" => cfg.images = ImageMode::Host,
                    "copy" => cfg.images = ImageMode::Copy,
                    _ => bad("auto|export|import|host|copy; using auto"),
                },
                "PRESENT_MODE" => {
                    use ash::vk::PresentModeKHR as M;
                    match value.trim().to_ascii_lowercase().as_str() {
                        "" => cfg.present_mode = None,
                        "fifo" => cfg.present_mode = Some(M::FIFO),
                        "fifo_relaxed" | "relaxed" => cfg.present_mode = Some(M::FIFO_RELAXED),
                        "mailbox" => cfg.present_mode = Some(M::MAILBOX),
                        "immediate" => cfg.present_mode = Some(M::IMMEDIATE),
                        _ => bad("fifo|fifo_relaxed|mailbox|immediate; using the application's"),
                    }
                }
                "MIN_IMAGE_COUNT" => match value.trim().parse::<u32>() {
                    Ok(n) if (2..=8).contains(&n) => cfg.min_image_count = Some(n),
                    _ => bad("an image count from 2 to 8; using the layer's"),
                },
                "FPS_LIMIT" => match value.trim().parse::<u32>() {
                    Ok(0) => cfg.fps_limit = None,
                    Ok(n) if n <= 1000 => cfg.fps_limit = Some(n),
                    _ => bad("frames per second from 1 to 1000 (0: none); using none"),
                },
                "DEBUG_FENCE_DELAY_MS" => match value.trim().parse::<u64>() {
                    Ok(ms) if ms <= 10_000 => cfg.debug_fence_delay_ms = ms,
                    _ => bad("milliseconds from 0 to 10000; using 0"),
                },
                "DEBUG_FAULTS" => {
                    // One warning for the variable, however many names in
                    // it are unknown.
                    let mut unknown = false;
                    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        match Fault::ALL.iter().find(|f| f.name() == name) {
                            Some(f) => cfg.debug_faults |= f.bit(),
                            None => unknown = true,
                        }
                    }
                    if unknown {
                        bad("a list of sync-file, dma-buf, semaphore-export, semaphore-import, fence-import; leaving out the others");
                    }
                }
                "EARLY_ACQUIRE" => match value.trim().to_ascii_lowercase().as_str() {
                    "1" | "on" | "true" | "yes" | "" => cfg.early_acquire = true,
                    "0" | "off" | "false" | "no" => cfg.early_acquire = false,
                    _ => bad("on|off; using on"),
                },
                "RELEASE_TIMEOUT_MS" => match value.trim().parse::<u64>() {
                    Ok(ms) if (10..=60_000).contains(&ms) => cfg.release_timeout_ms = ms,
                    _ => bad("milliseconds from 10 to 60000; using 5000"),
                },
                "STATS" => {
                    if value.is_empty() {
                        bad("a file path");
                    } else {
                        cfg.stats_path = Some(PathBuf::from(value));
                    }
                }
                _ => cfg.ignored.push(printable(key)),
            }
        }
        cfg
    }
}

/// A variable name as it can go into a log line: at most 64 characters,
/// control characters (a newline could fake further log lines) escaped.
fn printable(name: &str) -> String {
    name.chars().take(64).flat_map(char::escape_debug).collect()
}

fn cfg_warning(warnings: &mut Vec<String>, key: &str, value: &str, expected: &str) {
    let shown: String = value.chars().take(64).collect();
    warnings.push(format!(
        "{key}={shown:?} is not understood; expected {expected}"
    ));
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// The process-wide configuration, read from the environment on first use.
pub fn get() -> &'static Config {
    CONFIG.get_or_init(|| {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
        Config::from_vars(vars)
    })
}

/// Logs the configuration problems once (after the logger is installed).
pub fn report_warnings() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cfg = get();
        for w in &cfg.warnings {
            log::warn!("{w}");
        }
        if !cfg.ignored.is_empty() {
            log::info!(
                "not layer settings, ignored: {} (the layer reads SYNCBRIDGE_LOG, SYNCBRIDGE_SYNC, SYNCBRIDGE_BUFFERS, SYNCBRIDGE_IMAGES, SYNCBRIDGE_PRESENT_MODE, SYNCBRIDGE_MIN_IMAGE_COUNT, SYNCBRIDGE_FPS_LIMIT, SYNCBRIDGE_STATS, SYNCBRIDGE_EARLY_ACQUIRE, SYNCBRIDGE_RELEASE_TIMEOUT_MS, SYNCBRIDGE_DEBUG_FENCE_DELAY_MS, SYNCBRIDGE_DEBUG_FAULTS)",
                cfg.ignored.join(", ")
            );
        }
    });
}

/// Parses a `SYNCBRIDGE_LOG` value.
fn parse_level(value: &str) -> Option<LevelFilter> {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" | "none" | "0" => Some(LevelFilter::Off),
        "error" => Some(LevelFilter::Error),
        "warn" | "warning" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_case_insensitively() {
        assert_eq!(parse_level("DEBUG"), Some(LevelFilter::Debug));
        assert_eq!(parse_level(" warn "), Some(LevelFilter::Warn));
        assert_eq!(parse_level("off"), Some(LevelFilter::Off));
        assert_eq!(parse_level("loud"), None);
    }

    #[test]
    fn defaults_without_variables() {
        let c = Config::from_vars(Vec::<(String, String)>::new());
        assert_eq!(c, Config::default());
    }

    #[test]
    fn known_values_are_taken() {
        let c = Config::from_vars([
            ("SYNCBRIDGE_SYNC", "CPU"),
            ("SYNCBRIDGE_LOG", "debug"),
            ("SYNCBRIDGE_BUFFERS", "shm"),
            ("SYNCBRIDGE_STATS", "/tmp/s.jsonl"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(c.sync, SyncMode::Cpu);
        assert_eq!(c.log_level, LevelFilter::Debug);
        assert_eq!(c.buffers, BufferMode::Shm);
        assert_eq!(
            c.stats_path.as_deref(),
            Some(std::path::Path::new("/tmp/s.jsonl"))
        );
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn debug_faults_are_a_list() {
        let c = Config::from_vars([("SYNCBRIDGE_DEBUG_FAULTS", "sync-file, fence-import")]);
        assert!(c.fault(Fault::SyncFile) && c.fault(Fault::FenceImport));
        assert!(!c.fault(Fault::DmaBuf) && !c.fault(Fault::SemaphoreExport));
        assert!(c.warnings.is_empty());
        let c = Config::from_vars([("SYNCBRIDGE_DEBUG_FAULTS", "dma-buf,gpu-on-fire,x,y,syncobj")]);
        assert!(c.fault(Fault::DmaBuf) && c.fault(Fault::Syncobj));
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(Fault::ALL.iter().all(|f| !Config::default().fault(*f)));
    }

    #[test]
    fn unknown_values_warn_and_keep_defaults() {
        let c = Config::from_vars([
            ("SYNCBRIDGE_SYNC", "fastest"),
            ("SYNCBRIDGE_LOG", "loud"),
            ("SYNCBRIDGE_FOO", "1"),
        ]);
        assert_eq!(c.sync, SyncMode::Auto);
        assert_eq!(c.log_level, LevelFilter::Warn);
        assert_eq!(c.warnings.len(), 2);
        assert!(c.warnings[0].contains("SYNCBRIDGE_SYNC"));
        assert_eq!(c.ignored, vec!["SYNCBRIDGE_FOO".to_string()]);
        let c = Config::from_vars([("SYNCBRIDGE_DEBUG_FENCE_DELAY_MS", "99999")]);
        assert_eq!((c.debug_fence_delay_ms, c.warnings.len()), (0, 1));
        let c = Config::from_vars([("SYNCBRIDGE_DEBUG_FENCE_DELAY_MS", "250")]);
        assert_eq!(c.debug_fence_delay_ms, 250);
    }

    #[test]
    fn presentation_overrides() {
        let c = Config::from_vars([
            ("SYNCBRIDGE_PRESENT_MODE", "Immediate"),
            ("SYNCBRIDGE_MIN_IMAGE_COUNT", "4"),
            ("SYNCBRIDGE_FPS_LIMIT", "60"),
            ("SYNCBRIDGE_IMAGES", "copy"),
        ]);
        assert_eq!(c.present_mode, Some(ash::vk::PresentModeKHR::IMMEDIATE));
        assert_eq!((c.min_image_count, c.fps_limit), (Some(4), Some(60)));
        assert_eq!(c.images, ImageMode::Copy);
        assert!(c.warnings.is_empty());
        let c = Config::from_vars([
            ("SYNCBRIDGE_PRESENT_MODE", "vsync"),
            ("SYNCBRIDGE_MIN_IMAGE_COUNT", "1"),
            ("SYNCBRIDGE_FPS_LIMIT", "-5"),
            ("SYNCBRIDGE_IMAGES", "gpu"),
        ]);
        assert_eq!(c.present_mode, None);
        assert_eq!((c.min_image_count, c.fps_limit), (None, None));
        assert_eq!(c.images, ImageMode::Auto);
        assert_eq!(c.warnings.len(), 4, "{:?}", c.warnings);
    }

    #[test]
    fn early_acquire_and_its_release_timeout() {
        let c = Config::from_vars([
            ("SYNCBRIDGE_EARLY_ACQUIRE", "off"),
            ("SYNCBRIDGE_RELEASE_TIMEOUT_MS", "250"),
        ]);
        assert!(!c.early_acquire);
        assert_eq!(c.release_timeout_ms, 250);
        assert!(c.warnings.is_empty());
        let c = Config::from_vars([
            ("SYNCBRIDGE_EARLY_ACQUIRE", "sometimes"),
            ("SYNCBRIDGE_RELEASE_TIMEOUT_MS", "0"),
        ]);
        assert!(c.early_acquire, "the default stays");
        assert_eq!(c.release_timeout_ms, 5000, "below 10 ms is refused");
        assert_eq!(c.warnings.len(), 2);
    }

    #[test]
    fn unknown_names_are_escaped_and_cut() {
        let long = format!("SYNCBRIDGE_{}", "Y".repeat(10_000));
        let c = Config::from_vars([
            ("SYNCBRIDGE_X\nsyncbridge: error: fake", "1"),
            (long.as_str(), "1"),
        ]);
        assert!(c.warnings.is_empty());
        assert_eq!(c.ignored.len(), 2);
        assert!(c.ignored.iter().all(|w| !w.contains('\n')));
        assert!(c.ignored[0].contains("SYNCBRIDGE_X\\nsyncbridge"));
        assert!(c.ignored[1].len() < 300);
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(10_000);
        let c = Config::from_vars([("SYNCBRIDGE_SYNC", long.as_str())]);
        assert!(c.warnings[0].len() < 200);
    }
}
