//! `ember explain MODEL INPUT… --method M`: why the model said what it said. Per-input
//! attributions for networks of images or numbers and for table rows, permutation importance
//! of a table model's columns over a labelled CSV; heat maps and bar charts with `--output`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use ember::data::table::Table;
use ember::explain::network::{class_index, Baseline, Options, SampleExplanation};
use ember::explain::{Method, SmoothGrad};
use ember::report::Bars;
use ember::saved::{NetworkModel, SavedModel, TableModel};
use ember::Error;
use serde_json::json;

#[derive(Args)]
pub struct ExplainArgs {
    /// A model saved by `ember train --output` (a network, or a table model).
    model: PathBuf,
    /// Inputs, as `ember predict` takes them: images, IDX files, CSV files.
    inputs: Vec<PathBuf>,
    /// saliency, smoothgrad, integrated-gradients, grad-cam (networks); integrated-gradients
    /// or shap (table rows, per column); permutation (a table model, with --csv);
    /// integrated-gradients (TF-IDF) or occlusion (text).
    #[arg(long, default_value = "integrated-gradients")]
    method: String,
    /// The class to explain, by name or number (default: each sample's predicted class).
    #[arg(long, value_name = "LABEL")]
    target: Option<String>,
    /// Write a picture per explanation into this folder: a heat map per image, a bar chart
    /// per table row or of the importances.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Integrated Gradients: Gauss–Legendre points along the path (default: 64 for images
    /// and text, 1024 for table rows).
    #[arg(long)]
    steps: Option<usize>,
    /// Integrated Gradients' baseline for images: black, or blur (the input blurred).
    #[arg(long, default_value = "black")]
    baseline: String,
    /// The blurred baseline's standard deviation in pixels (default: a tenth of the
    /// image's smaller side).
    #[arg(long)]
    blur_sigma: Option<f32>,
    /// SmoothGrad: noisy copies per input (default 50); SHAP beyond 12 columns: coalitions
    /// sampled per row (default 2048).
    #[arg(long)]
    samples: Option<usize>,
    /// SmoothGrad: the noise's standard deviation, as a fraction of the input's range.
    #[arg(long, default_value_t = 0.15)]
    noise: f32,
    /// SmoothGrad's noise and permutation's shuffles: the same seed gives the same result.
    #[arg(long, default_value_t = 0)]
    seed: u32,
    /// Grad-CAM's layer (default: the last convolution).
    #[arg(long)]
    layer: Option<String>,
    /// Permutation importance: a labelled CSV of held-out rows.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Permutation importance: shuffles per column.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Threads for the numeric kernels (default: EMBER_NUM_THREADS, else all cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    #[command(flatten)]
    csv_options: super::table::CsvArgs,
}

pub fn run(args: ExplainArgs) -> ember::Result<()> {
    super::set_threads(args.threads)?;
    Method::parse(&args.method)?;
    if let Some(dir) = &args.output {
        ember::atomic::check_output_dir(dir)?;
    }
    let saved = SavedModel::load(&args.model)?;
    print!("{}", explain(&saved, &args)?);
    Ok(())
}

impl ExplainArgs {
    /// The method's name, as given.
    pub fn method(&self) -> &str {
        &self.method
    }
}

/// The explanation `args` ask of the loaded model: text, or JSON with `--json`.
pub fn explain(saved: &SavedModel, args: &ExplainArgs) -> ember::Result<String> {
    let method = Method::parse(&args.method)?;
    if method == Method::Permutation {
        let SavedModel::Table(table) = saved else {
            return Err(Error::invalid(format!(
                "--method permutation explains a table model; {} is a {} model",
                args.model.display(),
                saved.kind()
            )));
        };
        return permutation(table, args);
    }
    if args.csv.is_some() {
        return Err(Error::invalid("--csv is for --method permutation"));
    }
    if args.inputs.is_empty() {
        return Err(Error::invalid("give the inputs to explain"));
    }
    match saved {
        SavedModel::Network(network) => explain_network(network, method, args),
        SavedModel::Table(table) => explain_rows(table, method, args),
        SavedModel::Text(classifier) => explain_texts(classifier, method, args),
        other => Err(Error::invalid(format!(
            "{} is a {} model: explain takes networks, table models and text classifiers",
            args.model.display(),
            other.kind()
        ))),
    }
}

/// `ember explain MODEL INPUT… --method METHOD [--json]` with every other setting at its
/// default: what `ember predict --explain` runs.
pub fn default_args(
    model: &Path,
    inputs: &[PathBuf],
    method: &str,
    json: bool,
) -> ember::Result<ExplainArgs> {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ExplainArgs,
    }
    let mut words: Vec<std::ffi::OsString> = vec!["explain".into(), model.into()];
    words.extend(inputs.iter().map(|p| p.into()));
    words.extend(["--method".into(), method.into()]);
    if json {
        words.push("--json".into());
    }
    <Cli as clap::Parser>::try_parse_from(words)
        .map(|cli| cli.args)
        .map_err(|e| Error::invalid(e.to_string().lines().next().unwrap_or("").to_string()))
}

fn explain_network(
    network: &NetworkModel,
    method: Method,
    args: &ExplainArgs,
) -> ember::Result<String> {
    let geometry = network.image_geometry(&args.model)?;
    let baseline = match args.baseline.as_str() {
        "black" => Baseline::Black,
        "blur" => {
            let (h, w, _) = geometry
                .ok_or_else(|| Error::invalid("--baseline blur needs a model of images"))?;
            Baseline::Blur(args.blur_sigma.unwrap_or((h.min(w) as f32 / 10.0).max(1.0)))
        }
        other => {
            return Err(Error::invalid(format!(
                "--baseline '{other}': expected black or blur"
            )))
        }
    };
    let options = Options {
        method,
        target: args.target.clone(),
        baseline,
        steps: args
            .steps
            .unwrap_or(ember::explain::gradients::DEFAULT_STEPS),
        smooth: SmoothGrad {
            samples: args.samples.unwrap_or(50),
            noise: args.noise,
            seed: args.seed as u64,
        },
        layer: args.layer.clone(),
    };
    let results = network.explain_files(&args.inputs, &args.model, &options)?;
    if let (Some(dir), Some(shape)) = (&args.output, geometry) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for r in &results {
            let png = ember::explain::render::heat_map(
                &r.values,
                shape,
                &r.explanation.attributions,
                method.is_additive(),
            )?;
            let file = dir.join(picture_name(r, method));
            write_file(args, &file, &png)?;
            eprintln!("wrote {}", file.display());
        }
    }
    if args.json {
        let results: Vec<_> = results.iter().map(|r| sample_json(r, None)).collect();
        return json_text(&json!({ "results": results }));
    }
    let mut out = String::new();
    for r in &results {
        let e = &r.explanation;
        let _ = write!(
            out,
            "{}: label {}, target {}: score {:.4}, baseline {:.4}",
            name_of(r),
            r.label,
            r.target,
            e.score,
            e.baseline_score
        );
        let sum: f64 = e.attributions.iter().map(|&a| a as f64).sum();
        if method.is_additive() {
            let _ = write!(out, ", attributions sum {sum:+.4}");
        }
        let mut top: Vec<usize> = (0..e.attributions.len()).collect();
        top.sort_by(|&a, &b| e.attributions[b].abs().total_cmp(&e.attributions[a].abs()));
        let shown: Vec<String> = top
            .iter()
            .take(5)
            .map(|&i| format!("{} {}", position(i, geometry), signed(e.attributions[i])))
            .collect();
        let _ = writeln!(out, "\n  strongest: {}", shown.join(", "));
    }
    Ok(out)
}

/// Text documents: a score per word, and a page of coloured words per document.
fn explain_texts(
    classifier: &ember::text::TextClassifier,
    method: Method,
    args: &ExplainArgs,
) -> ember::Result<String> {
    let cache = Path::new(".ember-cache");
    let classes = &classifier.spec.classes;
    let (files, texts) = classifier.read_documents(&args.inputs)?;
    let mut results = Vec::new();
    let mut out = String::new();
    for (file, text) in files.iter().zip(&texts) {
        let (label, _) = classifier
            .predict(&[text.as_str()], cache)?
            .pop()
            .ok_or_else(|| Error::invalid("no prediction"))?;
        let target = match &args.target {
            Some(t) => class_index(t, classes)?,
            None => classes.iter().position(|c| *c == label).unwrap_or(0),
        };
        let (words, e) = ember::explain::text::word_attributions(
            classifier,
            text,
            target,
            method,
            args.steps
                .unwrap_or(ember::explain::gradients::DEFAULT_STEPS),
            cache,
        )?;
        let input = file.display().to_string();
        if let Some(dir) = &args.output {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let page = ember::explain::text::word_page(&input, text, &words, &e, &classes[target]);
            let stem = file
                .file_name()
                .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
            let page_file = dir.join(format!("{stem}.{}.html", method.name()));
            write_file(args, &page_file, page.as_bytes())?;
            eprintln!("wrote {}", page_file.display());
        }
        let names: Vec<String> = words.iter().map(|w| w.text.clone()).collect();
        if args.json {
            let sample = SampleExplanation {
                input,
                sample: 0,
                samples_in_input: 1,
                label,
                target: classes[target].clone(),
                explanation: e,
                values: Vec::new(),
            };
            results.push(sample_json(&sample, Some(&names)));
        } else {
            let (ranked, values) = sorted(&names, &e.attributions);
            let shown: Vec<String> = ranked
                .iter()
                .zip(&values)
                .take(8)
                .map(|(n, v)| format!("{n} {}", signed(*v as f32)))
                .collect();
            let _ = writeln!(
                out,
                "{input}: label {label}, target {}: score {:.4}, baseline {:.4}\n  strongest words: {}",
                classes[target], e.score, e.baseline_score, shown.join(", ")
            );
        }
    }
    if args.json {
        return json_text(&json!({ "results": results }));
    }
    Ok(out)
}

/// Writes one of `--output`'s files, never over the model or an input.
fn write_file(args: &ExplainArgs, file: &Path, bytes: &[u8]) -> ember::Result<()> {
    let mut inputs: Vec<&Path> = vec![args.model.as_path()];
    inputs.extend(args.inputs.iter().map(PathBuf::as_path));
    inputs.extend(args.csv.as_deref());
    ember::atomic::check_output(file, &inputs)?;
    ember::atomic::write_atomically(file, bytes)
}

/// A signed attribution, four decimals, or four significant digits when smaller.
fn signed(v: f32) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        format!("{v:+.3e}")
    } else {
        format!("{v:+.4}")
    }
}

/// Where value `i` is: (row, column) in an image, else its index.
fn position(i: usize, geometry: Option<(usize, usize, usize)>) -> String {
    match geometry {
        Some((_, w, 1)) => format!("({}, {})", i / w, i % w),
        Some((_, w, c)) => format!("({}, {}, channel {})", i / c / w, (i / c) % w, i % c),
        None => format!("[{i}]"),
    }
}

fn name_of(r: &SampleExplanation) -> String {
    if r.samples_in_input > 1 {
        format!("{}#{}", r.input, r.sample)
    } else {
        r.input.clone()
    }
}

/// `digit.integrated-gradients.png`, `test.idx-3.saliency.png`.
fn picture_name(r: &SampleExplanation, method: Method) -> String {
    let stem = Path::new(&r.input)
        .file_stem()
        .map_or_else(|| "input".to_string(), |s| s.to_string_lossy().into_owned());
    if r.samples_in_input > 1 {
        format!("{stem}-{}.{}.png", r.sample, method.name())
    } else {
        format!("{stem}.{}.png", method.name())
    }
}

fn sample_json(r: &SampleExplanation, features: Option<&[String]>) -> serde_json::Value {
    let e = &r.explanation;
    let mut v = json!({
        "input": r.input,
        "label": r.label,
        "target": r.target,
        "score": e.score,
        "baseline_score": e.baseline_score,
        // −0 (a zero pixel times a negative gradient) is written 0.
        "attributions": e.attributions.iter().map(|&a| if a == 0.0 { 0.0 } else { a }).collect::<Vec<f32>>(),
    });
    if r.samples_in_input > 1 {
        v["sample"] = json!(r.sample);
    }
    if let Some(features) = features {
        v["features"] = json!(features);
    }
    v
}

fn json_text(value: &serde_json::Value) -> ember::Result<String> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::invalid(format!("cannot write JSON: {e}")))?;
    Ok(text + "\n")
}

/// Table rows: Integrated Gradients on the prepared features, summed per raw column.
fn explain_rows(
    table_model: &TableModel,
    method: Method,
    args: &ExplainArgs,
) -> ember::Result<String> {
    if !matches!(method, Method::IntegratedGradients | Method::Shap) {
        return Err(Error::invalid(format!(
            "--method {} explains networks of images or numbers; for a table model use \
             integrated-gradients or shap (per row), or permutation (with --csv)",
            method.name()
        )));
    }
    let model = &table_model.model;
    let labels = match &model.preprocessor.target {
        ember::data::preprocess::Target::Classes { labels, .. } => labels.clone(),
        ember::data::preprocess::Target::Regression { .. } => {
            return Err(Error::invalid("a regression's rows cannot be explained per class; use --method permutation --csv FILE"))
        }
    };
    let mut results = Vec::new();
    let mut text = String::new();
    for input in &args.inputs {
        let options = args.csv_options.or(&table_model.spec.options.csv);
        let table = Table::read(input, &options)?;
        super::table::report_rejected(&table);
        let rows: Vec<usize> = (0..table.rows()).collect();
        let predictions = model.predict(&table)?;
        let predicted: Vec<usize> = predictions
            .iter()
            .map(|p| labels.iter().position(|l| *l == p.label).unwrap_or(0))
            .collect();
        let targets = match &args.target {
            Some(t) => vec![class_index(t, &labels)?; rows.len()],
            None => predicted.clone(),
        };
        let (features, explanations) = if method == Method::Shap {
            ember::explain::column_shap(
                model,
                &table,
                &rows,
                &targets,
                args.samples.unwrap_or(2048),
                args.seed as u64,
            )?
        } else {
            ember::explain::column_attributions(
                model,
                &table,
                &rows,
                &targets,
                args.steps.unwrap_or(ember::explain::table::DEFAULT_STEPS),
            )?
        };
        for (r, e) in explanations.into_iter().enumerate() {
            let line = table.lines[r];
            let sample = SampleExplanation {
                input: input.display().to_string(),
                sample: r,
                samples_in_input: rows.len(),
                label: labels[predicted[r]].clone(),
                target: labels[e.target].clone(),
                explanation: e,
                values: Vec::new(),
            };
            if let Some(dir) = &args.output {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                let (names, values) = sorted(&features, &sample.explanation.attributions);
                let bars = Bars {
                    title: format!(
                        "Line {line}: why {} (p = {:.3})",
                        sample.target, sample.explanation.score
                    ),
                    x_label: format!(
                        "contribution to p({}) from the baseline's {:.3}",
                        sample.target, sample.explanation.baseline_score
                    ),
                    names,
                    values,
                    errors: None,
                };
                let stem = input
                    .file_stem()
                    .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
                let file = dir.join(format!("{stem}-line{line}.{}.png", method.name()));
                write_file(args, &file, &bars.render()?.0)?;
                eprintln!("wrote {}", file.display());
            }
            if args.json {
                let mut v = sample_json(&sample, Some(&features));
                v["line"] = json!(line);
                results.push(v);
            } else {
                let e = &sample.explanation;
                let (names, values) = sorted(&features, &e.attributions);
                let shown: Vec<String> = names
                    .iter()
                    .zip(&values)
                    .map(|(n, v)| format!("{n} {}", signed(*v as f32)))
                    .collect();
                let _ = writeln!(
                    text,
                    "{} line {line}: label {}, target {}: score {:.4}, baseline {:.4}\n  {}",
                    sample.input,
                    sample.label,
                    sample.target,
                    e.score,
                    e.baseline_score,
                    shown.join(", ")
                );
            }
        }
    }
    if args.json {
        return json_text(&json!({ "results": results }));
    }
    Ok(text)
}

/// Names and values, largest magnitude first.
fn sorted(names: &[String], values: &[f32]) -> (Vec<String>, Vec<f64>) {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| values[b].abs().total_cmp(&values[a].abs()));
    (
        order.iter().map(|&i| names[i].clone()).collect(),
        order.iter().map(|&i| values[i] as f64).collect(),
    )
}

fn permutation(table_model: &TableModel, args: &ExplainArgs) -> ember::Result<String> {
    let Some(csv) = &args.csv else {
        return Err(Error::invalid(
            "--method permutation needs --csv FILE: labelled held-out rows",
        ));
    };
    if !args.inputs.is_empty() {
        return Err(Error::invalid(
            "--method permutation reads --csv FILE, not inputs",
        ));
    }
    let options = args.csv_options.or(&table_model.spec.options.csv);
    let table = Table::read(csv, &options)?;
    super::table::report_rejected(&table);
    let rows: Vec<usize> = (0..table.rows()).collect();
    let imp = ember::explain::permutation_importance(
        &table_model.model,
        &table,
        &rows,
        args.repeats,
        args.seed,
    )?;
    if !imp.missing_target.is_empty() {
        eprintln!(
            "{} rows without a target left out (lines {:?})",
            imp.missing_target.len(),
            &imp.missing_target[..imp.missing_target.len().min(10)]
        );
    }
    let mut ranked = imp.columns.clone();
    ranked.sort_by(|a, b| b.mean.total_cmp(&a.mean));
    if let Some(dir) = &args.output {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let bars = Bars {
            title: format!(
                "Permutation importance ({} rows, {} repeats)",
                imp.rows, args.repeats
            ),
            x_label: format!("drop in {} (mean ± std)", imp.scorer),
            names: ranked.iter().map(|c| c.column.clone()).collect(),
            values: ranked.iter().map(|c| c.mean).collect(),
            errors: Some(ranked.iter().map(|c| c.std).collect()),
        };
        let file = dir.join("permutation-importance.png");
        write_file(args, &file, &bars.render()?.0)?;
        eprintln!("wrote {}", file.display());
    }
    if args.json {
        let importances: Vec<_> = imp
            .columns
            .iter()
            .map(|c| json!({"column": c.column, "mean": c.mean, "std": c.std}))
            .collect();
        return json_text(&json!({ "importances": importances }));
    }
    let mut out = format!(
        "Permutation importance on {} rows of {} ({}: {:.4}, {} repeats, seed {}):\n",
        imp.rows,
        csv.display(),
        imp.scorer,
        imp.baseline,
        args.repeats,
        args.seed
    );
    let wide = ranked
        .iter()
        .map(|c| c.column.chars().count())
        .max()
        .unwrap_or(6);
    for c in &ranked {
        let _ = writeln!(out, "  {:<wide$}  {:+.4} ± {:.4}", c.column, c.mean, c.std);
    }
    Ok(out)
}
