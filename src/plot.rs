//! The figures of the run reports and of `docs/figures/`: curves against compression (log
//! axis) or sparsity, with min-max bands, reference lines (dense, floor) and marked points,
//! drawn by [`plotters`] into a PNG.
//!
//! The text uses a bundled font (Ubuntu Light, from `epaint_default_fonts`): no system font
//! or C library is needed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;

/// Colours for the curves of a figure, in order (Okabe-Ito's, then more distinct ones; no
/// red, which the floor lines use).
pub const PALETTE: [[u8; 3]; 12] = [
    [0, 114, 178],
    [213, 94, 0],
    [0, 158, 115],
    [204, 121, 167],
    [230, 159, 0],
    [86, 180, 233],
    [0, 0, 0],
    [148, 103, 189],
    [140, 86, 75],
    [188, 189, 34],
    [127, 127, 127],
    [23, 190, 207],
];

/// One curve: its points in order and, optionally, a shaded band around it.
#[derive(Clone, Debug, Default)]
pub struct Curve {
    /// The legend's entry.
    pub label: String,
    /// RGB colour.
    pub color: [u8; 3],
    /// `(x, y)` points, drawn in order.
    pub points: Vec<(f64, f64)>,
    /// `(x, low, high)`: the band shaded behind the curve (e.g. min-max over seeds); empty for
    /// none.
    pub band: Vec<(f64, f64, f64)>,
}

/// A horizontal reference line across the whole figure (dense accuracy, floor).
#[derive(Clone, Debug)]
pub struct Level {
    /// The legend's entry.
    pub label: String,
    /// Where it is.
    pub y: f64,
    /// RGB colour.
    pub color: [u8; 3],
    /// Dashed (the default look of a threshold) or solid.
    pub dashed: bool,
}

/// A marked point (the reported checkpoint).
#[derive(Clone, Debug)]
pub struct Mark {
    /// The legend's entry.
    pub label: String,
    /// `(x, y)`.
    pub at: (f64, f64),
    /// RGB colour.
    pub color: [u8; 3],
}

/// The x axis of a [`Figure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XAxis {
    /// Compression (`total / alive`), logarithmic from `1x`; ticks read `10x`, `100x`, ...
    Compression,
    /// A linear axis (e.g. sparsity in percent).
    Linear,
}

/// A figure: title, axes, curves, reference lines and marks, written by
/// [`save_png`](Self::save_png).
///
/// ```
/// use sparse_examples::plot::{Curve, Figure, Level, XAxis};
/// let path = std::env::temp_dir().join("sparse-plot-doc.png");
/// let figure = Figure {
///     title: "LeNet-5 on Fashion-MNIST, relevance".into(),
///     x_label: "compression (total / remaining weights)".into(),
///     y_label: "test accuracy (%)".into(),
///     x_axis: XAxis::Compression,
///     curves: vec![Curve {
///         label: "test".into(),
///         points: vec![(1.0, 91.0), (10.0, 90.5), (300.0, 89.0)],
///         ..Curve::default()
///     }],
///     levels: vec![Level { label: "floor".into(), y: 90.5, color: [200, 0, 0], dashed: true }],
///     marks: vec![],
/// };
/// figure.save_png(&path).unwrap();
/// assert!(std::fs::read(&path).unwrap().starts_with(b"\x89PNG"));
/// ```
#[derive(Clone, Debug)]
pub struct Figure {
    /// Above the plot.
    pub title: String,
    /// Under the x axis.
    pub x_label: String,
    /// Beside the y axis.
    pub y_label: String,
    /// Log compression or linear.
    pub x_axis: XAxis,
    /// The curves, drawn in order over their bands.
    pub curves: Vec<Curve>,
    /// Horizontal reference lines.
    pub levels: Vec<Level>,
    /// Marked points.
    pub marks: Vec<Mark>,
}

/// Width and height of the figures, in pixels.
pub const SIZE: (u32, u32) = (1160, 560);

/// Width of the legend's panel, right of the plot.
const LEGEND: u32 = 350;

const FONT: &str = "sans-serif";

fn font_registered() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font(FONT, style, epaint_default_fonts::UBUNTU_LIGHT)
                .unwrap_or_else(|_| panic!("the bundled font does not parse"));
        }
    });
}

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

impl Figure {
    /// The x coordinate on the drawing's axis (log10 of a compression).
    fn x(&self, x: f64) -> f64 {
        match self.x_axis {
            XAxis::Compression => x.max(1.0).log10(),
            XAxis::Linear => x,
        }
    }

    /// The axes' ranges: every point, band, level and mark inside, with a margin.
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let xs = self
            .curves
            .iter()
            .flat_map(|c| {
                c.points
                    .iter()
                    .map(|p| p.0)
                    .chain(c.band.iter().map(|b| b.0))
            })
            .chain(self.marks.iter().map(|m| m.at.0))
            .map(|x| self.x(x));
        let ys = self
            .curves
            .iter()
            .flat_map(|c| {
                c.points
                    .iter()
                    .map(|p| p.1)
                    .chain(c.band.iter().flat_map(|b| [b.1, b.2]))
            })
            .chain(self.levels.iter().map(|l| l.y))
            .chain(self.marks.iter().map(|m| m.at.1));
        let span = |v: &mut dyn Iterator<Item = f64>| {
            v.filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                })
        };
        let (x0, x1) = span(&mut { xs });
        let (y0, y1) = span(&mut { ys });
        let (x0, x1) = match self.x_axis {
            XAxis::Compression if x1.is_finite() => (0.0, x1.ceil().max(1.0)),
            XAxis::Compression => (0.0, 1.0),
            XAxis::Linear if x1 > x0 => (x0, x1 + 0.03 * (x1 - x0)),
            XAxis::Linear => (x0.min(0.0), x0.max(0.0) + 1.0),
        };
        let (y0, y1) = if y1 > y0 {
            let pad = 0.08 * (y1 - y0);
            (y0 - pad, y1 + pad)
        } else if y0.is_finite() {
            (y0 - 1.0, y0 + 1.0)
        } else {
            (0.0, 1.0)
        };
        ((x0, x1), (y0, y1))
    }

    /// The x axis' ticks: every power of ten on a compression axis (plotters picks them on a
    /// linear one).
    fn x_ticks(&self, (x0, x1): (f64, f64)) -> Vec<f64> {
        match self.x_axis {
            XAxis::Compression => {
                // 1x, 2x, 5x, 10x, ... over two decades or less; the powers of ten over more.
                let steps: &[f64] = if x1 - x0 <= 2.0 {
                    &[1.0, 2.0, 5.0]
                } else {
                    &[1.0]
                };
                (x0.floor() as i32..=x1.ceil() as i32)
                    .flat_map(|d| steps.iter().map(move |m| (m * 10f64.powi(d)).log10()))
                    .filter(|t| *t <= x1 + 1e-9)
                    .collect()
            }
            XAxis::Linear => {
                let step = nice_step((x1 - x0) / 8.0);
                let first = (x0 / step).ceil() as i64;
                let last = (x1 / step).floor() as i64;
                (first..=last).map(|i| i as f64 * step).collect()
            }
        }
    }

    /// Draw the figure into a PNG file.
    pub fn save_png(&self, path: &Path) -> std::io::Result<()> {
        let (w, h) = SIZE;
        let mut rgb_buf = vec![255u8; (w * h * 3) as usize];
        self.draw(&mut rgb_buf)
            .map_err(|e| std::io::Error::other(format!("cannot draw the figure: {e}")))?;
        let file = std::fs::File::create(path)?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(&rgb_buf)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    }

    fn draw(&self, buf: &mut [u8]) -> Result<(), Box<dyn std::error::Error + '_>> {
        font_registered();
        let root = BitMapBackend::with_buffer(buf, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let (root, legend) = root.split_horizontally(SIZE.0 - LEGEND);
        let ((x0, x1), (y0, y1)) = self.ranges();
        let ticks = self.x_ticks((x0, x1));
        let xr = Ticked {
            lo: x0,
            hi: x1,
            ticks,
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, (FONT, 24))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(xr, y0..y1)?;
        let compression = self.x_axis == XAxis::Compression;
        // Enough decimals to tell about ten ticks apart.
        let y_decimals = (-((y1 - y0) / 10.0).log10().floor()).clamp(0.0, 6.0) as usize;
        let x_fmt = move |v: &f64| {
            if compression {
                format!("{:.0}x", 10f64.powf(*v))
            } else {
                format!("{v:.0}")
            }
        };
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|v| format!("{v:.y_decimals$}"))
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 15))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(205, 205, 205))
            .draw()?;

        for c in &self.curves {
            if c.band.len() >= 2 {
                let upper = c.band.iter().map(|b| (self.x(b.0), b.2));
                let lower = c.band.iter().rev().map(|b| (self.x(b.0), b.1));
                let outline: Vec<(f64, f64)> = upper.chain(lower).collect();
                chart.draw_series(std::iter::once(Polygon::new(
                    outline,
                    rgb(c.color).mix(0.12).filled(),
                )))?;
            }
        }
        let mut entries: Vec<(String, [u8; 3], Key)> = vec![];
        for l in &self.levels {
            let style = rgb(l.color).stroke_width(2);
            let ends = [(x0, l.y), (x1, l.y)];
            let key = if l.dashed {
                chart.draw_series(DashedLineSeries::new(ends, 10, 6, style))?;
                Key::Dashed
            } else {
                chart.draw_series(LineSeries::new(ends, style))?;
                Key::Line
            };
            entries.push((l.label.clone(), l.color, key));
        }
        for c in &self.curves {
            let style = rgb(c.color).stroke_width(2);
            let points: Vec<(f64, f64)> = c.points.iter().map(|p| (self.x(p.0), p.1)).collect();
            chart.draw_series(LineSeries::new(points.clone(), style))?;
            entries.push((c.label.clone(), c.color, Key::Line));
            if points.len() <= 40 {
                chart.draw_series(
                    points
                        .iter()
                        .map(|p| Circle::new(*p, 3, rgb(c.color).filled())),
                )?;
            }
        }
        for m in &self.marks {
            let color = rgb(m.color);
            let at = (self.x(m.at.0), m.at.1);
            chart.draw_series(std::iter::once(Cross::new(at, 9, color.stroke_width(3))))?;
            entries.push((m.label.clone(), m.color, Key::Cross));
        }
        // The legend, in its own panel: nothing of the plot is hidden under it.
        let top = 60;
        for (i, (label, color, key)) in entries.iter().enumerate() {
            let y = top + 24 * i as i32;
            let style = rgb(*color).stroke_width(if *key == Key::Cross { 3 } else { 2 });
            match key {
                Key::Line => legend.draw(&PathElement::new([(6, y), (34, y)], style))?,
                Key::Dashed => {
                    legend.draw(&PathElement::new([(6, y), (16, y)], style))?;
                    legend.draw(&PathElement::new([(24, y), (34, y)], style))?;
                }
                Key::Cross => legend.draw(&Cross::new((20, y), 6, style))?,
            }
            legend.draw(&Text::new(label.as_str(), (42, y - 8), (FONT, 15)))?;
        }
        root.present()?;
        Ok(())
    }
}

/// How a legend entry is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Line,
    Dashed,
    Cross,
}

/// A linear f64 axis with the ticks given (on a compression axis: the powers of ten).
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, (a, b): (i32, i32)) -> i32 {
        let f = (v - self.lo) / (self.hi - self.lo);
        a + (f * f64::from(b - a)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        match hint.max_num_points() {
            0 => vec![],
            _ => self.ticks.clone(),
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

/// Per x of `grid`, the median, min and max over `runs` of each run's value there, where every
/// run has one (the curve stops where a run ends).
///
/// ```
/// let runs = [vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 9.0]];
/// let got = sparse_examples::plot::median_band(&[10.0, 20.0], &runs, |run, i| Some(run[i]));
/// assert_eq!(got, vec![(10.0, 3.0, 1.0, 5.0), (20.0, 4.0, 2.0, 9.0)]);
/// ```
pub fn median_band<R>(
    grid: &[f64],
    runs: &[R],
    at: impl Fn(&R, usize) -> Option<f64>,
) -> Vec<(f64, f64, f64, f64)> {
    let mut out = Vec::new();
    for (i, x) in grid.iter().enumerate() {
        let mut v: Option<Vec<f64>> = runs.iter().map(|r| at(r, i)).collect();
        let Some(v) = v.as_mut().filter(|v| !v.is_empty()) else {
            break;
        };
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        };
        out.push((*x, median, v[0], v[n - 1]));
    }
    out
}
