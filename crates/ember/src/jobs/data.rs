//! Data-file jobs: an IDX image set written out as an image folder, and a CSV file's
//! columns described (`ember data`).

use std::path::Path;

use crate::data::idx::read_idx;
use crate::data::image::save_png;
use crate::data::table::{CsvOptions, Table};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Writes the first `limit` (default: all) images of an IDX image set as
/// `output/LABEL/NNNNN.png`; never replaces a file. Returns how many were written.
pub fn export_images(
    images: &Path,
    labels: &Path,
    output: &Path,
    limit: Option<usize>,
) -> Result<usize> {
    let image_set = read_idx(images)?;
    let label_set = read_idx(labels)?;
    let &[n, height, width] = image_set.shape() else {
        return Err(Error::data(
            images,
            format!(
                "expected (n, height, width) images, got {:?}",
                image_set.shape()
            ),
        ));
    };
    if label_set.shape() != [n] {
        return Err(Error::data(
            labels,
            format!("{n} images but labels of shape {:?}", label_set.shape()),
        ));
    }
    let count = limit.unwrap_or(n).min(n);
    // Every file is new: an image already there (an earlier export, say) is not replaced.
    crate::atomic::check_output_dir(output)?;
    let file = |i: usize| {
        output
            .join(format!("{}", label_set.data()[i]))
            .join(format!("{i:05}.png"))
    };
    if let Some(taken) = (0..count).map(file).find(|f| f.exists()) {
        return Err(Error::data(
            &taken,
            "already exists; refusing to overwrite it (export into a new or empty folder)",
        ));
    }
    for i in 0..count {
        let label = label_set.data()[i];
        let folder = output.join(format!("{label}"));
        std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        let pixels = Tensor::new(
            &[height, width],
            image_set.data()[i * height * width..(i + 1) * height * width].to_vec(),
        )?;
        save_png(&folder.join(format!("{i:05}.png")), &pixels)?;
    }
    Ok(count)
}

/// A CSV file's columns described, as text or JSON; read leniently, so that every row a
/// strict read would reject is listed, not only the first.
pub fn inspect(file: &Path, options: &CsvOptions, json: bool) -> Result<String> {
    let options = CsvOptions {
        drop_bad_rows: true,
        ..options.clone()
    };
    let table = Table::read(file, &options)?;
    if !json {
        return Ok(crate::report::inspect_text(
            &table,
            &file.display().to_string(),
        ));
    }
    let summaries: Vec<_> = (0..table.names.len()).map(|i| table.summary(i)).collect();
    let value = serde_json::json!({ "rows": table.rows(), "columns": summaries, "rejected": table.rejected, "bad_cells": table.bad_cells });
    let text =
        serde_json::to_string_pretty(&value).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    Ok(text + "\n")
}
