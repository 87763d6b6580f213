//! The preprocessing pipeline for tables: imputation (with optional missing-indicator
//! columns), scaling, one-hot encoding, and target encoding. It is fitted on training rows
//! only, saved inside the model file, and applied again at predict time.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::table::{parse_number, ColumnKind, Table};
use crate::error::{Error, Result};
use crate::tensor::{stats, Tensor};

/// How missing numbers are filled in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impute {
    Mean,
    #[default]
    Median,
    MostFrequent,
    /// A fixed value.
    Constant(f64),
}

/// How numeric features are scaled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Zero mean, unit variance (scikit-learn's StandardScaler).
    #[default]
    Standard,
    /// Into [0, 1] over the training range.
    MinMax,
    None,
}

/// Choices for fitting the pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreprocessOptions {
    pub impute: Impute,
    /// Add a 0/1 column flagging imputed values, for numeric columns with missing values.
    pub missing_indicators: bool,
    pub scaling: Scaling,
    /// Columns not to use as features.
    pub exclude: Vec<String>,
}

/// One input column's transformation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Feature {
    /// `(value or fill - center) / scale`, plus a missing indicator when `indicator`.
    Numeric {
        column: String,
        fill: f64,
        indicator: bool,
        center: f64,
        scale: f64,
    },
    /// One 0/1 column per category; missing values are the category "(missing)" when the
    /// training rows had any, and unknown categories encode as all zeros.
    Categorical {
        column: String,
        categories: Vec<String>,
    },
}

impl Feature {
    /// The input column's name.
    pub fn column(&self) -> &str {
        match self {
            Feature::Numeric { column, .. } | Feature::Categorical { column, .. } => column,
        }
    }
}

/// How the target column becomes model outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// Class labels; the model predicts their indices.
    Classes { column: String, labels: Vec<String> },
    /// A number, standardised (after `log` when set) for training.
    Regression {
        column: String,
        log: bool,
        mean: f64,
        std: f64,
    },
}

impl Target {
    /// The target column's name.
    pub fn column(&self) -> &str {
        match self {
            Target::Classes { column, .. } | Target::Regression { column, .. } => column,
        }
    }
}

/// The fitted pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessor {
    /// Columns left out, with the reason (text, identifier, empty, excluded).
    #[serde(default)]
    pub skipped: Vec<(String, String)>,
    pub features: Vec<Feature>,
    pub target: Target,
}

/// Placeholder category for missing values.
pub const MISSING: &str = "(missing)";

impl Preprocessor {
    /// Fits on `rows` of `table`. `classification` decides the target's encoding; `log` applies
    /// to regression targets (which must then be positive).
    pub fn fit(
        table: &Table,
        rows: &[usize],
        target: usize,
        classification: bool,
        log: bool,
        options: &PreprocessOptions,
    ) -> Result<Preprocessor> {
        let mut features = Vec::new();
        let mut skipped = Vec::new();
        for (c, name) in table.names.iter().enumerate() {
            if c == target {
                continue;
            }
            if options.exclude.contains(name) {
                skipped.push((name.clone(), "excluded".into()));
                continue;
            }
            let cells: Vec<Option<&str>> = rows
                .iter()
                .map(|&r| table.columns[c][r].as_deref())
                .collect();
            match table.kind(c) {
                ColumnKind::Numeric => features.push(numeric_feature(name, &cells, options)),
                ColumnKind::Categorical | ColumnKind::Boolean => {
                    features.push(categorical_feature(name, &cells))
                }
                ColumnKind::Text => {
                    skipped.push((name.clone(), "free text: too many distinct values".into()))
                }
                ColumnKind::Identifier => skipped.push((name.clone(), "row identifier".into())),
                ColumnKind::Empty => skipped.push((name.clone(), "no values".into())),
            }
        }
        if features.is_empty() {
            return Err(Error::data(&table.path, "no usable feature columns"));
        }
        let name = &table.names[target];
        let values: Vec<&str> = rows
            .iter()
            .filter_map(|&r| table.columns[target][r].as_deref())
            .collect();
        let target = if classification {
            // The label set is not a statistic of the features: take it from every row, so
            // that a rare class missing from a training split is still a known class.
            let distinct: std::collections::BTreeSet<&str> = table.columns[target]
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            let mut labels: Vec<String> = distinct.into_iter().map(str::to_string).collect();
            // Numbers by value (then spelling), before any text: a total order.
            labels.sort_by(|a, b| match (parse_number(a), parse_number(b)) {
                (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.cmp(b)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.cmp(b),
            });
            if labels.len() < 2 {
                return Err(Error::data(
                    &table.path,
                    format!("target column '{name}' has fewer than two classes"),
                ));
            }
            Target::Classes {
                column: name.clone(),
                labels,
            }
        } else {
            let numbers = values
                .iter()
                .map(|v| {
                    let x = parse_number(v).ok_or_else(|| {
                        Error::data(&table.path, format!("target column '{name}': '{v}' is not a number (use a classification task?)"))
                    })?;
                    if log && x <= 0.0 {
                        return Err(Error::data(&table.path, format!("target column '{name}': {x} has no logarithm")));
                    }
                    Ok(if log { x.ln() } else { x })
                })
                .collect::<Result<Vec<f64>>>()?;
            let (mean, std) = mean_std(&numbers);
            Target::Regression {
                column: name.clone(),
                log,
                mean,
                std: if std > 0.0 { std } else { 1.0 },
            }
        };
        Ok(Preprocessor {
            features,
            target,
            skipped,
        })
    }

    /// Number of model inputs.
    pub fn width(&self) -> usize {
        self.features
            .iter()
            .map(|f| match f {
                Feature::Numeric { indicator, .. } => 1 + *indicator as usize,
                Feature::Categorical { categories, .. } => categories.len(),
            })
            .sum()
    }

    /// Number of model outputs (1 for binary classification and regression).
    pub fn outputs(&self) -> usize {
        match &self.target {
            Target::Classes { labels, .. } if labels.len() > 2 => labels.len(),
            _ => 1,
        }
    }

    /// The model inputs for `rows` of `table`, which must hold every feature column (by name).
    pub fn transform(&self, table: &Table, rows: &[usize]) -> Result<Tensor> {
        let width = self.width();
        let mut out = vec![0.0f32; rows.len() * width];
        let mut offset = 0;
        for feature in &self.features {
            match feature {
                Feature::Numeric {
                    column,
                    fill,
                    indicator,
                    center,
                    scale,
                } => {
                    let c = table.column_named(column)?;
                    for (i, &r) in rows.iter().enumerate() {
                        let cell = table.columns[c][r].as_deref();
                        let value = match cell {
                            None => None,
                            Some(text) => Some(parse_number(text).ok_or_else(|| {
                                Error::data(
                                    &table.path,
                                    format!(
                                        "line {}: column '{column}': '{text}' is not a number",
                                        table.lines[r]
                                    ),
                                )
                            })?),
                        };
                        out[i * width + offset] =
                            ((value.unwrap_or(*fill) - center) / scale) as f32;
                        if *indicator {
                            out[i * width + offset + 1] = value.is_none() as u8 as f32;
                        }
                    }
                    offset += 1 + *indicator as usize;
                }
                Feature::Categorical { column, categories } => {
                    let c = table.column_named(column)?;
                    let index: HashMap<&str, usize> = categories
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.as_str(), i))
                        .collect();
                    for (i, &r) in rows.iter().enumerate() {
                        let value = table.columns[c][r].as_deref().unwrap_or(MISSING);
                        if let Some(&k) = index.get(value) {
                            out[i * width + offset + k] = 1.0;
                        }
                    }
                    offset += categories.len();
                }
            }
        }
        Tensor::new(&[rows.len(), width], out)
    }

    /// The training targets for `rows`: class indices, or standardised numbers. Rows whose
    /// target is missing are an error naming the line.
    pub fn targets(&self, table: &Table, rows: &[usize]) -> Result<Tensor> {
        let (column, values) = match &self.target {
            Target::Classes { column, .. } | Target::Regression { column, .. } => {
                (column, table.column_named(column)?)
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for &r in rows {
            let line = table.lines[r];
            let text = table.columns[values][r].as_deref().ok_or_else(|| {
                Error::data(
                    &table.path,
                    format!("line {line}: the target '{column}' is missing"),
                )
            })?;
            out.push(match &self.target {
                Target::Classes { labels, .. } => {
                    labels.iter().position(|l| l == text).ok_or_else(|| {
                        Error::data(&table.path, format!("line {line}: unknown class '{text}'"))
                    })? as f32
                }
                Target::Regression { log, mean, std, .. } => {
                    let x = parse_number(text).ok_or_else(|| {
                        Error::data(
                            &table.path,
                            format!("line {line}: target '{text}' is not a number"),
                        )
                    })?;
                    let x = if *log { x.ln() } else { x };
                    ((x - mean) / std) as f32
                }
            });
        }
        let shape = if self.outputs() == 1 {
            vec![rows.len(), 1]
        } else {
            vec![rows.len()]
        };
        Tensor::new(&shape, out)
    }

    /// A standardised regression output back in target units (on the log scale when `log`).
    pub fn unscale(&self, value: f32) -> f64 {
        match &self.target {
            Target::Regression { mean, std, .. } => value as f64 * std + mean,
            Target::Classes { .. } => value as f64,
        }
    }
}

impl Table {
    /// The index of the column called `name`.
    pub fn column_named(&self, name: &str) -> Result<usize> {
        self.names.iter().position(|n| n == name).ok_or_else(|| {
            Error::data(
                &self.path,
                format!("the model needs a column '{name}', which is missing"),
            )
        })
    }
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    stats::mean_std(values, 0)
}

fn numeric_feature(name: &str, cells: &[Option<&str>], options: &PreprocessOptions) -> Feature {
    let mut numbers: Vec<f64> = cells
        .iter()
        .flatten()
        .filter_map(|v| parse_number(v))
        .collect();
    let has_missing = numbers.len() < cells.len();
    let fill = if numbers.is_empty() {
        0.0
    } else {
        match options.impute {
            Impute::Mean => mean_std(&numbers).0,
            Impute::Median => {
                numbers.sort_by(f64::total_cmp);
                let n = numbers.len();
                if n % 2 == 1 {
                    numbers[n / 2]
                } else {
                    (numbers[n / 2 - 1] + numbers[n / 2]) / 2.0
                }
            }
            Impute::MostFrequent => {
                let mut counts: HashMap<u64, (usize, f64)> = HashMap::new();
                for &v in &numbers {
                    counts.entry(v.to_bits()).or_insert((0, v)).0 += 1;
                }
                let mut best: Vec<(usize, f64)> = counts.into_values().collect();
                best.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.total_cmp(&b.1)));
                best[0].1
            }
            Impute::Constant(v) => v,
        }
    };
    let filled: Vec<f64> = cells
        .iter()
        .map(|c| c.and_then(parse_number).unwrap_or(fill))
        .collect();
    let (center, scale) = match options.scaling {
        Scaling::Standard => {
            let (m, s) = mean_std(&filled);
            (m, if s > 0.0 { s } else { 1.0 })
        }
        Scaling::MinMax => {
            let min = filled.iter().copied().fold(f64::INFINITY, f64::min);
            let max = filled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (min, if max > min { max - min } else { 1.0 })
        }
        Scaling::None => (0.0, 1.0),
    };
    Feature::Numeric {
        column: name.to_string(),
        fill,
        indicator: options.missing_indicators && has_missing,
        center,
        scale,
    }
}

fn categorical_feature(name: &str, cells: &[Option<&str>]) -> Feature {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for cell in cells {
        *counts.entry(cell.unwrap_or(MISSING)).or_insert(0) += 1;
    }
    let mut sorted: Vec<(&str, usize)> = counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    Feature::Categorical {
        column: name.to_string(),
        categories: sorted.into_iter().map(|(c, _)| c.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::table::CsvOptions;
    use std::path::Path;

    fn table(text: &str) -> Table {
        Table::parse(text.as_bytes(), Path::new("t.csv"), &CsvOptions::default()).unwrap()
    }

    #[test]
    fn fits_on_training_rows_only_and_transforms() {
        let t = table("age,colour,y\n10,red,a\nNA,blue,b\n30,red,a\n1000,green,b\n");
        let options = PreprocessOptions {
            missing_indicators: true,
            ..Default::default()
        };
        // Fit on rows 0-2: row 3's 1000 and 'green' are never seen.
        let p = Preprocessor::fit(&t, &[0, 1, 2], 2, true, false, &options).unwrap();
        let Feature::Numeric {
            fill,
            center,
            scale,
            indicator,
            ..
        } = &p.features[0]
        else {
            panic!()
        };
        // median of [10, 30] = 20; filled values [10, 20, 30]: mean 20, std sqrt(200/3)
        assert_eq!((*fill, *center, *indicator), (20.0, 20.0, true));
        assert!((scale - (200.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(p.width(), 2 + 2);
        let x = p.transform(&t, &[1, 3]).unwrap();
        let s = (200.0f64 / 3.0).sqrt() as f32;
        // row 1: age missing → 0 standardised, indicator 1, colour blue → [0, 1]
        // row 3: (1000 - 20) / s, indicator 0, green unknown → [0, 0]
        assert_eq!(x.data()[..4], [0.0, 1.0, 0.0, 1.0]);
        assert!((x.data()[4] - 980.0 / s).abs() < 1e-3);
        assert_eq!(x.data()[5..], [0.0, 0.0, 0.0]);
        let y = p.targets(&t, &[0, 1, 3]).unwrap();
        assert_eq!(
            (y.shape(), y.data()),
            (&[3usize, 1][..], &[0.0, 1.0, 1.0][..])
        );
        assert_eq!(p.outputs(), 1);
    }

    #[test]
    fn class_labels_come_from_every_row_in_a_total_order() {
        let t = table("x,y\n1,b\n2,10\n3,2\n4,1.0\n5,1\n6,rare\n");
        // Fitted on the first five rows: 'rare' is still a class; "1" and "1.0" stay distinct.
        let p = Preprocessor::fit(
            &t,
            &[0, 1, 2, 3, 4],
            1,
            true,
            false,
            &PreprocessOptions::default(),
        )
        .unwrap();
        let Target::Classes { labels, .. } = &p.target else {
            panic!()
        };
        assert_eq!(labels, &["1", "1.0", "2", "10", "b", "rare"]);
        assert_eq!(p.targets(&t, &[5]).unwrap().data(), &[5.0]);
    }

    #[test]
    fn regression_targets_are_standardised_and_log_scaled() {
        let t = table("x,price\n1,100\n2,1000\n3,10000\n");
        let p = Preprocessor::fit(
            &t,
            &[0, 1, 2],
            1,
            false,
            true,
            &PreprocessOptions::default(),
        )
        .unwrap();
        let y = p.targets(&t, &[0, 1, 2]).unwrap();
        // log10-spaced prices are evenly spaced logs: standardised to -1.2247, 0, 1.2247
        assert!((y.data()[1]).abs() < 1e-6 && (y.data()[2] - 1.224_745).abs() < 1e-5);
        assert!((p.unscale(y.data()[2]) - 10000f64.ln()).abs() < 1e-5);
        let bad = table("x,price\n1,100\n2,-5\n");
        let e = Preprocessor::fit(&bad, &[0, 1], 1, false, true, &PreprocessOptions::default())
            .unwrap_err();
        assert!(e.to_string().contains("no logarithm"));
    }

    #[test]
    fn missing_columns_and_targets_are_reported() {
        let t = table("a,b,y\n1,x,0\n2,y,1\n");
        let p =
            Preprocessor::fit(&t, &[0, 1], 2, true, false, &PreprocessOptions::default()).unwrap();
        let without_b = table("a,y\n1,0\n");
        assert!(p
            .transform(&without_b, &[0])
            .unwrap_err()
            .to_string()
            .contains("needs a column 'b'"));
        let no_target = table("a,b,y\n1,x,NA\n");
        assert!(p
            .targets(&no_target, &[0])
            .unwrap_err()
            .to_string()
            .contains("line 2: the target 'y' is missing"));
        let bad_number = table("a,b,y\nabc,x,1\n");
        assert!(p
            .transform(&bad_number, &[0])
            .unwrap_err()
            .to_string()
            .contains("'abc' is not a number"));
    }
}
