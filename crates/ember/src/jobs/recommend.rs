//! Recommender jobs: a random validation split of the ratings, and k-fold
//! cross-validation (Surprise's protocol: seeded random folds) with every fold's figures
//! beside its baselines'.

use std::path::Path;
use std::time::Instant;

use crate::data::interactions::Interactions;
use crate::data::side_features::SideFeatures;
use crate::error::{Error, Result};
use crate::recommend::{self, EvaluateOptions, RecommendConfig, Recommender};
use crate::tensor::random::Rng;
use crate::tensor::stats;

/// Holds out `fraction` of the ratings, chosen at random with `seed`: (kept, held out),
/// each in the file's order.
pub fn validation_split(
    data: &Interactions,
    fraction: f64,
    seed: u64,
) -> Result<(Interactions, Interactions)> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    Rng::seed(seed).shuffle(&mut order);
    let cut = ((data.len() as f64) * fraction).round() as usize;
    if cut == 0 || cut == data.len() {
        return Err(Error::invalid(format!(
            "--validation-split {fraction} of {} ratings leaves one side empty",
            data.len()
        )));
    }
    let (held, kept) = order.split_at(cut);
    let (mut held, mut kept) = (held.to_vec(), kept.to_vec());
    held.sort_unstable();
    kept.sort_unstable();
    Ok((data.subset(&kept), data.subset(&held)))
}

/// The seeded random folds of `data`'s ratings, (train rows, test rows) each; refuses more
/// folds than ratings.
pub fn folds(
    data: &Interactions,
    folds: usize,
    seed: u64,
) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
    if folds > data.len() {
        return Err(Error::invalid(format!(
            "--folds {folds} is more than the {} ratings",
            data.len()
        )));
    }
    Ok(recommend::k_folds(data.len(), folds, seed))
}

/// What to cross-validate.
pub struct RecommendCv<'a> {
    pub data: &'a Interactions,
    /// From [`folds`].
    pub folds: &'a [(Vec<usize>, Vec<usize>)],
    pub config: &'a RecommendConfig,
    pub users: Option<&'a SideFeatures>,
    pub items: Option<&'a SideFeatures>,
    pub evaluate: &'a EvaluateOptions,
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

/// Trains and evaluates a recommender on each fold in turn; `on_fold` hears of each fold
/// (counted from 0) as it ends. Returns every figure, the model's then the baselines', over
/// the folds.
pub fn cross_validate(
    cv: RecommendCv,
    mut on_fold: impl FnMut(usize, &FoldFigures),
) -> Result<Vec<FigureSummary>> {
    let k = cv.evaluate.k;
    let mut table: Vec<(String, Vec<f64>)> = Vec::new();
    for (f, (train_rows, test_rows)) in cv.folds.iter().enumerate() {
        let train = cv.data.subset(train_rows);
        let test = cv.data.subset(test_rows);
        let started = Instant::now();
        let model = recommend::train(&train, cv.users, cv.items, cv.config)?;
        let seconds = started.elapsed().as_secs_f64();
        let (evaluations, _) = recommend::evaluate(&model, &test, cv.evaluate);
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
        let fold = FoldFigures {
            figures,
            baselines,
            seconds,
        };
        on_fold(f, &fold);
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

/// Trains a recommender on `train` and saves it to `output`; `on_trained` hears of the
/// training time in seconds before it is saved.
pub fn train_and_save(
    train: &Interactions,
    side: (Option<&SideFeatures>, Option<&SideFeatures>),
    config: &RecommendConfig,
    output: &Path,
    on_trained: impl FnOnce(f64),
) -> Result<Recommender> {
    let started = Instant::now();
    let model = recommend::train(train, side.0, side.1, config)?;
    on_trained(started.elapsed().as_secs_f64());
    model.save(output)?;
    Ok(model)
}

/// The line of a recommender trained on `ratings` ratings in `seconds`.
pub fn trained_text(config: &RecommendConfig, ratings: usize, seconds: f64) -> String {
    format!(
        "trained {} ({} factors, {} epochs) on {ratings} ratings in {seconds:.2} s\n",
        config.model.name(),
        config.factors,
        config.epochs,
    )
}

/// Writes a seeded leave-n-out split of `data`: `holdout` random ratings of every user to
/// `test`, the rest to `train` (never over the ratings file). Returns the line that says so.
pub fn split_file(
    data: &Interactions,
    holdout: usize,
    seed: u64,
    train: &Path,
    test: &Path,
) -> Result<String> {
    let (train_rows, test_rows, whole) = recommend::leave_n_out(data, holdout, seed);
    data.subset(&train_rows).write_tsv(train)?;
    data.subset(&test_rows).write_tsv(test)?;
    Ok(format!(
        "{}: {} ratings to {}, {} ({holdout} per user) to {}; {whole} users with {holdout} or fewer ratings kept whole in training\n",
        data.path.display(),
        train_rows.len(),
        train.display(),
        test_rows.len(),
        test.display(),
    ))
}
