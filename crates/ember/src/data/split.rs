//! Splits: stratified train / test splits, k-fold cross-validation and the Poisson-sampled
//! batches of private training, seeded.

use crate::error::{Error, Result};
use crate::tensor::random::Rng;

/// One epoch of Poisson-sampled batches over rows `0..rows` at sampling rate `q`, as Opacus's
/// DPDataLoader draws them (the sampling DP-SGD's accountants assume): ⌊1 / q⌋ batches, each
/// row in each batch independently with probability q, so a batch's size varies (about
/// q · rows; it may be empty) and a row may be in several batches of an epoch or in none.
pub fn poisson_batches(rows: usize, q: f64, rng: &mut Rng) -> Result<Vec<Vec<usize>>> {
    if !(q > 0.0 && q <= 1.0) {
        return Err(Error::invalid(format!(
            "the sampling rate must lie in (0, 1], got {q}"
        )));
    }
    // ⌊1 / q⌋ batches of `rows` draws each: bounded so that an absurd rate is an error, not
    // an epoch of billions of draws.
    let batches = (1.0 / q).floor() as usize;
    if batches.saturating_mul(rows) > 1 << 36 {
        return Err(Error::invalid(format!(
            "sampling rate {q} over {rows} rows is {batches} batches of {rows} draws an epoch: \
             too many"
        )));
    }
    Ok((0..batches)
        .map(|_| (0..rows).filter(|_| rng.uniform_f64() < q).collect())
        .collect())
}

/// Splits `0..n` into shuffled (train, test) indices with `test_fraction` of each class in
/// the test part (of all samples, when `classes` is None).
pub fn train_test_split(
    n: usize,
    classes: Option<&[usize]>,
    test_fraction: f32,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(Error::invalid(format!(
            "the test fraction must be in (0, 1), got {test_fraction}"
        )));
    }
    let mut rng = Rng::seed(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for mut group in groups(n, classes) {
        rng.shuffle(&mut group);
        let k = (group.len() as f64 * test_fraction as f64).round() as usize;
        test.extend_from_slice(&group[..k]);
        train.extend_from_slice(&group[k..]);
    }
    if train.is_empty() || test.is_empty() {
        let samples = match n {
            1 => "1 sample is".to_string(),
            n => format!("{n} samples are"),
        };
        return Err(Error::invalid(format!(
            "{samples} too few to split into training and test sets with test size \
             {test_fraction}: each set needs at least one"
        )));
    }
    rng.shuffle(&mut train);
    rng.shuffle(&mut test);
    Ok((train, test))
}

/// `k` (train, validation) folds over `0..n`, stratified by `classes` when given: every
/// index is in exactly one validation fold.
pub fn k_fold(
    n: usize,
    k: usize,
    classes: Option<&[usize]>,
    seed: u64,
) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
    if k < 2 || k > n {
        return Err(Error::invalid(format!("cannot make {k} folds of {n} rows")));
    }
    let mut rng = Rng::seed(seed);
    let mut folds = vec![Vec::new(); k];
    // Deal each shuffled class round-robin, continuing where the previous class stopped,
    // so fold sizes differ by at most one.
    let mut next = 0;
    for mut group in groups(n, classes) {
        rng.shuffle(&mut group);
        for i in group {
            folds[next % k].push(i);
            next += 1;
        }
    }
    Ok((0..k)
        .map(|f| {
            let mut train: Vec<usize> = (0..k)
                .filter(|&g| g != f)
                .flat_map(|g| folds[g].iter().copied())
                .collect();
            rng.shuffle(&mut train);
            (train, folds[f].clone())
        })
        .collect())
}

fn groups(n: usize, classes: Option<&[usize]>) -> Vec<Vec<usize>> {
    match classes {
        None => vec![(0..n).collect()],
        Some(labels) => {
            let count = labels.iter().copied().max().map_or(0, |m| m + 1);
            let mut groups = vec![Vec::new(); count];
            for (i, &c) in labels.iter().enumerate() {
                groups[c].push(i);
            }
            groups
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_split_keeps_class_proportions() {
        let classes: Vec<usize> = (0..100).map(|i| if i < 80 { 0 } else { 1 }).collect();
        let (train, test) = train_test_split(100, Some(&classes), 0.2, 1).unwrap();
        assert_eq!((train.len(), test.len()), (80, 20));
        assert_eq!(test.iter().filter(|&&i| classes[i] == 1).count(), 4);
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(
            train_test_split(100, Some(&classes), 0.2, 1).unwrap().1,
            test,
            "seeded"
        );
        assert_ne!(
            train_test_split(100, Some(&classes), 0.2, 2).unwrap().1,
            test
        );
        assert!(train_test_split(1, None, 0.2, 1).is_err());
        assert!(train_test_split(10, None, 1.0, 1).is_err());
    }

    #[test]
    fn folds_partition_the_rows() {
        let classes: Vec<usize> = (0..23).map(|i| i % 3).collect();
        let folds = k_fold(23, 5, Some(&classes), 7).unwrap();
        let mut seen: Vec<usize> = folds.iter().flat_map(|(_, v)| v.clone()).collect();
        seen.sort();
        assert_eq!(seen, (0..23).collect::<Vec<_>>());
        for (train, validation) in &folds {
            assert_eq!(train.len() + validation.len(), 23);
            assert!((4..=5).contains(&validation.len()));
        }
        assert!(k_fold(3, 5, None, 1).is_err());
    }

    #[test]
    fn poisson_batches_draw_each_row_with_the_sampling_rate() {
        let (rows, q) = (1000, 0.01);
        let mut rng = Rng::seed(5);
        let epochs: Vec<Vec<Vec<usize>>> = (0..20)
            .map(|_| poisson_batches(rows, q, &mut rng).unwrap())
            .collect();
        // ⌊1/q⌋ batches an epoch, rows in order, each drawn with probability q: over 20
        // epochs × 100 batches the mean size is q · rows = 10 (standard error 0.07).
        assert!(epochs.iter().all(|e| e.len() == 100));
        let sizes: Vec<usize> = epochs.iter().flatten().map(Vec::len).collect();
        let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        assert!((mean - 10.0).abs() < 0.3, "mean batch {mean}");
        // Sizes vary as a binomial's (variance ≈ 9.9), not fixed.
        let var = sizes
            .iter()
            .map(|&s| (s as f64 - mean).powi(2))
            .sum::<f64>()
            / sizes.len() as f64;
        assert!((var - 9.9).abs() < 1.5, "variance {var}");
        for b in epochs.iter().flatten() {
            assert!(b.windows(2).all(|w| w[0] < w[1]) && b.iter().all(|&r| r < rows));
        }
        // The same seed, the same batches.
        let again = poisson_batches(rows, q, &mut Rng::seed(5)).unwrap();
        assert_eq!(again, epochs[0]);
        // A rate of 1: one batch of every row.
        assert_eq!(
            poisson_batches(3, 1.0, &mut rng).unwrap(),
            vec![vec![0, 1, 2]]
        );
        // Tiny rates give empty batches; bad rates are errors.
        let sparse = poisson_batches(10, 0.001, &mut rng).unwrap();
        assert!(sparse.iter().any(Vec::is_empty));
        for q in [0.0, -0.5, 1.5, f64::NAN] {
            assert!(poisson_batches(10, q, &mut rng).is_err(), "{q}");
        }
        assert!(poisson_batches(1 << 30, 1e-9, &mut rng).is_err());
    }
}
