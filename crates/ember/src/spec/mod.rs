//! The declarative model file (TOML), both ways: file → `Model` and `Model` → file. The
//! layers form a stack or a graph (see [`graph`]). This is the format only: the data a
//! `[data]` section names is read by [`crate::data::dataset`].
//!
//! ```toml
//! [model]
//! input_shape = [784]
//!
//! [[layers]]
//! type = "dense"
//! units = 64
//! activation = "relu"
//!
//! [compile]
//! optimizer = { type = "adam", learning_rate = 0.001 }
//! loss = "categorical_crossentropy"
//! metrics = ["accuracy"]
//!
//! [fit]
//! epochs = 10
//! batch_size = 32
//! validation_split = 0.2
//!
//! [data]
//! format = "mnist"
//! dir = "../data/mnist"
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The `[data]` section is the data module's: it reads what the section names.
pub use crate::data::dataset::{DataFormat, DataSpec, Dataset, IdxPaths};
pub use callbacks::{fill_template, CallbackConfig, ModelCheckpointConfig, SchedulerConfig};
pub use graph::{InputEntry, LayerEntry, LayerKind, ModelSection};

mod callbacks;
pub mod graph;
pub mod table;

use crate::data::preprocess::Preprocessor;
use crate::data::tfidf::TfIdf;
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::metrics::Metric;
use crate::model::{FitOptions, Model, MAX_BATCH_SIZE, MAX_EPOCHS};
use crate::nn::LayerConfig;
use crate::optim::Optimizer;
use crate::privacy::Privacy;
use table::{TabularOptions, Task};

/// A whole model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub model: ModelSection,
    pub layers: Vec<LayerEntry>,
    pub compile: CompileSpec,
    #[serde(default)]
    pub fit: FitSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callbacks: Vec<CallbackConfig>,
    /// For models trained on a table: the CSV, the task and the fitted preprocessing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableSpec>,
    /// For text classifiers: the classes and how documents become features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextSpec>,
    /// `[privacy]`: train with DP-SGD (see [`crate::privacy::Privacy`]); a trained model
    /// keeps it with the steps spent, from which its guarantee is stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<Privacy>,
    /// `[tune]`: a hyperparameter search over this file, read by `ember tune`
    /// (`crate::tune`); training ignores it, and a trained model does not keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune: Option<toml::Table>,
}

/// `[text]`: how a text classifier reads documents and turns them into features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSpec {
    pub classes: Vec<String>,
    /// Documents are e-mails: the subject and body text are read, not the headers.
    #[serde(default)]
    pub email: bool,
    pub features: TextFeatures,
    /// Standardization of the features, fitted on the training documents (pretrained
    /// features; TF-IDF vectors are used as they are).
    #[serde(default)]
    pub scaler: Option<crate::data::StandardScaler>,
}

/// How a text classifier turns documents into vectors; saved with the classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TextFeatures {
    /// Vectors from a pretrained encoder; `encoder_key` identifies its weights, and is checked
    /// when the classifier is loaded.
    /// With `layers`, the token states after those layers pooled by mean and maximum
    /// (`SentenceEncoder::encode_pooled_layers`); without (the first classifiers), the
    /// sentence embedding.
    Pretrained {
        encoder: PathBuf,
        encoder_key: String,
        #[serde(default)]
        layers: Vec<usize>,
    },
    /// TF-IDF over a vocabulary fitted on the training documents.
    Tfidf(TfIdf),
}

/// `[table]`: what a table model was trained on and how it prepares rows (fitted on training
/// rows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub file: PathBuf,
    /// The training file's columns in order, the target among them: a file read without a
    /// header gives its columns by these positions. Empty in models saved before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    pub task: Task,
    pub options: TabularOptions,
    pub preprocessor: Preprocessor,
}

/// `[compile]`: Keras's compile arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileSpec {
    pub optimizer: Optimizer,
    pub loss: Loss,
    #[serde(default)]
    pub metrics: Vec<Metric>,
}

/// `[fit]`: Keras's fit arguments, with its defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FitSpec {
    pub epochs: usize,
    pub batch_size: usize,
    pub validation_split: f32,
    pub shuffle: bool,
    /// Seeds weight initialisation and shuffling.
    pub seed: u64,
}

impl Default for FitSpec {
    fn default() -> Self {
        FitSpec {
            epochs: 1,
            batch_size: 32,
            validation_split: 0.0,
            shuffle: true,
            seed: 0,
        }
    }
}

impl FitSpec {
    pub fn options(&self) -> FitOptions<'static> {
        FitOptions {
            epochs: self.epochs,
            batch_size: self.batch_size,
            validation_split: self.validation_split,
            shuffle: self.shuffle,
            seed: Some(self.seed),
            ..FitOptions::default()
        }
    }
}

impl ModelSpec {
    /// Reads and checks a model file. Errors name the file, the line and the field.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = crate::read::text(path, crate::read::Limit::SETTINGS)?;
        Self::parse(&text, path)
    }

    /// Parses model-file text; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let line_of = |span: Option<std::ops::Range<usize>>| {
            span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| Error::Spec {
            path: path.to_path_buf(),
            line: line_of(e.span()),
            field: "syntax".into(),
            message: e.message().trim().to_string(),
        })?;
        let spec: ModelSpec = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let mut field = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.message().trim().to_string();
            let mut line = line_of(inner.span());
            // Tagged tables (layers, optimizers) report errors at the table: find the key.
            if let Some((key, key_line)) = offending_key(text, &field, &message, inner.span()) {
                field = format!("{field}.{key}");
                line = Some(key_line);
            }
            Error::Spec {
                path: path.to_path_buf(),
                line,
                field: if field == "." {
                    "(top level)".into()
                } else {
                    field
                },
                message,
            }
        })?;
        spec.check(path)?;
        Ok(spec)
    }

    /// The metrics training this file logs each epoch, by their Keras names: the loss, the
    /// accuracy if compiled with it, and both on the validation split if there is one.
    pub fn logged_metrics(&self) -> Vec<&'static str> {
        let accuracy = self.compile.metrics.contains(&Metric::Accuracy);
        let validation = self.fit.validation_split > 0.0;
        let mut logged = vec!["loss"];
        if accuracy {
            logged.push("accuracy");
        }
        if validation {
            logged.push("val_loss");
            if accuracy {
                logged.push("val_accuracy");
            }
        }
        logged
    }

    /// Checks the file again after fields were changed in it (the command line's overrides
    /// of its epochs, validation split, optimizer or metrics): a callback watching a metric
    /// the changed file no longer logs, say. `path` names the file in errors.
    pub fn check(&self, path: &Path) -> Result<()> {
        self.validate().map_err(|(field, message)| Error::Spec {
            path: path.to_path_buf(),
            line: None,
            field,
            message,
        })
    }

    /// Checks values that parse but make no sense; returns (field, message).
    fn validate(&self) -> Result<(), (String, String)> {
        graph::check(&self.model, &self.layers)?;
        self.compile
            .optimizer
            .validate()
            .map_err(|m| ("compile.optimizer".to_string(), m))?;
        if !(1..=MAX_EPOCHS).contains(&self.fit.epochs) {
            return Err((
                "fit.epochs".into(),
                format!("must be 1 to {MAX_EPOCHS}, got {}", self.fit.epochs),
            ));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.fit.batch_size) {
            return Err((
                "fit.batch_size".into(),
                format!("must be 1 to {MAX_BATCH_SIZE}, got {}", self.fit.batch_size),
            ));
        }
        if !(0.0..1.0).contains(&self.fit.validation_split) {
            return Err((
                "fit.validation_split".into(),
                format!("must be in [0, 1), got {}", self.fit.validation_split),
            ));
        }
        if let Some(privacy) = &self.privacy {
            privacy.validate()?;
        }
        let logged = self.logged_metrics();
        for (i, callback) in self.callbacks.iter().enumerate() {
            callback
                .validate()
                .map_err(|m| (format!("callbacks[{i}]"), m))?;
            callback
                .check_metrics(&logged)
                .map_err(|(field, m)| (format!("callbacks[{i}].{field}"), m))?;
        }
        if let Some(data) = &self.data {
            if !(data.scale.is_finite() && data.scale > 0.0) {
                return Err((
                    "data.scale".into(),
                    format!("must be a positive number, got {}", data.scale),
                ));
            }
        }
        Ok(())
    }

    /// The Keras summary table of the model this file describes, as `build()?.summary()`
    /// prints it, made from the layers' declared shapes and sizes without creating a weight.
    pub fn summary(&self) -> Result<String> {
        let table = graph::summary(&self.model, &self.layers)
            .map_err(|(field, message)| Error::invalid(format!("{field}: {message}")))?;
        Ok(table.render()
            + &self
                .privacy
                .as_ref()
                .map_or(String::new(), |p| p.description()))
    }

    /// Builds and compiles the model, seeded with `fit.seed`.
    pub fn build(&self) -> Result<Model> {
        let mut model = graph::build(&self.model, &self.layers, self.fit.seed)
            .map_err(|(field, message)| Error::invalid(format!("{field}: {message}")))?;
        model.compile(
            self.compile.optimizer.clone(),
            self.compile.loss,
            &self.compile.metrics,
        )?;
        if let Some(privacy) = &self.privacy {
            model.make_private(privacy.clone())?;
        }
        Ok(model)
    }

    /// The layer configurations, in order (merges and shared calls left out).
    pub fn layer_configs(&self) -> impl Iterator<Item = &LayerConfig> {
        self.layers.iter().filter_map(LayerEntry::config)
    }

    /// The spec of a compiled model, with the given fit settings (the other direction).
    pub fn from_model(model: &Model, fit: FitSpec, data: Option<DataSpec>) -> Result<Self> {
        let compiled = model.compiled("ModelSpec::from_model")?;
        let (section, layers) = graph::describe(model);
        Ok(ModelSpec {
            model: section,
            layers,
            compile: CompileSpec {
                optimizer: compiled.optimizer,
                loss: compiled.loss,
                metrics: compiled
                    .accuracy
                    .map(|_| Metric::Accuracy)
                    .into_iter()
                    .collect(),
            },
            fit,
            data,
            callbacks: Vec::new(),
            table: None,
            text: None,
            privacy: compiled.privacy,
            tune: None,
        })
    }

    /// The spec as model-file text.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self)
            .map_err(|e| Error::invalid(format!("cannot write the model file: {e}")))
    }
}

/// For an error reported at a table (`layers[0]`) about a bad value, the key inside the table
/// that holds that value, and its line: serde's tagged enums lose the key itself.
fn offending_key(
    text: &str,
    field: &str,
    message: &str,
    span: Option<std::ops::Range<usize>>,
) -> Option<(String, usize)> {
    // The bad value, as the message quotes it: unknown variant `x` / invalid type: string "x".
    let quoted = |open: char, close: char| {
        let start = message.find(open)? + 1;
        let end = start + message[start..].find(close)?;
        Some(message[start..end].to_string())
    };
    let bad = if message.starts_with("unknown variant") {
        quoted('`', '`')?
    } else if message.starts_with("invalid type: string") {
        quoted('"', '"')?
    } else {
        return None;
    };
    let root: toml::Table = toml::from_str(text).ok()?;
    let mut node = toml::Value::Table(root);
    for part in field.split('.').filter(|p| !p.is_empty()) {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        node = node.get(name)?.clone();
        if let Some(i) = index {
            node = node.get(i)?.clone();
        }
    }
    let (key, _) = node
        .as_table()?
        .iter()
        .find(|(_, v)| v.as_str() == Some(bad.as_str()))?;
    // The key's line: the first line at or after the table's start that assigns it.
    let start = span.map_or(0, |s| s.start.min(text.len()));
    let first_line = text[..start].matches('\n').count();
    let offset = text.lines().skip(first_line).position(|l| {
        l.trim_start().starts_with(key.as_str()) || l.contains(&format!(" {key} ="))
    })?;
    Some((key.clone(), first_line + offset + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
[model]
input_shape = [4]

[[layers]]
type = "dense"
units = 8
activation = "relu"

[[layers]]
type = "dense"
units = 3
activation = "softmax"

[compile]
optimizer = { type = "adam" }
loss = "categorical_crossentropy"
metrics = ["accuracy"]
"#;

    fn error(text: &str) -> String {
        ModelSpec::parse(text, Path::new("m.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_with_keras_defaults_and_round_trips() {
        let spec = ModelSpec::parse(VALID, Path::new("m.toml")).unwrap();
        assert_eq!(spec.fit, FitSpec::default());
        let clipped = ModelSpec::parse(
            &VALID.replace("type = \"adam\"", "type = \"adam\", global_clipnorm = 1.5"),
            Path::new("m.toml"),
        )
        .unwrap();
        assert_eq!(
            clipped.compile.optimizer.clipping().unwrap()[0].name(),
            "global_clipnorm"
        );
        assert!(clipped.to_toml().unwrap().contains("global_clipnorm = 1.5"));
        let Optimizer::Adam(adam) = &spec.compile.optimizer else {
            panic!()
        };
        assert_eq!((adam.learning_rate, adam.epsilon), (0.001, 1e-7));
        let model = spec.build().unwrap();
        assert_eq!(model.count_params(), 4 * 8 + 8 + 8 * 3 + 3);
        let back = ModelSpec::from_model(&model, spec.fit.clone(), None).unwrap();
        assert_eq!(back, spec);
        let text = back.to_toml().unwrap();
        assert_eq!(
            ModelSpec::parse(&text, Path::new("again.toml")).unwrap(),
            spec
        );
    }

    #[test]
    fn a_tune_section_is_kept_and_written_back_but_not_by_a_trained_model() {
        let text =
            format!("{VALID}\n[tune]\n[tune.space]\n\"fit.batch_size\" = {{ choice = [8] }}\n");
        let spec = ModelSpec::parse(&text, Path::new("m.toml")).unwrap();
        assert!(spec.tune.is_some());
        let again = ModelSpec::parse(&spec.to_toml().unwrap(), Path::new("m.toml")).unwrap();
        assert_eq!(again, spec);
        let trained =
            ModelSpec::from_model(&spec.build().unwrap(), spec.fit.clone(), None).unwrap();
        assert_eq!(trained.tune, None);
    }

    #[test]
    fn layer_shapes_are_checked_at_parse_time() {
        let e = error(&VALID.replace(
            "type = \"dense\"\nunits = 8\nactivation = \"relu\"",
            "type = \"reshape\"\ntarget_shape = [4294967296, 4294967296]",
        ));
        assert!(e.contains("layers[0]") && e.contains("too large"), "{e}");
        let e = error(&VALID.replace(
            "type = \"dense\"\nunits = 8\nactivation = \"relu\"",
            "type = \"dropout\"\nrate = 1.5",
        ));
        assert!(e.contains("layers[0]") && e.contains("rate"), "{e}");
        let e = error(&VALID.replace(
            "type = \"dense\"\nunits = 8\nactivation = \"relu\"",
            "type = \"conv2d\"\nfilters = 2\nkernel_size = 3",
        ));
        assert!(
            e.contains("layers[0]") && e.contains("height, width, channels"),
            "{e}"
        );
        let e = error(&VALID.replace(
            "input_shape = [4]",
            "input_shape = [4294967296, 4294967296]",
        ));
        assert!(
            e.contains("model.input_shape") && e.contains("too large"),
            "{e}"
        );
    }

    #[test]
    fn a_kernel_regularizer_round_trips_and_unknown_penalties_are_errors() {
        let text = VALID.replace(
            "activation = \"relu\"",
            "activation = \"relu\"\nkernel_regularizer = { l2 = 0.001 }",
        );
        let spec = ModelSpec::parse(&text, Path::new("m.toml")).unwrap();
        let model = spec.build().unwrap();
        let back = ModelSpec::from_model(&model, spec.fit.clone(), None).unwrap();
        assert_eq!(back, spec);
        assert!(back.to_toml().unwrap().contains("l2 = 0.001"));
        let e = error(&text.replace("l2 = 0.001", "l1 = 0.001"));
        assert!(
            e.contains("layers[0]") && e.contains("unknown field `l1`, expected `l2`"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_key_in_any_layer_is_an_error_naming_the_layer() {
        let second = "type = \"dense\"\nunits = 3\nactivation = \"softmax\"";
        assert!(VALID.contains(second));
        for layer in [
            "type = \"dense\"\nunits = 3",
            "type = \"activation\"\nactivation = \"relu\"",
            "type = \"conv2d\"\nfilters = 2\nkernel_size = 3",
            "type = \"max_pooling2d\"",
            "type = \"average_pooling2d\"",
            "type = \"global_average_pooling2d\"",
            "type = \"flatten\"",
            "type = \"reshape\"\ntarget_shape = [2, 4]",
            "type = \"dropout\"\nrate = 0.5",
            "type = \"random_flip\"",
            "type = \"random_translation\"\nheight_factor = 0.1\nwidth_factor = 0.1",
            "type = \"random_rotation\"\nfactor = 0.1",
            "type = \"embedding\"\ninput_dim = 5\noutput_dim = 2",
            "type = \"layer_normalization\"",
            "type = \"multi_head_attention\"\nnum_heads = 2\nkey_dim = 2",
            "type = \"transformer_encoder\"\nnum_heads = 2\nintermediate_dim = 4",
            "type = \"batch_normalization\"",
        ] {
            let e = error(&VALID.replace(second, &format!("{layer}\nbogus = 1")));
            assert!(
                e.contains("layers[1]") && e.contains("unknown field `bogus`"),
                "{layer}: {e}"
            );
        }
    }

    #[test]
    fn every_model_file_parses_and_its_layers_round_trip() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        assert!(files.len() >= 4, "{files:?}");
        for path in files {
            let spec = ModelSpec::from_file(&path).unwrap();
            let model = spec.build().unwrap();
            let back = ModelSpec::from_model(&model, spec.fit.clone(), spec.data.clone()).unwrap();
            let configs = |s: &ModelSpec| s.layer_configs().cloned().collect::<Vec<_>>();
            assert_eq!(configs(&back), configs(&spec), "{}", path.display());
            let again = ModelSpec::parse(&back.to_toml().unwrap(), &path).unwrap();
            assert_eq!(again, back, "{}", path.display());
        }
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = error(&VALID.replace("\"relu\"", "\"relu2\""));
        assert!(
            e.starts_with("m.toml:8: layers[0].activation: unknown variant `relu2`"),
            "{e}"
        );
        let e = error(&VALID.replace(
            "type = \"dense\"\nunits = 8",
            "type = \"dense2\"\nunits = 8",
        ));
        assert!(
            e.contains("layers[0]") && e.contains("unknown variant `dense2`"),
            "{e}"
        );
        let e = error(&VALID.replace("type = \"adam\"", "type = \"adamw\""));
        assert!(
            e.contains("compile.optimizer") && e.contains("adamw"),
            "{e}"
        );
        let e = error(&VALID.replace("units = 8", "units = \"8\""));
        assert!(
            e.contains("layers[0].units") && e.contains("invalid type"),
            "{e}"
        );
        let e = error(&VALID.replace("units = 8\n", ""));
        assert!(
            e.contains("layers[0]") && e.contains("missing field `units`"),
            "{e}"
        );
        let e = error(&VALID.replace("loss = \"categorical_crossentropy\"\n", ""));
        assert!(
            e.contains("compile") && e.contains("missing field `loss`"),
            "{e}"
        );
        let e = error(&VALID.replace("units = 8", "units = 8\nunit = 3"));
        assert!(e.contains("unknown field `unit`"), "{e}");
        let e = error(&VALID.replace("units = 8", "units = 0"));
        assert!(e.contains("layers[0].units: must be at least 1"), "{e}");
        let e = error(&format!("{VALID}\n[fit]\nvalidation_split = 1.5\n"));
        assert!(e.contains("fit.validation_split"), "{e}");
        let e = error(&VALID.replace("[model]", "[model"));
        assert!(e.starts_with("m.toml:2: syntax:"), "{e}");
        let e = error(&VALID.replace("type = \"adam\"", "type = \"adam\", learning_rate = -1.0"));
        assert!(
            e.contains("compile.optimizer: learning_rate must be a positive number"),
            "{e}"
        );
        let e = error(&VALID.replace(
            "type = \"adam\"",
            "type = \"adam\", clipnorm = 1.0, global_clipnorm = 1.0",
        ));
        assert!(
            e.contains(
                "compile.optimizer: only one of clipnorm, clipvalue and global_clipnorm can be set"
            ),
            "{e}"
        );
        let e = error(&VALID.replace("type = \"adam\"", "type = \"sgd\", global_clipnorm = 0.0"));
        assert!(
            e.contains("compile.optimizer: global_clipnorm must be a positive number"),
            "{e}"
        );
        let e = ModelSpec::from_file("/nonexistent/model.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/model.toml"), "{e}");
    }
}
