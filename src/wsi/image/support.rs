//! What the driver can do with an image of a given format, tiling, usage
//! and external memory: format features first (a driver may accept image
//! format properties for a usage its format features lack), then
//! `vkGetPhysicalDeviceImageFormatProperties2` with the external and
//! modifier information the image will be made with.

use ash::vk;

/// The format features an image with `usage` needs.
pub fn features_for(usage: vk::ImageUsageFlags) -> vk::FormatFeatureFlags {
    use vk::FormatFeatureFlags as F;
    use vk::ImageUsageFlags as U;
    let mut f = F::empty();
    for (u, needs) in [
        (U::COLOR_ATTACHMENT, F::COLOR_ATTACHMENT),
        (U::INPUT_ATTACHMENT, F::COLOR_ATTACHMENT),
        (U::TRANSFER_SRC, F::TRANSFER_SRC),
        (U::TRANSFER_DST, F::TRANSFER_DST),
        (U::SAMPLED, F::SAMPLED_IMAGE),
        (U::STORAGE, F::STORAGE_IMAGE),
    ] {
        if usage.contains(u) {
            f |= needs;
        }
    }
    f
}

/// The format features of `format` for `tiling` (linear or optimal).
pub fn format_features(
    inst: &ash::Instance,
    pd: vk::PhysicalDevice,
    format: vk::Format,
    tiling: vk::ImageTiling,
) -> vk::FormatFeatureFlags {
    // SAFETY: a valid physical device.
    let props = unsafe { inst.get_physical_device_format_properties(pd, format) };
    match tiling {
        vk::ImageTiling::LINEAR => props.linear_tiling_features,
        vk::ImageTiling::OPTIMAL => props.optimal_tiling_features,
        _ => vk::FormatFeatureFlags::empty(),
    }
}

/// One DRM format modifier the driver supports for a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverModifier {
    pub modifier: u64,
    pub planes: u32,
    pub features: vk::FormatFeatureFlags,
}

/// The DRM format modifiers the driver supports for `format`
/// (`VK_EXT_image_drm_format_modifier`; empty without it).
pub fn driver_modifiers(
    inst: &ash::Instance,
    pd: vk::PhysicalDevice,
    format: vk::Format,
) -> Vec<DriverModifier> {
    let mut list = vk::DrmFormatModifierPropertiesListEXT::default();
    let mut props = vk::FormatProperties2::default().push_next(&mut list);
    // SAFETY: a valid physical device; the list structure is only filled
    // in by a driver that knows it.
    unsafe { inst.get_physical_device_format_properties2(pd, format, &mut props) };
    let count = list.drm_format_modifier_count as usize;
    if count == 0 {
        return Vec::new();
    }
    let mut entries = vec![vk::DrmFormatModifierPropertiesEXT::default(); count];
    let mut list = vk::DrmFormatModifierPropertiesListEXT::default()
        .drm_format_modifier_properties(&mut entries);
    let mut props = vk::FormatProperties2::default().push_next(&mut list);
    // SAFETY: as above, with room for `count` entries.
    unsafe { inst.get_physical_device_format_properties2(pd, format, &mut props) };
    let n = (list.drm_format_modifier_count as usize).min(count);
    entries[..n]
        .iter()
        .map(|e| DriverModifier {
            modifier: e.drm_format_modifier,
            planes: e.drm_format_modifier_plane_count,
            features: e.drm_format_modifier_tiling_features,
        })
        .collect()
}

/// An image the layer would make, as the driver is asked about it.
#[derive(Clone, Copy, Debug)]
pub struct ImageQuery {
    pub format: vk::Format,
    pub usage: vk::ImageUsageFlags,
    pub flags: vk::ImageCreateFlags,
    pub tiling: vk::ImageTiling,
    /// External memory of this handle type, which must have `feature`
    /// (importable or exportable).
    pub external: Option<(
        vk::ExternalMemoryHandleTypeFlags,
        vk::ExternalMemoryFeatureFlags,
    )>,
    /// With `DRM_FORMAT_MODIFIER_EXT` tiling: the modifier.
    pub modifier: Option<u64>,
}

/// Whether the driver can make the image `q` describes at `extent`: the
/// format features for its tiling (or modifier) cover its usage, and the
/// image format properties accept it with its external memory.
pub fn image_supported(
    inst: &ash::Instance,
    pd: vk::PhysicalDevice,
    q: &ImageQuery,
    extent: vk::Extent2D,
    modifier_features: Option<vk::FormatFeatureFlags>,
) -> bool {
    let have = match q.tiling {
        vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT => modifier_features.unwrap_or_default(),
        t => format_features(inst, pd, q.format, t),
    };
    if !have.contains(features_for(q.usage)) {
        return false;
    }
    let mut ext_info = vk::PhysicalDeviceExternalImageFormatInfo::default();
    let mut mod_info = vk::PhysicalDeviceImageDrmFormatModifierInfoEXT::default()
        .sharing_mode(vk::SharingMode::EXCLUSIVE);
    let mut info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(q.format)
        .ty(vk::ImageType::TYPE_2D)
        .tiling(q.tiling)
        .usage(q.usage)
        .flags(q.flags);
    if let Some((handle, _)) = q.external {
        ext_info = ext_info.handle_type(handle);
        info = info.push_next(&mut ext_info);
    }
    if let Some(m) = q.modifier {
        mod_info = mod_info.drm_format_modifier(m);
        info = info.push_next(&mut mod_info);
    }
    let mut ext_props = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut ext_props);
    // SAFETY: valid physical device and structures.
    let r = unsafe { inst.get_physical_device_image_format_properties2(pd, &info, &mut props) };
    if r.is_err() {
        return false;
    }
    let max = props.image_format_properties.max_extent;
    if extent.width > max.width || extent.height > max.height {
        return false;
    }
    q.external.map_or(true, |(_, feature)| {
        ext_props
            .external_memory_properties
            .external_memory_features
            .contains(feature)
    })
}

/// Whether a transfer-destination buffer can be bound to imported host
/// memory (the copy path's destination over a mapped buffer).
pub fn host_buffer_importable(inst: &ash::Instance, pd: vk::PhysicalDevice) -> bool {
    let info = vk::PhysicalDeviceExternalBufferInfo::default()
        .usage(vk::BufferUsageFlags::TRANSFER_DST)
        .handle_type(vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT);
    let mut props = vk::ExternalBufferProperties::default();
    // SAFETY: a valid physical device; the instance is at least 1.1.
    unsafe { inst.get_physical_device_external_buffer_properties(pd, &info, &mut props) };
    props
        .external_memory_properties
        .external_memory_features
        .contains(vk::ExternalMemoryFeatureFlags::IMPORTABLE)
}

/// Bytes per pixel of the formats the layer offers (all single-plane).
pub fn bytes_per_pixel(format: vk::Format) -> Option<u32> {
    match format {
        vk::Format::B8G8R8A8_UNORM
        | vk::Format::B8G8R8A8_SRGB
        | vk::Format::R8G8B8A8_UNORM
        | vk::Format::R8G8B8A8_SRGB
        | vk::Format::A2R10G10B10_UNORM_PACK32
        | vk::Format::A2B10G10R10_UNORM_PACK32 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_maps_to_the_features_it_needs() {
        use vk::FormatFeatureFlags as F;
        use vk::ImageUsageFlags as U;
        assert_eq!(
            features_for(U::COLOR_ATTACHMENT | U::TRANSFER_DST),
            F::COLOR_ATTACHMENT | F::TRANSFER_DST
        );
        assert_eq!(features_for(U::STORAGE), F::STORAGE_IMAGE);
        assert_eq!(features_for(U::empty()), F::empty());
    }
}
