//! Choosing exactly which alive entries to prune: the k lowest scores, globally or per tensor,
//! with ties broken by (tensor, index) order and an optional minimum of alive entries per tensor.

/// One tensor as the selection sees it.
pub(crate) struct Candidate<'a> {
    /// One score per entry.
    pub scores: &'a [f32],
    /// `true` where already pruned (never selected again).
    pub pruned: &'a [bool],
    /// Entries of this tensor that must stay alive.
    pub min_keep: usize,
    /// Entries not pruned yet (counted once).
    alive: usize,
}

impl<'a> Candidate<'a> {
    pub fn new(scores: &'a [f32], pruned: &'a [bool], min_keep: usize) -> Self {
        let alive = pruned.iter().filter(|p| !**p).count();
        Self {
            scores,
            pruned,
            min_keep,
            alive,
        }
    }
    pub fn alive(&self) -> usize {
        self.alive
    }
    /// How many entries may still be removed.
    pub fn capacity(&self) -> usize {
        self.alive.saturating_sub(self.min_keep)
    }
}

/// A `u32` whose order is `f32::total_cmp`'s: integer compares instead of float ones, and a
/// plain `select_nth_unstable` on them.
#[inline]
fn key(s: f32) -> u32 {
    let b = s.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

/// The `k` lowest-scored alive entries across `tensors` (per tensor: flat indices, ascending).
/// NaN scores order above every number (NaN weights are never pruned silently in their
/// place). Asking for more than are alive prunes all alive entries.
///
/// A radix select: a histogram of the top 16 bits of each score's order key finds the bucket
/// that holds the k-th score; one more pass keeps every entry below that bucket and collects
/// the bucket (a small fraction of the entries), in which the exact threshold and ties are
/// settled. No copy of all scores, two passes over them.
pub(crate) fn lowest_k(tensors: &[&Candidate], k: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = tensors.iter().map(|_| vec![]).collect();
    let alive: usize = tensors.iter().map(|t| t.alive).sum();
    let k = k.min(alive);
    if k == 0 {
        return out;
    }
    let mut hist = vec![0usize; 1 << 16];
    for t in tensors {
        for (_, key) in alive_keys(t) {
            hist[(key >> 16) as usize] += 1;
        }
    }
    let (mut bucket, mut below) = (0usize, 0usize);
    while below + hist[bucket] < k {
        below += hist[bucket];
        bucket += 1;
    }
    let need = k - below; // taken from the bucket, >= 1
    // Every entry under the bucket is taken; the bucket's entries wait, in (tensor, index) order.
    let mut waiting: Vec<Vec<(usize, u32)>> = tensors.iter().map(|_| vec![]).collect();
    for ((t, sel), wait) in tensors.iter().zip(out.iter_mut()).zip(waiting.iter_mut()) {
        for (i, key) in alive_keys(t) {
            let b = (key >> 16) as usize;
            if b < bucket {
                sel.push(i);
            } else if b == bucket {
                wait.push((i, key));
            }
        }
    }
    let mut keys: Vec<u32> = waiting.iter().flatten().map(|(_, k)| *k).collect();
    let thr = *keys.select_nth_unstable(need - 1).1;
    let mut ties = need - keys.iter().filter(|k| **k < thr).count();
    for (sel, wait) in out.iter_mut().zip(waiting) {
        let picked: Vec<usize> = wait
            .into_iter()
            .filter(|(_, key)| {
                *key < thr
                    || (*key == thr && ties > 0 && {
                        ties -= 1;
                        true
                    })
            })
            .map(|(i, _)| i)
            .collect();
        if !picked.is_empty() {
            *sel = merge(sel, &picked);
        }
    }
    out
}

/// `(index, key)` of the alive entries of a tensor.
fn alive_keys<'a>(t: &Candidate<'a>) -> impl Iterator<Item = (usize, u32)> + use<'a> {
    let (scores, pruned) = (t.scores, t.pruned);
    scores
        .iter()
        .zip(pruned)
        .enumerate()
        .filter(|(_, (_, p))| !**p)
        .map(|(i, (s, _))| (i, key(*s)))
}

/// Two ascending lists as one.
fn merge(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] < b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Global selection of `k` entries honouring each tensor's `min_keep` (water-filling: a tensor
/// that would go under its minimum keeps its minimum and the rest is taken from the others).
pub(crate) fn global(tensors: &[Candidate], k: usize) -> Vec<Vec<usize>> {
    let n = tensors.len();
    let mut capped: Vec<Option<usize>> = vec![None; n];
    let total_capacity: usize = tensors.iter().map(|t| t.capacity()).sum();
    let k = k.min(total_capacity);
    loop {
        let free: Vec<usize> = (0..n).filter(|i| capped[*i].is_none()).collect();
        let taken: usize = capped.iter().flatten().sum();
        let refs: Vec<&Candidate> = free.iter().map(|i| &tensors[*i]).collect();
        let picks = lowest_k(&refs, k - taken);
        let mut over = false;
        for (j, &i) in free.iter().enumerate() {
            if picks[j].len() > tensors[i].capacity() {
                capped[i] = Some(tensors[i].capacity());
                over = true;
            }
        }
        if !over {
            let mut out: Vec<Vec<usize>> = vec![vec![]; n];
            for (j, &i) in free.iter().enumerate() {
                out[i] = picks[j].clone();
            }
            for i in 0..n {
                if let Some(c) = capped[i] {
                    out[i] = lowest_k(&[&tensors[i]], c).remove(0);
                }
            }
            return out;
        }
    }
}

/// Per-tensor selection: `k[i]` entries from tensor `i`, each capped by its `min_keep`.
pub(crate) fn layer_wise(tensors: &[Candidate], k: &[usize]) -> Vec<Vec<usize>> {
    tensors
        .iter()
        .zip(k)
        .map(|(t, k)| lowest_k(&[t], (*k).min(t.capacity())).remove(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand<'a>(scores: &'a [f32], pruned: &'a [bool], min_keep: usize) -> Candidate<'a> {
        Candidate::new(scores, pruned, min_keep)
    }

    #[test]
    fn picks_exactly_k_with_ties_in_index_order() {
        let s1 = [1.0, 0.5, 0.5, 3.0];
        let s2 = [0.5, 0.1, 2.0];
        let p1 = [false; 4];
        let p2 = [false; 3];
        let t = [cand(&s1, &p1, 0), cand(&s2, &p2, 0)];
        // 0.1 first, then three 0.5s of which two are taken: tensor order, then index order.
        assert_eq!(global(&t, 3), vec![vec![1, 2], vec![1]]);
        assert_eq!(global(&t, 4), vec![vec![1, 2], vec![0, 1]]);
        assert_eq!(global(&t, 0), vec![Vec::<usize>::new(), vec![]]);
        assert_eq!(global(&t, 100), vec![vec![0, 1, 2, 3], vec![0, 1, 2]]);
    }

    #[test]
    fn pruned_entries_are_never_selected_again() {
        let s = [0.0, 0.0, 5.0, 1.0];
        let p = [true, true, false, false];
        assert_eq!(global(&[cand(&s, &p, 0)], 1), vec![vec![3]]);
    }

    #[test]
    fn min_keep_redirects_the_removal_to_other_tensors() {
        let small = [0.0, 0.0, 0.0, 0.0];
        let big = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let p4 = [false; 4];
        let p6 = [false; 6];
        let t = [cand(&small, &p4, 2), cand(&big, &p6, 0)];
        // Without the minimum all four zeros would go first.
        assert_eq!(global(&t, 5), vec![vec![0, 1], vec![0, 1, 2]]);
    }

    #[test]
    fn layer_wise_takes_its_own_count_from_each() {
        let a = [3.0, 1.0, 2.0];
        let b = [9.0, 8.0];
        let pa = [false; 3];
        let pb = [false; 2];
        let t = [cand(&a, &pa, 0), cand(&b, &pb, 1)];
        assert_eq!(layer_wise(&t, &[2, 2]), vec![vec![1, 2], vec![1]]);
    }

    /// The selection against sorting every alive (score, tensor, index), on random scores
    /// with many ties and across bucket edges.
    #[test]
    fn matches_a_full_sort() {
        let mut seed = 17u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        for round in 0..50 {
            let sizes = [1 + next() as usize % 300, 1 + next() as usize % 300];
            let scores: Vec<Vec<f32>> = sizes
                .iter()
                .map(|n| {
                    (0..*n)
                        .map(|_| match round % 3 {
                            0 => (next() % 7) as f32 * 0.25 - 0.5,
                            1 => f32::from_bits(next()),
                            _ => (next() as f32 / u32::MAX as f32) * 1e-3,
                        })
                        .collect()
                })
                .collect();
            let pruned: Vec<Vec<bool>> = sizes
                .iter()
                .map(|n| (0..*n).map(|_| next() % 4 == 0).collect())
                .collect();
            let t: Vec<Candidate> = (0..2).map(|i| cand(&scores[i], &pruned[i], 0)).collect();
            let mut all: Vec<(f32, usize, usize)> = Vec::new();
            for (ti, (s, p)) in scores.iter().zip(&pruned).enumerate() {
                for (i, (v, d)) in s.iter().zip(p).enumerate() {
                    if !d {
                        all.push((*v, ti, i));
                    }
                }
            }
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
            let k = next() as usize % (all.len() + 2);
            let mut want = vec![vec![], vec![]];
            for (_, ti, i) in all.iter().take(k) {
                want[*ti].push(*i);
            }
            want.iter_mut().for_each(|w| w.sort_unstable());
            assert_eq!(global(&t, k), want, "round {round}, k {k}");
        }
    }

    #[test]
    fn nan_scores_are_pruned_last() {
        let s = [f32::NAN, 1.0, 2.0];
        let p = [false; 3];
        assert_eq!(global(&[cand(&s, &p, 0)], 2), vec![vec![1, 2]]);
    }
}
