//! Save and load: one `.safetensors` file holding the weights, the optimizer's state and, in
//! its metadata, the model file (spec, preprocessing, training settings), the epochs done and
//! Ember's format version. Writes are atomic: a temporary file, then a rename. Checkpoints
//! during training are saves too (the `ModelCheckpoint` callback calls [`save_with`]).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::atomic::write_atomically;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::optim::OptimizerState;
use crate::read::{self, Limit};
use crate::spec::{DataSpec, FitSpec, ModelSpec};
use crate::tensor::Tensor;

/// The file format version this Ember writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const KEY_FORMAT: &str = "ember.format_version";
const KEY_SPEC: &str = "ember.spec";
const KEY_EPOCHS: &str = "ember.epochs_done";
const KEY_ITERATIONS: &str = "ember.optimizer_iterations";
const WEIGHT: &str = "weight/";
const OPTIMIZER: &str = "optimizer/";

/// A saved model: the model itself (compiled, optimizer state restored), the model file it
/// was built from, and how many epochs it has been trained.
pub struct Checkpoint {
    pub model: Model,
    pub spec: ModelSpec,
    pub epochs_done: usize,
}

impl Model {
    /// Saves the model (weights, optimizer state and architecture) to one file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let spec = ModelSpec::from_model(self, FitSpec::default(), None)?;
        save(path, self, &spec, 0)
    }

    /// Loads a model saved by [`Model::save`] or [`save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Ok(load(path)?.model)
    }
}

/// Saves `model` with its model file `spec` and the number of epochs done.
pub fn save(
    path: impl AsRef<Path>,
    model: &Model,
    spec: &ModelSpec,
    epochs_done: usize,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = to_bytes(model, spec, epochs_done)?;
    write_atomically(path, &bytes)
}

/// The bytes of a saved model.
pub fn to_bytes(model: &Model, spec: &ModelSpec, epochs_done: usize) -> Result<Vec<u8>> {
    let mut named: Vec<(String, &Tensor)> = model
        .weights()
        .into_iter()
        .map(|(name, t)| (format!("{WEIGHT}{name}"), t))
        .collect();
    let state = model.optimizer().map(|o| o.state()).unwrap_or_default();
    named.extend(
        state
            .tensors
            .iter()
            .map(|(n, t)| (format!("{OPTIMIZER}{n}"), t)),
    );
    // safetensors stores little-endian bytes.
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = named
        .into_iter()
        .map(|(name, t)| {
            let raw = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, t.shape().to_vec(), raw)
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, raw)| {
            TensorView::new(Dtype::F32, shape.clone(), raw)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::invalid(format!("cannot store tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([
        (KEY_FORMAT.to_string(), FORMAT_VERSION.to_string()),
        (KEY_SPEC.to_string(), spec.to_toml()?),
        (KEY_EPOCHS.to_string(), epochs_done.to_string()),
        (KEY_ITERATIONS.to_string(), state.iterations.to_string()),
    ]);
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::invalid(format!("cannot serialise the model: {e}")))
}

/// Loads a saved model file.
pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint> {
    let path = path.as_ref();
    let bytes = read::file(path, Limit::MODEL)?;
    from_bytes(&bytes, path)
}

/// Whether `path` holds a saved model (a safetensors file: an 8-byte header length, then the
/// JSON header) rather than a model file's text.
pub fn is_saved_model(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut start = [0u8; 9];
    let (mut file, _) = read::open(path)?;
    let read = file.read(&mut start).map_err(|e| Error::io(path, e))?;
    Ok(read == start.len() && start[8] == b'{' && start[..8].iter().any(|&b| b != 0))
}

/// Whether `path` is a safetensors file whose metadata has `key` (`ember.faq`,
/// `ember.recommender`), read from its header alone.
pub fn has_metadata(path: &Path, key: &str) -> Result<bool> {
    use std::io::Read;
    let (mut file, _) = read::open(path)?;
    let mut length = [0u8; 8];
    if file.read_exact(&mut length).is_err() {
        return Ok(false);
    }
    let length = u64::from_le_bytes(length);
    // safetensors caps its header at 100 MB; anything larger is not one of its files.
    if length > 100_000_000 {
        return Ok(false);
    }
    let mut header = Vec::new();
    file.take(length)
        .read_to_end(&mut header)
        .map_err(|e| Error::io(path, e))?;
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&header) else {
        return Ok(false);
    };
    Ok(header
        .get("__metadata__")
        .and_then(|m| m.get(key))
        .is_some())
}

/// The Keras summary table of a model file or of a saved model.
pub fn summary_of(path: &Path) -> Result<String> {
    // A `.safetensors` file is read as one, broken or not: its error says what is wrong.
    let named = path.extension().is_some_and(|e| e == "safetensors");
    if named || is_saved_model(path)? {
        return Ok(load(path)?.model.summary());
    }
    ModelSpec::from_file(path)?.summary()
}

/// Loads a saved model from its bytes; `path` names it in errors. Every malformed input is an
/// error, never a panic (this is the fuzzed entry point).
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    let bad = |message: String| Error::data(path, message);
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a valid model file (safetensors: {e})")))?;
    let tensors = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a valid model file (safetensors: {e})")))?;
    let metadata = header
        .metadata()
        .clone()
        .ok_or_else(|| bad("not an Ember model file: no metadata".into()))?;
    let get = |key: &str| {
        metadata.get(key).ok_or_else(|| {
            bad(format!(
                "not an Ember model file: no '{key}' in its metadata"
            ))
        })
    };
    let version = get(KEY_FORMAT)?;
    if version.parse::<u32>().ok() != Some(FORMAT_VERSION) {
        return Err(bad(format!(
            "format version {version} is not supported (this Ember reads version {FORMAT_VERSION})"
        )));
    }
    let spec = ModelSpec::parse(get(KEY_SPEC)?, &path.join("[ember.spec]"))?;
    let epochs_done: usize = get(KEY_EPOCHS)?
        .parse()
        .map_err(|_| bad(format!("'{KEY_EPOCHS}' is not a number")))?;
    let iterations: u64 = get(KEY_ITERATIONS)?
        .parse()
        .map_err(|_| bad(format!("'{KEY_ITERATIONS}' is not a number")))?;

    let mut weights = HashMap::new();
    let mut optimizer = Vec::new();
    for (name, view) in tensors.iter() {
        let tensor = to_tensor(&view).map_err(|m| bad(format!("tensor '{name}': {m}")))?;
        if let Some(weight) = name.strip_prefix(WEIGHT) {
            weights.insert(weight.to_string(), tensor);
        } else if let Some(buffer) = name.strip_prefix(OPTIMIZER) {
            optimizer.push((buffer.to_string(), tensor));
        } else {
            return Err(bad(format!("unexpected tensor '{name}'")));
        }
    }
    // Check the architecture's size against the stored weights before building it, so a
    // corrupt spec cannot make us allocate more than the file holds.
    let declared = spec_param_count(&spec)?;
    let stored: usize = weights.values().map(Tensor::len).sum();
    if declared != stored {
        return Err(bad(format!(
            "the model file declares {declared} parameters but stores {stored}"
        )));
    }
    let mut model = spec.build()?;
    let names: Vec<(String, Vec<usize>)> = model
        .weights()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec()))
        .collect();
    for (name, shape) in &names {
        let value = weights
            .remove(name)
            .ok_or_else(|| bad(format!("weight '{name}' is missing")))?;
        if value.shape() != shape.as_slice() {
            return Err(bad(format!(
                "weight '{name}' has shape {:?}, the model needs {shape:?}",
                value.shape()
            )));
        }
        model.set_weight(name, value)?;
    }
    if let Some(extra) = weights.keys().next() {
        return Err(bad(format!(
            "weight '{extra}' does not belong to the model"
        )));
    }
    if let Some(table) = &spec.table {
        let (inputs, outputs) = (table.preprocessor.width(), table.preprocessor.outputs());
        let model_outputs = model.output_shape().last().copied().unwrap_or(0);
        if model.input_shape() != [inputs] || model_outputs != outputs {
            return Err(bad(format!(
                "the table preprocessing makes {inputs} inputs and {outputs} outputs, the network has {:?} and {model_outputs}",
                model.input_shape()
            )));
        }
    }
    let shapes: Vec<Vec<usize>> = names.into_iter().map(|(_, s)| s).collect();
    if let Some(opt) = model.optimizer_mut() {
        opt.load_state(
            OptimizerState {
                iterations,
                tensors: optimizer,
            },
            &shapes,
        )
        .map_err(bad)?;
    }
    Ok(Checkpoint {
        model,
        spec,
        epochs_done,
    })
}

/// Number of parameters the spec's layers declare.
fn spec_param_count(spec: &ModelSpec) -> Result<usize> {
    crate::spec::graph::param_count(&spec.model, &spec.layers)
        .map_err(|(field, message)| Error::invalid(format!("{field}: {message}")))
}

fn to_tensor(view: &TensorView) -> Result<Tensor, String> {
    if view.dtype() != Dtype::F32 {
        return Err(format!("stored as {:?}, Ember reads F32", view.dtype()));
    }
    let data: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(v) = data.iter().find(|v| !v.is_finite()) {
        return Err(format!("holds {v}"));
    }
    Tensor::new(view.shape(), data).map_err(|e| e.to_string())
}

/// Saves a checkpoint for the CLI and callbacks: spec built from the model plus the given
/// fit and data settings.
pub fn save_with(
    path: impl AsRef<Path>,
    model: &Model,
    fit: &FitSpec,
    data: Option<&DataSpec>,
    callbacks: &[crate::spec::CallbackConfig],
    epochs_done: usize,
) -> Result<()> {
    let mut spec = ModelSpec::from_model(model, fit.clone(), data.cloned())?;
    spec.callbacks = callbacks.to_vec();
    save(path, model, &spec, epochs_done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    fn trained() -> (Sequential, Tensor) {
        let mut m = Sequential::with_seed(&[3], 5);
        m.add(Dense::new(4).activation(Activation::Tanh)).unwrap();
        m.add(Dense::new(2).activation(Activation::Softmax))
            .unwrap();
        m.compile(
            Adam::new(0.01),
            Loss::SparseCategoricalCrossentropy,
            &[Metric::Accuracy],
        )
        .unwrap();
        let x = Tensor::new(&[6, 3], (0..18).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap();
        let y = Tensor::new(&[6], vec![0., 1., 0., 1., 1., 0.]).unwrap();
        let options = FitOptions {
            epochs: 3,
            batch_size: 2,
            verbose: Verbosity::Silent,
            ..Default::default()
        };
        m.fit(&x, &y, &options).unwrap();
        (m, x)
    }

    fn spec_of(m: &Sequential) -> ModelSpec {
        ModelSpec::from_model(m, FitSpec::default(), None).unwrap()
    }

    #[test]
    fn round_trip_is_bit_identical_and_keeps_optimizer_state() {
        let (mut m, x) = trained();
        let bytes = to_bytes(&m, &spec_of(&m), 3).unwrap();
        let mut loaded = from_bytes(&bytes, Path::new("m.safetensors")).unwrap();
        assert_eq!(loaded.epochs_done, 3);
        assert_eq!(loaded.model.get_weights(), m.get_weights());
        assert_eq!(
            loaded.model.predict(&x, 4).unwrap(),
            m.predict(&x, 4).unwrap()
        );
        assert_eq!(loaded.model.optimizer(), m.optimizer());
        assert_eq!(loaded.model.optimizer().unwrap().iterations(), 9);
        // Training on from the loaded copy matches training on from the original.
        let y = Tensor::new(&[6], vec![1., 1., 0., 0., 1., 0.]).unwrap();
        let options = FitOptions {
            epochs: 1,
            batch_size: 3,
            seed: Some(1),
            verbose: Verbosity::Silent,
            ..Default::default()
        };
        m.fit(&x, &y, &options).unwrap();
        loaded.model.fit(&x, &y, &options).unwrap();
        assert_eq!(loaded.model.get_weights(), m.get_weights());
    }

    #[test]
    fn save_writes_atomically_and_load_reads_it() {
        let (m, x) = trained();
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let path = dir.join("model.safetensors");
        m.save(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("model.safetensors")],
            "no temporary left"
        );
        let loaded = Model::load(&path).unwrap();
        let original = m;
        assert_eq!(
            loaded.predict(&x, 2).unwrap(),
            original.predict(&x, 2).unwrap()
        );
        let err = Model::load(dir.join("absent.safetensors"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("absent.safetensors"), "{err}");
    }

    /// A stored tensor: name, shape, values.
    type Stored = (String, Vec<usize>, Vec<f32>);
    /// An edit of every stored tensor.
    type Edit<'a> = &'a dyn Fn(&str, Vec<usize>, Vec<f32>) -> Stored;

    fn load_error(bytes: &[u8]) -> String {
        from_bytes(bytes, Path::new("bad.safetensors"))
            .err()
            .expect("must fail")
            .to_string()
    }

    #[test]
    fn corrupt_files_are_clear_errors() {
        let (m, _) = trained();
        let spec = spec_of(&m);
        let good = to_bytes(&m, &spec, 1).unwrap();
        for cut in [0, 4, 8, 20, good.len() / 2, good.len() - 1] {
            let e = load_error(&good[..cut]);
            assert!(e.starts_with("bad.safetensors: "), "{e}");
        }
        assert!(load_error(b"hello world, not a model").contains("not a valid model file"));
        // Other safetensors files: no metadata, wrong version.
        let plain = safetensors::serialize(Vec::<(String, TensorView)>::new(), None).unwrap();
        assert!(load_error(&plain).contains("no metadata"));
        let with = |key: &str, value: &str| {
            let mut meta = safetensors::SafeTensors::read_metadata(&good)
                .unwrap()
                .1
                .metadata()
                .clone()
                .unwrap();
            meta.insert(key.into(), value.into());
            let st = SafeTensors::deserialize(&good).unwrap();
            safetensors::serialize(st.tensors(), Some(meta)).unwrap()
        };
        assert!(load_error(&with(KEY_FORMAT, "2")).contains("format version 2 is not supported"));
        assert!(load_error(&with(KEY_EPOCHS, "many")).contains("not a number"));
        let e = load_error(&with(KEY_SPEC, "[model]\ninput_shape = [3]\n"));
        assert!(e.contains("missing field"), "{e}");
        // A spec whose layers disagree with the stored weights.
        let mut wider = spec.clone();
        wider.layers[0] = crate::nn::LayerConfig::Dense(crate::nn::DenseConfig {
            units: 5,
            activation: Activation::Tanh,
            use_bias: true,
            kernel_regularizer: None,
        })
        .into();
        let e = load_error(&with(KEY_SPEC, &wider.to_toml().unwrap()));
        assert!(e.contains("declares 32 parameters but stores 26"), "{e}");
        let mut huge = spec.clone();
        huge.layers[0] = crate::nn::LayerConfig::Dense(crate::nn::DenseConfig {
            units: usize::MAX / 2,
            activation: Activation::Tanh,
            use_bias: true,
            kernel_regularizer: None,
        })
        .into();
        assert!(!load_error(&with(KEY_SPEC, &huge.to_toml().unwrap())).is_empty());
    }

    #[test]
    fn shape_mismatches_and_bad_values_name_the_tensor() {
        let (m, _) = trained();
        let spec = spec_of(&m);
        let rebuild = |edit: Edit| {
            let good = to_bytes(&m, &spec, 1).unwrap();
            let meta = SafeTensors::read_metadata(&good)
                .unwrap()
                .1
                .metadata()
                .clone();
            let st = SafeTensors::deserialize(&good).unwrap();
            let edited: Vec<(String, Vec<usize>, Vec<u8>)> = st
                .tensors()
                .into_iter()
                .map(|(name, v)| {
                    let values = to_tensor(&v).unwrap().into_data();
                    let (n, s, d) = edit(&name, v.shape().to_vec(), values);
                    (n, s, d.iter().flat_map(|x| x.to_le_bytes()).collect())
                })
                .collect();
            let views: Vec<(String, TensorView)> = edited
                .iter()
                .map(|(n, s, d)| {
                    (
                        n.clone(),
                        TensorView::new(Dtype::F32, s.clone(), d).unwrap(),
                    )
                })
                .collect();
            safetensors::serialize(views, meta).unwrap()
        };
        let transposed = rebuild(&|n, s, d| {
            if n == "weight/dense/kernel" {
                (n.into(), vec![s[1], s[0]], d)
            } else {
                (n.into(), s, d)
            }
        });
        assert!(load_error(&transposed)
            .contains("weight 'dense/kernel' has shape [4, 3], the model needs [3, 4]"));
        let renamed = rebuild(&|n, s, d| (n.replace("dense_1/bias", "dense_9/bias"), s, d));
        assert!(load_error(&renamed).contains("weight 'dense_1/bias' is missing"));
        let nan = rebuild(&|n, s, mut d| {
            if n == "weight/dense/bias" {
                d[0] = f32::NAN;
            }
            (n.into(), s, d)
        });
        assert!(load_error(&nan).contains("tensor 'weight/dense/bias': holds NaN"));
        let bad_state = rebuild(&|n, s, d| {
            if n == "optimizer/m/0" {
                (n.into(), vec![s[0] * s[1]], d)
            } else {
                (n.into(), s, d)
            }
        });
        assert!(load_error(&bad_state)
            .contains("optimizer buffer 'm/0' has shape [12], parameter 0 is [3, 4]"));
        let stray = rebuild(&|n, s, d| (n.replace("optimizer/v/3", "extra/v/3"), s, d));
        assert!(load_error(&stray).contains("unexpected tensor 'extra/v/3'"));
    }
}
