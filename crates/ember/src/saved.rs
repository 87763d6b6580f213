//! A saved model of any kind, as `load` finds it: a network on tensors, a table model, a text
//! classifier, a FAQ index, a sentence encoder, a language model or a recommender. Each kind reads its own
//! inputs and predicts itself, so that a command line or a server only says which files to
//! use.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data::idx::read_idx_bytes;
use crate::data::image_folder::is_image_file;
use crate::data::rows::parse_numeric_rows;
use crate::error::{Error, Result};
use crate::io::Checkpoint;
use crate::llm::LanguageModel;
use crate::model::Model;
use crate::prediction::{classify, Classification, Prediction};
use crate::read::{self, Limit};
use crate::recommend::Recommender;
use crate::spec::{DataSpec, ModelSpec};
use crate::tabular::TabularModel;
use crate::tensor::Tensor;
use crate::text::{FaqIndex, SentenceEncoder, TextClassifier};

/// What a saved file or folder holds, shared: a server hands each model to its worker
/// thread and to the requests in flight, and one encoder to the indexes that embed with it.
#[derive(Clone)]
pub enum SavedModel {
    /// A network on tensors (images, IDX samples, rows of numbers).
    Network(Arc<NetworkModel>),
    /// A table model: raw rows in, the saved preprocessing, then its network.
    Table(Arc<TabularModel>),
    Text(Arc<TextClassifier>),
    Faq(Arc<FaqIndex>),
    /// A sentence encoder folder: texts in, embeddings out.
    Encoder(Arc<SentenceEncoder>),
    /// A generative language model (a GGUF file).
    Language(Arc<LanguageModel>),
    /// A recommender from `ember recommend train`: top-k items for a user, similar items.
    Recommender(Arc<Recommender>),
}

/// A network trained on a data set (images, IDX samples, numeric rows): its inputs are read
/// and prepared as its `[data]` section says.
pub struct NetworkModel {
    pub model: Model,
    pub spec: ModelSpec,
    pub epochs_done: usize,
}

impl SavedModel {
    /// Loads a file saved by Ember (a model from `ember train --output`, a checkpoint, a FAQ
    /// index from `ember index`, a recommender from `ember recommend train`), a sentence
    /// encoder folder or a GGUF language model.
    pub fn load(path: &Path) -> Result<SavedModel> {
        if path.is_dir() && SentenceEncoder::is_folder(path) {
            return Ok(SavedModel::Encoder(Arc::new(SentenceEncoder::load(path)?)));
        }
        if is_gguf(path)? {
            return Ok(SavedModel::Language(Arc::new(LanguageModel::load(path)?)));
        }
        if FaqIndex::is_index(path)? {
            return Ok(SavedModel::Faq(Arc::new(FaqIndex::load(path)?)));
        }
        if Recommender::is_recommender(path)? {
            return Ok(SavedModel::Recommender(Arc::new(Recommender::load(path)?)));
        }
        Ok(Self::from_checkpoint(crate::io::load(path)?))
    }

    /// Whether `path` holds a model without a network inside (a sentence encoder folder, a
    /// GGUF language model, a FAQ index, a recommender), told by its first bytes.
    pub fn holds_no_network(path: &Path) -> Result<bool> {
        Ok((path.is_dir() && SentenceEncoder::is_folder(path))
            || is_gguf(path)?
            || FaqIndex::is_index(path)?
            || Recommender::is_recommender(path)?)
    }

    /// The kind of a loaded model file.
    pub fn from_checkpoint(checkpoint: Checkpoint) -> SavedModel {
        let Checkpoint {
            model,
            mut spec,
            epochs_done,
        } = checkpoint;
        if let Some(table) = spec.table.take() {
            return SavedModel::Table(Arc::new(TabularModel::from_spec(model, table)));
        }
        if let Some(text) = spec.text.take() {
            return SavedModel::Text(Arc::new(TextClassifier { model, spec: text }));
        }
        SavedModel::Network(Arc::new(NetworkModel {
            model,
            spec,
            epochs_done,
        }))
    }

    /// "network", "table", "text", "faq", "encoder", "language" or "recommender".
    pub fn kind(&self) -> &'static str {
        match self {
            SavedModel::Network(_) => "network",
            SavedModel::Table(_) => "table",
            SavedModel::Text(_) => "text",
            SavedModel::Faq(_) => "faq",
            SavedModel::Encoder(_) => "encoder",
            SavedModel::Language(_) => "language",
            SavedModel::Recommender(_) => "recommender",
        }
    }

    /// The network inside, for the kinds that have one.
    pub fn network(&self) -> Option<&Model> {
        match self {
            SavedModel::Network(n) => Some(&n.model),
            SavedModel::Table(t) => Some(&t.model),
            SavedModel::Text(t) => Some(&t.model),
            SavedModel::Faq(_)
            | SavedModel::Encoder(_)
            | SavedModel::Language(_)
            | SavedModel::Recommender(_) => None,
        }
    }
}

/// Whether `path` is a file that starts with GGUF's magic number.
pub fn is_gguf(path: &Path) -> Result<bool> {
    if path.is_dir() {
        return Ok(false);
    }
    let mut magic = [0u8; 4];
    let (mut file, _) = read::open(path)?;
    Ok(file.read(&mut magic).map_err(|e| Error::io(path, e))? == 4 && &magic == b"GGUF")
}

impl NetworkModel {
    /// The `[data]` section its inputs are prepared by; `path` names the model in the error
    /// when it has none.
    pub fn data(&self, path: &Path) -> Result<&DataSpec> {
        self.spec.data.as_ref().ok_or_else(|| Error::Spec {
            path: path.to_path_buf(),
            line: None,
            field: "data".into(),
            message: "there is no [data] section; pass --data DIR with a data set".into(),
        })
    }

    /// One input file as prepared samples (n, …): an image (PNG, JPEG of any size, resized
    /// as in training), an IDX file (one sample per entry, or a single sample), or a CSV file
    /// of numbers (one sample per row). A sample that is not the model's shape, or holds NaN
    /// or infinity, is an error naming the file.
    pub fn read_input(&self, path: &Path, data: &DataSpec) -> Result<Tensor> {
        let bytes = read::file(path, Limit::INPUT)?;
        self.read_input_bytes(&bytes, path, data)
    }

    /// [`NetworkModel::read_input`] on an input's bytes (a file's, or standard input's);
    /// `path` names it in errors.
    pub fn read_input_bytes(&self, bytes: &[u8], path: &Path, data: &DataSpec) -> Result<Tensor> {
        self.prepare(read_raw(bytes, path, data)?, path, data)
    }

    /// Raw samples (n, …) as the data files hold them (MNIST: pixels 0–255), prepared as
    /// the training data was and checked as [`NetworkModel::read_input`] checks a file's;
    /// `path` names them in errors.
    pub fn prepare(&self, raw: Tensor, path: &Path, data: &DataSpec) -> Result<Tensor> {
        let x = data.prepare_inputs(raw)?;
        let expected = self.model.input_shape();
        if x.shape()[1..] != expected[..] {
            return Err(Error::data(
                path,
                format!(
                    "samples of shape {:?}, the model expects {expected:?}",
                    &x.shape()[1..]
                ),
            ));
        }
        if let Some(v) = x.data().iter().find(|v| !v.is_finite()) {
            return Err(Error::data(path, format!("holds {v}, not a finite number")));
        }
        data.check_input_range(&x, path)?;
        Ok(x)
    }

    /// Classifies every sample of `inputs` (each a file as [`NetworkModel::read_input`] reads
    /// it, or a folder of images): the `top_k` most likely classes of each.
    pub fn predict_files(
        &self,
        inputs: &[PathBuf],
        top_k: usize,
        model_path: &Path,
    ) -> Result<Vec<Prediction<Classification>>> {
        let mut predictions = Vec::new();
        for input in &expand_folders(inputs)? {
            let bytes = read::file(input, Limit::INPUT)?;
            predictions.extend(self.predict_bytes(&bytes, input, top_k, model_path)?);
        }
        Ok(predictions)
    }

    /// Classifies every sample of one input given as bytes (standard input's, say), read as
    /// [`NetworkModel::read_input`] reads a file; `input` names it in the predictions.
    pub fn predict_bytes(
        &self,
        bytes: &[u8],
        input: &Path,
        top_k: usize,
        model_path: &Path,
    ) -> Result<Vec<Prediction<Classification>>> {
        let data = self.data(model_path)?;
        let mut predictions = Vec::new();
        let x = self.read_input_bytes(bytes, input, data)?;
        let outputs = self.model.predict(&x, 256)?;
        let width = outputs.row_len().max(1);
        // Inputs far beyond any the model was trained on can overflow it: no answer then.
        if let Some(i) = outputs.data().iter().position(|v| !v.is_finite()) {
            return Err(Error::data(
                input,
                format!(
                    "the model's output for sample {} is not a finite number (inputs far \
                     outside the range it was trained on?)",
                    i / width
                ),
            ));
        }
        for (sample, row) in outputs.data().chunks(width).enumerate() {
            let class = classify(row, top_k, &data.classes);
            predictions.push(Prediction::of_sample(input, sample, class));
        }
        Ok(predictions)
    }
}

/// What an input holds, told by its first bytes, not by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InputKind {
    Image,
    Idx,
    Csv,
}

fn input_kind(bytes: &[u8]) -> InputKind {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF];
    const GZIP: &[u8] = &[0x1F, 0x8B];
    if bytes.starts_with(PNG) || bytes.starts_with(JPEG) {
        InputKind::Image
    } else if bytes.starts_with(GZIP) || bytes.starts_with(&[0, 0]) {
        // IDX files begin with two zero bytes; MNIST's are often gzip-compressed.
        InputKind::Idx
    } else {
        InputKind::Csv
    }
}

/// One input as raw samples (n, …), before preprocessing: a PNG or JPEG image, an IDX file
/// (plain or gzip-compressed) or CSV rows of numbers, told apart by content.
fn read_raw(bytes: &[u8], path: &Path, data: &DataSpec) -> Result<Tensor> {
    let sample = data.sample_shape();
    match input_kind(bytes) {
        InputKind::Image => {
            if !matches!(sample.len(), 2 | 3) {
                return Err(Error::data(path, "this model does not take images"));
            }
            let mut shape = vec![1];
            shape.extend_from_slice(&sample);
            data.load_image_bytes(bytes, path)?.reshape(&shape)
        }
        InputKind::Csv => {
            // Text that is not rows of numbers: say what else it could have been, unless
            // it was named as a CSV file.
            let named_csv = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            let rows = parse_numeric_rows(bytes, path).map_err(|e| match e {
                Error::Data { path, message } if !named_csv || message.contains("not a CSV") => {
                    Error::Data {
                        path,
                        message: format!(
                            "not a PNG/JPEG image, IDX file or CSV rows of numbers (as CSV: \
                             {message})"
                        ),
                    }
                }
                other => other,
            })?;
            let columns = rows.row_len();
            let mut shape = vec![rows.rows()];
            shape.extend_from_slice(&sample);
            rows.reshape(&shape).map_err(|_| {
                Error::data(
                    path,
                    format!(
                        "rows of {columns} values, the model's samples have {}",
                        sample.iter().product::<usize>()
                    ),
                )
            })
        }
        InputKind::Idx => {
            let t = read_idx_bytes(bytes, path).map_err(|e| match e {
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
                return Err(Error::data(
                    path,
                    format!(
                        "IDX dimensions {:?}, the model's samples are {sample:?}",
                        t.shape()
                    ),
                ));
            }
            Ok(t)
        }
    }
}

/// The inputs with each folder replaced by the image files in it and in its subfolders, at
/// any depth (an image folder's class subfolders, say), sorted by path.
pub(crate) fn expand_folders(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        let mut images = Vec::new();
        let mut visited = std::collections::HashSet::new();
        images_in(input, &mut images, &mut visited)?;
        if images.is_empty() {
            return Err(Error::data(
                input,
                "the folder and its subfolders hold no .png/.jpg/.jpeg images",
            ));
        }
        images.sort();
        files.extend(images);
    }
    Ok(files)
}

/// Adds the image files of `dir` and of its subfolders to `images`; `visited` holds the
/// folders already walked, so that a link back up the tree is walked once.
fn images_in(
    dir: &Path,
    images: &mut Vec<PathBuf>,
    visited: &mut std::collections::HashSet<PathBuf>,
) -> Result<()> {
    let real = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    if !visited.insert(real) {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            images_in(&path, images, visited)?;
        } else if path.is_file() && is_image_file(&path) {
            images.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_input_is_every_image_in_its_tree() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        for file in ["b/2.png", "a/deeper/1.jpg", "0.PNG", "a/notes.txt"] {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir, dir.join("a/loop")).unwrap();
        let found = expand_folders(&[dir.to_path_buf()]).unwrap();
        let names: Vec<_> = found.iter().map(|p| p.strip_prefix(dir).unwrap()).collect();
        assert_eq!(
            names,
            [
                Path::new("0.PNG"),
                Path::new("a/deeper/1.jpg"),
                Path::new("b/2.png")
            ]
        );
        let empty = dir.join("a/deeper/empty");
        std::fs::create_dir_all(&empty).unwrap();
        let err = expand_folders(&[empty]).unwrap_err().to_string();
        assert!(err.contains("no .png/.jpg/.jpeg images"), "{err}");
    }
}
