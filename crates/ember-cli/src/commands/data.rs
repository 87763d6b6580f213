//! `ember data inspect FILE`: what each column holds, and which rows would be rejected;
//! `ember data export-images`: an IDX image set written out as an image folder.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use ember::jobs::data;

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

#[derive(Args)]
struct InspectArgs {
    /// The CSV file.
    file: PathBuf,
    #[command(flatten)]
    csv: super::table::CsvArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    threads: super::Threads,
}

pub fn run(args: DataArgs) -> ember::Result<()> {
    match args.command {
        DataCommand::Inspect(args) => {
            super::set_threads(args.threads)?;
            let text = data::inspect(&args.file, &args.csv.options(), args.json)?;
            print!("{text}");
        }
        DataCommand::ExportImages(args) => {
            let n = data::export_images(&args.images, &args.labels, &args.output, args.limit)?;
            let (images, to) = (ember::report::count(n, "image"), args.output.display());
            println!("wrote {images} to {to}");
        }
    }
    Ok(())
}
