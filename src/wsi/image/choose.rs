//! Which [`ImagePath`] a swapchain takes: the first, in the order of
//! [`ImagePath`], that the driver supports for the swapchain's format,
//! usage and size and the window system accepts, or the one
//! `SYNCBRIDGE_IMAGES` names. The same checks answer the surface queries
//! (formats and usages the layer offers), so an application is never
//! offered what no path can make.

use super::support::{
    bytes_per_pixel, driver_modifiers, host_buffer_importable, image_supported, ImageQuery,
};
use super::{modifier::MOD_LINEAR, ImageParams, ImagePath};
use crate::config::ImageMode;
use crate::device::DeviceData;
use crate::sync::BufferKind;
use ash::vk;
use std::ffi::CStr;

/// `DRM_FORMAT_MOD_INVALID`: the window system takes the buffer in the
/// layout its exporter implies (linear, for the layer's own buffers).
const MOD_INVALID: u64 = 0x00ff_ffff_ffff_ffff;

/// What the window system takes as dma-bufs for the swapchain's format.
#[derive(Clone, Debug, Default)]
pub struct WindowSystemBuffers {
    /// The modifiers it accepts for the format (`DRM_FORMAT_MOD_INVALID`:
    /// an implicit layout).
    pub modifiers: Vec<u64>,
    /// The device it composites on (linux-dmabuf feedback `main_device`),
    /// as a `dev_t`.
    pub main_device: Option<u64>,
}

impl WindowSystemBuffers {
    fn takes_linear(&self) -> bool {
        self.modifiers
            .iter()
            .any(|&m| m == MOD_LINEAR || m == MOD_INVALID)
    }
}

/// The path a swapchain's images take, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub path: ImagePath,
    /// [`ImagePath::DriverDmaBuf`]: the modifiers the image may have, with
    /// their memory-plane counts.
    pub modifiers: Vec<(u64, u32)>,
    pub reason: String,
}

/// What the device can do with memory the window system shares.
#[derive(Clone, Copy, Debug, Default)]
struct Abilities {
    host_import: bool,
    dma_buf: bool,
    modifiers: bool,
    /// The layer can allocate dma-bufs (dma-heap, udmabuf, vgem).
    alloc: bool,
}

impl Abilities {
    fn of_device(dev: &DeviceData) -> Self {
        Self {
            host_import: dev.caps.host_memory_import.is_some(),
            dma_buf: dev.caps.dma_buf_memory && dev.ext.memory_fd.is_some(),
            modifiers: dev.caps.drm_format_modifiers && dev.ext.drm_modifier.is_some(),
            alloc: !crate::kernel::alloc::available_sources().is_empty(),
        }
    }

    /// Before a device exists (surface queries): the physical device's
    /// extensions, which the layer enables when it makes the device.
    fn of_physical_device(inst: &ash::Instance, pd: vk::PhysicalDevice) -> Self {
        // SAFETY: a valid physical device.
        let exts = unsafe { inst.enumerate_device_extension_properties(pd) }.unwrap_or_default();
        let has = |n: &CStr| exts.iter().any(|e| e.extension_name_as_c_str() == Ok(n));
        Self {
            host_import: has(vk::EXT_EXTERNAL_MEMORY_HOST_NAME),
            dma_buf: has(vk::EXT_EXTERNAL_MEMORY_DMA_BUF_NAME)
                && has(vk::KHR_EXTERNAL_MEMORY_FD_NAME),
            modifiers: has(vk::EXT_IMAGE_DRM_FORMAT_MODIFIER_NAME),
            alloc: !crate::kernel::alloc::available_sources().is_empty(),
        }
    }
}

/// One path's answer: usable (with the modifiers it may use), or why not.
type Verdict = Result<Vec<(u64, u32)>, String>;

struct Checker<'a> {
    inst: &'a ash::Instance,
    pd: vk::PhysicalDevice,
    can: Abilities,
    format: vk::Format,
    usage: vk::ImageUsageFlags,
    flags: vk::ImageCreateFlags,
    extent: vk::Extent2D,
}

impl Checker<'_> {
    fn query(&self, tiling: vk::ImageTiling) -> ImageQuery {
        ImageQuery {
            format: self.format,
            usage: self.usage,
            flags: self.flags,
            tiling,
            external: None,
            modifier: None,
        }
    }

    /// Whether the layer can allocate linear dma-bufs the window system
    /// takes.
    fn layer_dma_bufs(&self, ws: &WindowSystemBuffers) -> Result<(), String> {
        if !self.can.alloc {
            return Err("no dma-buf allocator (dma-heap, udmabuf, vgem)".into());
        }
        if !ws.takes_linear() {
            return Err("the window system takes no linear dma-bufs".into());
        }
        Ok(())
    }

    fn check(&self, path: ImagePath, kind: BufferKind, ws: &WindowSystemBuffers) -> Verdict {
        let dma = kind == BufferKind::DmaBuf;
        let need = |ok: bool, why: &str| if ok { Ok(()) } else { Err(why.to_string()) };
        match path {
            ImagePath::DriverDmaBuf => {
                need(dma, "the window system takes no dma-bufs")?;
                need(
                    self.can.dma_buf && self.can.modifiers,
                    "the driver lacks VK_EXT_external_memory_dma_buf or VK_EXT_image_drm_format_modifier",
                )?;
                let usable: Vec<(u64, u32)> = driver_modifiers(self.inst, self.pd, self.format)
                    .into_iter()
                    .filter(|m| m.modifier != MOD_INVALID && ws.modifiers.contains(&m.modifier))
                    .filter(|m| {
                        let q = ImageQuery {
                            tiling: vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT,
                            external: Some((
                                vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT,
                                vk::ExternalMemoryFeatureFlags::EXPORTABLE,
                            )),
                            modifier: Some(m.modifier),
                            ..self.query(vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT)
                        };
                        image_supported(self.inst, self.pd, &q, self.extent, Some(m.features))
                    })
                    .map(|m| (m.modifier, m.planes))
                    .collect();
                need(
                    !usable.is_empty(),
                    "no modifier both the driver (for this format and usage, exportable) and the window system support",
                )?;
                Ok(usable)
            }
            ImagePath::ImportedDmaBuf => {
                need(dma, "the window system takes no dma-bufs")?;
                need(
                    self.can.dma_buf && self.can.modifiers,
                    "the driver lacks VK_EXT_external_memory_dma_buf or VK_EXT_image_drm_format_modifier",
                )?;
                self.layer_dma_bufs(ws)?;
                need(
                    bytes_per_pixel(self.format).is_some(),
                    "not a format the layer lays out",
                )?;
                let linear = driver_modifiers(self.inst, self.pd, self.format)
                    .into_iter()
                    .find(|m| m.modifier == MOD_LINEAR);
                let q = ImageQuery {
                    external: Some((
                        vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT,
                        vk::ExternalMemoryFeatureFlags::IMPORTABLE,
                    )),
                    modifier: Some(MOD_LINEAR),
                    ..self.query(vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT)
                };
                need(
                    linear.is_some_and(|m| {
                        image_supported(self.inst, self.pd, &q, self.extent, Some(m.features))
                    }),
                    "the driver cannot import a linear dma-buf image of this format and usage",
                )?;
                Ok(Vec::new())
            }
            ImagePath::HostMemory => {
                need(
                    self.can.host_import,
                    "the driver lacks VK_EXT_external_memory_host",
                )?;
                if dma {
                    self.layer_dma_bufs(ws)?;
                }
                let q = ImageQuery {
                    external: Some((
                        vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT,
                        vk::ExternalMemoryFeatureFlags::IMPORTABLE,
                    )),
                    ..self.query(vk::ImageTiling::LINEAR)
                };
                need(
                    image_supported(self.inst, self.pd, &q, self.extent, None),
                    "the driver cannot render to linear host-memory images of this format and usage",
                )?;
                Ok(Vec::new())
            }
            ImagePath::Copy => {
                need(
                    self.can.host_import && host_buffer_importable(self.inst, self.pd),
                    "the driver cannot bind a buffer to host memory (VK_EXT_external_memory_host)",
                )?;
                need(
                    bytes_per_pixel(self.format).is_some(),
                    "not a format the layer lays out",
                )?;
                if dma {
                    self.layer_dma_bufs(ws)?;
                }
                let q = ImageQuery {
                    usage: self.usage | vk::ImageUsageFlags::TRANSFER_SRC,
                    ..self.query(vk::ImageTiling::OPTIMAL)
                };
                need(
                    image_supported(self.inst, self.pd, &q, self.extent, None),
                    "the driver cannot make optimal images of this format and usage",
                )?;
                Ok(Vec::new())
            }
        }
    }
}

/// The order paths are tried in for buffers of `kind`.
fn candidates(kind: BufferKind) -> &'static [ImagePath] {
    match kind {
        BufferKind::DmaBuf => &[
            ImagePath::DriverDmaBuf,
            ImagePath::ImportedDmaBuf,
            ImagePath::HostMemory,
            ImagePath::Copy,
        ],
        BufferKind::Shm => &[ImagePath::HostMemory, ImagePath::Copy],
    }
}

fn forced(mode: ImageMode) -> Option<ImagePath> {
    match mode {
        ImageMode::Auto => None,
        ImageMode::Export => Some(ImagePath::DriverDmaBuf),
        ImageMode::Import => Some(ImagePath::ImportedDmaBuf),
        ImageMode::Host => Some(ImagePath::HostMemory),
        ImageMode::Copy => Some(ImagePath::Copy),
    }
}

/// The DRM devices of the Vulkan device, as `dev_t`s (primary, render),
/// from `VK_EXT_physical_device_drm`; empty where the driver has no DRM
/// device (CPU drivers) or does not say.
fn vulkan_drm_devices(inst: &ash::Instance, pd: vk::PhysicalDevice) -> Vec<u64> {
    // SAFETY: a valid physical device.
    let exts = unsafe { inst.enumerate_device_extension_properties(pd) }.unwrap_or_default();
    if !exts
        .iter()
        .any(|e| e.extension_name_as_c_str() == Ok(vk::EXT_PHYSICAL_DEVICE_DRM_NAME))
    {
        return Vec::new();
    }
    let mut drm = vk::PhysicalDeviceDrmPropertiesEXT::default();
    let mut props = vk::PhysicalDeviceProperties2::default().push_next(&mut drm);
    // SAFETY: a valid physical device that has the extension.
    unsafe { inst.get_physical_device_properties2(pd, &mut props) };
    let dev = |major: i64, minor: i64| rustix::fs::makedev(major as u32, minor as u32);
    let mut out = Vec::new();
    if drm.has_primary == vk::TRUE {
        out.push(dev(drm.primary_major, drm.primary_minor));
    }
    if drm.has_render == vk::TRUE {
        out.push(dev(drm.render_major, drm.render_minor));
    }
    out
}

/// Whether the window system composites on another GPU than the Vulkan
/// device (PRIME): both name their DRM devices and they differ. A device
/// with no DRM node (a CPU driver) renders into buffers any importer can
/// read, so it is never PRIME.
fn is_prime(main_device: Option<u64>, vulkan_devices: &[u64]) -> bool {
    main_device.is_some_and(|m| !vulkan_devices.is_empty() && !vulkan_devices.contains(&m))
}

/// Picks the image path of a swapchain with images `p` in buffers of
/// `kind`. When no path (or not the forced one) can serve it, says what
/// each lacks.
pub fn choose(
    dev: &DeviceData,
    p: &ImageParams,
    kind: BufferKind,
    ws: &WindowSystemBuffers,
    mode: ImageMode,
) -> Result<Choice, String> {
    choose_with(
        &dev.instance.fns,
        dev.physical_device,
        Abilities::of_device(dev),
        p,
        kind,
        ws,
        mode,
    )
}

/// [`choose`] before a device exists, from what the physical device offers
/// (for `syncbridge-info`).
pub fn choose_for_physical_device(
    inst: &ash::Instance,
    pd: vk::PhysicalDevice,
    p: &ImageParams,
    kind: BufferKind,
    ws: &WindowSystemBuffers,
    mode: ImageMode,
) -> Result<Choice, String> {
    choose_with(
        inst,
        pd,
        Abilities::of_physical_device(inst, pd),
        p,
        kind,
        ws,
        mode,
    )
}

fn choose_with(
    inst: &ash::Instance,
    pd: vk::PhysicalDevice,
    can: Abilities,
    p: &ImageParams,
    kind: BufferKind,
    ws: &WindowSystemBuffers,
    mode: ImageMode,
) -> Result<Choice, String> {
    let c = Checker {
        inst,
        pd,
        can,
        format: p.format,
        usage: p.usage,
        flags: p.flags,
        extent: p.extent,
    };
    // PRIME: the window system composites on another GPU than the Vulkan
    // device's; only a linear copy is sure to be readable there.
    let prime =
        kind == BufferKind::DmaBuf && is_prime(ws.main_device, &vulkan_drm_devices(inst, pd));
    let order: Vec<ImagePath> = match forced(mode) {
        Some(path) => vec![path],
        None if prime => vec![ImagePath::Copy],
        None => candidates(kind).to_vec(),
    };
    let mut why_not = Vec::new();
    for path in order {
        match c.check(path, kind, ws) {
            Ok(modifiers) => {
                let mut reason = match forced(mode) {
                    Some(_) => "SYNCBRIDGE_IMAGES".to_string(),
                    None if prime => {
                        "the window system's GPU is not the Vulkan device (PRIME)".to_string()
                    }
                    None if why_not.is_empty() => "the first choice".to_string(),
                    None => why_not.join("; "),
                };
                if path == ImagePath::DriverDmaBuf {
                    reason.push_str(&format!("; {} modifier(s)", modifiers.len()));
                }
                return Ok(Choice {
                    path,
                    modifiers,
                    reason,
                });
            }
            Err(why) => why_not.push(format!("not {}: {why}", path.name())),
        }
    }
    Err(format!(
        "no image path for {:?} {}x{} with usage {:?} in {kind:?} buffers: {}",
        p.format,
        p.extent.width,
        p.extent.height,
        p.usage,
        why_not.join("; ")
    ))
}

/// Whether some path can make colour-attachment images of `format` on
/// `pd` (the surface's format list).
pub fn surface_format_supported(
    inst: &ash::Instance,
    pd: vk::PhysicalDevice,
    format: vk::Format,
) -> bool {
    !surface_usage_of(inst, pd, format).is_empty()
}

/// Usages a swapchain image may have.
const CANDIDATE_USAGE: [vk::ImageUsageFlags; 6] = [
    vk::ImageUsageFlags::COLOR_ATTACHMENT,
    vk::ImageUsageFlags::TRANSFER_SRC,
    vk::ImageUsageFlags::TRANSFER_DST,
    vk::ImageUsageFlags::SAMPLED,
    vk::ImageUsageFlags::STORAGE,
    vk::ImageUsageFlags::INPUT_ATTACHMENT,
];

/// The usages the layer offers for images of `format` on `pd`: those of the
/// path that supports the most of them, always with colour attachment, or
/// none where no path renders to the format. (Every combination of the
/// offered usages is served by that path; `choose` may take an earlier one
/// for a smaller combination.)
pub fn surface_usage(
    inst: &ash::Instance,
    pd: vk::PhysicalDevice,
    format: vk::Format,
) -> vk::ImageUsageFlags {
    surface_usage_of(inst, pd, format)
}

fn surface_usage_of(
    inst: &ash::Instance,
    pd: vk::PhysicalDevice,
    format: vk::Format,
) -> vk::ImageUsageFlags {
    let can = Abilities::of_physical_device(inst, pd);
    let ws = WindowSystemBuffers {
        modifiers: vec![MOD_LINEAR],
        main_device: None,
    };
    let extent = vk::Extent2D {
        width: 1,
        height: 1,
    };
    // Shared memory is what every window system takes; the paths over it
    // bound what any swapchain can be offered.
    let mut best = vk::ImageUsageFlags::empty();
    for path in candidates(BufferKind::Shm) {
        let supports = |usage| {
            Checker {
                inst,
                pd,
                can,
                format,
                usage,
                flags: vk::ImageCreateFlags::empty(),
                extent,
            }
            .check(*path, BufferKind::Shm, &ws)
            .is_ok()
        };
        if !supports(vk::ImageUsageFlags::COLOR_ATTACHMENT) {
            continue;
        }
        let usage = CANDIDATE_USAGE
            .iter()
            .copied()
            .filter(|&u| supports(u | vk::ImageUsageFlags::COLOR_ATTACHMENT))
            .fold(vk::ImageUsageFlags::empty(), |a, u| a | u);
        if usage.as_raw().count_ones() > best.as_raw().count_ones() {
            best = usage;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prime_is_a_named_main_device_the_vulkan_device_is_not() {
        let (card0, render128, render129) = (
            rustix::fs::makedev(226, 0),
            rustix::fs::makedev(226, 128),
            rustix::fs::makedev(226, 129),
        );
        assert!(!is_prime(Some(render128), &[card0, render128]));
        assert!(!is_prime(Some(card0), &[card0, render128]));
        assert!(is_prime(Some(render129), &[card0, render128]));
        assert!(
            !is_prime(None, &[card0, render128]),
            "no feedback: not known"
        );
        assert!(!is_prime(Some(render129), &[]), "a CPU driver has no node");
    }

    #[test]
    fn linear_is_taken_as_linear_or_implicit() {
        let ws = |m: &[u64]| WindowSystemBuffers {
            modifiers: m.to_vec(),
            main_device: None,
        };
        assert!(ws(&[MOD_LINEAR]).takes_linear());
        assert!(ws(&[MOD_INVALID]).takes_linear());
        assert!(!ws(&[0x0100_0000_0000_0001]).takes_linear());
        assert!(!ws(&[]).takes_linear());
    }
}
