//! The progress bar of the examples ([`indicatif`], on stderr): step, loss, validation,
//! sparsity, ETA.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress bar of the examples. Hidden when stderr is not a terminal (logs, CI) or when
/// not wanted (`--quiet`).
///
/// ```
/// let mut line = sparse_examples::progress::ProgressLine::new(false, 100);
/// assert!(!line.is_on());
/// line.show(10, 0.5, f64::NAN, 0.0); // hidden: not wanted
/// line.clear();
/// ```
pub struct ProgressLine {
    /// The bar's owner: it can erase the bar and draw it again later.
    lines: MultiProgress,
    bar: ProgressBar,
    /// Whether a step was shown (the ETA starts at the first one: a resumed run starts late).
    started: bool,
}

impl ProgressLine {
    /// A bar for a run of `total` steps, shown if `wanted` and stderr is a terminal.
    pub fn new(wanted: bool, total: u64) -> Self {
        let target = match wanted {
            true => ProgressDrawTarget::stderr(),
            false => ProgressDrawTarget::hidden(),
        };
        let lines = MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template("[{bar:30}] {pos}/{len} {msg} eta {eta} ")
            .expect("a valid template")
            .progress_chars("#> ");
        let bar = lines.add(ProgressBar::new(total).with_style(style));
        Self {
            lines,
            bar,
            started: false,
        }
    }

    /// Whether the bar is shown.
    pub fn is_on(&self) -> bool {
        !self.lines.is_hidden()
    }

    /// Redraw: `val` is the last validation metric (NaN before the first check), shown as a
    /// percentage when it is an accuracy (`<= 1`), as is otherwise (e.g. bits per character).
    pub fn show(&mut self, step: u64, loss: f64, val: f64, sparsity: f64) {
        let val = if val.is_nan() {
            "-".to_string()
        } else if val <= 1.0 {
            format!("{:.2} %", 100.0 * val)
        } else {
            format!("{val:.3}")
        };
        self.bar.set_message(format!(
            "loss {loss:.4} val {val} sparsity {:.2} %",
            100.0 * sparsity
        ));
        self.bar.set_position(step);
        if !self.started {
            self.started = true;
            self.bar.reset_eta();
        }
    }

    /// Erase the bar (before other output); the next [`show`](Self::show) draws it again.
    pub fn clear(&self) {
        let _ = self.lines.clear();
    }
}
