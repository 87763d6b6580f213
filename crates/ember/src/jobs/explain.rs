//! Explain a saved model's predictions: per-input attributions for networks of images or
//! numbers, for table rows and for text documents; permutation importance of a table
//! model's columns over a labelled CSV; heat maps, word pages and bar charts on request.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::data::table::{CsvOptions, Table};
use crate::error::{Error, Result};
use crate::explain::network::{class_index, Baseline, Options, SampleExplanation};
use crate::explain::{Method, SmoothGrad};
use crate::report::Bars;
use crate::saved::{NetworkModel, SavedModel};
use crate::tabular::TabularModel;
use crate::tensor::Tensor;

/// What to explain, and how (`ember explain`'s settings).
#[derive(Clone, Debug)]
pub struct ExplainOptions {
    /// The saved model's file, for messages (and never written over).
    pub model: PathBuf,
    /// Images, IDX files, CSV files or text documents.
    pub inputs: Vec<PathBuf>,
    pub method: Method,
    /// The class to explain, by name or number (default: each sample's predicted class).
    pub target: Option<String>,
    /// A folder for a picture per explanation.
    pub output: Option<PathBuf>,
    /// JSON instead of text.
    pub json: bool,
    /// Integrated Gradients' points along the path (default: 64 for images and text, 1024
    /// for table rows).
    pub steps: Option<usize>,
    /// Integrated Gradients' baseline for images: "black" (the default) or "blur".
    pub baseline: Option<String>,
    /// The blurred baseline's standard deviation in pixels: above 0, at most the image's
    /// larger side (a wider blur is a flat grey already). Default: a tenth of the image's
    /// smaller side.
    pub blur_sigma: Option<f32>,
    /// SmoothGrad's noisy copies (default 50); SHAP's coalitions per row (default 2048).
    pub samples: Option<usize>,
    /// SmoothGrad's noise, as a fraction of the input's range (default [`Self::NOISE`]).
    pub noise: Option<f32>,
    /// SmoothGrad's noise, SHAP's coalitions and permutation's shuffles (default 0).
    pub seed: Option<u32>,
    /// Grad-CAM's layer (default: the last convolution).
    pub layer: Option<String>,
    /// Permutation importance's labelled held-out rows.
    pub csv: Option<PathBuf>,
    /// Permutation importance's shuffles per column (default [`Self::REPEATS`]).
    pub repeats: Option<usize>,
    /// Permutation importance's scorer, by scikit-learn's name (default: accuracy for a
    /// classifier, r2 for a regression).
    pub scoring: Option<String>,
    /// How to read a table model's CSV inputs: their own options, not the training file's
    /// (default: delimiter and header detected, no lines skipped).
    pub csv_options: CsvOptions,
    /// The CSV reading flags given (`--delimiter`, …): refused for a network or a text
    /// classifier.
    pub csv_flags: Vec<&'static str>,
}

impl ExplainOptions {
    /// Integrated Gradients' baseline for images unless another is asked for.
    pub const BASELINE: &'static str = "black";
    /// SmoothGrad's noise unless another is asked for.
    pub const NOISE: f32 = 0.15;
    /// Permutation importance's shuffles per column unless others are asked for.
    pub const REPEATS: usize = 5;

    /// Explain `inputs` to `model` by `method`, every other setting at its default (what
    /// `ember predict --explain` asks for).
    pub fn new(model: PathBuf, inputs: Vec<PathBuf>, method: Method) -> ExplainOptions {
        ExplainOptions {
            model,
            inputs,
            method,
            target: None,
            output: None,
            json: false,
            steps: None,
            baseline: None,
            blur_sigma: None,
            samples: None,
            noise: None,
            scoring: None,
            seed: None,
            layer: None,
            csv: None,
            repeats: None,
            csv_options: CsvOptions::default(),
            csv_flags: Vec::new(),
        }
    }

    /// The seed of the sampling methods.
    fn seed(&self) -> u32 {
        self.seed.unwrap_or(0)
    }
}

/// What an explanation meets on the way.
pub enum ExplainEvent<'a> {
    /// A table was read (its rejected rows and unreadable cells).
    Read(&'a Table),
    /// Permutation importance left out the rows on these lines: their target is missing.
    MissingTarget(&'a [u64]),
    /// A picture or page was written.
    Wrote(&'a Path),
}

impl ExplainEvent<'_> {
    /// The event as the command line says it.
    pub fn text(&self) -> String {
        match self {
            ExplainEvent::Read(table) => crate::report::rejected_text(table),
            ExplainEvent::MissingTarget(lines) => format!(
                "{} rows without a target left out (lines {:?})\n",
                lines.len(),
                &lines[..lines.len().min(10)]
            ),
            ExplainEvent::Wrote(file) => format!("wrote {}\n", file.display()),
        }
    }
}

/// Inputs held in memory (a server's request) rather than read from files.
pub enum Instances {
    /// A network's samples (n, …), prepared as its training data was
    /// ([`NetworkModel::prepare`]).
    Samples(Tensor),
    /// A table model's rows of raw column values, named as the model's columns.
    Rows(Table),
}

/// The explanation of `instances` as `ember explain --json` writes it, `{"results": […]}`:
/// each result's `input` is `name`, and its `sample` the instance's number when there are
/// several. `args` say how (`inputs`, `output`, `json` and `csv` are not read); `args.model`
/// names the model in messages.
pub fn explain_instances(
    saved: &SavedModel,
    instances: Instances,
    name: &str,
    args: &ExplainOptions,
) -> Result<serde_json::Value> {
    let method = args.method;
    refuse_unused(args)?;
    refuse_unused_by_kind(saved, args)?;
    let results: Vec<serde_json::Value> = match (saved, instances) {
        (_, _) if method == Method::Permutation => {
            return Err(Error::invalid(
                "permutation importance needs labelled rows: `ember explain MODEL --method permutation --csv FILE`",
            ))
        }
        (SavedModel::Network(network), Instances::Samples(x)) => {
            let options = network_options(network, method, args)?;
            network
                .explain_samples(&x, name, &args.model, &options)?
                .iter()
                .map(|r| {
                    // A network's results say their sample, as on the command line.
                    let mut v = sample_json(r, None);
                    v["sample"] = json!(r.sample);
                    v
                })
                .collect()
        }
        (SavedModel::Table(model), Instances::Rows(table)) => {
            let labels = table_labels(model, method)?;
            let (features, samples) = explain_table(model, &table, name, &labels, method, args)?;
            samples
                .iter()
                .map(|r| sample_json(r, Some(&features)))
                .collect()
        }
        (other, _) => {
            return Err(Error::invalid(format!(
                "{} is a {} model: its instances are explained for networks and table models",
                args.model.display(),
                other.kind()
            )))
        }
    };
    Ok(json!({ "results": results }))
}

/// The explanation `args` ask of the loaded model: text, or JSON with `json`; `on_event`
/// hears of the tables read, the rows left out and the pictures written.
pub fn explain(
    saved: &SavedModel,
    args: &ExplainOptions,
    mut on_event: impl FnMut(ExplainEvent),
) -> Result<String> {
    let method = args.method;
    refuse_unused(args)?;
    if method == Method::Permutation {
        let SavedModel::Table(table) = saved else {
            return Err(Error::invalid(format!(
                "--method permutation explains a table model; {} is a {} model",
                args.model.display(),
                saved.kind()
            )));
        };
        return permutation(table, args, &mut on_event);
    }
    if args.csv.is_some() {
        return Err(Error::invalid("--csv is for --method permutation"));
    }
    if args.scoring.is_some() {
        return Err(Error::invalid("--scoring is for --method permutation"));
    }
    if args.inputs.is_empty() {
        return Err(Error::invalid("give the inputs to explain"));
    }
    refuse_unused_by_kind(saved, args)?;
    match saved {
        SavedModel::Network(network) => explain_network(network, method, args, &mut on_event),
        SavedModel::Table(table) => explain_rows(table, method, args, &mut on_event),
        SavedModel::Text(classifier) => explain_texts(classifier, method, args, &mut on_event),
        other => Err(Error::invalid(format!(
            "{} is a {} model: explain takes networks, table models and text classifiers",
            args.model.display(),
            other.kind()
        ))),
    }
}

/// How `args` ask a network to be explained: the baseline checked against its images.
fn network_options(
    network: &NetworkModel,
    method: Method,
    args: &ExplainOptions,
) -> Result<Options> {
    let geometry = network.image_geometry(&args.model)?;
    let baseline = match args.baseline.as_deref().unwrap_or(ExplainOptions::BASELINE) {
        "black" => Baseline::Black,
        "blur" => {
            let (h, w, _) = geometry
                .ok_or_else(|| Error::invalid("--baseline blur needs a model of images"))?;
            let sigma = args.blur_sigma.unwrap_or((h.min(w) as f32 / 10.0).max(1.0));
            let widest = h.max(w) as f32;
            if !(sigma > 0.0 && sigma <= widest) {
                return Err(Error::invalid(format!(
                    "--blur-sigma {sigma}: the blur's standard deviation is a number of pixels \
                     above 0 and at most the image's larger side ({widest})"
                )));
            }
            Baseline::Blur(sigma)
        }
        other => {
            return Err(Error::invalid(format!(
                "--baseline '{other}': expected black or blur"
            )))
        }
    };
    Ok(Options {
        method,
        target: args.target.clone(),
        baseline,
        steps: args
            .steps
            .unwrap_or(crate::explain::gradients::DEFAULT_STEPS),
        smooth: SmoothGrad {
            samples: args.samples.unwrap_or(50),
            noise: args.noise.unwrap_or(ExplainOptions::NOISE),
            seed: args.seed() as u64,
        },
        layer: args.layer.clone(),
    })
}

fn explain_network(
    network: &NetworkModel,
    method: Method,
    args: &ExplainOptions,
    on_event: &mut dyn FnMut(ExplainEvent),
) -> Result<String> {
    let geometry = network.image_geometry(&args.model)?;
    if args.output.is_some() && geometry.is_none() {
        return Err(Error::invalid(format!(
            "--output draws heat maps of images; {} is a network of numbers: its attributions are in the text (or --json)",
            args.model.display()
        )));
    }
    let options = network_options(network, method, args)?;
    let results = network.explain_files(&args.inputs, &args.model, &options)?;
    if let (Some(dir), Some(shape)) = (&args.output, geometry) {
        let planned: Vec<(PathBuf, String)> = results
            .iter()
            .map(|r| (dir.join(picture_name(r, method)), name_of(r)))
            .collect();
        check_planned(args, &planned)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        for r in &results {
            let png = crate::explain::render::heat_map(
                &r.values,
                shape,
                &r.explanation.attributions,
                method.is_additive(),
            )?;
            let file = dir.join(picture_name(r, method));
            write_file(&file, &png, on_event)?;
        }
    }
    if args.json {
        let results: Vec<_> = results
            .iter()
            .map(|r| {
                let mut v = sample_json(r, None);
                v["sample"] = json!(r.sample);
                v
            })
            .collect();
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
    classifier: &crate::text::TextClassifier,
    method: Method,
    args: &ExplainOptions,
    on_event: &mut dyn FnMut(ExplainEvent),
) -> Result<String> {
    let cache = Path::new(".ember-cache");
    let classes = &classifier.spec.classes;
    let (files, texts) = classifier.read_documents(&args.inputs)?;
    if let Some(dir) = &args.output {
        let planned: Vec<(PathBuf, String)> = files
            .iter()
            .map(|file| {
                (
                    dir.join(page_name(file, method)),
                    file.display().to_string(),
                )
            })
            .collect();
        check_planned(args, &planned)?;
    }
    let mut results = Vec::new();
    let mut out = String::new();
    for (file, text) in files.iter().zip(&texts) {
        let label = classifier
            .classify(&[text.as_str()], cache, 1)?
            .pop()
            .ok_or_else(|| Error::invalid("no prediction"))?
            .label;
        let target = match &args.target {
            Some(t) => class_index(t, classes)?,
            None => classes.iter().position(|c| *c == label).unwrap_or(0),
        };
        let (words, e) = crate::explain::text::word_attributions(
            classifier,
            text,
            target,
            method,
            args.steps
                .unwrap_or(crate::explain::gradients::DEFAULT_STEPS),
            cache,
        )?;
        let input = file.display().to_string();
        if let Some(dir) = &args.output {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let page = crate::explain::text::word_page(&input, text, &words, &e, &classes[target]);
            let page_file = dir.join(page_name(file, method));
            write_file(&page_file, page.as_bytes(), on_event)?;
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

/// Refuses a setting the chosen method does not use: each applies to some methods only
/// (`--steps` to Integrated Gradients, `--samples` to SmoothGrad and SHAP, `--layer` to
/// Grad-CAM, a baseline to Integrated Gradients, `--seed` to the methods that sample, a
/// `--target` class to the per-sample methods).
fn refuse_unused(args: &ExplainOptions) -> Result<()> {
    use Method::*;
    let method = args.method;
    let unused = [
        (
            "--steps",
            args.steps.is_some(),
            method != IntegratedGradients,
        ),
        (
            "--samples",
            args.samples.is_some(),
            !matches!(method, SmoothGrad | Shap),
        ),
        ("--layer", args.layer.is_some(), method != GradCam),
        (
            "--blur-sigma",
            args.blur_sigma.is_some(),
            method != IntegratedGradients,
        ),
        (
            "--baseline",
            args.baseline.is_some(),
            method != IntegratedGradients,
        ),
        ("--repeats", args.repeats.is_some(), method != Permutation),
        ("--noise", args.noise.is_some(), method != SmoothGrad),
        (
            "--seed",
            args.seed.is_some(),
            !matches!(method, SmoothGrad | Shap | Permutation),
        ),
        ("--target", args.target.is_some(), method == Permutation),
    ];
    match unused.iter().find(|(_, given, unused)| *given && *unused) {
        Some((flag, _, _)) => Err(Error::invalid(format!(
            "{flag} does nothing with --method {}",
            method.name()
        ))),
        None => Ok(()),
    }
}

/// Refuses a setting the model's kind does not use: CSV reading options outside table
/// models, and an image baseline (black or blurred pixels) outside networks.
fn refuse_unused_by_kind(saved: &SavedModel, args: &ExplainOptions) -> Result<()> {
    if !matches!(saved, SavedModel::Table(_)) {
        super::predict::csv_flags_unused(saved, &args.model, &args.csv_flags)?;
    }
    if !matches!(saved, SavedModel::Network(_)) {
        let given = [
            ("--baseline", args.baseline.is_some()),
            ("--blur-sigma", args.blur_sigma.is_some()),
        ];
        let here = format!("for {} (a {} model)", args.model.display(), saved.kind());
        let why = "a baseline of black or blurred pixels is for a network of images";
        super::checks::does_nothing(&here, why, &super::checks::given(&given))?;
    }
    Ok(())
}

/// Checks every file `--output` is to receive before the first is written: two sources
/// whose pictures or pages would share a name (`a/digit.png` and `b/digit.png`), or a name
/// that is an input's, is an error and nothing is written. `planned` pairs each file with
/// the input it is made from.
fn check_planned(args: &ExplainOptions, planned: &[(PathBuf, String)]) -> Result<()> {
    let mut seen: std::collections::HashMap<&Path, &str> = std::collections::HashMap::new();
    let mut inputs: Vec<&Path> = vec![args.model.as_path()];
    inputs.extend(args.inputs.iter().map(PathBuf::as_path));
    inputs.extend(args.csv.as_deref());
    for (file, source) in planned {
        if let Some(first) = seen.insert(file, source) {
            return Err(Error::invalid(format!(
                "--output: {first} and {source} would both be written to {}; explain them in two runs or give inputs with different names",
                file.display()
            )));
        }
        // A folder yet to be made holds no input to clash with.
        if file.parent().is_some_and(Path::is_dir) {
            crate::atomic::check_output(file, &inputs)?;
        }
    }
    Ok(())
}

/// Writes one of `--output`'s files, checked beforehand by [`check_planned`].
fn write_file(file: &Path, bytes: &[u8], on_event: &mut dyn FnMut(ExplainEvent)) -> Result<()> {
    crate::atomic::write_atomically(file, bytes)?;
    on_event(ExplainEvent::Wrote(file));
    Ok(())
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

/// `ham-0001.txt.integrated-gradients.html`: a document's page.
fn page_name(file: &Path, method: Method) -> String {
    let name = file
        .file_name()
        .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
    format!("{name}.{}.html", method.name())
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

/// An explanation in JSON: `{"input", "label", "target", "score", "baseline_score",
/// "attributions"}` and the `"features"` they are for; the caller adds where in the input
/// it is (`"sample"` for a network, `"line"` for a table row), as predictions say it.
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
    if let Some(features) = features {
        v["features"] = json!(features);
    }
    v
}

fn json_text(value: &serde_json::Value) -> Result<String> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::invalid(format!("cannot write JSON: {e}")))?;
    Ok(text + "\n")
}

/// Table rows: Integrated Gradients on the prepared features, summed per raw column.
fn explain_rows(
    model: &TabularModel,
    method: Method,
    args: &ExplainOptions,
    on_event: &mut dyn FnMut(ExplainEvent),
) -> Result<String> {
    let labels = table_labels(model, method)?;
    let mut results = Vec::new();
    let mut text = String::new();
    if args.output.is_some() {
        // Each row's chart is named by its file's stem and line: two files of one stem clash.
        let mut stems: std::collections::HashMap<String, &Path> = Default::default();
        for input in &args.inputs {
            let stem = input
                .file_stem()
                .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
            if let Some(first) = stems.insert(stem.clone(), input) {
                return Err(Error::invalid(format!(
                    "--output: {} and {} would both be written to {stem}-line….png; explain them in two runs or give inputs with different names",
                    first.display(),
                    input.display()
                )));
            }
        }
    }
    let mut explained = Vec::new();
    for input in &args.inputs {
        let mut table = Table::read(input, &args.csv_options)?;
        model.name_columns(&mut table)?;
        on_event(ExplainEvent::Read(&table));
        let name = input.display().to_string();
        let (features, samples) = explain_table(model, &table, &name, &labels, method, args)?;
        explained.push((input, table.lines, features, samples));
    }
    // `data-line7.shap.png`: a row's chart, named by its file's stem and line.
    let chart = |input: &Path, line: u64| {
        let stem = input
            .file_stem()
            .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned());
        format!("{stem}-line{line}.{}.png", method.name())
    };
    if let Some(dir) = &args.output {
        let planned: Vec<(PathBuf, String)> = explained
            .iter()
            .flat_map(|(input, lines, _, _)| {
                let source = input.display().to_string();
                lines
                    .iter()
                    .map(move |&line| (dir.join(chart(input, line)), source.clone()))
            })
            .collect();
        check_planned(args, &planned)?;
    }
    for (input, lines, features, samples) in explained {
        for (r, sample) in samples.into_iter().enumerate() {
            let line = lines[r];
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
                let file = dir.join(chart(input, line));
                write_file(&file, &bars.render()?.0, on_event)?;
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

/// A table model's classes, when `method` explains its rows one by one.
fn table_labels(model: &TabularModel, method: Method) -> Result<Vec<String>> {
    if !matches!(method, Method::IntegratedGradients | Method::Shap) {
        return Err(Error::invalid(format!(
            "--method {} explains networks of images or numbers; for a table model use \
             integrated-gradients or shap (per row), or permutation (with --csv)",
            method.name()
        )));
    }
    match &model.preprocessor.target {
        crate::data::preprocess::Target::Classes { labels, .. } => Ok(labels.clone()),
        crate::data::preprocess::Target::Regression { .. } => Err(Error::invalid(
            "a regression's rows cannot be explained per class; use --method permutation --csv FILE",
        )),
    }
}

/// Every row of `table` (its columns named as the model's) explained per raw column: the
/// columns' names, and each row's explanation; `input` names the rows.
fn explain_table(
    model: &TabularModel,
    table: &Table,
    input: &str,
    labels: &[String],
    method: Method,
    args: &ExplainOptions,
) -> Result<(Vec<String>, Vec<SampleExplanation>)> {
    let rows: Vec<usize> = (0..table.rows()).collect();
    let predictions = model.predict(table)?;
    let predicted: Vec<usize> = predictions
        .iter()
        .map(|p| labels.iter().position(|l| *l == p.label).unwrap_or(0))
        .collect();
    let targets = match &args.target {
        Some(t) => vec![class_index(t, labels)?; rows.len()],
        None => predicted.clone(),
    };
    let (features, explanations) = if method == Method::Shap {
        crate::explain::column_shap(
            model,
            table,
            &rows,
            &targets,
            args.samples.unwrap_or(2048),
            args.seed() as u64,
        )?
    } else {
        crate::explain::column_attributions(
            model,
            table,
            &rows,
            &targets,
            args.steps.unwrap_or(crate::explain::table::DEFAULT_STEPS),
        )?
    };
    let samples = explanations
        .into_iter()
        .enumerate()
        .map(|(r, e)| SampleExplanation {
            input: input.to_string(),
            sample: r,
            samples_in_input: rows.len(),
            label: labels[predicted[r]].clone(),
            target: labels[e.target].clone(),
            explanation: e,
            values: Vec::new(),
        })
        .collect();
    Ok((features, samples))
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

fn permutation(
    model: &TabularModel,
    args: &ExplainOptions,
    on_event: &mut dyn FnMut(ExplainEvent),
) -> Result<String> {
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
    let chart = args
        .output
        .as_ref()
        .map(|dir| dir.join("permutation-importance.png"));
    if let Some(file) = &chart {
        check_planned(args, &[(file.clone(), csv.display().to_string())])?;
    }
    let repeats = args.repeats.unwrap_or(ExplainOptions::REPEATS);
    let mut table = Table::read(csv, &args.csv_options)?;
    model.name_columns(&mut table)?;
    on_event(ExplainEvent::Read(&table));
    let rows: Vec<usize> = (0..table.rows()).collect();
    let scoring = args
        .scoring
        .as_deref()
        .map(crate::metrics::Scoring::from_name)
        .transpose()?;
    let imp = crate::explain::permutation_importance(
        model,
        &table,
        &rows,
        repeats,
        args.seed(),
        scoring,
    )?;
    if !imp.missing_target.is_empty() {
        on_event(ExplainEvent::MissingTarget(&imp.missing_target));
    }
    let mut ranked = imp.columns.clone();
    ranked.sort_by(|a, b| b.mean.total_cmp(&a.mean));
    if let (Some(dir), Some(file)) = (&args.output, &chart) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let bars = Bars {
            title: format!(
                "Permutation importance ({} rows, {repeats} repeats)",
                imp.rows
            ),
            x_label: format!("drop in {} (mean ± std)", imp.scorer),
            names: ranked.iter().map(|c| c.column.clone()).collect(),
            values: ranked.iter().map(|c| c.mean).collect(),
            errors: Some(ranked.iter().map(|c| c.std).collect()),
        };
        write_file(file, &bars.render()?.0, on_event)?;
    }
    if args.json {
        let importances: Vec<_> = imp
            .columns
            .iter()
            .map(|c| json!({"column": c.column, "mean": c.mean, "std": c.std}))
            .collect();
        return json_text(&json!({
            "scoring": imp.scorer,
            "baseline": imp.baseline,
            "rows": imp.rows,
            "importances": importances,
        }));
    }
    let mut out = format!(
        "Permutation importance on {} rows of {} ({}: {:.4}, {} repeats, seed {}):\n",
        imp.rows,
        csv.display(),
        imp.scorer,
        imp.baseline,
        repeats,
        args.seed()
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
