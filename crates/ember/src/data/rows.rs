//! Numeric CSV rows as samples: one row per sample, one number per feature.

use std::path::Path;

use super::table::{CsvOptions, Table};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Reads a CSV file of numbers into a (rows, columns) tensor, through [`Table`] (delimiter
/// and header detected as for any table). Ragged rows and cells that are not finite numbers
/// (empty ones included) are errors naming line and column.
pub fn read_numeric_rows(path: &Path) -> Result<Tensor> {
    let bytes = crate::read::file(path, crate::read::Limit::TABLE)?;
    parse_numeric_rows(&bytes, path)
}

/// [`read_numeric_rows`] on a file's bytes; `path` names it in errors.
pub fn parse_numeric_rows(bytes: &[u8], path: &Path) -> Result<Tensor> {
    let options = CsvOptions {
        missing: Vec::new(),
        ..CsvOptions::default()
    };
    let table = Table::parse(bytes, path, &options)?;
    let (rows, columns) = (table.rows(), table.names.len());
    let mut values = Vec::with_capacity(rows * columns);
    for (r, line) in table.lines.iter().enumerate() {
        for (c, column) in table.columns.iter().enumerate() {
            let cell = column[r].as_deref().unwrap_or("");
            let value = cell.parse::<f32>().ok().filter(|v| v.is_finite());
            values.push(value.ok_or_else(|| {
                Error::data(
                    path,
                    format!(
                        "line {line}, column {}: '{cell}' is not a finite number",
                        c + 1
                    ),
                )
            })?);
        }
    }
    Tensor::new(&[rows, columns], values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Tensor> {
        let path = std::env::temp_dir().join(format!(
            "ember-rows-{}-{}.csv",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).unwrap();
        let result = read_numeric_rows(&path);
        std::fs::remove_file(&path).unwrap();
        result
    }

    #[test]
    fn rows_headers_and_errors() {
        let t = parse("a,b\n1, 2\n3,4.5\n\n").unwrap();
        assert_eq!(
            (t.shape(), t.data()),
            (&[2usize, 2][..], &[1.0, 2.0, 3.0, 4.5][..])
        );
        let ragged = parse("1,2\n3\n").unwrap_err().to_string();
        assert!(ragged.contains("line 2: 1 fields, expected 2"), "{ragged}");
        assert!(parse("1,2\n3,x\n")
            .unwrap_err()
            .to_string()
            .contains("line 2, column 2: 'x'"));
        assert!(parse("1,nan\n")
            .unwrap_err()
            .to_string()
            .contains("column 2"));
        assert!(parse("").unwrap_err().to_string().contains("no rows"));
        assert!(parse("1,\n")
            .unwrap_err()
            .to_string()
            .contains("column 2: ''"));
    }
}
