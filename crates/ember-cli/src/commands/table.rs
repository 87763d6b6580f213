//! What the table commands share: CSV flags, the table-model flags, loading.

use std::path::{Path, PathBuf};

use clap::Args;
use ember::data::table::CsvOptions;
use ember::jobs::table::{TableData, TableSettings};
use ember::privacy::Privacy;
use ember::report::rejected_text;
use ember::tabular::{TabularOptions, Task};

/// How to read the CSV file.
#[derive(Args, Clone, Debug, Default)]
pub struct CsvArgs {
    /// Field delimiter (default: detected among comma, semicolon and tab).
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<char>,
    /// The first line is a header (default: detected).
    #[arg(long, conflicts_with = "no_header")]
    pub header: bool,
    /// The file has no header: columns are named column_1, column_2, …
    #[arg(long)]
    pub no_header: bool,
    /// Lines to skip at the start (e.g. 1 for scikit-learn's line of counts).
    #[arg(long, value_name = "N")]
    pub skip_rows: Option<usize>,
    /// Comma-separated cell values meaning "missing" (default: "",NA,N/A,NaN,nan,null,NULL,?).
    #[arg(long, value_name = "LIST")]
    pub missing: Option<String>,
    /// Drop rows with the wrong number of fields (reported) instead of failing.
    #[arg(long)]
    pub drop_bad_rows: bool,
}

impl CsvArgs {
    /// The CSV flags given, by name.
    pub fn given(&self) -> Vec<&'static str> {
        ember::jobs::checks::given(&[
            ("--delimiter", self.delimiter.is_some()),
            ("--header", self.header),
            ("--no-header", self.no_header),
            ("--skip-rows", self.skip_rows.is_some()),
            ("--missing", self.missing.is_some()),
            ("--drop-bad-rows", self.drop_bad_rows),
        ])
    }

    /// The given options, or None (a model's training options) when no flag was given.
    pub fn given_options(&self) -> Option<CsvOptions> {
        (!self.given().is_empty()).then(|| self.options())
    }

    pub fn options(&self) -> CsvOptions {
        let defaults = CsvOptions::default();
        CsvOptions {
            delimiter: self.delimiter,
            header: (self.header || self.no_header).then_some(self.header),
            skip_rows: self.skip_rows.unwrap_or(0),
            missing: self.missing.as_ref().map_or(defaults.missing, |m| {
                m.split(',').map(|t| t.trim().to_string()).collect()
            }),
            drop_bad_rows: self.drop_bad_rows,
        }
    }
}

/// The table-training flags shared by `train --csv` and `cv`.
#[derive(Args, Clone, Debug)]
pub struct TableArgs {
    /// The target column: a name, a 0-based index, or "last".
    #[arg(long, value_name = "COLUMN")]
    pub target: Option<String>,
    /// binary, multiclass or regression (default: inferred from the target).
    #[arg(long, value_parser = Task::parse)]
    pub task: Option<Task>,
    /// Train a regression on log(target); errors are then reported on the log scale.
    #[arg(long)]
    pub log_target: bool,
    /// Columns not to use as features (comma-separated).
    #[arg(long, value_name = "LIST")]
    pub exclude: Option<String>,
    /// Add 0/1 columns flagging imputed values.
    #[arg(long)]
    pub missing_indicators: bool,
    /// "balanced": weight classes inversely to their frequency (for imbalanced targets).
    #[arg(long, value_name = "balanced", value_parser = ["balanced"])]
    pub class_weight: Option<String>,
    /// A TOML file of table-model settings overriding the defaults: hidden = [128, 64],
    /// learning_rate, epochs, batch_size, patience, validation_split, [preprocess] …
    #[arg(long, value_name = "FILE")]
    pub options: Option<PathBuf>,
    /// Train privately (DP-SGD), with σ found for this ε at the last epoch.
    #[arg(long, value_name = "E")]
    pub dp_epsilon: Option<f64>,
    /// With --dp-epsilon: δ of the (ε, δ) guarantee (default 1e-5).
    #[arg(long, value_name = "D", requires = "dp_epsilon")]
    pub dp_delta: Option<f64>,
    /// With --dp-epsilon: each example's gradient is clipped to this norm (default 1).
    #[arg(long, value_name = "C", requires = "dp_epsilon")]
    pub dp_max_grad_norm: Option<f32>,
    #[command(flatten)]
    pub csv: CsvArgs,
}

impl TableArgs {
    /// The table-model flags given, by name, the CSV flags apart.
    pub fn given(&self) -> Vec<&'static str> {
        ember::jobs::checks::given(&[
            ("--target", self.target.is_some()),
            ("--task", self.task.is_some()),
            ("--log-target", self.log_target),
            ("--exclude", self.exclude.is_some()),
            ("--missing-indicators", self.missing_indicators),
            ("--class-weight", self.class_weight.is_some()),
            ("--options", self.options.is_some()),
            ("--dp-epsilon", self.dp_epsilon.is_some()),
        ])
    }

    /// The options for training: the `--options` file (or the defaults) with the flags on
    /// top; `seed` overrides the file's when given.
    pub fn options(&self, file: &Path, seed: Option<u64>) -> ember::Result<TabularOptions> {
        let exclude = match &self.exclude {
            Some(list) => list.split(',').map(|c| c.trim().to_string()).collect(),
            None => Vec::new(),
        };
        let settings = TableSettings {
            target: self.target.clone(),
            task: self.task,
            log_target: self.log_target,
            exclude,
            missing_indicators: self.missing_indicators,
            balanced_class_weights: self.class_weight.is_some(),
            options_file: self.options.clone(),
            csv: self.csv.given_options(),
            seed,
            privacy: self.dp_epsilon.map(|e| {
                let (c, d) = (self.dp_max_grad_norm, self.dp_delta);
                Privacy::with_target_epsilon(c.unwrap_or(1.0), e, d.unwrap_or(1e-5))
            }),
        };
        settings.options(file)
    }
}

/// Reads the table and finds its target, printing what was left out.
pub fn load(file: &Path, options: &TabularOptions) -> ember::Result<TableData> {
    let data = ember::jobs::table::load(file, options, |t| print!("{}", rejected_text(t)))?;
    print!("{}", ember::jobs::table::missing_target_text(&data));
    Ok(data)
}
