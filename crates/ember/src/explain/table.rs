//! Explanations of a table model over its raw columns: permutation importance for the global
//! picture, and per-prediction attributions mapped back from the prepared features (a
//! standardised number, a missing-value flag, one-hot categories) to the columns they came
//! from.

use crate::data::preprocess::Feature;
use crate::data::table::Table;
use crate::error::{Error, Result};
use crate::metrics::Scoring;
use crate::tabular::{TabularModel, Task};
use crate::tensor::mt19937::RandomState;
use crate::tensor::{stats, Tensor};

use super::gradients::{integrated_gradients, scores};
use super::shap::shapley_values;
use super::Explanation;

/// Integrated Gradients' points for a table row: rows are narrow, so many points are cheap,
/// and a ReLU network's path has many kinks (completeness within 1% on Titanic needs about
/// 1000; 64 leave 2.4%).
pub const DEFAULT_STEPS: usize = 1024;

/// One raw column's permutation importance: how much the score drops when the column's
/// values are shuffled across rows, over `repeats` shuffles.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnImportance {
    pub column: String,
    pub mean: f64,
    /// The population standard deviation over the repeats (NumPy's `std`).
    pub std: f64,
    /// The drop of each repeat.
    pub drops: Vec<f64>,
}

/// What permutation importance measured, over which rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Importances {
    /// scikit-learn's name of the scorer: by default "accuracy" for a classifier, "r2" for
    /// a regression.
    pub scorer: &'static str,
    /// The score on the unshuffled rows.
    pub baseline: f64,
    pub rows: usize,
    /// File lines of rows left out because their target is missing.
    pub missing_target: Vec<u64>,
    /// Every column of the table but the target, in the table's order.
    pub columns: Vec<ColumnImportance>,
}

/// Permutation importance (Breiman, 2001) exactly as scikit-learn's
/// `permutation_importance(model, X, y, n_repeats=repeats, random_state=seed)` computes it:
/// the scorer is `scoring` (scikit-learn's names), by default accuracy (classifiers) or R²
/// (regressions, in the target's units); one seed
/// is drawn from `seed`, each column starts a `RandomState` from it and shuffles the row
/// order `repeats` times in place, each time moving the column's current values by it. A
/// column the model does not use has importance 0. `rows` are the held-out rows; those whose
/// target is missing are left out and listed.
pub fn permutation_importance(
    model: &TabularModel,
    table: &Table,
    rows: &[usize],
    repeats: usize,
    seed: u32,
    scoring: Option<Scoring>,
) -> Result<Importances> {
    let scoring = scoring.unwrap_or(match model.task {
        Task::Regression => Scoring::R2,
        _ => Scoring::Accuracy,
    });
    if repeats == 0 || repeats > 10_000 {
        return Err(Error::invalid(format!(
            "permutation importance takes 1 to 10000 repeats, got {repeats}"
        )));
    }
    let target_name = target_column(model);
    let target = table.column_named(target_name)?;
    if let Some(&r) = rows.iter().find(|&&r| r >= table.rows()) {
        return Err(Error::invalid(format!(
            "row {r}: the table has {} rows",
            table.rows()
        )));
    }
    let (rows, missing_target): (Vec<usize>, Vec<usize>) = rows
        .iter()
        .partition(|&&r| table.columns[target][r].is_some());
    let missing_target: Vec<u64> = missing_target.iter().map(|&r| table.lines[r]).collect();
    if rows.is_empty() {
        return Err(Error::data(
            &table.path,
            format!("no row has a value for the target '{target_name}'"),
        ));
    }
    let x = model.preprocessor.transform(table, &rows)?;
    let y = model.preprocessor.targets(table, &rows)?;
    let score =
        |x: &Tensor| -> Result<f64> { scorer(model, scoring, &model.model.predict(x, 256)?, &y) };
    let baseline = score(&x)?;
    let spans = feature_spans(model);
    let column_seed = RandomState::new(seed).randint_i32();
    let mut columns = Vec::new();
    for (c, name) in table.names.iter().enumerate() {
        if c == target {
            continue;
        }
        let Some(&(offset, span)) = spans
            .iter()
            .find(|(n, _)| *n == name.as_str())
            .map(|(_, s)| s)
        else {
            columns.push(ColumnImportance {
                column: name.clone(),
                mean: 0.0,
                std: 0.0,
                drops: vec![0.0; repeats],
            });
            continue;
        };
        let mut rng = RandomState::new(column_seed);
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut permuted = x.clone();
        let mut drops = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            rng.shuffle(&mut order);
            // X[:, col] = X[order, col], from the column as it stands.
            permuted.permute_columns(offset..offset + span, &order);
            drops.push(baseline - score(&permuted)?);
        }
        let (mean, std) = stats::mean_std(&drops, 0);
        columns.push(ColumnImportance {
            column: name.clone(),
            mean,
            std,
            drops,
        });
    }
    Ok(Importances {
        scorer: scoring.name(),
        baseline,
        rows: rows.len(),
        missing_target,
        columns,
    })
}

/// Per-prediction attributions of `rows` of `table` to its raw columns: Integrated Gradients
/// on the prepared features from the all-zero prepared row (every numeric column at its
/// training centre, no category), each column's features summed. Returns the columns' names
/// (those the model uses, in its order) and one explanation per row, whose attributions add
/// up to `score − baseline_score`. `targets` are class indices (for a binary model, 1 is the
/// positive class); a regression cannot be explained this way.
pub fn column_attributions(
    model: &TabularModel,
    table: &Table,
    rows: &[usize],
    targets: &[usize],
    steps: usize,
) -> Result<(Vec<String>, Vec<Explanation>)> {
    if model.task == Task::Regression {
        return Err(Error::invalid(
            "per-prediction attributions explain a class's probability; this model is a regression",
        ));
    }
    let x = model.preprocessor.transform(table, rows)?;
    let baseline = Tensor::zeros(x.shape());
    let explanations = integrated_gradients(&model.model, &x, targets, &baseline, steps)?;
    let spans = feature_spans(model);
    let names = spans.iter().map(|(n, _)| n.to_string()).collect();
    let explanations = explanations
        .into_iter()
        .map(|e| Explanation {
            attributions: spans
                .iter()
                .map(|(_, (offset, span))| e.attributions[*offset..offset + span].iter().sum())
                .collect(),
            ..e
        })
        .collect();
    Ok((names, explanations))
}

/// Per-prediction Shapley values of `rows` of `table` among the raw columns the model uses
/// (see [`crate::explain::shap::shapley_values`]): a coalition's value is the probability of
/// the row's target with the columns outside it set to the all-zero prepared row (as for
/// [`column_attributions`]). Exact up to 12 used columns, else KernelSHAP on `samples`
/// coalitions (seeded). The values add up to `score − baseline_score` exactly.
pub fn column_shap(
    model: &TabularModel,
    table: &Table,
    rows: &[usize],
    targets: &[usize],
    samples: usize,
    seed: u64,
) -> Result<(Vec<String>, Vec<Explanation>)> {
    if model.task == Task::Regression {
        return Err(Error::invalid(
            "per-prediction attributions explain a class's probability; this model is a regression",
        ));
    }
    if targets.len() != rows.len() {
        return Err(Error::invalid(format!(
            "{} targets for {} rows",
            targets.len(),
            rows.len()
        )));
    }
    if samples > 100_000 {
        return Err(Error::invalid(format!(
            "KernelSHAP takes at most 100000 coalition samples, got {samples}"
        )));
    }
    let x = model.preprocessor.transform(table, rows)?;
    let width = x.row_len();
    let spans = feature_spans(model);
    let names = spans.iter().map(|(n, _)| n.to_string()).collect();
    let baseline = Tensor::zeros(x.shape());
    let clean = scores(&model.model, &x, targets)?;
    let base = scores(&model.model, &baseline, targets)?;
    let mut out = Vec::with_capacity(rows.len());
    for (r, &target) in targets.iter().enumerate() {
        let row = &x.data()[r * width..(r + 1) * width];
        let phi = shapley_values(spans.len(), samples, seed, |coalitions| {
            let mut data = vec![0.0f32; coalitions.len() * width];
            for (z, out) in coalitions.iter().zip(data.chunks_mut(width)) {
                for (&present, (_, (offset, span))) in z.iter().zip(&spans) {
                    if present {
                        out[*offset..offset + span].copy_from_slice(&row[*offset..offset + span]);
                    }
                }
            }
            let batch = Tensor::new(&[coalitions.len(), width], data)?;
            Ok(
                scores(&model.model, &batch, &vec![target; coalitions.len()])?
                    .into_iter()
                    .map(f64::from)
                    .collect(),
            )
        })?;
        out.push(Explanation {
            target,
            score: clean[r],
            baseline_score: base[r],
            attributions: phi.iter().map(|&p| p as f32).collect(),
        });
    }
    Ok((names, out))
}

/// Each used raw column with where its features start among the prepared inputs, and how
/// many there are.
fn feature_spans(model: &TabularModel) -> Vec<(&str, (usize, usize))> {
    let mut offset = 0;
    model
        .preprocessor
        .features
        .iter()
        .map(|f| {
            let (column, width) = match f {
                Feature::Numeric {
                    column, indicator, ..
                } => (column, 1 + *indicator as usize),
                Feature::Categorical { column, categories } => (column, categories.len()),
            };
            offset += width;
            (column.as_str(), (offset - width, width))
        })
        .collect()
}

fn target_column(model: &TabularModel) -> &str {
    model.preprocessor.target.column()
}

fn scorer(model: &TabularModel, scoring: Scoring, out: &Tensor, y: &Tensor) -> Result<f64> {
    crate::tabular::score_outputs(&model.preprocessor, model.task, scoring, out, y)
}
