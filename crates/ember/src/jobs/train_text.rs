//! Training a text classifier: documents read from a folder (one subfolder per class) or
//! from a table's column, features made (pretrained encoder states or TF-IDF), the head
//! fitted and assessed on held-out documents; optionally saved.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::text::classifier::Head;
use crate::text::documents::document_csv_options;
use crate::text::{
    read_csv_documents, read_text_folder, ClassFolders, Documents, TextClassifier, TextTraining,
    TrainedText,
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

/// What [`train_text`] reports as it goes; a callback's error ends the job.
pub enum TrainTextEvent<'a> {
    /// The documents are read; training starts.
    Read(&'a Documents),
    /// The classifier is trained and assessed.
    Trained(&'a TrainedText),
    Saved(&'a Path),
}

/// A trained classifier and its classes' names.
pub struct TrainedTextJob {
    pub trained: TrainedText,
    pub classes: Vec<String>,
}

/// Reads the documents, trains a classifier as `training` says and saves it to `output`;
/// `on_event` hears of each step as it ends.
pub fn train_text(
    source: &TextSource,
    training: &TextTraining,
    output: Option<&Path>,
    mut on_event: impl FnMut(TrainTextEvent) -> Result<()>,
) -> Result<TrainedTextJob> {
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
