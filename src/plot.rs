//! A dependency-free PNG line plot: test accuracy against compression for the run reports.
//!
//! The PNG is written with stored (uncompressed) deflate blocks: valid everywhere, a few
//! hundred KB, and no compression crate needed.

use std::path::Path;

/// One line of the plot.
#[derive(Clone, Debug)]
pub struct Series {
    /// `(x, y)` points, drawn in order.
    pub points: Vec<(f64, f64)>,
    /// RGB colour.
    pub color: [u8; 3],
}

const W: usize = 640;
const H: usize = 420;
const LEFT: usize = 56;
const RIGHT: usize = 16;
const TOP: usize = 16;
const BOTTOM: usize = 36;

/// Plot `series` with a logarithmic x axis (compression, `1x` upwards) and a linear y axis
/// (accuracy in percent), plus an optional horizontal line (the floor), to a PNG file.
///
/// ```
/// use sparse_examples::plot::{Series, plot_compression};
/// let path = std::env::temp_dir().join("sparse-plot-doc.png");
/// let s = Series { points: vec![(1.0, 91.0), (10.0, 90.5), (300.0, 89.0)], color: [0, 90, 200] };
/// plot_compression(&path, &[s], Some(90.5)).unwrap();
/// assert!(std::fs::read(&path).unwrap().starts_with(b"\x89PNG"));
/// ```
pub fn plot_compression(path: &Path, series: &[Series], floor: Option<f64>) -> std::io::Result<()> {
    let mut img = vec![255u8; W * H * 3];
    let pts = series.iter().flat_map(|s| s.points.iter());
    let xmax = pts
        .clone()
        .map(|p| p.0)
        .fold(10.0f64, f64::max)
        .log10()
        .ceil()
        .max(1.0);
    let (mut ymin, mut ymax) = pts.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    if let Some(f) = floor {
        ymin = ymin.min(f);
        ymax = ymax.max(f);
    }
    if !ymin.is_finite() {
        (ymin, ymax) = (0.0, 100.0);
    }
    let (ymin, ymax) = ((ymin - 1.0).floor(), (ymax + 1.0).ceil());
    let px = |x: f64| LEFT as f64 + x.max(1.0).log10() / xmax * (W - LEFT - RIGHT) as f64;
    let py = |y: f64| (H - BOTTOM) as f64 - (y - ymin) / (ymax - ymin) * (H - TOP - BOTTOM) as f64;

    // Grid, ticks and labels.
    for d in 0..=xmax as i32 {
        let x = px(10f64.powi(d)) as usize;
        line(
            &mut img,
            (x as f64, TOP as f64),
            (x as f64, (H - BOTTOM) as f64),
            [225; 3],
        );
        text(
            &mut img,
            &format!("{}x", 10u64.pow(d as u32)),
            x.saturating_sub(8),
            H - BOTTOM + 8,
        );
    }
    let step = ((ymax - ymin) / 6.0).ceil().max(1.0);
    let mut y = ymin;
    while y <= ymax {
        let yy = py(y);
        line(
            &mut img,
            (LEFT as f64, yy),
            ((W - RIGHT) as f64, yy),
            [225; 3],
        );
        text(
            &mut img,
            &format!("{y:.0}"),
            14,
            (yy as usize).saturating_sub(3),
        );
        y += step;
    }
    let frame = [0u8; 3];
    let (l, r, t, b) = (
        LEFT as f64,
        (W - RIGHT) as f64,
        TOP as f64,
        (H - BOTTOM) as f64,
    );
    for (p, q) in [
        ((l, t), (r, t)),
        ((r, t), (r, b)),
        ((r, b), (l, b)),
        ((l, b), (l, t)),
    ] {
        line(&mut img, p, q, frame);
    }
    if let Some(f) = floor {
        let yy = py(f);
        let mut x = l;
        while x < r {
            line(&mut img, (x, yy), ((x + 6.0).min(r), yy), [210, 40, 40]);
            x += 12.0;
        }
    }
    for s in series {
        for w in s.points.windows(2) {
            line(
                &mut img,
                (px(w[0].0), py(w[0].1)),
                (px(w[1].0), py(w[1].1)),
                s.color,
            );
        }
        for p in &s.points {
            let (x, y) = (px(p.0), py(p.1));
            for dy in -1..=1 {
                for dx in -1..=1 {
                    set(&mut img, x + dx as f64, y + dy as f64, s.color);
                }
            }
        }
    }
    std::fs::write(path, encode_png(&img, W, H))
}

fn set(img: &mut [u8], x: f64, y: f64, c: [u8; 3]) {
    if x < 0.0 || y < 0.0 {
        return;
    }
    let (x, y) = (x as usize, y as usize);
    if x < W && y < H {
        img[(y * W + x) * 3..(y * W + x) * 3 + 3].copy_from_slice(&c);
    }
}

fn line(img: &mut [u8], a: (f64, f64), b: (f64, f64), c: [u8; 3]) {
    let n = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil().max(1.0) as usize;
    for i in 0..=n {
        let t = i as f64 / n as f64;
        set(img, a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1), c);
    }
}

/// 3x5 glyphs for digits, 'x', '.', '-': one row per u8 (3 low bits, left to right).
fn glyph(ch: char) -> [u8; 5] {
    match ch {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'x' => [0, 5, 2, 5, 0],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        _ => [0; 5],
    }
}

fn text(img: &mut [u8], s: &str, x: usize, y: usize) {
    for (i, ch) in s.chars().enumerate() {
        for (row, bits) in glyph(ch).iter().enumerate() {
            for col in 0..3 {
                if bits >> (2 - col) & 1 == 1 {
                    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                        let px = x + i * 8 + col * 2 + dx;
                        set(img, px as f64, (y + row * 2 + dy) as f64, [60; 3]);
                    }
                }
            }
        }
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (n, entry) in table.iter_mut().enumerate() {
        let mut c = n as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *entry = c;
    }
    !bytes.iter().fold(!0u32, |c, b| {
        table[((c ^ *b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// An RGB8 image as PNG bytes (zlib with stored deflate blocks).
pub fn encode_png(rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity((width * 3 + 1) * height);
    for row in rgb.chunks(width * 3) {
        raw.push(0); // filter: none
        raw.extend(row);
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push((i + 1 == blocks.len()) as u8);
        z.extend((block.len() as u16).to_le_bytes());
        z.extend((!(block.len() as u16)).to_le_bytes());
        z.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in &raw {
        a = (a + *byte as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend((width as u32).to_be_bytes());
    ihdr.extend((height as u32).to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_chunks_have_valid_lengths_and_crcs() {
        let png = encode_png(&[255, 0, 0, 0, 255, 0], 2, 1);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let mut i = 8;
        let mut kinds = vec![];
        while i < png.len() {
            let len = u32::from_be_bytes(png[i..i + 4].try_into().unwrap()) as usize;
            let body = &png[i + 4..i + 8 + len];
            let crc = u32::from_be_bytes(png[i + 8 + len..i + 12 + len].try_into().unwrap());
            assert_eq!(crc32(body), crc);
            kinds.push(String::from_utf8(body[..4].to_vec()).unwrap());
            i += 12 + len;
        }
        assert_eq!(kinds, vec!["IHDR", "IDAT", "IEND"]);
        assert_eq!(
            crc32(b"123456789"),
            0xCBF4_3926,
            "the standard CRC-32 check value"
        );
    }
}
