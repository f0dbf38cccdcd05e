//! `VkSurfaceKHR` objects and the physical-device surface queries.

use super::image::{surface_format_supported, surface_usage};
use super::platform::PlatformSurface;
use crate::device::InstanceData;
use ash::vk;

pub struct Surface {
    pub platform: Box<dyn PlatformSurface>,
}

/// The smallest image count the layer offers: one image on screen, one
/// queued, one being rendered.
pub const MIN_IMAGE_COUNT: u32 = 3;
pub const MAX_IMAGE_COUNT: u32 = 8;

/// The fewest images an IMMEDIATE or MAILBOX swapchain is made with. An
/// application that does not wait for vertical blank keeps one frame at
/// each stage of the pipeline at once: one being rendered by the
/// application, one being executed by the GPU, one on its way to the
/// window system, one the window system shows, and one the window system
/// has replaced and whose release is on its way back. With fewer, the
/// application waits in `vkAcquireNextImageKHR` for the window system's
/// round trip (measured in `BENCHMARKS.md`: 27 % of acquires with 3 images,
/// under 1 % with 5).
pub const MIN_UNTHROTTLED_IMAGE_COUNT: u32 = 5;

/// How many images a swapchain in `mode` is made with when the application
/// asks for at least `requested`. The specification lets an implementation
/// make more than `minImageCount`; applications learn the real number from
/// `vkGetSwapchainImagesKHR`. FIFO gets what was asked for: more images
/// there would only add latency, as the display's pace throttles anyway.
pub fn image_count(mode: vk::PresentModeKHR, requested: u32) -> usize {
    requested.clamp(min_image_count(mode), MAX_IMAGE_COUNT) as usize
}

/// The surface's `minImageCount`: [`MIN_IMAGE_COUNT`], or
/// `SYNCBRIDGE_MIN_IMAGE_COUNT`.
pub fn surface_min_image_count() -> u32 {
    crate::config::get()
        .min_image_count
        .unwrap_or(MIN_IMAGE_COUNT)
}

/// The fewest images a swapchain in `mode` has: what
/// `VK_EXT_surface_maintenance1` reports as `minImageCount` for that mode.
pub fn min_image_count(mode: vk::PresentModeKHR) -> u32 {
    if let Some(n) = crate::config::get().min_image_count {
        return n;
    }
    match mode {
        vk::PresentModeKHR::IMMEDIATE | vk::PresentModeKHR::MAILBOX => MIN_UNTHROTTLED_IMAGE_COUNT,
        _ => MIN_IMAGE_COUNT,
    }
}

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
            .filter(|(f, _)| surface_format_supported(&inst.fns, pd, *f))
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
        let usage = surface_usage(&inst.fns, pd, format) | vk::ImageUsageFlags::COLOR_ATTACHMENT;
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
            min_image_count: surface_min_image_count(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unthrottled_modes_get_an_image_per_pipeline_stage() {
        use vk::PresentModeKHR as M;
        assert_eq!(image_count(M::FIFO, 0), 3);
        assert_eq!(image_count(M::FIFO, 4), 4);
        assert_eq!(image_count(M::FIFO_RELAXED, 2), 3);
        assert_eq!(image_count(M::IMMEDIATE, 3), 5);
        assert_eq!(image_count(M::MAILBOX, 2), 5);
        assert_eq!(image_count(M::MAILBOX, 7), 7);
        assert_eq!(image_count(M::IMMEDIATE, 100), MAX_IMAGE_COUNT as usize);
    }
}
