//! Training a text classifier: documents read from a folder (one subfolder per class) or
//! from a table's column, features made (pretrained encoder states or TF-IDF), the head
//! fitted and assessed on held-out documents; optionally saved.

use std::path::{Path, PathBuf};

use super::checks;
use crate::error::Result;
use crate::text::classifier::Head;
use crate::text::documents::document_csv_options;
use crate::text::{
    read_csv_documents, read_text_folder, ClassFolders, Documents, TextClassifier, TextFeatures,
    TextTraining, TrainedText,
};

/// Where the documents are.
pub enum TextSource {
    /// One subfolder per class (or the classes given, each of several subfolders).
    Folder {
        dir: PathBuf,
        classes: Vec<ClassFolders>,
        email: bool,
    },
    /// A table's column of texts, with its class column.
    Table {
        file: PathBuf,
        text_column: String,
        target: String,
    },
}

impl TextSource {
    /// The folder or table the documents come from.
    pub fn path(&self) -> &Path {
        match self {
            TextSource::Folder { dir, .. } => dir,
            TextSource::Table { file, .. } => file,
        }
    }
}

/// What [`train_text`] reports as it goes; a callback's error ends the job.
pub enum TrainTextEvent<'a> {
    /// The documents are read; training starts.
    Read(&'a Documents),
    /// The classifier is trained and assessed.
    Trained(&'a TrainedText),
    Saved(&'a Path),
}

impl TrainTextEvent<'_> {
    /// The event as the command line says it (for stdout): `name` is the folder or table
    /// the documents come from, `seed` the split's.
    pub fn text(&self, name: &Path, seed: u64) -> String {
        match self {
            TrainTextEvent::Read(docs) => {
                let counts: Vec<String> = docs
                    .classes
                    .iter()
                    .enumerate()
                    .map(|(c, class)| {
                        let n = docs.labels.iter().filter(|&&l| l == c).count();
                        format!("{class} {n}")
                    })
                    .collect();
                format!(
                    "{}: {} documents ({}); {} not valid UTF-8 (decoded with replacement characters)\n",
                    name.display(),
                    docs.texts.len(),
                    counts.join(", "),
                    docs.lossy
                )
            }
            TrainTextEvent::Trained(trained) => training_text(trained, seed),
            TrainTextEvent::Saved(path) => format!("Saved the model to {}\n", path.display()),
        }
    }

    /// The documents read with difficulty, a warning each (for stderr).
    pub fn warnings(&self) -> String {
        let TrainTextEvent::Read(docs) = self else {
            return String::new();
        };
        docs.unparsed
            .iter()
            .map(|(path, reason)| {
                format!(
                    "warning: {}: not a parsable e-mail ({reason}); read as plain text\n",
                    path.display()
                )
            })
            .collect()
    }
}

/// The features and how the head was fitted.
fn training_text(trained: &TrainedText, seed: u64) -> String {
    let classifier = &trained.classifier;
    let features = format!(
        "features: {} ({} wide) in {:.1}s; training on {}, testing on {} (seed {seed})\n",
        match &classifier.spec.features {
            TextFeatures::Pretrained { .. } => "pretrained encoder states",
            TextFeatures::Tfidf(_) => "TF-IDF",
        },
        classifier.model.input_shape().iter().product::<usize>(),
        trained.feature_seconds,
        trained.train_documents,
        trained.test_documents,
    );
    features
        + &match trained.head {
            Head::SoftmaxRegression {
                l2,
                iterations,
                converged,
            } => format!(
                "fitted a softmax regression (l2 {l2:.3e}) in {iterations} L-BFGS iterations{}\n",
                if converged {
                    ""
                } else {
                    " (stopped before converging)"
                }
            ),
            Head::Mlp { epochs } => format!("trained {epochs} epochs\n"),
        }
}

/// A trained classifier and its classes' names.
pub struct TrainedTextJob {
    pub trained: TrainedText,
    pub classes: Vec<String>,
}

/// Reads the documents, trains a classifier as `training` says and saves it to `output`;
/// `on_event` hears of each step as it ends. The settings and the output are checked
/// before any document is read.
pub fn train_text(
    source: &TextSource,
    training: &TextTraining,
    output: Option<&Path>,
    mut on_event: impl FnMut(TrainTextEvent) -> Result<()>,
) -> Result<TrainedTextJob> {
    if let Some(epochs) = training.epochs {
        crate::model::check_epochs(epochs)?;
    }
    checks::learning_rate(training.learning_rate)?;
    checks::test_size(training.test_size)?;
    if let Some(file) = output {
        let mut inputs = vec![source.path()];
        inputs.extend(training.encoder.as_deref());
        crate::atomic::check_output(file, &inputs)?;
    }
    if training.hidden_units() == 0 {
        let given = [
            ("--learning-rate", training.learning_rate.is_some()),
            ("--epochs", training.epochs.is_some()),
        ];
        checks::refuse_given(
            &given,
            "does nothing for a softmax regression fitted exactly; \
             give --hidden N for an MLP head trained with Adam",
        )?;
    }
    let docs = match source {
        TextSource::Folder {
            dir,
            classes,
            email,
        } => read_text_folder(dir, classes, *email)?,
        TextSource::Table {
            file,
            text_column,
            target,
        } => read_csv_documents(file, text_column, target, &document_csv_options())?,
    };
    on_event(TrainTextEvent::Read(&docs))?;
    let trained = TextClassifier::train(&docs, training)?;
    on_event(TrainTextEvent::Trained(&trained))?;
    if let Some(path) = output {
        let epochs = match trained.head {
            Head::SoftmaxRegression { .. } => 0,
            Head::Mlp { epochs } => epochs,
        };
        trained.classifier.save(path, trained.fit.clone(), epochs)?;
        on_event(TrainTextEvent::Saved(path))?;
    }
    Ok(TrainedTextJob {
        trained,
        classes: docs.classes,
    })
}
