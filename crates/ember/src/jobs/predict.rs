//! Predict with a saved model: labels and top-k probabilities for images, IDX samples and
//! rows of numbers; a table model's CSV rows back with their predictions; a text
//! classifier's class per document. The text (or JSON) to print comes back whole.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::data::preprocess::Target;
use crate::data::table::{CsvOptions, Table};
use crate::error::{Error, Result};
use crate::prediction::{check_threshold, Classification, Outcome, Prediction};
use crate::report::pretty_json;
use crate::saved::{NetworkModel, SavedModel};
use crate::tabular::{TabularModel, Task};
use crate::text::TextClassifier;

/// The name standard input goes by among the inputs.
pub const STDIN: &str = "-";

/// Whether an input names standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN
}

/// Refuses, before anything is read: standard input among the `inputs` more than once, an
/// `output` file that would replace the `model` or an input, and standard input where the
/// predictions are also `explained` (an explanation reads its inputs again).
pub fn check_inputs(
    model: &Path,
    inputs: &[PathBuf],
    output: Option<&Path>,
    explained: bool,
) -> Result<()> {
    if inputs.iter().filter(|p| is_stdin(p)).count() > 1 {
        return Err(Error::invalid(
            "standard input ('-') can be read once: give it as one input only",
        ));
    }
    if let Some(file) = output {
        let mut read: Vec<&Path> = vec![model];
        read.extend(inputs.iter().map(PathBuf::as_path));
        crate::atomic::check_output(file, &read)?;
    }
    if explained && inputs.iter().any(|p| is_stdin(p)) {
        return Err(Error::invalid(
            "--explain reads its inputs again: give files, not standard input",
        ));
    }
    Ok(())
}

/// What to predict, and how to say it.
#[derive(Clone, Debug, Default)]
pub struct PredictOptions {
    /// The saved model's file, for messages.
    pub model: PathBuf,
    /// Images, IDX files, CSV files or documents; [`STDIN`] stands for `stdin`.
    pub inputs: Vec<PathBuf>,
    /// Standard input's bytes, when one of the inputs is [`STDIN`].
    pub stdin: Option<Vec<u8>>,
    /// How many of the most likely classes to give, when asked (default [`TOP_K`]).
    pub top_k: Option<usize>,
    /// A binary classifier's decision threshold on its positive (second) class's
    /// probability, when asked (default: the more likely class).
    pub threshold: Option<f32>,
    /// JSON instead of text.
    pub json: bool,
    /// How a table model's CSV inputs are read: their own options, not the training
    /// file's (default: delimiter and header detected, no lines skipped).
    pub csv_options: CsvOptions,
    /// The CSV reading flags given (`--delimiter`, …): refused for a model of another kind.
    pub csv_flags: Vec<&'static str>,
}

/// How many classes a prediction lists when not told.
pub const TOP_K: usize = 3;

impl PredictOptions {
    fn top_k(&self) -> usize {
        self.top_k.unwrap_or(TOP_K)
    }

    /// `classification` decided at the threshold, when one is given.
    fn decide(&self, classification: Classification, classes: &[String]) -> Classification {
        match self.threshold {
            Some(t) => classification.at_threshold(t, classes),
            None => classification,
        }
    }

    /// Refuses a threshold for a model that is not a binary classifier (`classes` classes,
    /// 0 for a regression), naming what it is.
    fn check_threshold(&self, classes: usize, what: &str) -> Result<()> {
        match self.threshold {
            Some(t) if classes != 2 => Err(Error::data(
                &self.model,
                format!("--threshold {t} decides between two classes; this is {what}",),
            )),
            Some(t) => check_threshold(t).map(|_| ()),
            None => Ok(()),
        }
    }

    fn stdin(&self) -> Result<&[u8]> {
        self.stdin
            .as_deref()
            .ok_or_else(|| Error::invalid("standard input was not read"))
    }
}

/// The predictions of `saved` on the inputs: a line per sample, CSV rows, or JSON.
/// `on_read` hears of each table read (its rejected rows and unreadable cells).
pub fn predict(
    saved: &SavedModel,
    options: &PredictOptions,
    on_read: impl FnMut(&Table),
) -> Result<String> {
    if !matches!(saved, SavedModel::Table(_)) {
        csv_flags_unused(saved, &options.model, &options.csv_flags)?;
    }
    match saved {
        SavedModel::Table(table) => predict_rows(table, options, on_read),
        SavedModel::Text(classifier) => predict_texts(classifier, options),
        SavedModel::Network(network) => predict_network(network, options),
        SavedModel::Faq(_) => Err(Error::data(
            &options.model,
            "a FAQ index answers questions: use `ember ask INDEX QUESTION`",
        )),
        SavedModel::Recommender(_) => Err(Error::data(
            &options.model,
            "a recommender ranks items for a user: use `ember recommend top MODEL --user ID`",
        )),
        other => Err(Error::data(
            &options.model,
            format!("a {} model does not classify inputs", other.kind()),
        )),
    }
}

/// Refuses the CSV reading flags given to a model that is not a table model: its inputs
/// are read as they are (a network's CSV files of numbers too).
pub fn csv_flags_unused(saved: &SavedModel, model: &Path, flags: &[&str]) -> Result<()> {
    let here = format!("for {} (a {} model)", model.display(), saved.kind());
    let why = "only a table model's CSV inputs take reading options";
    super::checks::does_nothing(&here, why, flags)
}

/// Predictions and explanations together: `{"predictions", "explanations"}` in JSON, else
/// the explanations under the predictions, headed by the method's name.
pub fn with_explanations(
    predictions: &str,
    explanations: &str,
    method: &str,
    json: bool,
) -> Result<String> {
    if !json {
        return Ok(format!(
            "{predictions}\nExplanations ({method}):\n{explanations}"
        ));
    }
    let parse = |t: &str| {
        serde_json::from_str::<serde_json::Value>(t)
            .map_err(|e| Error::invalid(format!("cannot read back JSON: {e}")))
    };
    let both = serde_json::json!({
        "predictions": parse(predictions)?,
        "explanations": parse(explanations)?,
    });
    pretty_json(&both)
}

fn predict_texts(classifier: &TextClassifier, options: &PredictOptions) -> Result<String> {
    let cache = Path::new(".ember-cache");
    let classes = &classifier.spec.classes;
    options.check_threshold(
        classes.len(),
        &format!("a text classifier of {} classes", classes.len()),
    )?;
    let mut predictions = Vec::new();
    for input in &options.inputs {
        if is_stdin(input) {
            let text = classifier.document_text(options.stdin()?);
            let class = classifier
                .classify(&[text.as_str()], cache, options.top_k())?
                .pop()
                .ok_or_else(|| Error::invalid("no prediction for standard input"))?;
            predictions.push(Prediction::of_input(input, class));
        } else {
            predictions.extend(classifier.classify_files(
                std::slice::from_ref(input),
                cache,
                options.top_k(),
            )?);
        }
    }
    for p in &mut predictions {
        p.outcome = options.decide(p.outcome.clone(), classes);
    }
    if options.json {
        return pretty_json(&predictions);
    }
    // As a network's: the label, then the --top-k classes with their probabilities.
    Ok(predictions
        .iter()
        .map(|p| format!("{}: {}\n", p.input, class_line(&p.outcome)))
        .collect())
}

/// A class as a line says it: `7  (top: 7 0.9970, 1 0.0021, 9 0.0004)`.
fn class_line(class: &Classification) -> String {
    let top: Vec<String> = class
        .top
        .iter()
        .map(|t| format!("{} {:.4}", t.label, t.score))
        .collect();
    format!("{}  (top: {})", class.label, top.join(", "))
}

/// A network's predictions, a line per sample (or JSON).
fn predict_network(network: &NetworkModel, options: &PredictOptions) -> Result<String> {
    let top_k = options.top_k();
    let mut predictions = Vec::new();
    for input in &options.inputs {
        if is_stdin(input) {
            predictions.extend(network.predict_bytes(
                options.stdin()?,
                input,
                top_k,
                &options.model,
            )?);
        } else {
            predictions.extend(network.predict_files(
                std::slice::from_ref(input),
                top_k,
                &options.model,
            )?);
        }
    }
    if options.threshold.is_some() {
        let classes = predictions
            .first()
            .map_or(0, |p| p.outcome.probabilities.len());
        options.check_threshold(classes, &format!("a network of {classes} classes"))?;
        let names = &network.data(&options.model)?.classes;
        for p in &mut predictions {
            p.outcome = options.decide(p.outcome.clone(), names);
        }
    }
    if options.json {
        return pretty_json(&predictions);
    }
    let mut out = String::new();
    for (i, p) in predictions.iter().enumerate() {
        // `#N` numbers the samples of a file that holds several (IDX, CSV), not an image.
        let same_input = |q: &&Prediction<Classification>| q.input == p.input;
        let several = predictions[i.saturating_sub(1)..(i + 2).min(predictions.len())]
            .iter()
            .filter(same_input)
            .count()
            > 1;
        let sample = match (several, p.sample) {
            (true, Some(n)) => format!("#{n}"),
            _ => String::new(),
        };
        let _ = writeln!(out, "{}{sample}: {}", p.input, class_line(&p.outcome));
    }
    Ok(out)
}

/// A table model on raw CSV rows (missing values and all): the rows come back as written,
/// with a `prediction` column, and for a classifier `probability` (of the predicted class)
/// and each class's `probability_<class>` (a binary one's positive class only).
fn predict_rows(
    model: &TabularModel,
    options: &PredictOptions,
    mut on_read: impl FnMut(&Table),
) -> Result<String> {
    let labels = match &model.preprocessor.target {
        Target::Classes { labels, .. } => labels.clone(),
        Target::Regression { .. } => Vec::new(),
    };
    let what = match model.task {
        Task::Regression => "a regression table model, which predicts a value".to_string(),
        _ => format!("a table model of {} classes", labels.len()),
    };
    options.check_threshold(labels.len(), &what)?;
    if let Some(k) = options.top_k {
        if model.task == Task::Regression {
            return Err(Error::data(
                &options.model,
                format!("--top-k {k} lists the most likely classes; this is {what}"),
            ));
        }
        if !options.json {
            return Err(Error::invalid(format!(
                "--top-k {k} sets how many classes the JSON's \"top\" lists: add --json \
                 (the CSV gives every class's probability)"
            )));
        }
    }
    let mut records = Vec::new();
    let mut first_names = Vec::new();
    let mut out = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| Error::InvalidArgument(format!("cannot write CSV: {e}"));
    let csv_options = &options.csv_options;
    for (n, input) in options.inputs.iter().enumerate() {
        let mut table = match is_stdin(input) {
            true => Table::parse(options.stdin()?, input, csv_options)?,
            false => Table::read(input, csv_options)?,
        };
        model.name_columns(&mut table)?;
        on_read(&table);
        let outputs = model.outputs(&table)?;
        if options.json {
            let outcomes = model.outcomes(&outputs, options.top_k());
            for (&line, outcome) in table.lines.iter().zip(outcomes) {
                let outcome = match outcome {
                    Outcome::Class(c) => Outcome::Class(options.decide(c, &labels)),
                    value => value,
                };
                records.push(Prediction::of_line(input, line, outcome));
            }
            continue;
        }
        let predictions = model.predictions(&outputs, options.threshold);
        if n > 0 && table.names != first_names {
            return Err(Error::Data {
                path: input.clone(),
                message: format!(
                    "its columns differ from those of {}",
                    options.inputs[0].display()
                ),
            });
        }
        if n == 0 {
            first_names = table.names.clone();
            let mut header = table.names.clone();
            header.push("prediction".into());
            match model.task {
                Task::Regression => {}
                // A binary classifier gives its positive class's probability, named.
                Task::Binary => {
                    header.extend(["probability".into(), format!("probability_{}", labels[1])])
                }
                Task::Multiclass => {
                    header.push("probability".into());
                    header.extend(labels.iter().map(|l| format!("probability_{l}")));
                }
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
            match p.positive {
                Some((_, probability)) => row.push(format!("{probability:.4}")),
                None => row.extend(p.probabilities.iter().map(|q| format!("{q:.4}"))),
            }
            out.write_record(&row).map_err(csv_error)?;
        }
    }
    if options.json {
        return pretty_json(&records);
    }
    let bytes = out
        .into_inner()
        .map_err(|e| Error::InvalidArgument(format!("cannot write CSV: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::InvalidArgument(format!("cannot write CSV: {e}")))
}
