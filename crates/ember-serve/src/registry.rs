//! The models being served, by name: loaded from the paths `ember serve` was given (model
//! files, FAQ indexes, recommenders, sentence encoder folders, folders of saved models) as
//! [`SavedModel`]s, the family the command line loads too, and reloaded when a
//! file changes — swapped whole, or kept as they were when the new file is broken.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use ember::text::features::encoder_key;
use ember::text::{SentenceEncoder, TextFeatures};
use ember::{Error, SavedModel};

use crate::batch::BatchLimits;
use crate::error::ApiError;
use crate::log;
use crate::metrics::Metrics;
use crate::served::Served;

/// What a path given to `ember serve` is.
#[derive(Clone, Debug, PartialEq)]
enum Source {
    /// A saved model file, FAQ index, recommender or GGUF language model.
    File(PathBuf),
    /// A sentence-transformers folder.
    Encoder(PathBuf),
    /// A folder whose `.safetensors`, `.index` and `.rec` files are each a model.
    Folder(PathBuf),
}

/// A file's modification time and length: when either changes, the file is read again.
type Signature = (Option<SystemTime>, u64);

fn signature(path: &Path) -> Option<Signature> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok(), meta.len()))
}

pub struct Registry {
    models: RwLock<BTreeMap<String, Arc<Served>>>,
    sources: Vec<Source>,
    /// Each model file's signature when last read (successfully or not).
    seen: Mutex<HashMap<PathBuf, Signature>>,
    /// Encoders by folder, with their weights' key (hashed once: the weights are large),
    /// shared by the models that use the same one.
    encoders: Mutex<HashMap<PathBuf, (Arc<SentenceEncoder>, String)>>,
    limits: BatchLimits,
    pub metrics: Arc<Metrics>,
}

/// A name a URL can carry as one path segment, and `name:predict` can end.
fn check_name(name: &str, path: &Path) -> ember::Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::data(
            path,
            format!("'{name}' cannot name a model in a URL: rename the file with letters, digits, '-', '_' or '.'"),
        ))
    }
}

/// The model files of a served folder, by name: `.safetensors`, `.index` and `.rec` files,
/// hidden and temporary files left out.
fn folder_files(dir: &Path) -> ember::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'));
            let model = matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("safetensors" | "index" | "rec")
            );
            !hidden && model && p.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A model's name: its file's stem (an encoder folder's name).
fn name_of(path: &Path) -> ember::Result<String> {
    let name = match path.is_dir() {
        true => path.file_name(),
        false => path.file_stem(),
    }
    .and_then(|n| n.to_str())
    .unwrap_or_default()
    .to_string();
    check_name(&name, path)?;
    Ok(name)
}

impl Registry {
    /// Loads every model of `paths`; any that cannot be loaded, or two of one name, is an
    /// error naming the file.
    pub fn load(
        paths: &[PathBuf],
        limits: BatchLimits,
        metrics: Arc<Metrics>,
    ) -> ember::Result<Registry> {
        if paths.is_empty() {
            return Err(Error::invalid(
                "give at least one model file or folder to serve",
            ));
        }
        let mut sources = Vec::new();
        for path in paths {
            let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
            sources.push(match (meta.is_dir(), SentenceEncoder::is_folder(path)) {
                (true, true) => Source::Encoder(path.clone()),
                (true, false) => Source::Folder(path.clone()),
                (false, _) => Source::File(path.clone()),
            });
        }
        let registry = Registry {
            models: RwLock::new(BTreeMap::new()),
            sources,
            seen: Mutex::new(HashMap::new()),
            encoders: Mutex::new(HashMap::new()),
            limits,
            metrics,
        };
        let mut origin: HashMap<String, PathBuf> = HashMap::new();
        for (name, path) in registry.model_paths()? {
            if let Some(first) = origin.get(&name) {
                return Err(Error::data(
                    &path,
                    format!(
                        "a second model named '{name}' (the first is {})",
                        first.display()
                    ),
                ));
            }
            let (model, encoder) = registry.load_model(&path)?;
            registry.insert(&name, path.clone(), model, encoder);
            origin.insert(name, path);
        }
        if origin.is_empty() {
            return Err(Error::invalid(
                "the folders given hold no .safetensors, .index or .rec model files",
            ));
        }
        Ok(registry)
    }

    /// Every (name, path) the sources hold now.
    fn model_paths(&self) -> ember::Result<Vec<(String, PathBuf)>> {
        let mut all = Vec::new();
        for source in &self.sources {
            match source {
                Source::File(p) | Source::Encoder(p) => all.push((name_of(p)?, p.clone())),
                Source::Folder(dir) => {
                    for file in folder_files(dir)? {
                        all.push((name_of(&file)?, file));
                    }
                }
            }
        }
        Ok(all)
    }

    fn insert(
        &self,
        name: &str,
        path: PathBuf,
        model: SavedModel,
        encoder: Option<Arc<SentenceEncoder>>,
    ) {
        if let Some(sig) = signature(&path) {
            self.lock_seen().insert(path.clone(), sig);
        }
        let served = Arc::new(Served::start(
            name,
            path,
            model,
            encoder,
            self.limits,
            &self.metrics,
        ));
        self.models
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), served);
    }

    fn lock_seen(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Signature>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The encoder in `dir`, loaded once; `key`, when given, must be its weights' key.
    fn encoder(&self, dir: &Path, key: Option<&str>) -> ember::Result<Arc<SentenceEncoder>> {
        let canonical = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let mut encoders = self.encoders.lock().unwrap_or_else(|e| e.into_inner());
        let (encoder, actual) = match encoders.get(&canonical) {
            Some(known) => known.clone(),
            None => {
                let e = Arc::new(SentenceEncoder::load(dir)?);
                let known = (e.clone(), encoder_key(&e)?);
                encoders.insert(canonical, known.clone());
                known
            }
        };
        if let Some(key) = key {
            if actual != key {
                return Err(Error::data(
                    dir,
                    format!("not the encoder the model was made with (weights {actual}, expected {key})"),
                ));
            }
        }
        Ok(encoder)
    }

    /// The model in `path`, with the encoder it embeds with (loaded once per folder).
    fn load_model(&self, path: &Path) -> ember::Result<(SavedModel, Option<Arc<SentenceEncoder>>)> {
        if path.is_dir() {
            return Ok((SavedModel::Encoder(self.encoder(path, None)?), None));
        }
        let model = SavedModel::load(path)?;
        let encoder = match &model {
            SavedModel::Network(n) => {
                if n.model.inputs().len() != 1 {
                    return Err(Error::data(
                        path,
                        "a model of several inputs cannot be served yet (one input is)",
                    ));
                }
                n.data(path)?;
                None
            }
            SavedModel::Text(classifier) => match &classifier.spec.features {
                TextFeatures::Pretrained {
                    encoder,
                    encoder_key,
                    ..
                } => Some(self.encoder(encoder, Some(encoder_key))?),
                TextFeatures::Tfidf(_) => None,
            },
            SavedModel::Faq(index) => {
                let encoder = self.encoder(&index.encoder, Some(&index.encoder_key))?;
                if encoder.dim() != index.embeddings.row_len() {
                    return Err(Error::data(
                        path,
                        "the index's vectors are not its encoder's width",
                    ));
                }
                Some(encoder)
            }
            SavedModel::Table(_)
            | SavedModel::Encoder(_)
            | SavedModel::Language(_)
            | SavedModel::Recommender(_) => None,
        };
        Ok((model, encoder))
    }

    /// The model named `name`, or a 404 listing those there are.
    pub fn get(&self, name: &str) -> Result<Arc<Served>, ApiError> {
        let models = self.models.read().unwrap_or_else(|e| e.into_inner());
        models.get(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = models.keys().map(String::as_str).collect();
            ApiError::not_found(
                "unknown_model",
                format!("no model named '{name}' (models: {})", names.join(", ")),
            )
        })
    }

    /// Every model, by name.
    pub fn all(&self) -> Vec<Arc<Served>> {
        let models = self.models.read().unwrap_or_else(|e| e.into_inner());
        models.values().cloned().collect()
    }

    /// Reads again every model file that changed since it was last read, and any new file in
    /// a served folder. A file that no longer loads leaves its model as it was, logged and
    /// counted; it is tried again when it changes once more.
    pub fn reload_changed(&self) {
        let paths = match self.model_paths() {
            Ok(p) => p,
            Err(e) => return log::event("reload_failed", &[("error", &e.to_string())]),
        };
        for (name, path) in paths {
            if path.is_dir() {
                continue; // An encoder folder is loaded once.
            }
            let Some(sig) = signature(&path) else {
                continue;
            };
            if self.lock_seen().get(&path) == Some(&sig) {
                continue;
            }
            // A second file of a name already served from elsewhere is not a reload.
            if let Ok(current) = self.get(&name) {
                if current.source != path {
                    self.lock_seen().insert(path.clone(), sig);
                    log::event(
                        "reload_failed",
                        &[
                            ("model", &name),
                            ("file", &path.display().to_string()),
                            ("error", "another file already serves this name"),
                        ],
                    );
                    continue;
                }
            }
            let file = path.display().to_string();
            match self.load_model(&path) {
                Ok((model, encoder)) => {
                    self.insert(&name, path.clone(), model, encoder);
                    self.metrics.reload(&name, true);
                    log::event("reloaded", &[("model", &name), ("file", &file)]);
                }
                Err(e) => {
                    self.lock_seen().insert(path.clone(), sig);
                    self.metrics.reload(&name, false);
                    log::event(
                        "reload_failed",
                        &[("model", &name), ("file", &file), ("error", &e.to_string())],
                    );
                }
            }
        }
    }
}
