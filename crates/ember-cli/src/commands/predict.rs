//! `ember predict MODEL INPUT…`: labels and top-k probabilities for images (PNG, JPEG of any
//! size), IDX files and CSV rows, prepared as the model's training data was.

use std::path::{Path, PathBuf};

use clap::Args;
use ember::saved::{SavedModel, TableModel};
use ember::Error;

#[derive(Args)]
pub struct PredictArgs {
    /// A model saved by `ember train --output`.
    model: PathBuf,
    /// Inputs: .png / .jpg images, IDX files (one sample per entry), .csv files (one sample per row).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// How many of the most likely classes to show.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    top_k: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Threads for the numeric kernels (default: EMBER_NUM_THREADS, else all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    /// For a table model: how to read the CSV inputs (default: as its training file was read).
    #[command(flatten)]
    csv: super::table::CsvArgs,
}

pub fn run(args: PredictArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    let network = match SavedModel::load(&args.model)? {
        SavedModel::Table(table) => return predict_rows(&table, &args),
        SavedModel::Text(classifier) => {
            return super::text::predict(
                &classifier,
                &args.inputs,
                Path::new(".ember-cache"),
                args.json,
            )
        }
        SavedModel::Faq(_) => {
            return Err(Error::data(
                &args.model,
                "a FAQ index answers questions: use `ember ask INDEX QUESTION`",
            ))
        }
        SavedModel::Network(network) => network,
    };
    let predictions = network.predict_files(&args.inputs, args.top_k as usize, &args.model)?;
    if args.json {
        let text = serde_json::to_string_pretty(&predictions)
            .map_err(|e| Error::InvalidArgument(format!("cannot write JSON: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    let classes = &network.data(&args.model)?.classes;
    for (i, p) in predictions.iter().enumerate() {
        // Class names where the model knows its classes, numbers otherwise.
        let name = |c: usize| match (&p.class, classes.get(c)) {
            (Some(_), Some(name)) => name.clone(),
            _ => c.to_string(),
        };
        let top: Vec<String> = p
            .top
            .iter()
            .map(|t| format!("{} {:.4}", name(t.label), t.score))
            .collect();
        // `#N` numbers the samples of a file that holds several (IDX, CSV), not an image.
        let same_input = |q: &&ember::saved::ClassPrediction| q.input == p.input;
        let several = predictions[i.saturating_sub(1)..(i + 2).min(predictions.len())]
            .iter()
            .filter(same_input)
            .count()
            > 1;
        let sample = if several {
            format!("#{}", p.sample)
        } else {
            String::new()
        };
        println!(
            "{}{sample}: {}  (top: {})",
            p.input,
            name(p.label),
            top.join(", ")
        );
    }
    Ok(())
}

/// A table model on raw CSV rows (missing values and all): the rows come back with a
/// `prediction` column, and `probability` for classifiers.
fn predict_rows(table_model: &TableModel, args: &PredictArgs) -> ember::Result<()> {
    use ember::data::table::Table;

    let (tabular, spec) = (&table_model.model, &table_model.spec);
    let mut records = Vec::new();
    let mut first_names = Vec::new();
    let mut out = csv::Writer::from_writer(std::io::stdout());
    let csv_error = |e: csv::Error| Error::InvalidArgument(format!("cannot write CSV: {e}"));
    for (n, input) in args.inputs.iter().enumerate() {
        let table = Table::read(input, &args.csv.or(&spec.options.csv))?;
        super::table::report_rejected(&table);
        let predictions = tabular.predict(&table)?;
        if args.json {
            for (r, p) in predictions.into_iter().enumerate() {
                // A regression's prediction is a number; a class is its label.
                let prediction = match p.value {
                    Some(v) => serde_json::json!(v),
                    None => serde_json::json!(p.label),
                };
                let mut record = serde_json::json!({
                    "input": input.display().to_string(),
                    "line": table.lines[r],
                    "prediction": prediction,
                });
                if let Some(probability) = p.probability {
                    record["probability"] = serde_json::json!(probability);
                }
                if let Some((class, probability)) = p.positive {
                    record[format!("probability_{class}")] = serde_json::json!(probability);
                }
                records.push(record);
            }
            continue;
        }
        let classifier = tabular.task != ember::tabular::Task::Regression;
        if n > 0 && table.names != first_names {
            return Err(Error::Data {
                path: input.clone(),
                message: format!(
                    "its columns differ from those of {}",
                    args.inputs[0].display()
                ),
            });
        }
        if n == 0 {
            first_names = table.names.clone();
            let mut header = table.names.clone();
            header.push("prediction".into());
            if classifier {
                header.push("probability".into());
            }
            // A binary classifier also gives its positive class's probability, named.
            if let Some(Some((class, _))) = predictions.first().map(|p| &p.positive) {
                header.push(format!("probability_{class}"));
            }
            out.write_record(&header).map_err(csv_error)?;
        }
        for (r, p) in predictions.into_iter().enumerate() {
            let mut row: Vec<String> = table
                .columns
                .iter()
                .map(|c| c[r].clone().unwrap_or_default())
                .collect();
            row.push(p.label);
            if let Some(probability) = p.probability {
                row.push(format!("{probability:.4}"));
            }
            if let Some((_, probability)) = p.positive {
                row.push(format!("{probability:.4}"));
            }
            out.write_record(&row).map_err(csv_error)?;
        }
    }
    out.flush()
        .map_err(|e| Error::InvalidArgument(format!("cannot write CSV: {e}")))?;
    if args.json {
        let text = serde_json::to_string_pretty(&records)
            .map_err(|e| Error::InvalidArgument(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    }
    Ok(())
}
