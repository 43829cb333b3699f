//! Seeded orders: the shuffle of each training epoch and the validation split.

use crate::DataError;

/// A seeded permutation of `0..n` (64-bit LCG Fisher-Yates): the order of one training epoch.
/// The same `(n, seed)` gives the same order on every machine, so a resumed run replays the
/// batches an uninterrupted one would have seen.
///
/// ```
/// let order = sparse_data::epoch_order(5, 7);
/// let mut sorted = order.clone();
/// sorted.sort();
/// assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
/// assert_eq!(order, sparse_data::epoch_order(5, 7));
/// ```
pub fn epoch_order(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut s = seed;
    for i in (1..n).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, ((s >> 33) % (i as u64 + 1)) as usize);
    }
    order
}

/// `(train, validation)` indices, each ascending: a seeded split of `0..n` (splitmix64
/// Fisher-Yates), shared by every data set so that a seed means the same split everywhere.
/// Errors when `n_val` leaves no training image.
pub(crate) fn validation_indices(
    n: usize,
    n_val: usize,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    if n_val >= n {
        return Err(DataError::new(
            "<validation split>",
            format!("{n_val} validation images requested from a set of {n}: expected fewer"),
        ));
    }
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = seed;
    for i in (1..order.len()).rev() {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        order.swap(i, (z % (i as u64 + 1)) as usize);
    }
    let (val_idx, train_idx) = order.split_at(n_val);
    let mut val_idx = val_idx.to_vec();
    let mut train_idx = train_idx.to_vec();
    val_idx.sort_unstable();
    train_idx.sort_unstable();
    Ok((train_idx, val_idx))
}
