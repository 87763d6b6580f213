//! One file per subcommand, and what they share: finding the model file and the data.

pub mod cv;
pub mod data;
pub mod embed;
pub mod evaluate;
pub mod explain;
pub mod faq;
pub mod generate;
pub mod predict;
pub mod recommend;
pub mod serve;
pub mod summary;
pub mod table;
pub mod text;
pub mod train;
pub mod tune;

use std::path::{Path, PathBuf};

use ember::spec::{DataSpec, Dataset, ModelSpec};
use ember::Error;

/// The model file used when none is given: the Keras MNIST reference script.
pub const DEFAULT_MODEL: &str = "models/mnist-mlp.toml";

pub fn model_path(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL))
}

/// The reference model file, built into the binary: without a model file, `ember train`
/// and `ember summary` work from any folder (training then reads `data/mnist` there, or
/// `--data DIR`).
const REFERENCE_MODEL: &str = include_str!("../../../../models/mnist-mlp.toml");

/// The model file `given`, or the default: models/mnist-mlp.toml where it exists, else the
/// built-in copy of it (named by that path).
pub fn read_spec(given: Option<PathBuf>) -> ember::Result<(ModelSpec, PathBuf)> {
    let defaulted = given.is_none();
    let path = model_path(given);
    if defaulted && !path.exists() {
        return Ok((ModelSpec::parse(REFERENCE_MODEL, &path)?, path));
    }
    Ok((ModelSpec::from_file(&path)?, path))
}

/// The names of the flags set among `flags` (name, whether it was given), in order.
pub fn given(flags: &[(&'static str, bool)]) -> Vec<&'static str> {
    flags
        .iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| *f)
        .collect()
}

/// "1 thread", "2 threads".
pub fn threads_text(n: usize) -> String {
    match n {
        1 => "1 thread".into(),
        n => format!("{n} threads"),
    }
}

/// Applies `--threads` (or leaves `EMBER_NUM_THREADS` / all cores in charge).
pub fn set_threads(threads: Option<u64>) -> ember::Result<()> {
    // A bad EMBER_NUM_THREADS is an error even when --threads overrides it.
    let from_env = ember::tensor::threads::threads_from_env()?;
    match threads.or(from_env.map(|n| n as u64)) {
        Some(n) => ember::set_num_threads(usize::try_from(n).unwrap_or(usize::MAX)),
        None => Ok(()),
    }
}

/// The data section of a model file, or an error naming the file.
pub fn data_spec(spec: &ModelSpec, file: &Path) -> ember::Result<DataSpec> {
    spec.data.clone().ok_or_else(|| Error::Spec {
        path: file.to_path_buf(),
        line: None,
        field: "data".into(),
        message: "there is no [data] section; pass --data DIR with a data set".into(),
    })
}

/// Loads the data from `--data DIR` when given, else from the data section's folder
/// (relative paths are relative to `base`).
pub fn load_data(
    data: &DataSpec,
    override_dir: Option<&Path>,
    base: &Path,
) -> ember::Result<Dataset> {
    match override_dir {
        Some(dir) => data.load_from(dir),
        None => data.load(base),
    }
}

/// Lists the images left out of a data set, with the reason for each.
pub fn report_skipped(skipped: &[(PathBuf, String)]) {
    if skipped.is_empty() {
        return;
    }
    eprintln!("warning: {} unreadable image(s) left out:", skipped.len());
    for (path, reason) in skipped {
        eprintln!("  {}: {reason}", path.display());
    }
}

/// Prints loss, accuracy and, when present, top-k accuracy, the classification report and
/// the confusion matrix.
/// Per-class precision, recall and F1 under the class names, then the test loss and
/// accuracy lines.
pub fn print_named_assessment(a: &ember::train::Assessment, classes: &[String]) {
    if let Some(report) = &a.report {
        println!(
            "{:<16} {:>9} {:>9} {:>9} {:>9}",
            "class", "precision", "recall", "f1", "support"
        );
        for (name, s) in classes.iter().zip(&report.per_class) {
            println!(
                "{:<16} {:>9.4} {:>9.4} {:>9.4} {:>9}",
                name, s.precision, s.recall, s.f1, s.support
            );
        }
    }
    print_assessment(a, false);
}

pub fn print_assessment(a: &ember::train::Assessment, with_tables: bool) {
    if with_tables {
        if let Some((k, acc)) = a.top_k_accuracy {
            println!("Top-{k} accuracy: {acc:.4}");
        }
        if let Some(report) = &a.report {
            println!("\n{}", report.to_text());
        }
        if let Some(cm) = &a.confusion_matrix {
            println!(
                "Confusion matrix (rows: true class, columns: predicted class)\n{}",
                cm.to_text()
            );
        }
    }
    println!("Test loss: {:.4}", a.loss);
    match a.accuracy {
        Some(accuracy) => println!("Test accuracy: {accuracy:.4}"),
        None => println!("(compile with metrics = [\"accuracy\"] to report accuracy)"),
    }
}
