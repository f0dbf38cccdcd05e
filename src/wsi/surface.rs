//! `VkSurfaceKHR` objects and the physical-device surface queries.

use super::image::host_image_supported_pd;
use super::platform::PlatformSurface;
use crate::layer::instance::InstanceData;
use ash::vk;

pub struct Surface {
    pub platform: Box<dyn PlatformSurface>,
}

/// The smallest image count the layer offers: one image on screen, one
/// queued, one being rendered.
pub const MIN_IMAGE_COUNT: u32 = 3;
pub const MAX_IMAGE_COUNT: u32 = 8;

/// Usages a swapchain image may have when the device supports them on
/// linear host-memory images.
const CANDIDATE_USAGE: [vk::ImageUsageFlags; 5] = [
    vk::ImageUsageFlags::COLOR_ATTACHMENT,
    vk::ImageUsageFlags::TRANSFER_SRC,
    vk::ImageUsageFlags::TRANSFER_DST,
    vk::ImageUsageFlags::SAMPLED,
    vk::ImageUsageFlags::STORAGE,
];

impl Surface {
    /// Formats the window system shows and the device renders to.
    pub fn formats(
        &self,
        inst: &InstanceData,
        pd: vk::PhysicalDevice,
    ) -> Result<Vec<(vk::Format, u32)>, vk::Result> {
        Ok(self
            .platform
            .formats()?
            .into_iter()
            .filter(|(f, _)| {
                host_image_supported_pd(inst, pd, *f, vk::ImageUsageFlags::COLOR_ATTACHMENT)
            })
            .collect())
    }

    pub fn capabilities(
        &self,
        inst: &InstanceData,
        pd: vk::PhysicalDevice,
    ) -> Result<vk::SurfaceCapabilitiesKHR, vk::Result> {
        // SAFETY: a valid physical device.
        let limits = unsafe { inst.fns.get_physical_device_properties(pd) }.limits;
        let max = limits.max_image_dimension2_d;
        let current = self.platform.current_extent()?;
        let format = self
            .formats(inst, pd)?
            .first()
            .map(|f| f.0)
            .unwrap_or(vk::Format::B8G8R8A8_UNORM);
        let usage = CANDIDATE_USAGE
            .iter()
            .filter(|u| host_image_supported_pd(inst, pd, format, **u))
            .fold(vk::ImageUsageFlags::COLOR_ATTACHMENT, |a, u| a | *u);
        let (cur, min_e, max_e) = match current {
            Some(e) => (e, e, e),
            None => (
                vk::Extent2D {
                    width: u32::MAX,
                    height: u32::MAX,
                },
                vk::Extent2D {
                    width: 1,
                    height: 1,
                },
                vk::Extent2D {
                    width: max,
                    height: max,
                },
            ),
        };
        Ok(vk::SurfaceCapabilitiesKHR {
            min_image_count: MIN_IMAGE_COUNT,
            max_image_count: MAX_IMAGE_COUNT,
            current_extent: cur,
            min_image_extent: min_e,
            max_image_extent: max_e,
            max_image_array_layers: 1,
            supported_transforms: vk::SurfaceTransformFlagsKHR::IDENTITY,
            current_transform: vk::SurfaceTransformFlagsKHR::IDENTITY,
            supported_composite_alpha: self.platform.composite_alpha(),
            supported_usage_flags: usage,
        })
    }
}
