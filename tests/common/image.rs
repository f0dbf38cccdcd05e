//! Reading screenshots back and counting pixels by colour.

use std::path::Path;

/// An RGB image.
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<[u8; 3]>,
}

impl Rgb {
    pub fn load(path: &Path) -> Self {
        let mut decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(path).expect("open png"),
        ));
        // Any depth and palette (ImageMagick writes a one-bit PNG for a
        // two-colour screen) read back as 8-bit samples.
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("png frame");
        let channels = info.color_type.samples();
        assert_eq!(info.bit_depth, png::BitDepth::Eight, "8-bit PNG expected");
        let pixels = buf[..info.buffer_size()]
            .chunks(channels)
            .map(|p| match p.len() {
                1 | 2 => [p[0]; 3],
                _ => [p[0], p[1], p[2]],
            })
            .collect();
        Self {
            width: info.width,
            height: info.height,
            pixels,
        }
    }

    /// The share (0..=1) of pixels in the rectangle for which `pred` holds.
    pub fn share(&self, x0: u32, y0: u32, x1: u32, y1: u32, pred: impl Fn([u8; 3]) -> bool) -> f64 {
        let (mut hit, mut all) = (0u64, 0u64);
        for y in y0..y1.min(self.height) {
            for x in x0..x1.min(self.width) {
                all += 1;
                if pred(self.pixels[(y * self.width + x) as usize]) {
                    hit += 1;
                }
            }
        }
        if all == 0 {
            0.0
        } else {
            hit as f64 / all as f64
        }
    }
}

/// vkcube's cube: grey faces.
pub fn is_cube_grey(p: [u8; 3]) -> bool {
    let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
    (80..200).contains(&r) && (r - g).abs() < 12 && (r - b).abs() < 12
}

/// vkcube's LunarG logo: dark teal.
pub fn is_logo_teal(p: [u8; 3]) -> bool {
    let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
    g > r + 30 && b > r + 30
}
