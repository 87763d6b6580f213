//! A table made ready for a table model: its settings (an options file with the user's
//! choices on top), the table read, its target column found, the rows whose target is
//! present kept, the task inferred (unless given), and a stratified train/test split of
//! those rows.

use std::path::{Path, PathBuf};

use crate::data::split::train_test_split;
use crate::data::table::{CsvOptions, Table};
use crate::error::{Error, Result};
use crate::tabular::{class_of_rows, infer_task, rows_with_target, TabularOptions, Task};

/// A table model's settings as a user gives them: an options file (or the defaults) with
/// these on top.
#[derive(Clone, Debug, Default)]
pub struct TableSettings {
    /// The target column: a name, a 0-based index, or "last".
    pub target: Option<String>,
    /// Instead of the options file's (which may leave it to be inferred).
    pub task: Option<Task>,
    /// Train a regression on log(target), whatever the options file says.
    pub log_target: bool,
    /// Columns not to use as features, besides the options file's.
    pub exclude: Vec<String>,
    /// Add 0/1 columns flagging imputed values, whatever the options file says.
    pub missing_indicators: bool,
    /// Weight classes inversely to their frequency, whatever the options file says.
    pub balanced_class_weights: bool,
    /// A TOML file of table-model settings overriding the defaults.
    pub options_file: Option<PathBuf>,
    /// How to read the CSV file, instead of the options file's.
    pub csv: Option<CsvOptions>,
    /// Instead of the options file's.
    pub seed: Option<u64>,
    /// Private training (DP-SGD), instead of the options file's.
    pub privacy: Option<crate::privacy::Privacy>,
}

impl TableSettings {
    /// The options for training on `file`: the options file (or the defaults) with the
    /// settings on top. A missing target is an error naming `file`.
    pub fn options(&self, file: &Path) -> Result<TabularOptions> {
        let target = self.target.clone().ok_or_else(|| Error::Data {
            path: file.to_path_buf(),
            message: "pass --target COLUMN to say what to predict".into(),
        })?;
        let base = match &self.options_file {
            Some(path) => TabularOptions::from_file(path)?,
            None => TabularOptions::default(),
        };
        let mut options = TabularOptions {
            target,
            task: self.task.or(base.task),
            log_target: self.log_target || base.log_target,
            seed: self.seed.unwrap_or(base.seed),
            csv: self.csv.clone().unwrap_or_else(|| base.csv.clone()),
            privacy: self.privacy.clone().or(base.privacy.clone()),
            ..base
        };
        options.preprocess.missing_indicators |= self.missing_indicators;
        options.balanced_class_weights |= self.balanced_class_weights;
        options
            .preprocess
            .exclude
            .extend(self.exclude.iter().cloned());
        Ok(options)
    }
}

/// A table with its usable rows (target present) and its task.
pub struct TableData {
    pub table: Table,
    /// The rows whose target is present.
    pub rows: Vec<usize>,
    /// The file lines of the rows left out because their target is missing.
    pub missing_target: Vec<u64>,
    pub task: Task,
    /// The target column.
    pub target: usize,
}

/// Reads `file` with `options.csv` and finds `options.target` in it; `on_read` hears of
/// the table as soon as it is read (its rejected rows and unreadable cells), before the
/// target is looked for.
pub fn load(
    file: &Path,
    options: &TabularOptions,
    on_read: impl FnOnce(&Table),
) -> Result<TableData> {
    let table = Table::read(file, &options.csv)?;
    on_read(&table);
    let target = table.column(&options.target)?;
    let (rows, missing_target) = rows_with_target(&table, target);
    let task = options.task.unwrap_or_else(|| infer_task(&table, target));
    Ok(TableData {
        table,
        rows,
        missing_target,
        task,
        target,
    })
}

/// A stratified (for classification) split of the usable rows into table row indices:
/// (train, test).
pub fn split(data: &TableData, test_size: f32, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    let classes = class_of_rows(&data.table, data.target, &data.rows, data.task);
    let (train, test) = train_test_split(data.rows.len(), classes.as_deref(), test_size, seed)?;
    Ok((
        train.iter().map(|&i| data.rows[i]).collect(),
        test.iter().map(|&i| data.rows[i]).collect(),
    ))
}

/// The rows left out because their target is missing; empty when there were none.
pub fn missing_target_text(data: &TableData) -> String {
    if data.missing_target.is_empty() {
        return String::new();
    }
    format!(
        "Left out {} row(s) whose target '{}' is missing (lines {})\n",
        data.missing_target.len(),
        data.table.names[data.target],
        crate::report::preview(&data.missing_target)
    )
}
