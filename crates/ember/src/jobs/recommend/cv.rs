//! k-fold cross-validation of a recommender over a ratings file (Surprise's protocol:
//! seeded random folds), every fold's figures beside its baselines'.

use std::path::PathBuf;
use std::time::Instant;

use super::{read_ratings, RecommendEvent, RecommendSettings};
use crate::data::interactions::{InteractionOptions, Interactions};
use crate::data::side_features::SideFeatures;
use crate::error::{Error, Result};
use crate::jobs::cv::figure_over_folds;
use crate::recommend::{self, EvaluateOptions, RecommendConfig};
use crate::tensor::stats;

/// What to cross-validate.
#[derive(Clone, Debug)]
pub struct RecommendCv {
    /// The ratings file.
    pub ratings: PathBuf,
    /// How to read it.
    pub read: InteractionOptions,
    pub settings: RecommendSettings,
    /// Number of folds.
    pub folds: usize,
    /// Seed of the folds (default: the settings' seed).
    pub fold_seed: Option<u64>,
    pub evaluate: EvaluateOptions,
}

/// One fold's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldFigures {
    /// The model's: RMSE and MAE (for a model that predicts ratings), Precision@k, NDCG@k.
    pub figures: Vec<(String, f64)>,
    /// Each baseline's headline figure: RMSE where it predicts ratings, else Precision@k.
    pub baselines: Vec<(String, f64)>,
    /// Training time.
    pub seconds: f64,
}

/// A figure over the folds.
#[derive(Clone, Debug, PartialEq)]
pub struct FigureSummary {
    pub name: String,
    pub mean: f64,
    /// The population standard deviation over the folds (Surprise's).
    pub std: f64,
}

/// The seeded random folds of `data`'s ratings, (train rows, test rows) each; refuses more
/// folds than ratings.
pub fn folds(
    data: &Interactions,
    folds: usize,
    seed: u64,
) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
    if folds < 2 {
        return Err(Error::invalid(format!(
            "--folds {folds}: cross-validation needs at least 2 folds"
        )));
    }
    if folds > data.len() {
        return Err(Error::invalid(format!(
            "--folds {folds} is more than the {} ratings",
            data.len()
        )));
    }
    Ok(recommend::k_folds(data.len(), folds, seed))
}

/// Reads the ratings and trains and evaluates a recommender on each fold in turn;
/// `on_event` hears of the reading and of each fold as it ends. Returns every figure, the
/// model's then the baselines', over the folds.
pub fn cross_validate(
    job: &RecommendCv,
    mut on_event: impl FnMut(RecommendEvent),
) -> Result<Vec<FigureSummary>> {
    job.settings.config(job.read.implicit)?;
    super::untimed(&job.read)?;
    let data = read_ratings(&job.ratings, &job.read, &mut on_event)?;
    let config = job.settings.config(!data.explicit)?;
    let folds = folds(&data, job.folds, job.fold_seed.unwrap_or(config.seed))?;
    let (users, items) = job.settings.read_tables(&mut on_event)?;
    on_event(RecommendEvent::CrossValidating {
        data: &data,
        folds: folds.len(),
        model: config.model,
    });
    let side = (users.as_ref(), items.as_ref());
    let mut table: Vec<(String, Vec<f64>)> = Vec::new();
    for (f, (train_rows, test_rows)) in folds.iter().enumerate() {
        let fold = fold_figures(&data, (train_rows, test_rows), side, &config, &job.evaluate)?;
        on_event(RecommendEvent::Fold(f, &fold));
        for (i, (name, v)) in fold.figures.into_iter().chain(fold.baselines).enumerate() {
            if table.len() <= i {
                table.push((name, Vec::new()));
            }
            table[i].1.push(v);
        }
    }
    Ok(table
        .into_iter()
        .map(|(name, values)| {
            let (mean, std) = stats::mean_std(&values, 0);
            FigureSummary { name, mean, std }
        })
        .collect())
}

/// Trains on a fold's training rows and evaluates on its test rows.
fn fold_figures(
    data: &Interactions,
    (train_rows, test_rows): (&[usize], &[usize]),
    (users, items): (Option<&SideFeatures>, Option<&SideFeatures>),
    config: &RecommendConfig,
    evaluate: &EvaluateOptions,
) -> Result<FoldFigures> {
    let k = evaluate.k;
    let train = data.subset(train_rows);
    let test = data.subset(test_rows);
    let started = Instant::now();
    let model = recommend::train(&train, users, items, config)?;
    let seconds = started.elapsed().as_secs_f64();
    let (evaluations, _) = recommend::evaluate(&model, &test, evaluate)?;
    let e = &evaluations[0];
    let mut figures: Vec<(String, f64)> = Vec::new();
    if let Some(r) = &e.ratings {
        figures.push(("RMSE".into(), r.rmse));
        figures.push(("MAE".into(), r.mae));
    }
    figures.push((format!("Precision@{k}"), e.ranking.precision));
    figures.push((format!("NDCG@{k}"), e.ranking.ndcg));
    let baselines: Vec<(String, f64)> = evaluations[1..]
        .iter()
        .map(|b| match &b.ratings {
            Some(r) => (format!("RMSE ({})", b.name), r.rmse),
            None => (format!("Precision@{k} ({})", b.name), b.ranking.precision),
        })
        .collect();
    Ok(FoldFigures {
        figures,
        baselines,
        seconds,
    })
}

/// One fold's figures and time, and its baselines'; `fold` counts from 0.
pub fn fold_text(fold: usize, figures: &FoldFigures) -> String {
    let text = |figures: &[(String, f64)]| -> Vec<String> {
        figures.iter().map(|(n, v)| format!("{n} {v:.4}")).collect()
    };
    format!(
        "Fold {}: {} ({:.2} s; baselines: {})\n",
        fold + 1,
        text(&figures.figures).join(", "),
        figures.seconds,
        text(&figures.baselines).join(", ")
    )
}

/// Each figure over the folds, as `ember cv` writes one: `CV RMSE: 0.9021 ± 0.0035`.
pub fn cv_summary_text(summary: &[FigureSummary]) -> String {
    summary
        .iter()
        .map(|s| figure_over_folds(&s.name, s.mean, s.std) + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn figures_over_folds_read_as_ember_cv_writes_them() {
        let summary = [
            FigureSummary {
                name: "RMSE".into(),
                mean: 0.90214,
                std: 0.00349,
            },
            FigureSummary {
                name: "RMSE (biases)".into(),
                mean: 0.9439,
                std: 0.0061,
            },
        ];
        assert_eq!(
            cv_summary_text(&summary),
            "CV RMSE: 0.9021 ± 0.0035\nCV RMSE (biases): 0.9439 ± 0.0061\n"
        );
    }

    #[test]
    fn folds_are_two_to_the_number_of_ratings() {
        let csv = b"user,item,rating\n1,10,4\n1,11,3\n2,10,5\n";
        let data =
            Interactions::parse(csv, Path::new("r.csv"), &InteractionOptions::default()).unwrap();
        for bad in [0, 1] {
            let e = folds(&data, bad, 7).unwrap_err().to_string();
            assert!(e.contains("needs at least 2 folds"), "{e}");
        }
        let e = folds(&data, 4, 7).unwrap_err().to_string();
        assert!(e.contains("more than the 3 ratings"), "{e}");
        let split = folds(&data, 3, 7).unwrap();
        assert_eq!(split.len(), 3);
        let mut held: Vec<usize> = split.iter().flat_map(|(_, v)| v.clone()).collect();
        held.sort_unstable();
        assert_eq!(held, [0, 1, 2], "each rating is held out once");
    }
}
