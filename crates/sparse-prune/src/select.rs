//! Choosing exactly which alive entries to prune: the k lowest scores, globally or per tensor,
//! with ties broken by (tensor, index) order and an optional minimum of alive entries per tensor.

use std::cmp::Ordering;

/// One tensor as the selection sees it.
pub(crate) struct Candidate<'a> {
    /// One score per entry.
    pub scores: &'a [f32],
    /// `true` where already pruned (never selected again).
    pub pruned: &'a [bool],
    /// Entries of this tensor that must stay alive.
    pub min_keep: usize,
}

impl Candidate<'_> {
    pub fn alive(&self) -> usize {
        self.pruned.iter().filter(|p| !**p).count()
    }
    /// How many entries may still be removed.
    pub fn capacity(&self) -> usize {
        self.alive().saturating_sub(self.min_keep)
    }
}

/// The `k` lowest-scored alive entries across `tensors` (per tensor: flat indices, ascending).
/// NaN scores order above every number (NaN weights are never pruned silently in their
/// place). Asking for more than are alive prunes all alive entries.
pub(crate) fn lowest_k(tensors: &[&Candidate], k: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = tensors.iter().map(|_| vec![]).collect();
    if k == 0 {
        return out;
    }
    let mut pool: Vec<f32> = tensors
        .iter()
        .flat_map(|t| {
            t.scores
                .iter()
                .zip(t.pruned)
                .filter(|(_, p)| !**p)
                .map(|(s, _)| *s)
        })
        .collect();
    if pool.is_empty() {
        return out;
    }
    let k = k.min(pool.len());
    let (_, thr, _) = pool.select_nth_unstable_by(k - 1, f32::total_cmp);
    let thr = *thr;
    drop(pool);
    let less: usize = tensors
        .iter()
        .map(|t| {
            t.scores
                .iter()
                .zip(t.pruned)
                .filter(|(s, p)| !**p && s.total_cmp(&thr) == Ordering::Less)
                .count()
        })
        .sum();
    let mut ties = k - less;
    for (t, sel) in tensors.iter().zip(out.iter_mut()) {
        for (i, (s, p)) in t.scores.iter().zip(t.pruned).enumerate() {
            if *p {
                continue;
            }
            match s.total_cmp(&thr) {
                Ordering::Less => sel.push(i),
                Ordering::Equal if ties > 0 => {
                    ties -= 1;
                    sel.push(i)
                }
                _ => {}
            }
        }
    }
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
        Candidate {
            scores,
            pruned,
            min_keep,
        }
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

    #[test]
    fn nan_scores_are_pruned_last() {
        let s = [f32::NAN, 1.0, 2.0];
        let p = [false; 3];
        assert_eq!(global(&[cand(&s, &p, 0)], 2), vec![vec![1, 2]]);
    }
}
