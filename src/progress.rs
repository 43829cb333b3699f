//! A one-line progress display on the terminal (stderr): step, loss, validation, sparsity, ETA.

use std::time::Instant;

/// The progress line of the examples. Silent when stderr is not a terminal (logs, CI) or when
/// not wanted (`--quiet`).
///
/// ```
/// let mut line = sparse_examples::progress::ProgressLine::new(false, 100);
/// line.show(10, 0.5, f64::NAN, 0.0); // silent: not wanted
/// line.clear();
/// ```
pub struct ProgressLine {
    on: bool,
    total: u64,
    started: Instant,
    /// The step the clock started at (a resumed run starts late).
    first: Option<u64>,
}

impl ProgressLine {
    /// A line for a run of `total` steps, shown if `wanted` and stderr is a terminal.
    pub fn new(wanted: bool, total: u64) -> Self {
        use std::io::IsTerminal;
        Self {
            on: wanted && std::io::stderr().is_terminal(),
            total,
            started: Instant::now(),
            first: None,
        }
    }

    /// Whether the line is shown.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Redraw: `val` is the last validation metric (NaN before the first check), shown as a
    /// percentage when it is an accuracy (`<= 1`), as is otherwise (e.g. bits per character).
    pub fn show(&mut self, step: u64, loss: f64, val: f64, sparsity: f64) {
        if !self.on {
            return;
        }
        let frac = step as f64 / self.total.max(1) as f64;
        let width = 30;
        let done = ((frac * width as f64) as usize).min(width);
        let first = *self.first.get_or_insert(step);
        let per_step = self.started.elapsed().as_secs_f64() / (step - first).max(1) as f64;
        let eta = per_step * self.total.saturating_sub(step) as f64;
        let val = if val.is_nan() {
            "-".to_string()
        } else if val <= 1.0 {
            format!("{:.2} %", 100.0 * val)
        } else {
            format!("{val:.3}")
        };
        eprint!(
            "\r[{}{}] {step}/{} loss {loss:.4} val {val} sparsity {:.2} % eta {:.0} s   ",
            "#".repeat(done),
            " ".repeat(width - done),
            self.total,
            100.0 * sparsity,
            eta
        );
    }

    /// Erase the line (before other output).
    pub fn clear(&self) {
        if self.on {
            eprint!("\r{}\r", " ".repeat(110));
        }
    }
}
