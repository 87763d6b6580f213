//! `ember predict MODEL INPUT…`: labels and top-k probabilities for images (PNG, JPEG of any
//! size), IDX files and CSV rows, prepared as the model's training data was; `-` reads an
//! input from standard input, `--output FILE` writes the predictions to a file.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Args;
use ember::saved::{ClassPrediction, NetworkModel, SavedModel, TableModel};
use ember::Error;

#[derive(Args)]
pub struct PredictArgs {
    /// A model saved by `ember train --output`.
    model: PathBuf,
    /// Inputs: images (PNG, JPEG), IDX files (one sample per entry, plain or gzip), CSV files
    /// (one sample per row), told apart by content; `-` reads one from standard input.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// How many of the most likely classes to show.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    top_k: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Write the predictions to this file (replaced whole, never one of the inputs) instead
    /// of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Threads for the numeric kernels (default: EMBER_NUM_THREADS, else all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    /// Also explain each prediction, as `ember explain --method METHOD` does (default
    /// integrated-gradients); with --json the output is {"predictions", "explanations"}.
    #[arg(long, value_name = "METHOD", num_args = 0..=1, default_missing_value = "integrated-gradients")]
    explain: Option<String>,
    /// For a table model: how to read the CSV inputs (default: as its training file was read).
    #[command(flatten)]
    csv: super::table::CsvArgs,
}

/// The name standard input goes by among the inputs.
const STDIN: &str = "-";

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN
}

/// Standard input's bytes, read whole.
fn read_stdin() -> ember::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(Path::new(STDIN), e))?;
    Ok(bytes)
}

pub fn run(args: PredictArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    if args.inputs.iter().filter(|p| is_stdin(p)).count() > 1 {
        return Err(Error::invalid(
            "standard input ('-') can be read once: give it as one input only",
        ));
    }
    if let Some(file) = &args.output {
        let mut inputs: Vec<&Path> = vec![args.model.as_path()];
        inputs.extend(args.inputs.iter().map(PathBuf::as_path));
        ember::atomic::check_output(file, &inputs)?;
    }
    if args.explain.is_some() && args.inputs.iter().any(|p| is_stdin(p)) {
        return Err(Error::invalid(
            "--explain reads its inputs again: give files, not standard input",
        ));
    }
    let explain = match &args.explain {
        Some(method) => Some(super::explain::default_args(
            &args.model,
            &args.inputs,
            method,
            args.json,
        )?),
        None => None,
    };
    let saved = SavedModel::load(&args.model)?;
    let mut text = match &saved {
        SavedModel::Table(table) => predict_rows(table, &args)?,
        SavedModel::Text(classifier) => {
            let cache = Path::new(".ember-cache");
            let mut predictions = Vec::new();
            for input in &args.inputs {
                if is_stdin(input) {
                    let text = classifier.document_text(&read_stdin()?);
                    let (class, probability) =
                        classifier
                            .predict(&[text.as_str()], cache)?
                            .pop()
                            .ok_or_else(|| Error::invalid("no prediction for standard input"))?;
                    predictions.push(ember::text::TextPrediction {
                        input: STDIN.to_string(),
                        class,
                        probability,
                    });
                } else {
                    predictions
                        .extend(classifier.predict_files(std::slice::from_ref(input), cache)?);
                }
            }
            super::text::render_predictions(&predictions, args.json)?
        }
        SavedModel::Faq(_) => {
            return Err(Error::data(
                &args.model,
                "a FAQ index answers questions: use `ember ask INDEX QUESTION`",
            ))
        }
        SavedModel::Network(network) => predict_network(network, &args)?,
    };
    if let Some(explain) = &explain {
        let explanations = super::explain::explain(&saved, explain)?;
        text = if args.json {
            let parse = |t: &str| {
                serde_json::from_str::<serde_json::Value>(t)
                    .map_err(|e| Error::invalid(format!("cannot read back JSON: {e}")))
            };
            let both = serde_json::json!({
                "predictions": parse(&text)?,
                "explanations": parse(&explanations)?,
            });
            serde_json::to_string_pretty(&both)
                .map_err(|e| Error::invalid(format!("cannot write JSON: {e}")))?
                + "\n"
        } else {
            format!(
                "{text}\nExplanations ({}):\n{explanations}",
                explain_method(explain)
            )
        };
    }
    match &args.output {
        Some(file) => ember::atomic::write_atomically(file, text.as_bytes()),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn explain_method(args: &super::explain::ExplainArgs) -> &str {
    args.method()
}

/// A network's predictions, a line per sample (or JSON).
fn predict_network(network: &NetworkModel, args: &PredictArgs) -> ember::Result<String> {
    let top_k = args.top_k as usize;
    let mut predictions = Vec::new();
    for input in &args.inputs {
        if is_stdin(input) {
            predictions.extend(network.predict_bytes(&read_stdin()?, input, top_k, &args.model)?);
        } else {
            predictions.extend(network.predict_files(
                std::slice::from_ref(input),
                top_k,
                &args.model,
            )?);
        }
    }
    if args.json {
        let text = serde_json::to_string_pretty(&predictions)
            .map_err(|e| Error::InvalidArgument(format!("cannot write JSON: {e}")))?;
        return Ok(text + "\n");
    }
    let classes = &network.data(&args.model)?.classes;
    let mut out = String::new();
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
        let same_input = |q: &&ClassPrediction| q.input == p.input;
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
        let _ = writeln!(
            out,
            "{}{sample}: {}  (top: {})",
            p.input,
            name(p.label),
            top.join(", ")
        );
    }
    Ok(out)
}

/// A table model on raw CSV rows (missing values and all): the rows come back as written,
/// with a `prediction` column, and `probability` for classifiers.
fn predict_rows(table_model: &TableModel, args: &PredictArgs) -> ember::Result<String> {
    use ember::data::table::Table;

    let (tabular, spec) = (&table_model.model, &table_model.spec);
    let mut records = Vec::new();
    let mut first_names = Vec::new();
    let mut out = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| Error::InvalidArgument(format!("cannot write CSV: {e}"));
    for (n, input) in args.inputs.iter().enumerate() {
        let options = args.csv.or(&spec.options.csv);
        let table = match is_stdin(input) {
            true => Table::parse(&read_stdin()?, input, &options)?,
            false => Table::read(input, &options)?,
        };
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
            // Each cell as the file wrote it: `NA` stays `NA`.
            let mut row: Vec<String> = (0..table.columns.len())
                .map(|c| table.as_written(c, r).to_string())
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
    if args.json {
        let text = serde_json::to_string_pretty(&records)
            .map_err(|e| Error::InvalidArgument(format!("cannot write JSON: {e}")))?;
        return Ok(text + "\n");
    }
    let bytes = out
        .into_inner()
        .map_err(|e| Error::InvalidArgument(format!("cannot write CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::InvalidArgument(format!("cannot write CSV: {e}")))
}
