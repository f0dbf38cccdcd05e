//! Vulkan formats ↔ `wl_shm` / DRM fourcc codes.

use ash::vk;

const fn fourcc(a: u8, b: u8, c: u8, d: u8) -> u32 {
    (a as u32) | (b as u32) << 8 | (c as u32) << 16 | (d as u32) << 24
}

pub const DRM_FORMAT_ARGB8888: u32 = fourcc(b'A', b'R', b'2', b'4');
pub const DRM_FORMAT_XRGB8888: u32 = fourcc(b'X', b'R', b'2', b'4');
pub const DRM_FORMAT_ABGR8888: u32 = fourcc(b'A', b'B', b'2', b'4');
pub const DRM_FORMAT_XBGR8888: u32 = fourcc(b'X', b'B', b'2', b'4');

/// `wl_shm` names ARGB8888 and XRGB8888 0 and 1; every other format by its
/// DRM fourcc.
pub fn shm_code(drm: u32) -> u32 {
    match drm {
        DRM_FORMAT_ARGB8888 => 0,
        DRM_FORMAT_XRGB8888 => 1,
        other => other,
    }
}

pub fn drm_from_shm(code: u32) -> u32 {
    match code {
        0 => DRM_FORMAT_ARGB8888,
        1 => DRM_FORMAT_XRGB8888,
        other => other,
    }
}

/// The opaque variant of a format with alpha (the compositor then ignores
/// the alpha channel).
pub fn opaque(drm: u32) -> u32 {
    match drm {
        DRM_FORMAT_ARGB8888 => DRM_FORMAT_XRGB8888,
        DRM_FORMAT_ABGR8888 => DRM_FORMAT_XBGR8888,
        other => other,
    }
}

/// Vulkan formats (with the alpha fourcc each maps to) a compositor
/// offering `shm_codes` can show, in the order the layer prefers them.
pub fn vk_formats_for_shm(shm_codes: &[u32]) -> Vec<(vk::Format, u32)> {
    let drm: Vec<u32> = shm_codes.iter().map(|c| drm_from_shm(*c)).collect();
    vk_formats_for_drm(&drm)
}

/// Vulkan formats (with the alpha fourcc each maps to) for a list of DRM
/// fourccs; a format is offered when both its alpha and opaque variants are.
pub fn vk_formats_for_drm(drm: &[u32]) -> Vec<(vk::Format, u32)> {
    let mut out = Vec::new();
    if drm.contains(&DRM_FORMAT_ARGB8888) && drm.contains(&DRM_FORMAT_XRGB8888) {
        out.push((vk::Format::B8G8R8A8_UNORM, DRM_FORMAT_ARGB8888));
        out.push((vk::Format::B8G8R8A8_SRGB, DRM_FORMAT_ARGB8888));
    }
    if drm.contains(&DRM_FORMAT_ABGR8888) && drm.contains(&DRM_FORMAT_XBGR8888) {
        out.push((vk::Format::R8G8B8A8_UNORM, DRM_FORMAT_ABGR8888));
        out.push((vk::Format::R8G8B8A8_SRGB, DRM_FORMAT_ABGR8888));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_codes_round_trip() {
        for f in [
            DRM_FORMAT_ARGB8888,
            DRM_FORMAT_XRGB8888,
            DRM_FORMAT_ABGR8888,
        ] {
            assert_eq!(drm_from_shm(shm_code(f)), f);
        }
        assert_eq!(shm_code(DRM_FORMAT_ARGB8888), 0);
        assert_eq!(DRM_FORMAT_XRGB8888, 0x3432_5258);
    }

    #[test]
    fn required_shm_formats_give_bgra() {
        let f = vk_formats_for_shm(&[0, 1]);
        assert_eq!(f[0], (vk::Format::B8G8R8A8_UNORM, DRM_FORMAT_ARGB8888));
        assert_eq!(f.len(), 2);
        assert!(vk_formats_for_shm(&[]).is_empty());
        assert_eq!(
            vk_formats_for_shm(&[0, 1, DRM_FORMAT_ABGR8888, DRM_FORMAT_XBGR8888]).len(),
            4
        );
    }

    #[test]
    fn opaque_drops_alpha() {
        assert_eq!(opaque(DRM_FORMAT_ARGB8888), DRM_FORMAT_XRGB8888);
        assert_eq!(opaque(DRM_FORMAT_XBGR8888), DRM_FORMAT_XBGR8888);
    }
}
