//! Statistics and norms, the one copy of each: a sample's mean and standard deviation,
//! per-column moments and standardisation, L2 norms and normalisation.

/// The mean and standard deviation of `values`, the sum of squares divided by n − `ddof`
/// (NumPy's `std(ddof=…)`: 0 for the population's, 1 for the sample's). (0, 0) when empty;
/// the standard deviation is 0 when n ≤ `ddof`.
pub fn mean_std(values: &[f64], ddof: usize) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let squares = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>();
    let dof = values.len().saturating_sub(ddof);
    let std = match dof {
        0 => 0.0,
        dof => (squares / dof as f64).sqrt(),
    };
    (mean, std)
}

/// Each column's mean and (population) variance over the rows of `x` (rows of `width`),
/// summed in f64: thousands of rows of f32 would otherwise lose digits.
pub fn column_moments(x: &[f32], width: usize) -> (Vec<f64>, Vec<f64>) {
    let mut sum = vec![0.0f64; width];
    let mut squares = vec![0.0f64; width];
    for row in x.chunks_exact(width.max(1)) {
        for ((s, q), &v) in sum.iter_mut().zip(&mut squares).zip(row) {
            *s += v as f64;
            *q += v as f64 * v as f64;
        }
    }
    let n = (x.len() / width.max(1)).max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let variance = squares
        .iter()
        .zip(&mean)
        .map(|(q, m)| (q / n - m * m).max(0.0))
        .collect();
    (mean, variance)
}

/// `(x − mean) / scale`, column by column, in place (rows of `mean.len()`).
pub fn standardize_columns(x: &mut [f32], mean: &[f32], scale: &[f32]) {
    for row in x.chunks_exact_mut(mean.len().max(1)) {
        for ((v, m), s) in row.iter_mut().zip(mean).zip(scale) {
            *v = (*v - m) / s;
        }
    }
}

/// The Euclidean norm `√Σ x²`.
pub fn l2_norm(x: &[f32]) -> f32 {
    x.iter().map(|v| v * v).sum::<f32>().sqrt()
}

/// Divides `x` by its norm, as PyTorch's `F.normalize`: by max(‖x‖, 1e-12), so that a zero
/// vector stays zero.
pub fn l2_normalize(x: &mut [f32]) {
    let norm = l2_norm(x).max(1e-12);
    x.iter_mut().for_each(|v| *v /= norm);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_by_hand() {
        let (mean, std) = mean_std(&[1.0, 2.0, 3.0, 4.0], 0);
        assert_eq!(mean, 2.5);
        assert!((std - 1.25f64.sqrt()).abs() < 1e-12);
        let (_, sample) = mean_std(&[1.0, 2.0, 3.0, 4.0], 1);
        assert!((sample - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_std(&[7.0], 1), (7.0, 0.0));
        assert_eq!(mean_std(&[], 0), (0.0, 0.0));
        let (m, v) = column_moments(&[1.0, 10.0, 3.0, 30.0], 2);
        assert_eq!(m, [2.0, 20.0]);
        assert_eq!(v, [1.0, 100.0]);
        let mut x = [1.0, 10.0, 3.0, 30.0];
        standardize_columns(&mut x, &[2.0, 20.0], &[1.0, 10.0]);
        assert_eq!(x, [-1.0, -1.0, 1.0, 1.0]);
        let mut v = [3.0, 4.0];
        assert_eq!(l2_norm(&v), 5.0);
        l2_normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut zero = [0.0, 0.0];
        l2_normalize(&mut zero);
        assert_eq!(zero, [0.0, 0.0]);
    }
}
