//! The figures of docs/RESULTS.md: one per results table, every method's median curve over
//! its seeds with the min-max band shaded, written into `docs/figures/` beside the records the
//! tables are built from, and linked from the table's section.

use std::path::{Path, PathBuf};

use sparse_examples::plot::{Curve, Figure, Level, PALETTE, XAxis, median_band};

/// One method's runs: its label and, per seed, its checks as `(x, y)` in order.
pub struct Runs {
    /// The table's row label.
    pub label: String,
    /// Per seed, the checks in order.
    pub seeds: Vec<Vec<(f64, f64)>>,
}

/// What a figure shows besides the curves.
pub struct Spec<'a> {
    /// The figure's file name, without `.png`.
    pub name: String,
    /// Title.
    pub title: String,
    /// Axis labels.
    pub x_label: &'a str,
    /// Axis labels.
    pub y_label: &'a str,
    /// Log compression or linear.
    pub x_axis: XAxis,
    /// Reference lines: (label, y, dashed).
    pub levels: Vec<(String, f64, bool)>,
}

/// `docs/figures` when `records` lies under `docs/results/`, else `records/figures` (tests).
pub fn dir(records: &Path) -> PathBuf {
    records
        .ancestors()
        .find(|a| a.ends_with("docs/results"))
        .and_then(Path::parent)
        .map_or_else(|| records.join("figures"), |docs| docs.join("figures"))
}

/// The figure's name for a model under the record directory `records`:
/// `docs/results/reproduce` + `lenet5` -> `reproduce-lenet5`.
pub fn name(records: &Path, model: Option<&str>) -> String {
    let base = records
        .ancestors()
        .find(|a| a.ends_with("docs/results"))
        .and_then(|r| records.strip_prefix(r).ok())
        .unwrap_or(records);
    let mut parts: Vec<String> = base
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.extend(model.map(str::to_string));
    parts.join("-")
}

/// Per x of a grid over the union of the runs' x range, the value of each seed's first check
/// at or past x (the check where the run first reaches that x): median, min and max over the
/// seeds, as long as every seed reaches x.
fn curve(runs: &Runs, grid: &[f64], color: [u8; 3]) -> Curve {
    let at = |seed: &Vec<(f64, f64)>, i: usize| {
        seed.iter()
            .find(|p| p.0 >= grid[i] * (1.0 - 1e-9))
            .map(|p| p.1)
    };
    let band = median_band(grid, &runs.seeds, at);
    Curve {
        label: format!("{} ({} seeds)", runs.label, runs.seeds.len()),
        color,
        points: band.iter().map(|b| (b.0, b.1)).collect(),
        band: band.iter().map(|b| (b.0, b.2, b.3)).collect(),
    }
}

/// The grid of x values: 10 per decade on a compression axis, 1 % steps of sparsity on a
/// linear one, up to the largest x of any run.
fn grid(x_axis: XAxis, runs: &[&Runs]) -> Vec<f64> {
    let xs = || {
        runs.iter()
            .flat_map(|r| r.seeds.iter().flatten())
            .map(|p| p.0)
    };
    let max = xs().fold(0.0f64, f64::max);
    let min = xs().fold(f64::INFINITY, f64::min);
    match x_axis {
        XAxis::Compression => (0..)
            .map(|k| 10f64.powf(f64::from(k) / 10.0))
            .take_while(|x| *x <= max * (1.0 + 1e-9))
            .filter(|x| *x >= min * (1.0 - 1e-9) || *x <= 1.0)
            .collect(),
        XAxis::Linear => (0..)
            .map(f64::from)
            .take_while(|x| *x <= max + 1e-9)
            .filter(|x| *x >= min.floor())
            .collect(),
    }
}

/// Write the figure of `runs` as `dir/NAME.png`; returns the markdown that shows it (a path
/// relative to docs/).
pub fn write(dir: &Path, spec: &Spec, runs: &[Runs]) -> Result<String, String> {
    let runs: Vec<&Runs> = runs.iter().filter(|r| !r.seeds.is_empty()).collect();
    let grid = grid(spec.x_axis, &runs);
    let curves = runs
        .iter()
        .enumerate()
        .map(|(i, r)| curve(r, &grid, PALETTE[i % PALETTE.len()]))
        .collect();
    let figure = Figure {
        title: spec.title.clone(),
        x_label: spec.x_label.into(),
        y_label: spec.y_label.into(),
        x_axis: spec.x_axis,
        curves,
        levels: spec
            .levels
            .iter()
            .map(|(label, y, dashed)| Level {
                label: label.clone(),
                y: *y,
                color: if *dashed { [200, 30, 30] } else { [90, 90, 90] },
                dashed: *dashed,
            })
            .collect(),
        marks: vec![],
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join(format!("{}.png", spec.name));
    figure
        .save_png(&file)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    eprintln!("wrote {}", file.display());
    Ok(format!(
        "\n![{}: median over seeds, min-max shaded](figures/{}.png)\n",
        spec.title, spec.name
    ))
}

/// The median of `values` (NaN for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_places_follow_the_records() {
        let records = Path::new("/w/docs/results/reproduce/text-gated");
        assert_eq!(dir(records), Path::new("/w/docs/figures"));
        assert_eq!(name(records, None), "reproduce-text-gated");
        let records = Path::new("/w/docs/results/reproduce");
        assert_eq!(name(records, Some("lenet5")), "reproduce-lenet5");
        assert_eq!(dir(Path::new("/tmp/x")), Path::new("/tmp/x/figures"));
    }

    #[test]
    fn a_curve_is_the_median_of_the_seeds_while_every_seed_reaches_x() {
        let runs = Runs {
            label: "m".into(),
            seeds: vec![
                vec![(1.0, 90.0), (10.0, 80.0), (100.0, 70.0)],
                vec![(1.0, 92.0), (12.0, 84.0)],
                vec![(1.0, 91.0), (10.0, 82.0), (50.0, 60.0)],
            ],
        };
        let c = curve(&runs, &[1.0, 10.0, 20.0], [0, 0, 0]);
        // At 20x the second seed has no check: the curve ends at 10x.
        assert_eq!(c.points, vec![(1.0, 91.0), (10.0, 82.0)]);
        assert_eq!(c.band, vec![(1.0, 90.0, 92.0), (10.0, 80.0, 84.0)]);
        assert_eq!(c.label, "m (3 seeds)");
    }
}
