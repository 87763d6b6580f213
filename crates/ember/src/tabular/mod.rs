//! Models on tables: infer the task from the target, fit the preprocessing on training rows,
//! build a sensible MLP, train it with early stopping, and score it on held-out rows.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::callbacks::EarlyStopping;
use crate::data::preprocess::{Feature, Preprocessor, Target};
use crate::data::table::{parse_number, ColumnKind, Table};
use crate::error::{Error, Result};
use crate::metrics::{
    regression_scores, roc_auc, ClassificationReport, ConfusionMatrix, RegressionScores,
};
use crate::metrics::{Predictions, Scoring};
use crate::model::{
    Callback, Control, EpochLog, FitOptions, History, Model, Sequential, Verbosity,
};
use crate::nn::{Dense, Dropout};
use crate::optim::Adam;
use crate::prediction::{classify, Outcome};
use crate::spec::{FitSpec, ModelSpec, TableSpec};
use crate::tensor::activation::Activation;
use crate::tensor::Tensor;
use crate::{Loss, Metric};

pub use crate::spec::table::{TabularOptions, Task};

/// Held-out scores: classification figures, or regression errors (in target units, on the
/// log scale when the target was log-transformed).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TabularScores {
    pub samples: usize,
    /// The training loss (the compiled one, on these rows).
    pub loss: f64,
    /// Per-class precision, recall, F1 and support under the class labels (classification
    /// only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<ClassificationReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion_matrix: Option<ConfusionMatrix>,
    pub accuracy: Option<f64>,
    /// Binary: of the positive class (the second label); multiclass: macro averages.
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub roc_auc: Option<f64>,
    pub regression: Option<RegressionScores>,
}

/// A table model's prediction for one row.
#[derive(Clone, Debug, PartialEq)]
pub struct TablePrediction {
    /// The predicted class, or the predicted value as text.
    pub label: String,
    /// A regression's predicted value.
    pub value: Option<f64>,
    /// A classifier's probability of the predicted class.
    pub probability: Option<f32>,
    /// A binary classifier's positive class (the second label) and its probability,
    /// scikit-learn's `predict_proba[:, 1]`, whichever class is predicted.
    pub positive: Option<(String, f32)>,
    /// A classifier's probability of every class, in label order (scikit-learn's
    /// `predict_proba` row); empty for a regression.
    pub probabilities: Vec<f32>,
}

/// A trained table model: the network, the preprocessing it was trained with, and what it
/// was trained on and how. How its training file was read (`options.csv`) is no part of it:
/// each file it predicts on is read with that file's own options (see
/// [`TabularModel::name_columns`]).
pub struct TabularModel {
    pub model: Model,
    pub preprocessor: Preprocessor,
    pub task: Task,
    /// The settings it was trained with.
    pub options: TabularOptions,
    /// The table it was trained on (absolute where it could be made so).
    pub file: PathBuf,
    /// The training table's columns in order, the target among them (empty for models saved
    /// before they were kept).
    pub columns: Vec<String>,
}

/// The task a target column calls for: text or booleans are classes; integers with at most
/// ten distinct values are classes; other numbers are a regression.
pub fn infer_task(table: &Table, target: usize) -> Task {
    let mut values: Vec<&str> = table.columns[target]
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    values.sort_unstable();
    values.dedup();
    let classes = |n: usize| {
        if n == 2 {
            Task::Binary
        } else {
            Task::Multiclass
        }
    };
    match table.kind(target) {
        ColumnKind::Numeric | ColumnKind::Identifier => {
            let integral = values
                .iter()
                .all(|v| parse_number(v).is_some_and(|x| x.fract() == 0.0));
            if integral && values.len() <= 10 {
                classes(values.len())
            } else {
                Task::Regression
            }
        }
        _ => classes(values.len()),
    }
}

/// Rows whose target is present, and the file lines of those that are not.
pub fn rows_with_target(table: &Table, target: usize) -> (Vec<usize>, Vec<u64>) {
    let (mut present, mut missing) = (Vec::new(), Vec::new());
    for r in 0..table.rows() {
        match table.columns[target][r] {
            Some(_) => present.push(r),
            None => missing.push(table.lines[r]),
        }
    }
    (present, missing)
}

/// Each row's class index (for stratified splits), or None for a regression.
pub fn class_of_rows(
    table: &Table,
    target: usize,
    rows: &[usize],
    task: Task,
) -> Option<Vec<usize>> {
    if task == Task::Regression {
        return None;
    }
    let mut labels: Vec<&str> = rows
        .iter()
        .filter_map(|&r| table.columns[target][r].as_deref())
        .collect();
    labels.sort_unstable();
    labels.dedup();
    Some(
        rows.iter()
            .map(|&r| {
                let v = table.columns[target][r].as_deref().unwrap_or("");
                labels.binary_search(&v).unwrap_or(0)
            })
            .collect(),
    )
}

impl TabularModel {
    /// A saved table model: its network and the `[table]` section saved with it.
    pub fn from_spec(model: Model, spec: TableSpec) -> TabularModel {
        TabularModel {
            model,
            preprocessor: spec.preprocessor,
            task: spec.task,
            options: spec.options,
            file: spec.file,
            columns: spec.columns,
        }
    }

    /// Names the columns of a table read to predict on (or to score) as the model knows
    /// them. A file with a header names its own columns, found by name; one without gives
    /// them by position, in the training table's order, with or without the target column.
    /// Models saved before the order was kept find `column_1`, `column_2`, … by name.
    pub fn name_columns(&self, table: &mut Table) -> Result<()> {
        if self.columns.is_empty() {
            return Ok(());
        }
        let target = self.preprocessor.target.column();
        let order = format!("the model's columns, in order: {}", self.columns.join(", "));
        if table.header {
            let needed = self.preprocessor.features.iter().map(Feature::column);
            if let Some(missing) = needed
                .into_iter()
                .find(|c| !table.names.iter().any(|n| n == c))
            {
                return Err(Error::data(
                    &table.path,
                    format!(
                        "the model needs a column '{missing}', which is missing ({order}; a \
                         file without a header gives them by position, with --no-header)"
                    ),
                ));
            }
            return Ok(());
        }
        let without_target: Vec<String> = self
            .columns
            .iter()
            .filter(|c| *c != target)
            .cloned()
            .collect();
        let width = table.names.len();
        let names = if width == self.columns.len() {
            self.columns.clone()
        } else if width == without_target.len() {
            without_target
        } else {
            return Err(Error::data(
                &table.path,
                format!(
                    "without a header, columns are taken by position: this file has {width}, \
                     the model {} with the target '{target}' or {} without ({order})",
                    self.columns.len(),
                    without_target.len()
                ),
            ));
        };
        for cell in &mut table.bad_cells {
            if let Some(c) = table.names.iter().position(|n| *n == cell.column) {
                cell.column = names[c].clone();
            }
        }
        table.names = names;
        Ok(())
    }

    /// Saves the model after `epochs` epochs, with what prediction needs to read new rows
    /// as the training rows were read.
    pub fn save(&self, output: &Path, epochs: usize) -> Result<()> {
        let options = &self.options;
        let fit = FitSpec {
            epochs: options.epochs,
            batch_size: options.batch_size,
            validation_split: options.validation_split,
            shuffle: true,
            seed: options.seed,
        };
        let mut spec = ModelSpec::from_model(&self.model, fit, None)?;
        spec.table = Some(TableSpec {
            file: self.file.clone(),
            columns: self.columns.clone(),
            task: self.task,
            options: options.clone(),
            preprocessor: self.preprocessor.clone(),
        });
        crate::io::save(output, &self.model, &spec, epochs)
    }

    /// Fits the preprocessing and the network on `rows` of `table`.
    pub fn fit(
        table: &Table,
        rows: &[usize],
        task: Task,
        options: &TabularOptions,
        verbose: Verbosity,
    ) -> Result<(TabularModel, History)> {
        let (model, history, _) = Self::fit_scored(table, rows, task, options, verbose, None)?;
        Ok((model, history))
    }

    /// [`fit`](Self::fit), and with `scoring` that scorer on the validation rows after each
    /// epoch (an error when `options.validation_split` holds out none).
    pub fn fit_scored(
        table: &Table,
        rows: &[usize],
        task: Task,
        options: &TabularOptions,
        verbose: Verbosity,
        scoring: Option<Scoring>,
    ) -> Result<(TabularModel, History, Vec<f64>)> {
        let target = table.column(&options.target)?;
        if options.log_target && task != Task::Regression {
            return Err(Error::invalid("log_target applies to regression only"));
        }
        let classification = task != Task::Regression;
        let preprocessor = Preprocessor::fit(
            table,
            rows,
            target,
            classification,
            options.log_target,
            &options.preprocess,
        )?;
        if let (Task::Multiclass, Target::Classes { labels, .. }) = (task, &preprocessor.target) {
            if labels.len() == 2 {
                return Err(Error::data(
                    &table.path,
                    format!("'{}' has two classes: use the binary task", options.target),
                ));
            }
        }
        if let (Task::Binary, Target::Classes { labels, .. }) = (task, &preprocessor.target) {
            if labels.len() != 2 {
                return Err(Error::data(
                    &table.path,
                    format!(
                        "a binary task needs two classes, '{}' has {}",
                        options.target,
                        labels.len()
                    ),
                ));
            }
        }
        let x = preprocessor.transform(table, rows)?;
        let y = preprocessor.targets(table, rows)?;
        let mut model = Sequential::with_seed(&[preprocessor.width()], options.seed);
        if !(0.0..1.0).contains(&options.dropout) {
            return Err(Error::invalid(format!(
                "dropout must be in [0, 1), got {}",
                options.dropout
            )));
        }
        if !(options.l2.is_finite() && options.l2 >= 0.0) {
            return Err(Error::invalid(format!(
                "l2 must be a number >= 0, got {}",
                options.l2
            )));
        }
        let dense = |units: usize| Dense::new(units).kernel_l2(options.l2);
        for &units in &options.hidden {
            model.add(dense(units).activation(Activation::Relu))?;
            if options.dropout > 0.0 {
                model.add(Dropout::new(options.dropout))?;
            }
        }
        let (output, loss) = match task {
            Task::Binary => (
                dense(1).activation(Activation::Sigmoid),
                Loss::BinaryCrossentropy,
            ),
            Task::Multiclass => (
                dense(preprocessor.outputs()).activation(Activation::Softmax),
                Loss::SparseCategoricalCrossentropy,
            ),
            Task::Regression => (dense(1), Loss::MeanSquaredError),
        };
        model.add(output)?;
        let metrics: &[Metric] = if classification {
            &[Metric::Accuracy]
        } else {
            &[]
        };
        model.compile(Adam::new(options.learning_rate), loss, metrics)?;
        if let Some(privacy) = &options.privacy {
            model.make_private(privacy.clone())?;
        }
        let mut early = EarlyStopping::new("val_loss", options.patience).restore_best_weights(true);
        let class_weight = (options.balanced_class_weights && classification).then(|| {
            let classes = preprocessor.outputs().max(2);
            let mut counts = vec![0usize; classes];
            y.data()
                .iter()
                .for_each(|&c| counts[(c as usize).min(classes - 1)] += 1);
            let n = y.len() as f32;
            counts
                .iter()
                .map(|&c| {
                    if c == 0 {
                        0.0
                    } else {
                        n / (classes as f32 * c as f32)
                    }
                })
                .collect()
        });
        let fit = FitOptions {
            class_weight,
            epochs: options.epochs,
            batch_size: options.batch_size,
            validation_split: options.validation_split,
            seed: Some(options.seed),
            verbose,
            ..FitOptions::default()
        };
        let mut scored = match scoring {
            Some(scoring) => {
                let at = crate::model::split_point(x.rows(), options.validation_split)?;
                if at == x.rows() {
                    return Err(Error::invalid(format!(
                        "scoring '{}' is measured on the validation rows: give validation_split above 0",
                        scoring.name()
                    )));
                }
                Some(ValidationScore {
                    x: x.slice_rows(at, x.rows())?,
                    y: y.slice_rows(at, y.rows())?,
                    scoring,
                    preprocessor: preprocessor.clone(),
                    task,
                    values: Vec::new(),
                })
            }
            None => None,
        };
        let history = match &mut scored {
            Some(scored) => model.fit_with_callbacks(&x, &y, &fit, &mut [&mut early, scored])?,
            None => model.fit_with_callbacks(&x, &y, &fit, &mut [&mut early])?,
        };
        let values = scored.map(|s| s.values).unwrap_or_default();
        Ok((
            TabularModel {
                model: model.into_model(),
                preprocessor,
                task,
                options: options.clone(),
                file: std::path::absolute(&table.path).unwrap_or_else(|_| table.path.clone()),
                columns: table.names.clone(),
            },
            history,
            values,
        ))
    }

    /// Scores on `rows` of `table` (which must have the target column).
    pub fn score(
        &self,
        table: &Table,
        rows: &[usize],
        threshold: Option<f32>,
    ) -> Result<TabularScores> {
        let x = self.preprocessor.transform(table, rows)?;
        let y = self.preprocessor.targets(table, rows)?;
        let out = self.model.predict(&x, 256)?;
        let loss = self.model.evaluate(&x, &y, 256)?.loss;
        let classes = match &self.preprocessor.target {
            Target::Classes { labels, .. } => labels.clone(),
            Target::Regression { .. } => Vec::new(),
        };
        let mut scores = TabularScores {
            samples: rows.len(),
            loss,
            ..Default::default()
        };
        match self.task {
            Task::Binary => {
                let truth: Vec<bool> = y.data().iter().map(|&t| t > 0.5).collect();
                // The positive class at the threshold, as `predictions` decides it.
                let predicted: Vec<usize> = out
                    .data()
                    .iter()
                    .map(|&p| match threshold {
                        Some(t) => (p >= t) as usize,
                        None => (p > 0.5) as usize,
                    })
                    .collect();
                let t: Vec<usize> = truth.iter().map(|&b| b as usize).collect();
                let matrix = ConfusionMatrix::new(2, &t, &predicted)?;
                let report = matrix.report().named(&classes);
                scores.confusion_matrix = Some(matrix);
                scores.accuracy = Some(report.accuracy);
                scores.precision = Some(report.per_class[1].scores.precision);
                scores.recall = Some(report.per_class[1].scores.recall);
                scores.f1 = Some(report.per_class[1].scores.f1);
                scores.roc_auc = roc_auc(out.data(), &truth);
                scores.report = Some(report);
            }
            Task::Multiclass => {
                let truth: Vec<usize> = y.data().iter().map(|&t| t as usize).collect();
                let matrix =
                    ConfusionMatrix::new(self.preprocessor.outputs(), &truth, &out.argmax_rows())?;
                let report = matrix.report().named(&classes);
                scores.accuracy = Some(report.accuracy);
                scores.precision = Some(report.macro_avg.precision);
                scores.recall = Some(report.macro_avg.recall);
                scores.f1 = Some(report.macro_avg.f1);
                scores.report = Some(report);
                scores.confusion_matrix = Some(matrix);
            }
            Task::Regression => {
                let predicted: Vec<f64> = out
                    .data()
                    .iter()
                    .map(|&v| self.preprocessor.unscale(v))
                    .collect();
                let truth: Vec<f64> = y
                    .data()
                    .iter()
                    .map(|&v| self.preprocessor.unscale(v))
                    .collect();
                scores.regression = Some(regression_scores(&predicted, &truth));
            }
        }
        Ok(scores)
    }

    /// Predictions for every row of `table` (a binary classifier's decided at 0.5).
    pub fn predict(&self, table: &Table) -> Result<Vec<TablePrediction>> {
        Ok(self.predictions(&self.outputs(table)?, None))
    }

    /// The network's outputs for every row of `table`, prepared as in training.
    pub fn outputs(&self, table: &Table) -> Result<crate::tensor::Tensor> {
        let rows: Vec<usize> = (0..table.rows()).collect();
        let x = self.preprocessor.transform(table, &rows)?;
        self.model.predict(&x, 256)
    }

    /// The network's outputs for prepared rows as predictions in their written form: each
    /// row's `top_k` most likely classes, or its value.
    pub fn outcomes(&self, out: &crate::tensor::Tensor, top_k: usize) -> Vec<Outcome> {
        match &self.preprocessor.target {
            Target::Classes { labels, .. } => out
                .data()
                .chunks(out.row_len().max(1))
                .map(|row| Outcome::Class(classify(row, top_k, labels)))
                .collect(),
            Target::Regression { log, .. } => out
                .data()
                .chunks(out.row_len().max(1))
                .map(|row| Outcome::Value {
                    value: self.value(row[0], *log),
                })
                .collect(),
        }
    }

    /// A regression's output in the target's units (undoing a log-transform).
    fn value(&self, output: f32, log: bool) -> f64 {
        let v = self.preprocessor.unscale(output);
        if log {
            v.exp()
        } else {
            v
        }
    }

    /// The predictions the network's outputs for prepared rows (see
    /// [`Preprocessor::transform`]) stand for: a class with its probability, or a value. A
    /// binary classifier predicts its positive class when that class's probability is at
    /// least `threshold` (scikit-learn's `FixedThresholdClassifier`), else above one half.
    pub fn predictions(
        &self,
        out: &crate::tensor::Tensor,
        threshold: Option<f32>,
    ) -> Vec<TablePrediction> {
        let width = out.row_len().max(1);
        out.data()
            .chunks(width)
            .map(|row| match (&self.preprocessor.target, self.task) {
                (Target::Classes { labels, .. }, Task::Binary) => {
                    let positive = match threshold {
                        Some(t) => row[0] >= t,
                        None => row[0] > 0.5,
                    };
                    let p = if positive { row[0] } else { 1.0 - row[0] };
                    TablePrediction {
                        label: labels[positive as usize].clone(),
                        value: None,
                        probability: Some(p),
                        positive: Some((labels[1].clone(), row[0])),
                        probabilities: vec![1.0 - row[0], row[0]],
                    }
                }
                (Target::Classes { labels, .. }, _) => {
                    let k = crate::tensor::argmax(row);
                    TablePrediction {
                        label: labels[k].clone(),
                        value: None,
                        probability: Some(row[k]),
                        positive: None,
                        probabilities: row.to_vec(),
                    }
                }
                (Target::Regression { log, .. }, _) => {
                    let v = self.value(row[0], *log);
                    TablePrediction {
                        label: format!("{v}"),
                        value: Some(v),
                        probability: None,
                        positive: None,
                        probabilities: Vec::new(),
                    }
                }
            })
            .collect()
    }
}

/// `scoring` of a table model's outputs `out` against its targets `y`: class probabilities
/// against class indices, or values in the target's units (unscaled, and exponentiated for
/// a log target).
pub fn score_outputs(
    preprocessor: &Preprocessor,
    task: Task,
    scoring: Scoring,
    out: &Tensor,
    y: &Tensor,
) -> Result<f64> {
    match task {
        Task::Regression => {
            let log = matches!(preprocessor.target, Target::Regression { log: true, .. });
            let value = |v: f32| {
                let v = preprocessor.unscale(v);
                if log {
                    v.exp()
                } else {
                    v
                }
            };
            let truth: Vec<f64> = y.data().iter().map(|&v| value(v)).collect();
            let predicted: Vec<f64> = out.data().iter().map(|&v| value(v)).collect();
            scoring.score(&Predictions::Values {
                predicted: &predicted,
                truth: &truth,
            })
        }
        _ => {
            let truth: Vec<usize> = y.data().iter().map(|&t| t as usize).collect();
            scoring.score(&Predictions::Classes {
                probabilities: out.data(),
                width: out.row_len().max(1),
                truth: &truth,
            })
        }
    }
}

/// A scorer measured on the validation rows after each epoch.
struct ValidationScore {
    x: Tensor,
    y: Tensor,
    scoring: Scoring,
    preprocessor: Preprocessor,
    task: Task,
    values: Vec<f64>,
}

impl Callback for ValidationScore {
    fn on_epoch_end(&mut self, model: &mut Model, _log: &EpochLog) -> Result<Control> {
        let out = model.predict(&self.x, 256)?;
        let value = score_outputs(&self.preprocessor, self.task, self.scoring, &out, &self.y)?;
        self.values.push(value);
        Ok(Control::Continue)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::table::CsvOptions;
    use std::path::Path;

    fn table() -> Table {
        let mut csv = String::from("x,y,label\n");
        for i in 0..40 {
            let x = i as f32 / 40.0;
            csv += &format!("{x},{},{}\n", 1.0 - x, if x > 0.5 { "a" } else { "b" });
        }
        Table::parse(csv.as_bytes(), Path::new("t.csv"), &CsvOptions::default()).unwrap()
    }

    #[test]
    fn columns_are_found_by_name_with_a_header_and_by_position_without() {
        let table = table();
        let rows: Vec<usize> = (0..40).collect();
        let options = TabularOptions {
            target: "label".into(),
            epochs: 2,
            ..TabularOptions::default()
        };
        let (mut model, _) =
            TabularModel::fit(&table, &rows, Task::Binary, &options, Verbosity::Silent).unwrap();
        assert_eq!(model.columns, vec!["x", "y", "label"]);
        let read = |text: &str| {
            Table::parse(
                text.as_bytes(),
                Path::new("new.csv"),
                &CsvOptions::default(),
            )
            .unwrap()
        };
        let named = |model: &TabularModel, text: &str| {
            let mut t = read(text);
            model.name_columns(&mut t).map(|()| t.names)
        };
        // Without a header: the training order, with or without the target.
        assert_eq!(named(&model, "0.1,0.9\n0.8,0.2\n").unwrap(), ["x", "y"]);
        assert_eq!(
            named(&model, "0.1,0.9,b\n0.8,0.2,a\n").unwrap(),
            ["x", "y", "label"]
        );
        let e = named(&model, "1,2,3,4\n").unwrap_err().to_string();
        assert!(
            e.contains("new.csv: without a header")
                && e.contains("this file has 4")
                && e.contains("in order: x, y, label"),
            "{e}"
        );
        // With one: by name, in any order; a missing column says how the model's run.
        let mut swapped = read("y,x\n0.9,0.1\n0.2,0.8\n");
        model.name_columns(&mut swapped).unwrap();
        let mut plain = read("0.1,0.9\n0.8,0.2\n");
        model.name_columns(&mut plain).unwrap();
        assert_eq!(
            model.predict(&swapped).unwrap(),
            model.predict(&plain).unwrap()
        );
        let e = named(&model, "a,b\n1,2\n").unwrap_err().to_string();
        assert!(
            e.contains("needs a column 'x'")
                && e.contains("in order: x, y, label")
                && e.contains("--no-header"),
            "{e}"
        );
        // A model saved before the order was kept finds column_1, … by name, as it did.
        model.columns.clear();
        assert_eq!(
            named(&model, "0.1,0.9\n").unwrap(),
            ["column_1", "column_2"]
        );
    }

    #[test]
    fn dropout_and_l2_options_shape_the_network_and_are_checked() {
        let table = table();
        let rows: Vec<usize> = (0..40).collect();
        let options = TabularOptions {
            target: "label".into(),
            hidden: vec![8, 4],
            dropout: 0.25,
            l2: 0.001,
            epochs: 3,
            ..TabularOptions::default()
        };
        let (model, _) =
            TabularModel::fit(&table, &rows, Task::Binary, &options, Verbosity::Silent).unwrap();
        let summary = model.model.summary();
        assert_eq!(summary.matches("Dropout").count(), 2, "{summary}");
        let spec = crate::spec::ModelSpec::from_model(&model.model, Default::default(), None)
            .unwrap()
            .to_toml()
            .unwrap();
        assert_eq!(spec.matches("l2 = 0.001").count(), 3, "{spec}");
        for (dropout, l2, wanted) in [
            (1.0, 0.0, "dropout"),
            (0.0, -1.0, "l2"),
            (0.0, f32::NAN, "l2"),
        ] {
            let bad = TabularOptions {
                dropout,
                l2,
                ..options.clone()
            };
            let e = TabularModel::fit(&table, &rows, Task::Binary, &bad, Verbosity::Silent)
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains(wanted), "{e}");
        }
    }
}
