//! One pass over a large parameter split across rayon's thread pool.
//!
//! Every host pass of this crate is elementwise: entry `i` of each output depends on entry `i`
//! of each input only. Cutting the buffers into contiguous pieces and running the pieces on the
//! pool (the one the CPU backend's ops already use, so its threads are awake right after the
//! backward pass) therefore gives the same bits as one pass. It pays where the pass is long and
//! arithmetic: the fused optimizers' loops with Adam's square root or the decay's `exp` in
//! them. A plain stream through memory (SGD alone, the zeroing of pruned entries) and the
//! decay's own pass before an optimizer that is not fused (whose ops then read the gradient on
//! the calling thread) measured slower split, so they stay whole (docs/BENCHMARKS.md, "The
//! fused passes on the thread pool"), as do short passes.

/// Entries a piece must have at least; a parameter is split only into pieces this long.
pub(crate) const MIN_PIECE: usize = 1 << 15;

/// The buffers of one elementwise pass, cut at an entry.
pub(crate) trait Split: Sized + Send {
    /// Entries in the pass.
    fn len(&self) -> usize;
    /// The entries `..mid` and `mid..`.
    fn split_at(self, mid: usize) -> (Self, Self);
}

/// Threads a pass may use: `SPARSE_REG_THREADS` if set (1 keeps every pass on the calling
/// thread), else rayon's pool size (which follows `RAYON_NUM_THREADS`). A value that is not a
/// positive integer is reported once on stderr and ignored.
pub(crate) fn threads() -> usize {
    static THREADS: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    THREADS
        .get_or_init(|| {
            let value = std::env::var("SPARSE_REG_THREADS").ok();
            parse_threads(value.as_deref()).unwrap_or_else(|message| {
                eprintln!("warning: {message}");
                None
            })
        })
        .unwrap_or_else(rayon::current_num_threads)
        .max(1)
}

/// `SPARSE_REG_THREADS`'s value: none, a positive integer, or an error saying what is expected.
fn parse_threads(value: Option<&str>) -> Result<Option<usize>, String> {
    match value.map(|v| (v, v.trim().parse::<usize>())) {
        None => Ok(None),
        Some((_, Ok(n))) if n > 0 => Ok(Some(n)),
        Some((v, _)) => Err(format!(
            "SPARSE_REG_THREADS={v:?} is not a positive integer (the threads a fused pass may \
             use); using the thread pool's size"
        )),
    }
}

/// How many pieces a pass over `len` entries is cut into on `threads` threads.
pub(crate) fn pieces(len: usize, threads: usize) -> usize {
    (len / MIN_PIECE).clamp(1, threads.max(1))
}

/// Runs `run` over `bufs` cut into `pieces` contiguous pieces (each a multiple of 64 entries
/// long but the last, so that every piece starts on a cache line of the buffers).
pub(crate) fn run_pieces<B: Split>(bufs: B, pieces: usize, run: &(impl Fn(B) + Sync)) {
    if pieces < 2 || bufs.len() < 2 * 64 {
        return run(bufs);
    }
    let left = pieces / 2;
    let mid = (bufs.len() * left / pieces)
        .next_multiple_of(64)
        .min(bufs.len());
    let (a, b) = bufs.split_at(mid);
    rayon::join(
        || run_pieces(a, left, run),
        || run_pieces(b, pieces - left, run),
    );
}

/// `s[..mid]` and `s[mid..]` of an optional buffer.
pub(crate) fn split_opt<T>(
    s: Option<&mut [T]>,
    mid: usize,
) -> (Option<&mut [T]>, Option<&mut [T]>) {
    match s {
        Some(s) => {
            let (a, b) = s.split_at_mut(mid);
            (Some(a), Some(b))
        }
        None => (None, None),
    }
}

/// `s[..mid]` and `s[mid..]` of an optional read-only buffer.
pub(crate) fn split_ref<T>(s: Option<&[T]>, mid: usize) -> (Option<&[T]>, Option<&[T]>) {
    match s {
        Some(s) => {
            let (a, b) = s.split_at(mid);
            (Some(a), Some(b))
        }
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Range(usize, usize);

    impl Split for Range {
        fn len(&self) -> usize {
            self.1 - self.0
        }
        fn split_at(self, mid: usize) -> (Self, Self) {
            (Range(self.0, self.0 + mid), Range(self.0 + mid, self.1))
        }
    }

    /// The pieces cover every entry once, in order, and start on multiples of 64.
    #[test]
    fn pieces_tile_the_pass() {
        for (len, n) in [
            (1000, 3),
            (235_200, 2),
            (235_200, 5),
            (100, 4),
            (7, 2),
            (64 * 9, 9),
        ] {
            let seen = Mutex::new(vec![]);
            run_pieces(Range(0, len), n, &|r: Range| {
                seen.lock().unwrap().push((r.0, r.1))
            });
            let mut seen = seen.into_inner().unwrap();
            seen.sort();
            assert_eq!(seen[0].0, 0, "{len}/{n}");
            assert_eq!(seen.last().unwrap().1, len, "{len}/{n}");
            for w in seen.windows(2) {
                assert_eq!(w[0].1, w[1].0, "{len}/{n}: contiguous");
            }
            assert!(seen.iter().all(|r| r.0 % 64 == 0 && r.0 < r.1), "{seen:?}");
            let expected = if len < 128 { 1 } else { n };
            assert_eq!(seen.len(), expected, "{len}/{n}");
        }
    }

    #[test]
    fn sparse_reg_threads_is_a_positive_integer_or_a_clear_warning() {
        assert_eq!(parse_threads(None), Ok(None));
        assert_eq!(parse_threads(Some("3")), Ok(Some(3)));
        assert_eq!(parse_threads(Some(" 1 ")), Ok(Some(1)));
        for bad in ["0", "two", ""] {
            assert_eq!(
                parse_threads(Some(bad)),
                Err(format!(
                    "SPARSE_REG_THREADS={bad:?} is not a positive integer (the threads a fused \
                     pass may use); using the thread pool's size"
                ))
            );
        }
    }

    #[test]
    fn short_passes_stay_whole() {
        assert_eq!(pieces(1000, 8), 1);
        assert_eq!(pieces(MIN_PIECE * 2 - 1, 8), 1);
        assert_eq!(pieces(MIN_PIECE * 2, 8), 2);
        assert_eq!(pieces(235_200, 2), 2);
        assert_eq!(pieces(235_200, 16), 7);
        assert_eq!(pieces(235_200, 1), 1);
    }
}
