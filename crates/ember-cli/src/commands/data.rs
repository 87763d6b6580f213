//! `ember data inspect FILE`: what each column holds, and which rows would be rejected.

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
    let DataCommand::Inspect(args) = args.command;
    // Read leniently so that every bad row can be listed, not only the first.
    let mut options = args.csv.options();
    options.drop_bad_rows = true;
    let table = Table::read(&args.file, &options)?;
    let summaries: Vec<_> = (0..table.names.len()).map(|i| table.summary(i)).collect();
    if args.json {
        let value = serde_json::json!({ "rows": table.rows(), "columns": summaries, "rejected": table.rejected });
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
    Ok(())
}
