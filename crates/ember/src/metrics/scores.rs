//! Scores for binary classifiers (ROC AUC) and regressors (RMSE, MAE, R²).

use serde::Serialize;

/// Area under the ROC curve: the probability that a random positive scores above a random
/// negative (ties count half). None when only one class is present.
pub fn roc_auc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mann–Whitney U from average ranks.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += (i..=j).filter(|&k| positive[order[k]]).count() as f64 * average_rank;
        i = j + 1;
    }
    let p = positive.iter().filter(|&&x| x).count() as f64;
    let n = positive.len() as f64 - p;
    if p == 0.0 || n == 0.0 {
        return None;
    }
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Errors of a regressor, in target units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RegressionScores {
    pub rmse: f64,
    pub mae: f64,
    /// Coefficient of determination: 1 - SS_res / SS_tot (scikit-learn's `r2_score`).
    pub r2: f64,
}

pub fn regression_scores(predicted: &[f64], truth: &[f64]) -> RegressionScores {
    let n = truth.len().max(1) as f64;
    let mean = truth.iter().sum::<f64>() / n;
    let ss_res: f64 = predicted
        .iter()
        .zip(truth)
        .map(|(p, t)| (p - t).powi(2))
        .sum();
    let ss_tot: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    RegressionScores {
        rmse: (ss_res / n).sqrt(),
        mae: predicted
            .iter()
            .zip(truth)
            .map(|(p, t)| (p - t).abs())
            .sum::<f64>()
            / n,
        // scikit-learn's r2_score: of a constant target, 1 if the prediction is perfect, else 0.
        r2: match (ss_tot > 0.0, ss_res == 0.0) {
            (true, _) => 1.0 - ss_res / ss_tot,
            (false, true) => 1.0,
            (false, false) => 0.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_by_hand() {
        // scikit-learn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12);
        // Ties count half: all equal → 0.5.
        assert_eq!(roc_auc(&[0.5; 4], &[false, true, false, true]), Some(0.5));
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn regression_by_hand() {
        // truth [3, -0.5, 2, 7], predicted [2.5, 0, 2, 8]: MSE 0.375, MAE 0.5, R² 0.9486
        let s = regression_scores(&[2.5, 0.0, 2.0, 8.0], &[3.0, -0.5, 2.0, 7.0]);
        assert!((s.rmse - 0.375f64.sqrt()).abs() < 1e-12);
        assert!((s.mae - 0.5).abs() < 1e-12);
        assert!((s.r2 - 0.948_608_137).abs() < 1e-8);
        // scikit-learn's r2_score of a constant target: 1 if perfect, else 0.
        assert_eq!(regression_scores(&[2.0, 2.0], &[2.0, 2.0]).r2, 1.0);
        assert_eq!(regression_scores(&[2.0, 3.0], &[2.0, 2.0]).r2, 0.0);
    }
}
