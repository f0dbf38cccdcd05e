//! Reading a committed buffer on the CPU, the way a compositor without a
//! GPU would: a dma-buf is mapped and bracketed with `DMA_BUF_IOCTL_SYNC`
//! (START|READ … END|READ, smithay's `Dmabuf::sync_plane`), which makes
//! the CPU's view coherent with what the device wrote; a `wl_shm` buffer is
//! read through smithay's pool mapping (SIGBUS-guarded).
//!
//! The fixture samples five pixels (centre and corners) and hashes the
//! whole visible image, so a test can tell a cleared colour from a stale or
//! torn buffer without shipping images around.

use smithay::backend::allocator::dmabuf::{Dmabuf, DmabufMappingMode, DmabufSyncFlags};
use smithay::backend::allocator::{Buffer, Fourcc};
use smithay::reexports::wayland_server::protocol::{wl_buffer::WlBuffer, wl_shm};
use smithay::wayland::shm;

/// What the fixture saw in one buffer.
#[derive(Debug, Clone)]
pub struct Sample {
    pub width: i32,
    pub height: i32,
    pub format: &'static str,
    pub modifier: Option<u64>,
    /// The centre pixel as 0xAARRGGBB (alpha forced to 0xff for X formats).
    pub centre: u32,
    /// Top-left, top-right, bottom-left, bottom-right.
    pub corners: [u32; 4],
    /// FNV-1a over every visible pixel (as 0xAARRGGBB, row by row).
    pub hash: u64,
}

/// The pixel layouts the fixture offers, as (name, has alpha, bytes R,G,B
/// order in memory): DRM/wl_shm formats are little-endian words, so
/// ARGB8888 is B,G,R,A in memory and ABGR8888 is R,G,B,A.
#[derive(Clone, Copy)]
struct Layout {
    name: &'static str,
    alpha: bool,
    rgb_first: bool,
}

fn layout_of_fourcc(f: Fourcc) -> Option<Layout> {
    Some(match f {
        Fourcc::Argb8888 => Layout {
            name: "ARGB8888",
            alpha: true,
            rgb_first: false,
        },
        Fourcc::Xrgb8888 => Layout {
            name: "XRGB8888",
            alpha: false,
            rgb_first: false,
        },
        Fourcc::Abgr8888 => Layout {
            name: "ABGR8888",
            alpha: true,
            rgb_first: true,
        },
        Fourcc::Xbgr8888 => Layout {
            name: "XBGR8888",
            alpha: false,
            rgb_first: true,
        },
        _ => return None,
    })
}

fn layout_of_shm(f: wl_shm::Format) -> Option<Layout> {
    match f {
        wl_shm::Format::Argb8888 => layout_of_fourcc(Fourcc::Argb8888),
        wl_shm::Format::Xrgb8888 => layout_of_fourcc(Fourcc::Xrgb8888),
        wl_shm::Format::Abgr8888 => layout_of_fourcc(Fourcc::Abgr8888),
        wl_shm::Format::Xbgr8888 => layout_of_fourcc(Fourcc::Xbgr8888),
        _ => None,
    }
}

/// Samples an image of `width`x`height` pixels, `stride` bytes a row, in
/// `bytes` (which must hold every row).
fn sample(
    bytes: &[u8],
    width: i32,
    height: i32,
    stride: usize,
    l: Layout,
) -> Result<(u32, [u32; 4], u64), String> {
    if width <= 0 || height <= 0 {
        return Err(format!("empty buffer {width}x{height}"));
    }
    let (w, h) = (width as usize, height as usize);
    if stride < w * 4 {
        return Err(format!("stride {stride} < 4 * width {w}"));
    }
    let need = stride * (h - 1) + w * 4;
    if bytes.len() < need {
        return Err(format!(
            "buffer holds {} bytes, {w}x{h} stride {stride} needs {need}",
            bytes.len()
        ));
    }
    let px = |x: usize, y: usize| -> u32 {
        let o = y * stride + x * 4;
        let b = &bytes[o..o + 4];
        let (r, g, bl) = if l.rgb_first {
            (b[0], b[1], b[2])
        } else {
            (b[2], b[1], b[0])
        };
        let a = if l.alpha { b[3] } else { 0xff };
        u32::from_be_bytes([a, r, g, bl])
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for y in 0..h {
        for x in 0..w {
            for byte in px(x, y).to_be_bytes() {
                hash ^= byte as u64;
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    Ok((
        px(w / 2, h / 2),
        [px(0, 0), px(w - 1, 0), px(0, h - 1), px(w - 1, h - 1)],
        hash,
    ))
}

/// Reads plane 0 of a single-plane 32-bit dma-buf.
pub fn read_dmabuf(d: &Dmabuf) -> Result<Sample, String> {
    let format = d.format();
    let l = layout_of_fourcc(format.code)
        .ok_or_else(|| format!("format {:?} is not read by the fixture", format.code))?;
    if d.num_planes() != 1 {
        return Err(format!(
            "{} planes; the fixture reads single-plane formats",
            d.num_planes()
        ));
    }
    let size = d.size();
    let stride = d.strides().next().unwrap_or(0) as usize;
    let map = d
        .map_plane(0, DmabufMappingMode::READ)
        .map_err(|e| format!("mmap: {e:?}"))?;
    d.sync_plane(0, DmabufSyncFlags::START | DmabufSyncFlags::READ)
        .map_err(|e| format!("DMA_BUF_IOCTL_SYNC START|READ: {e:?}"))?;
    // SAFETY: the mapping is `length()` readable bytes and lives until `map`
    // drops at the end of this function; the client may write concurrently
    // (that is what the fixture checks for), so the bytes are only copied
    // out as plain u8s.
    let bytes = unsafe { std::slice::from_raw_parts(map.ptr() as *const u8, map.length()) };
    let res = sample(bytes, size.w, size.h, stride, l);
    let end = d.sync_plane(0, DmabufSyncFlags::END | DmabufSyncFlags::READ);
    let (centre, corners, hash) = res?;
    end.map_err(|e| format!("DMA_BUF_IOCTL_SYNC END|READ: {e:?}"))?;
    Ok(Sample {
        width: size.w,
        height: size.h,
        format: l.name,
        modifier: Some(u64::from(format.modifier)),
        centre,
        corners,
        hash,
    })
}

/// Reads a `wl_shm` buffer.
pub fn read_shm(buffer: &WlBuffer) -> Result<Sample, String> {
    shm::with_buffer_contents(buffer, |ptr, len, data| {
        let l = layout_of_shm(data.format)
            .ok_or_else(|| format!("shm format {:?} is not read by the fixture", data.format))?;
        if data.offset < 0 || data.offset as usize > len {
            return Err(format!(
                "offset {} outside the pool ({len} bytes)",
                data.offset
            ));
        }
        // SAFETY: smithay hands out the pool's mapping, `len` bytes, for
        // the duration of this closure.
        let pool = unsafe { std::slice::from_raw_parts(ptr, len) };
        let (centre, corners, hash) = sample(
            &pool[data.offset as usize..],
            data.width,
            data.height,
            data.stride.max(0) as usize,
            l,
        )?;
        Ok(Sample {
            width: data.width,
            height: data.height,
            format: l.name,
            modifier: None,
            centre,
            corners,
            hash,
        })
    })
    .map_err(|e| format!("shm access: {e:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_orders() {
        // One 2x2 image, stride 12 (4 bytes of padding per row).
        let mut b = vec![0u8; 24];
        for y in 0..2 {
            for x in 0..2 {
                let o = y * 12 + x * 4;
                b[o..o + 4].copy_from_slice(&[0x10 + x as u8, 0x20 + y as u8, 0x30, 0x80]);
            }
        }
        let argb = layout_of_fourcc(Fourcc::Argb8888).unwrap();
        let (c, k, _) = sample(&b, 2, 2, 12, argb).unwrap();
        assert_eq!(c, 0x80_30_21_11);
        assert_eq!(k[0], 0x80_30_20_10);
        let xbgr = layout_of_fourcc(Fourcc::Xbgr8888).unwrap();
        let (c, _, _) = sample(&b, 2, 2, 12, xbgr).unwrap();
        assert_eq!(c, 0xff_11_21_30);
        // The last row needs no padding: 12 + 8 bytes are enough, 19 are not.
        assert!(sample(&b[..20], 2, 2, 12, argb).is_ok());
        assert!(sample(&b[..19], 2, 2, 12, argb).is_err());
        assert!(sample(&b, 2, 2, 4, argb).is_err());
    }
}
