//! The Wayland format tables on arbitrary lists of `wl_shm` codes and DRM
//! fourccs (what a compositor advertises): never panics, offers each
//! Vulkan format once, and only formats whose fourcc and opaque variant
//! were advertised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use VkLayer_syncbridge::wsi::wayland::formats::{
    drm_from_shm, opaque, vk_formats_for_drm, vk_formats_for_shm,
};

fuzz_target!(|data: &[u8]| {
    let codes: Vec<u32> = data
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    for (list, drm) in [
        (vk_formats_for_drm(&codes), codes.clone()),
        (
            vk_formats_for_shm(&codes),
            codes.iter().map(|c| drm_from_shm(*c)).collect(),
        ),
    ] {
        assert!(list.len() <= 4);
        for (i, (format, fourcc)) in list.iter().enumerate() {
            assert!(drm.contains(fourcc), "{format:?} for an unadvertised {fourcc:#x}");
            assert!(drm.contains(&opaque(*fourcc)));
            assert!(list[..i].iter().all(|(f, _)| f != format), "{format:?} twice");
        }
    }
});
