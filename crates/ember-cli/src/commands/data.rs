//! `ember data inspect FILE`: what each column holds, and which rows would be rejected;
//! `ember data export-images`: an IDX image set written out as an image folder.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ember::data::table::{ColumnKind, Table};

#[derive(Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Per column: inferred type, missing and distinct counts, range or top values.
    Inspect(InspectArgs),
    /// Writes an IDX image set as an image folder: OUTPUT/LABEL/NNNNN.png.
    ExportImages(ExportArgs),
}

#[derive(Args)]
struct ExportArgs {
    /// IDX file of images (n, height, width), plain or gzip.
    images: PathBuf,
    /// IDX file of labels (n), plain or gzip.
    labels: PathBuf,
    /// The folder to create the class subfolders in.
    #[arg(long, short)]
    output: PathBuf,
    /// Export only the first N images.
    #[arg(long)]
    limit: Option<usize>,
}

fn export_images(args: ExportArgs) -> ember::Result<()> {
    use ember::data::image::save_png;
    use ember::Error;
    let images = ember::read_idx(&args.images)?;
    let labels = ember::read_idx(&args.labels)?;
    let &[n, height, width] = images.shape() else {
        return Err(Error::data(
            &args.images,
            format!(
                "expected (n, height, width) images, got {:?}",
                images.shape()
            ),
        ));
    };
    if labels.shape() != [n] {
        return Err(Error::data(
            &args.labels,
            format!("{n} images but labels of shape {:?}", labels.shape()),
        ));
    }
    let count = args.limit.unwrap_or(n).min(n);
    // Every file is new: an image already there (an earlier export, say) is not replaced.
    ember::atomic::check_output_dir(&args.output)?;
    let file = |i: usize| {
        args.output
            .join(format!("{}", labels.data()[i]))
            .join(format!("{i:05}.png"))
    };
    if let Some(taken) = (0..count).map(file).find(|f| f.exists()) {
        return Err(Error::data(
            &taken,
            "already exists; refusing to overwrite it (export into a new or empty folder)",
        ));
    }
    for i in 0..count {
        let label = labels.data()[i];
        let folder = args.output.join(format!("{label}"));
        std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        let pixels = ember::Tensor::new(
            &[height, width],
            images.data()[i * height * width..(i + 1) * height * width].to_vec(),
        )?;
        save_png(&folder.join(format!("{i:05}.png")), &pixels)?;
    }
    println!("wrote {count} images to {}", args.output.display());
    Ok(())
}

#[derive(Args)]
struct InspectArgs {
    /// The CSV file.
    file: PathBuf,
    #[command(flatten)]
    csv: super::table::CsvArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DataArgs) -> ember::Result<()> {
    let args = match args.command {
        DataCommand::Inspect(args) => args,
        DataCommand::ExportImages(args) => return export_images(args),
    };
    // Read leniently so that every bad row can be listed, not only the first.
    let mut options = args.csv.options();
    options.drop_bad_rows = true;
    let table = Table::read(&args.file, &options)?;
    let summaries: Vec<_> = (0..table.names.len()).map(|i| table.summary(i)).collect();
    if args.json {
        let value = serde_json::json!({ "rows": table.rows(), "columns": summaries, "rejected": table.rejected, "bad_cells": table.bad_cells });
        println!(
            "{}",
            serde_json::to_string_pretty(&value)
                .map_err(|e| ember::Error::InvalidArgument(e.to_string()))?
        );
        return Ok(());
    }
    println!(
        "{}: {} rows, {} columns",
        args.file.display(),
        table.rows(),
        table.names.len()
    );
    println!(
        "{:<24} {:<12} {:>8} {:>9}  summary",
        "column", "type", "missing", "distinct"
    );
    for s in &summaries {
        let kind = format!("{:?}", s.kind).to_lowercase();
        let detail = match s.kind {
            ColumnKind::Numeric | ColumnKind::Identifier => format!(
                "min {} max {} mean {:.4}",
                s.min.unwrap_or(f64::NAN),
                s.max.unwrap_or(f64::NAN),
                s.mean.unwrap_or(f64::NAN)
            ),
            _ => s
                .top
                .iter()
                .map(|(v, c)| format!("{v} ({c})"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        println!(
            "{:<24} {:<12} {:>8} {:>9}  {detail}",
            s.name, kind, s.missing, s.distinct
        );
    }
    if table.rejected.is_empty() {
        println!("No rejected rows.");
    } else {
        println!("{} rows would be rejected:", table.rejected.len());
        for r in &table.rejected {
            println!("  line {}: {}", r.line, r.reason);
        }
    }
    if !table.bad_cells.is_empty() {
        println!(
            "{} cells of number columns are not numbers (read as missing):",
            table.bad_cells.len()
        );
        for b in &table.bad_cells {
            println!("  line {}: column '{}': {:?}", b.line, b.column, b.text);
        }
    }
    Ok(())
}
