//! A table made ready for a table model: read, its target column found, the rows whose
//! target is present kept, the task inferred (unless given), and a stratified train/test
//! split of those rows.

use std::path::Path;

use crate::data::split::train_test_split;
use crate::data::table::Table;
use crate::error::Result;
use crate::tabular::{class_of_rows, infer_task, rows_with_target, TabularOptions, Task};

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
