//! `ember predict MODEL INPUT…`: labels and top-k probabilities for images (PNG, JPEG of any
//! size), IDX files and CSV rows, prepared as the model's training data was.

use std::path::{Path, PathBuf};

use clap::Args;
use ember::data::{image_folder::is_image_file, read_idx, rows::read_numeric_rows};
use ember::spec::DataSpec;
use ember::{io, Error, Tensor};
use serde::Serialize;

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
    /// For a table model: how to read the CSV inputs (default: as its training file was read).
    #[command(flatten)]
    csv: super::table::CsvArgs,
}

#[derive(Serialize)]
struct Prediction {
    input: String,
    /// Sample number within the input (0 for an image).
    sample: usize,
    label: usize,
    /// The label's class name, for models trained on an image folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    class: Option<String>,
    #[serde(skip)]
    classes: Option<Vec<String>>,
    /// The most likely classes with their probabilities, best first.
    top: Vec<(usize, f32)>,
}

pub fn run(args: PredictArgs) -> ember::Result<()> {
    let mut checkpoint = io::load(&args.model)?;
    if let Some(table) = checkpoint.spec.table.take() {
        return predict_rows(checkpoint.model, table, &args);
    }
    if let Some(text) = checkpoint.spec.text.take() {
        return super::text::predict(
            checkpoint.model,
            text,
            &args.inputs,
            std::path::Path::new(".ember-cache"),
            args.json,
        );
    }
    let data = super::data_spec(&checkpoint.spec, &args.model)?;
    let input_shape = checkpoint.model.input_shape().to_vec();
    let mut predictions = Vec::new();
    for input in &expand_folders(&args.inputs)? {
        let raw = read_input(input, &data)?;
        let x = data.prepare_inputs(raw)?;
        if x.shape()[1..] != input_shape[..] {
            return Err(Error::Data {
                path: input.clone(),
                message: format!(
                    "samples of shape {:?}, the model expects {input_shape:?}",
                    &x.shape()[1..]
                ),
            });
        }
        let outputs = checkpoint.model.predict(&x, 256)?;
        let width = outputs.row_len().max(1);
        for (sample, row) in outputs.data().chunks(width).enumerate() {
            predictions.push(describe(
                input,
                sample,
                row,
                args.top_k as usize,
                &data.classes,
            ));
        }
    }
    if args.json {
        let text = serde_json::to_string_pretty(&predictions)
            .map_err(|e| Error::InvalidArgument(format!("cannot write JSON: {e}")))?;
        println!("{text}");
    } else {
        for p in &predictions {
            let name = |c: usize| match &p.classes {
                Some(names) => names[c].clone(),
                None => c.to_string(),
            };
            let top: Vec<String> = p
                .top
                .iter()
                .map(|(c, prob)| format!("{} {prob:.4}", name(*c)))
                .collect();
            println!(
                "{}#{}: {}  (top: {})",
                p.input,
                p.sample,
                name(p.label),
                top.join(", ")
            );
        }
    }
    Ok(())
}

/// One input file as raw samples (n, …), before preprocessing.
fn read_input(path: &Path, data: &DataSpec) -> ember::Result<Tensor> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let sample = data.sample_shape();
    match extension.as_str() {
        "png" | "jpg" | "jpeg" => {
            if !matches!(sample.len(), 2 | 3) {
                return Err(Error::Data {
                    path: path.to_path_buf(),
                    message: "this model does not take images".into(),
                });
            }
            let mut shape = vec![1];
            shape.extend_from_slice(&sample);
            data.load_image(path)?.reshape(&shape)
        }
        "csv" => {
            let rows = read_numeric_rows(path)?;
            let columns = rows.row_len();
            let mut shape = vec![rows.rows()];
            shape.extend_from_slice(&sample);
            rows.reshape(&shape).map_err(|_| Error::Data {
                path: path.to_path_buf(),
                message: format!(
                    "rows of {columns} values, the model's samples have {}",
                    sample.iter().product::<usize>()
                ),
            })
        }
        _ => {
            let t = read_idx(path).map_err(|e| match e {
                Error::Data { path, message } if message.contains("magic number") => Error::Data {
                    path,
                    message: format!("not a PNG/JPEG image, CSV or IDX file ({message})"),
                },
                other => other,
            })?;
            // A single sample may come without the leading count axis.
            if t.shape() == sample.as_slice() {
                let mut shape = vec![1];
                shape.extend_from_slice(&sample);
                return t.reshape(&shape);
            }
            if t.shape().get(1..) != Some(sample.as_slice()) {
                return Err(Error::Data {
                    path: path.to_path_buf(),
                    message: format!(
                        "IDX dimensions {:?}, the model's samples are {sample:?}",
                        t.shape()
                    ),
                });
            }
            Ok(t)
        }
    }
}

/// The inputs with each folder replaced by the image files in it (sorted by name).
fn expand_folders(inputs: &[PathBuf]) -> ember::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        let mut images: Vec<PathBuf> = std::fs::read_dir(input)
            .map_err(|e| Error::io(input, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_image_file(p))
            .collect();
        if images.is_empty() {
            return Err(Error::data(
                input,
                "the folder holds no .png/.jpg/.jpeg images",
            ));
        }
        images.sort();
        files.extend(images);
    }
    Ok(files)
}

fn describe(
    input: &Path,
    sample: usize,
    outputs: &[f32],
    k: usize,
    classes: &[String],
) -> Prediction {
    // A single sigmoid output is the probability of class 1.
    let probabilities: Vec<f32> = match outputs {
        [p] => vec![1.0 - p, *p],
        many => many.to_vec(),
    };
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then(a.cmp(&b))
    });
    let named = !classes.is_empty() && classes.len() == probabilities.len();
    Prediction {
        input: input.display().to_string(),
        sample,
        label: order[0],
        class: named.then(|| classes[order[0]].clone()),
        classes: named.then(|| classes.to_vec()),
        top: order
            .iter()
            .take(k)
            .map(|&c| (c, probabilities[c]))
            .collect(),
    }
}

/// A table model on raw CSV rows (missing values and all): the rows come back with a
/// `prediction` column, and `probability` for classifiers.
fn predict_rows(
    model: ember::Model,
    spec: ember::spec::TableSpec,
    args: &PredictArgs,
) -> ember::Result<()> {
    use ember::data::table::Table;
    use ember::tabular::TabularModel;

    let tabular = TabularModel {
        model,
        preprocessor: spec.preprocessor,
        task: spec.task,
    };
    let mut records = Vec::new();
    let mut first_names = Vec::new();
    let mut out = csv::Writer::from_writer(std::io::stdout());
    let csv_error = |e: csv::Error| Error::InvalidArgument(format!("cannot write CSV: {e}"));
    for (n, input) in args.inputs.iter().enumerate() {
        let table = Table::read(input, &args.csv.or(&spec.options.csv))?;
        super::table::report_rejected(&table);
        let predictions = tabular.predict(&table)?;
        if args.json {
            for (r, (prediction, probability)) in predictions.into_iter().enumerate() {
                records.push(serde_json::json!({
                    "input": input.display().to_string(),
                    "line": table.lines[r],
                    "prediction": prediction,
                    "probability": probability,
                }));
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
            out.write_record(&header).map_err(csv_error)?;
        }
        for (r, (prediction, probability)) in predictions.into_iter().enumerate() {
            let mut row: Vec<String> = table
                .columns
                .iter()
                .map(|c| c[r].clone().unwrap_or_default())
                .collect();
            row.push(prediction);
            if let Some(p) = probability {
                row.push(format!("{p:.4}"));
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
