//! Numeric CSV rows as samples: one row per sample, one number per feature.

use std::path::Path;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Reads a CSV file of numbers into a (rows, columns) tensor. A first line that is not all
/// numbers is taken as a header. Ragged rows and non-numbers are errors naming line and column.
pub fn read_numeric_rows(path: &Path) -> Result<Tensor> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Error::data(path, format!("cannot read CSV: {e}")))?;
    let mut values = Vec::new();
    let mut columns = None;
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Error::data(path, format!("line {}: {e}", i + 1)))?;
        let line = record.position().map_or(i as u64 + 1, |p| p.line());
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let parsed: Vec<std::result::Result<f32, usize>> = record
            .iter()
            .enumerate()
            .map(|(c, f)| f.parse::<f32>().ok().filter(|v| v.is_finite()).ok_or(c))
            .collect();
        if columns.is_none() && values.is_empty() && parsed.iter().all(|p| p.is_err()) {
            continue; // a header
        }
        let expected = *columns.get_or_insert(record.len());
        if record.len() != expected {
            return Err(Error::data(
                path,
                format!(
                    "line {line}: {} columns, earlier rows have {expected}",
                    record.len()
                ),
            ));
        }
        for p in parsed {
            match p {
                Ok(v) => values.push(v),
                Err(c) => {
                    return Err(Error::data(
                        path,
                        format!(
                            "line {line}, column {}: '{}' is not a finite number",
                            c + 1,
                            &record[c]
                        ),
                    ))
                }
            }
        }
    }
    let Some(columns) = columns else {
        return Err(Error::data(path, "no data rows"));
    };
    Tensor::new(&[values.len() / columns, columns], values)
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
        assert!(parse("1,2\n3\n")
            .unwrap_err()
            .to_string()
            .contains("line 2: 1 columns"));
        assert!(parse("1,2\n3,x\n")
            .unwrap_err()
            .to_string()
            .contains("line 2, column 2: 'x'"));
        assert!(parse("1,nan\n")
            .unwrap_err()
            .to_string()
            .contains("column 2"));
        assert!(parse("").unwrap_err().to_string().contains("no data rows"));
    }
}
