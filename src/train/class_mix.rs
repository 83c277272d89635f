//! Class labels for sampling a class-conditional model in its training data's proportions.

use crate::error::{Error, Result};

/// Items per class in `labels` (class indices below `classes`; others are not counted).
pub fn class_counts<L: Copy + Into<u64>>(labels: &[L], classes: usize) -> Vec<u64> {
    let mut counts = vec![0u64; classes];
    for &l in labels {
        if let Some(c) = usize::try_from(l.into())
            .ok()
            .and_then(|i| counts.get_mut(i))
        {
            *c += 1;
        }
    }
    counts
}

/// `n` class labels in the proportions of `counts` (items per class in the training data).
///
/// Class k gets ⌊n·c_k/Σc⌋ labels and the remaining ones go to the largest remainders (Hamilton's
/// method, ties to the lower class), so every count is within one of n·c_k/Σc. The labels are
/// interleaved: each class is spread evenly over the sequence (the j-th of m_k labels of class k
/// sits at position (j + ½)/m_k), so any prefix, e.g. a sample grid, shows the mix too.
pub fn proportional_classes(counts: &[u64], n: usize) -> Result<Vec<usize>> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Err(Error::config(
            "class_counts",
            "no items in any class: there are no proportions to sample in",
        ));
    }
    let exact: Vec<f64> = counts
        .iter()
        .map(|&c| n as f64 * c as f64 / total as f64)
        .collect();
    let mut alloc: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    let missing = n - alloc.iter().sum::<usize>();
    for &k in order.iter().take(missing) {
        alloc[k] += 1;
    }
    let mut slots: Vec<(f64, usize)> = alloc
        .iter()
        .enumerate()
        .flat_map(|(k, &m)| (0..m).map(move |j| ((j as f64 + 0.5) / m as f64, k)))
        .collect();
    slots.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok(slots.into_iter().map(|(_, k)| k).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels per class among sampled `labels`.
    fn tally(labels: &[usize], classes: usize) -> Vec<u64> {
        let as_u64: Vec<u64> = labels.iter().map(|&k| k as u64).collect();
        class_counts(&as_u64, classes)
    }

    #[test]
    fn counts_follow_the_data_within_one() {
        // The LArTPC simulator's mix: 30 % track, 30 % shower, 30 % mixed, 10 % background.
        let counts = class_counts(&[0u32, 1, 2, 0, 1, 2, 0, 1, 2, 3], 4);
        assert_eq!(counts, vec![3, 3, 3, 1]);
        let labels = proportional_classes(&counts, 1000).unwrap();
        assert_eq!(tally(&labels, 4), vec![300, 300, 300, 100]);
        // Uneven: 10 items of 1:2:4 are 1.43, 2.86, 5.71 → floors 1, 2, 5, and the two left
        // over go to the largest remainders (0.86, 0.71) → 1, 3, 6.
        let labels = proportional_classes(&[1, 2, 4], 10).unwrap();
        assert_eq!(tally(&labels, 3), vec![1, 3, 6]);
        for n in 0..50 {
            let l = proportional_classes(&[5, 0, 11, 2], n).unwrap();
            assert_eq!(l.len(), n);
            let c = tally(&l, 4);
            for (k, &ck) in c.iter().enumerate() {
                let exact = n as f64 * [5.0, 0.0, 11.0, 2.0][k] / 18.0;
                assert!(
                    (ck as f64 - exact).abs() < 1.0,
                    "n {n} class {k}: {ck} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn classes_are_interleaved_and_empty_counts_refused() {
        let l = proportional_classes(&[3, 3, 3, 1], 20).unwrap();
        // Every window of ten labels holds each of the three common classes.
        for w in l.windows(10) {
            for k in 0..3 {
                assert!(w.contains(&k), "{l:?}");
            }
        }
        assert!(proportional_classes(&[0, 0], 5).is_err());
        assert!(proportional_classes(&[], 5).is_err());
    }
}
