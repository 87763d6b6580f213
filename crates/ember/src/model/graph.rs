//! The functional API (Keras's): inputs, layers called on symbolic tensors, and
//! `Model::new(inputs, outputs)`.
//!
//! ```
//! use ember::prelude::*;
//! let graph = Graph::with_seed(1);
//! let pixels = graph.input("pixels", &[784]).unwrap();
//! let h1 = graph.layer(Dense::new(32).activation(Activation::Relu)).call(&pixels).unwrap();
//! let h2 = graph.layer(Dense::new(32).activation(Activation::Relu)).call(&h1).unwrap();
//! let sum = graph.merge(Merge::Add {}, &[&h1, &h2]).unwrap();
//! let probs = graph.layer(Dense::new(10).activation(Activation::Softmax)).call(&sum).unwrap();
//! let model = Model::new(&[&pixels], &[&probs]).unwrap();
//! assert_eq!(model.predict(&Tensor::zeros(&[3, 784]), 32).unwrap().shape(), &[3, 10]);
//! assert!(model.summary().contains("Connected to"));
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use super::functional::{Call, Entry, InputSpec, KindCounts, Model, ModelKind, Operation, Source};
use crate::error::{Error, Result};
use crate::nn::{self, Layer, Merge};
use crate::tensor::random::Rng;

/// The layers and calls of a model under construction.
struct Builder {
    inputs: Vec<InputSpec>,
    layers: Vec<Entry>,
    /// The input shape each layer was built for (None until its first call).
    built_for: Vec<Option<Vec<usize>>>,
    calls: Vec<Call>,
    rng: Rng,
    /// Set once `Model::new` has taken the layers.
    taken: bool,
    /// The layers of each kind so far, for default names.
    kinds: KindCounts,
    /// Every input and layer name, for uniqueness.
    names: std::collections::HashSet<String>,
}

/// A model under construction: its inputs and the layers called on them. Cheap to clone
/// (the clones share the graph).
#[derive(Clone)]
pub struct Graph {
    inner: Rc<RefCell<Builder>>,
}

/// A value of the graph being built: a model input or a layer call's output, with the shape
/// of one sample.
#[derive(Clone)]
pub struct SymbolicTensor {
    graph: Graph,
    source: Source,
    shape: Vec<usize>,
}

impl std::fmt::Debug for SymbolicTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymbolicTensor")
            .field("source", &self.source)
            .field("shape", &self.shape)
            .finish()
    }
}

impl SymbolicTensor {
    /// Shape of one sample (without the batch axis).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
}

/// A layer added to a graph, which can be called on one symbolic tensor or several times on
/// different ones (a shared layer: one set of weights, gradients summed over its calls).
#[derive(Clone)]
pub struct GraphLayer {
    graph: Graph,
    index: usize,
}

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

impl Graph {
    /// An empty graph, seed 0.
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// An empty graph whose weight initialisation and shuffling derive from `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Graph {
            inner: Rc::new(RefCell::new(Builder {
                inputs: Vec::new(),
                layers: Vec::new(),
                built_for: Vec::new(),
                calls: Vec::new(),
                rng: Rng::seed(seed),
                taken: false,
                kinds: KindCounts::default(),
                names: std::collections::HashSet::new(),
            })),
        }
    }

    fn open(&self) -> Result<std::cell::RefMut<'_, Builder>> {
        let builder = self.inner.borrow_mut();
        if builder.taken {
            return Err(Error::invalid(
                "this graph has already been made into a model",
            ));
        }
        Ok(builder)
    }

    /// A model input (Keras `Input(shape, name)`), samples of `shape`.
    pub fn input(&self, name: &str, shape: &[usize]) -> Result<SymbolicTensor> {
        let mut b = self.open()?;
        check_name(&b, name)?;
        check_input_shape(name, shape)?;
        b.names.insert(name.to_string());
        b.inputs.push(InputSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
        });
        Ok(SymbolicTensor {
            graph: self.clone(),
            source: Source::Input(b.inputs.len() - 1),
            shape: shape.to_vec(),
        })
    }

    /// Adds a layer under Keras's default name ("dense", "dense_1", …); it is built on its
    /// first call.
    pub fn layer(&self, layer: impl Layer + 'static) -> GraphLayer {
        let name = match self.inner.try_borrow() {
            Ok(b) => b.kinds.next_name(layer.kind()),
            Err(_) => layer.kind().to_string(),
        };
        // A default name is unique, so this fails only on a spent graph; the layer's first
        // call reports that.
        self.add(name, Operation::Layer(Box::new(layer)))
            .unwrap_or(GraphLayer {
                graph: self.clone(),
                index: usize::MAX,
            })
    }

    /// Adds a layer under `name`, which must be unique in the model.
    pub fn named(&self, name: &str, layer: impl Layer + 'static) -> Result<GraphLayer> {
        self.add(name.to_string(), Operation::Layer(Box::new(layer)))
    }

    /// Adds a boxed layer under `name` (Keras's default name when None).
    pub fn add_boxed(&self, name: Option<&str>, layer: Box<dyn Layer>) -> Result<GraphLayer> {
        let name = match name {
            Some(n) => n.to_string(),
            None => self.open()?.kinds.next_name(layer.kind()),
        };
        self.add(name, Operation::Layer(layer))
    }

    /// Merges `inputs` (Keras `Add()([a, b])` and the like) under Keras's default name.
    pub fn merge(&self, merge: Merge, inputs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        let name = self.default_name(merge.kind())?;
        self.merge_named(&name, merge, inputs)
    }

    /// The name Keras would give the next layer of `kind` ("add", "add_1", …).
    pub fn default_name(&self, kind: &str) -> Result<String> {
        Ok(self.open()?.kinds.next_name(kind))
    }

    /// Merges `inputs` under `name`.
    pub fn merge_named(
        &self,
        name: &str,
        merge: Merge,
        inputs: &[&SymbolicTensor],
    ) -> Result<SymbolicTensor> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
        let output_shape = merge
            .output_shape(&shapes)
            .map_err(|e| Error::invalid(format!("layer '{name}': {}", e.detail())))?;
        let layer = self.add(name.to_string(), Operation::Merge(merge))?;
        self.push_call(layer.index, inputs, output_shape)
    }

    fn add(&self, name: String, op: Operation) -> Result<GraphLayer> {
        let mut b = self.open()?;
        check_name(&b, &name)?;
        b.names.insert(name.clone());
        b.kinds.add(op.kind());
        b.layers.push(Entry {
            name,
            op,
            trainable: true,
        });
        b.built_for.push(None);
        Ok(GraphLayer {
            graph: self.clone(),
            index: b.layers.len() - 1,
        })
    }

    fn push_call(
        &self,
        layer: usize,
        inputs: &[&SymbolicTensor],
        output_shape: Vec<usize>,
    ) -> Result<SymbolicTensor> {
        if let Some(stranger) = inputs
            .iter()
            .find(|t| !Rc::ptr_eq(&t.graph.inner, &self.inner))
        {
            return Err(Error::invalid(format!(
                "a tensor of shape {:?} belongs to another graph",
                stranger.shape
            )));
        }
        let mut b = self.open()?;
        b.calls.push(Call {
            layer,
            inputs: inputs.iter().map(|t| t.source).collect(),
            output_shape: output_shape.clone(),
        });
        Ok(SymbolicTensor {
            graph: self.clone(),
            source: Source::Call(b.calls.len() - 1),
            shape: output_shape,
        })
    }
}

/// A graph input's sample shape: non-empty, each size positive or [`ANY`](nn::ANY) (Keras's None),
/// and not too large.
pub(crate) fn check_input_shape(name: &str, shape: &[usize]) -> Result<()> {
    let fixed: Vec<usize> = shape.iter().map(|&d| d.max(1)).collect();
    let too_large = crate::tensor::checked_numel(&fixed).is_none_or(|n| n > nn::MAX_SAMPLE);
    if shape.is_empty() || too_large {
        return Err(Error::invalid(format!(
            "input '{name}' needs a non-empty shape of positive sizes (or 0 for any length, \
             Keras's None), got {shape:?}"
        )));
    }
    Ok(())
}

fn check_name(b: &Builder, name: &str) -> Result<()> {
    if name.is_empty() || b.names.contains(name) {
        return Err(Error::invalid(format!(
            "the name '{name}' is empty or already used in this model"
        )));
    }
    Ok(())
}

impl GraphLayer {
    /// Calls the layer on `x` (Keras `layer(x)`): builds it on the first call; later calls
    /// share its weights and need inputs of the same shape.
    pub fn call(&self, x: &SymbolicTensor) -> Result<SymbolicTensor> {
        self.call_with(x, None)
    }

    /// Calls the layer on `x` with a padding `mask` (Keras `layer(x, padding_mask=mask)`):
    /// for layers that [take one](crate::nn::Layer::takes_mask), the mask's samples being
    /// `x`'s without the features axis, 1 for tokens and 0 for padding.
    pub fn call_masked(&self, x: &SymbolicTensor, mask: &SymbolicTensor) -> Result<SymbolicTensor> {
        self.call_with(x, Some(mask))
    }

    fn call_with(
        &self,
        x: &SymbolicTensor,
        mask: Option<&SymbolicTensor>,
    ) -> Result<SymbolicTensor> {
        let output_shape = {
            let mut b = self.graph.open()?;
            let Builder {
                layers,
                built_for,
                calls,
                rng,
                ..
            } = &mut *b;
            let entry = &mut layers[self.index];
            let Operation::Layer(layer) = &mut entry.op else {
                return Err(Error::invalid(format!(
                    "'{}' is a merge layer: use Graph::merge",
                    entry.name
                )));
            };
            nn::check_call(layer.kind(), &x.shape, mask.map(|m| m.shape()))
                .map_err(|e| Error::invalid(format!("layer '{}': {}", entry.name, e.detail())))?;
            match &built_for[self.index] {
                Some(shape) if *shape != x.shape => {
                    return Err(Error::invalid(format!(
                        "layer '{}' was built for inputs of {shape:?}, called on {:?}",
                        entry.name, x.shape
                    )))
                }
                Some(_) => calls
                    .iter()
                    .find(|c| c.layer == self.index)
                    .map(|c| c.output_shape.clone())
                    .ok_or_else(|| Error::invalid("internal: a built layer without a call"))?,
                None => {
                    let mut init_rng = rng.fork();
                    let shape = nn::build_checked(layer.as_mut(), &x.shape, &mut init_rng)
                        .map_err(|e| {
                            Error::invalid(format!("layer '{}': {}", entry.name, e.detail()))
                        })?;
                    built_for[self.index] = Some(x.shape.clone());
                    shape
                }
            }
        };
        match mask {
            Some(mask) => self.graph.push_call(self.index, &[x, mask], output_shape),
            None => self.graph.push_call(self.index, &[x], output_shape),
        }
    }

    /// The layer's name in the model.
    pub fn name(&self) -> String {
        self.graph.inner.borrow().layers[self.index].name.clone()
    }
}

impl Model {
    /// The model from `inputs` to `outputs` (Keras `Model(inputs, outputs)`): every layer
    /// call the outputs depend on, each of which must trace back to the listed inputs.
    pub fn new(inputs: &[&SymbolicTensor], outputs: &[&SymbolicTensor]) -> Result<Model> {
        let Some(first) = inputs.first() else {
            return Err(Error::invalid("a model needs at least one input"));
        };
        if outputs.is_empty() {
            return Err(Error::invalid("a model needs at least one output"));
        }
        let graph = first.graph.clone();
        let mut b = graph.open()?;
        for t in inputs.iter().chain(outputs) {
            if !Rc::ptr_eq(&t.graph.inner, &graph.inner) {
                return Err(Error::invalid(
                    "the inputs and outputs belong to different graphs",
                ));
            }
        }
        let input_ids: Vec<usize> = inputs
            .iter()
            .map(|t| match t.source {
                Source::Input(i) => Ok(i),
                Source::Call(_) => Err(Error::invalid(
                    "a model's inputs must be graph inputs (Graph::input)",
                )),
            })
            .collect::<Result<_>>()?;
        // Keep the calls the outputs need, in their order of creation.
        let mut needed = vec![false; b.calls.len()];
        let mut stack: Vec<Source> = outputs.iter().map(|t| t.source).collect();
        while let Some(source) = stack.pop() {
            match source {
                Source::Input(i) if !input_ids.contains(&i) => {
                    return Err(Error::invalid(format!(
                        "the outputs depend on input '{}', which is not among the model's inputs",
                        b.inputs[i].name
                    )))
                }
                Source::Input(_) => {}
                Source::Call(c) if !needed[c] => {
                    needed[c] = true;
                    stack.extend(b.calls[c].inputs.iter().copied());
                }
                Source::Call(_) => {}
            }
        }
        let mut layer_map = vec![None; b.layers.len()];
        let mut call_map = vec![None; b.calls.len()];
        let mut layers = Vec::new();
        let mut calls = Vec::new();
        let old_layers: Vec<Option<Entry>> = std::mem::take(&mut b.layers)
            .into_iter()
            .map(Some)
            .collect();
        let mut old_layers = old_layers;
        let remap = |s: Source, call_map: &[Option<usize>]| match s {
            Source::Input(i) => Source::Input(
                input_ids
                    .iter()
                    .position(|&j| j == i)
                    .expect("checked above"),
            ),
            Source::Call(c) => Source::Call(call_map[c].expect("calls come after their inputs")),
        };
        for (c, call) in b.calls.iter().enumerate() {
            if !needed[c] {
                continue;
            }
            let layer = *layer_map[call.layer].get_or_insert_with(|| {
                layers.push(
                    old_layers[call.layer]
                        .take()
                        .expect("each layer moved once"),
                );
                layers.len() - 1
            });
            call_map[c] = Some(calls.len());
            calls.push(Call {
                layer,
                inputs: call.inputs.iter().map(|&s| remap(s, &call_map)).collect(),
                output_shape: call.output_shape.clone(),
            });
        }
        let model_inputs = input_ids.iter().map(|&i| b.inputs[i].clone()).collect();
        let outputs = outputs.iter().map(|t| remap(t.source, &call_map)).collect();
        let rng = b.rng.clone();
        b.taken = true;
        Ok(Model {
            kind: ModelKind::Functional,
            inputs: model_inputs,
            layers,
            calls,
            outputs,
            rng,
            compiled: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::tensor::random::{uniform_tensor, Rng};

    fn random(shape: &[usize], seed: u64) -> Tensor {
        uniform_tensor(shape, -1.0, 1.0, &mut Rng::seed(seed))
    }

    /// Compares every weight's gradient from `loss_gradients` with central differences of
    /// the loss `evaluate` reports.
    fn check_model_gradients(model: &mut Model, xs: &[&Tensor], ys: &[&Tensor]) {
        let (loss, analytic) = model.loss_gradients(xs, ys).unwrap();
        let reported = model.evaluate_many(xs, ys, 1000).unwrap().loss;
        assert!(
            (loss as f64 - reported).abs() < 1e-5,
            "{loss} vs {reported}"
        );
        let names: Vec<String> = model.weights().into_iter().map(|(n, _)| n).collect();
        let h = 5e-3f32;
        for (name, grad) in names.iter().zip(&analytic) {
            let original = model
                .weights()
                .into_iter()
                .find(|(n, _)| n == name)
                .unwrap()
                .1
                .clone();
            for i in 0..original.len() {
                let mut at = |delta: f32| {
                    let mut values = original.data().to_vec();
                    values[i] += delta;
                    let w = Tensor::new(original.shape(), values).unwrap();
                    model.set_weight(name, w).unwrap();
                    model.evaluate_many(xs, ys, 1000).unwrap().loss
                };
                let numeric = (at(h) - at(-h)) / (2.0 * h as f64);
                let got = grad.data()[i] as f64;
                assert!(
                    (numeric - got).abs() <= 2e-3 + 1e-2 * numeric.abs(),
                    "{name}[{i}]: analytic {got}, numeric {numeric}"
                );
            }
            model.set_weight(name, original).unwrap();
        }
    }

    fn labels(n: usize, classes: usize) -> Tensor {
        Tensor::new(&[n], (0..n).map(|i| (i % classes) as f32).collect()).unwrap()
    }

    /// x → h1 → h2, out = softmax(Dense(h1 + h2)): a residual block.
    fn residual(seed: u64) -> Model {
        let g = Graph::with_seed(seed);
        let x = g.input("x", &[4]).unwrap();
        let h1 = g
            .named("h1", Dense::new(5).activation(Activation::Tanh))
            .unwrap()
            .call(&x)
            .unwrap();
        let h2 = g
            .named("h2", Dense::new(5).activation(Activation::Tanh))
            .unwrap()
            .call(&h1)
            .unwrap();
        let sum = g.merge(Merge::Add {}, &[&h1, &h2]).unwrap();
        let out = g
            .layer(Dense::new(3).activation(Activation::Softmax))
            .call(&sum)
            .unwrap();
        let mut model = Model::new(&[&x], &[&out]).unwrap();
        model
            .compile(
                Adam::new(0.01),
                Loss::SparseCategoricalCrossentropy,
                &[Metric::Accuracy],
            )
            .unwrap();
        model
    }

    /// Two inputs through one shared tower, joined, and a sigmoid.
    fn siamese(merge: Merge) -> Model {
        let g = Graph::with_seed(2);
        let a = g.input("a", &[4]).unwrap();
        let b = g.input("b", &[4]).unwrap();
        let tower = g
            .named("tower", Dense::new(3).activation(Activation::Tanh))
            .unwrap();
        let (ta, tb) = (tower.call(&a).unwrap(), tower.call(&b).unwrap());
        let joined = g.merge(merge, &[&ta, &tb]).unwrap();
        let out = g
            .layer(Dense::new(1).activation(Activation::Sigmoid))
            .call(&joined)
            .unwrap();
        let mut model = Model::new(&[&a, &b], &[&out]).unwrap();
        model
            .compile(Sgd::new(0.1), Loss::BinaryCrossentropy, &[Metric::Accuracy])
            .unwrap();
        model
    }

    #[test]
    fn a_layer_that_cannot_be_built_is_named_and_the_kind_said_once() {
        let g = Graph::new();
        let x = g.input("x", &[784]).unwrap();
        let e = g
            .named("huge", Dense::new(1 << 31))
            .unwrap()
            .call(&x)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid argument: layer 'huge': Dense would have "),
            "{e}"
        );
        assert_eq!(e.matches("invalid argument").count(), 1, "{e}");
    }

    #[test]
    fn a_residual_block_passes_the_gradient_check() {
        let mut model = residual(1);
        let x = random(&[6, 4], 7);
        check_model_gradients(&mut model, &[&x], &[&labels(6, 3)]);
    }

    #[test]
    fn a_shared_layer_sums_its_gradients_and_passes_the_gradient_check() {
        let (a, b) = (random(&[5, 4], 3), random(&[5, 4], 4));
        let y = Tensor::new(&[5, 1], vec![0.0, 1.0, 1.0, 0.0, 1.0]).unwrap();
        for merge in [
            Merge::Concatenate {},
            Merge::Multiply {},
            Merge::Dot {},
            Merge::Add {},
        ] {
            let mut model = siamese(merge);
            // One tower, counted once: 4·3 + 3 weights, then the head.
            let head = model.output_shapes()[0][0]
                + match merge {
                    Merge::Concatenate {} => 6,
                    Merge::Dot {} => 1,
                    _ => 3,
                };
            assert_eq!(model.count_params(), 15 + head, "{merge:?}");
            check_model_gradients(&mut model, &[&a, &b], &[&y]);
        }
        // The tower's gradient is the sum of its two calls': with b = a the calls agree, and
        // the gradient is twice what one call gives.
        let mut model = siamese(Merge::Add {});
        let (_, both) = model.loss_gradients(&[&a, &a], &[&y]).unwrap();
        let summary = model.summary();
        assert!(summary.contains("tower[0][0], tower[1][0]"), "{summary}");
        assert!(summary.contains("a[0][0], b[0][0]"), "{summary}");
        assert!(both[0].data().iter().any(|&g| g != 0.0));
    }

    #[test]
    fn a_frozen_layer_is_unchanged_by_fit_and_counted_apart() {
        let mut model = residual(3);
        let before = model.get_weights();
        model.set_trainable("h1", false).unwrap();
        assert!(!model.is_trainable("h1").unwrap());
        assert_eq!(
            model.count_trainable_params(),
            model.count_params() - (4 * 5 + 5)
        );
        assert!(model
            .summary()
            .contains("Non-trainable params: 25 (100.00 B)"));
        let x = random(&[40, 4], 9);
        let options = FitOptions {
            epochs: 3,
            batch_size: 8,
            verbose: Verbosity::Silent,
            ..FitOptions::default()
        };
        model.fit(&x, &labels(40, 3), &options).unwrap();
        let after = model.get_weights();
        let names: Vec<String> = model.weights().into_iter().map(|(n, _)| n).collect();
        for ((name, a), b) in names.iter().zip(&after).zip(&before) {
            if name.starts_with("h1/") {
                assert_eq!(a, b, "{name} is frozen");
            } else {
                assert_ne!(a, b, "{name} trains");
            }
        }
        assert!(model.set_trainable("nope", false).is_err());
    }

    #[test]
    fn one_model_predicts_from_eight_threads_exactly_as_from_one() {
        let mut conv = Sequential::with_seed(&[8, 8, 1], 5);
        conv.add(Conv2D::new(4, (3, 3)).activation(Activation::Relu))
            .unwrap();
        conv.add(MaxPooling2D::new((2, 2))).unwrap();
        conv.add(Flatten).unwrap();
        conv.add(Dense::new(3).activation(Activation::Softmax))
            .unwrap();
        let conv: Model = conv.into_model();
        let graph = residual(4);
        let images = random(&[37, 8, 8, 1], 11);
        let rows = random(&[37, 4], 12);
        let alone = (
            conv.predict(&images, 5).unwrap(),
            graph.predict(&rows, 5).unwrap(),
        );
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let (conv, graph, images, rows) = (&conv, &graph, &images, &rows);
                    s.spawn(move || {
                        // Different batch sizes per thread: the same rows give the same outputs.
                        let batch = 1 + t * 5;
                        (
                            conv.predict(images, batch).unwrap(),
                            graph.predict(rows, batch).unwrap(),
                        )
                    })
                })
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap(), alone);
            }
        });
    }

    #[test]
    fn a_graph_saves_and_loads_with_identical_predictions() {
        let mut model = siamese(Merge::Concatenate {});
        model.set_trainable("tower", false).unwrap();
        let (a, b) = (random(&[20, 4], 5), random(&[20, 4], 6));
        let y = Tensor::new(&[20, 1], (0..20).map(|i| (i % 2) as f32).collect()).unwrap();
        let options = FitOptions {
            epochs: 2,
            batch_size: 4,
            verbose: Verbosity::Silent,
            ..FitOptions::default()
        };
        model.fit_many(&[&a, &b], &[&y], &options, &mut []).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("siamese.safetensors");
        model.save(&path).unwrap_or_else(|e| panic!("{e}"));
        let loaded = Model::load(&path).unwrap();
        assert_eq!(
            loaded.predict_many(&[&a, &b], 7).unwrap(),
            model.predict_many(&[&a, &b], 7).unwrap()
        );
        assert_eq!(loaded.summary(), model.summary());
        assert!(!loaded.is_trainable("tower").unwrap());
        assert_eq!(loaded.inputs(), model.inputs());
    }

    #[test]
    fn misuse_is_a_clear_error() {
        let g = Graph::new();
        let x = g.input("x", &[4]).unwrap();
        assert!(g.input("x", &[2]).is_err(), "names are unique");
        let dense = g.layer(Dense::new(3));
        let y = dense.call(&x).unwrap();
        let other = g.input("other", &[5]).unwrap();
        let err = dense.call(&other).unwrap_err().to_string();
        assert!(err.contains("built for inputs of [4]"), "{err}");
        let err = g.merge(Merge::Add {}, &[&x, &y]).unwrap_err().to_string();
        assert!(err.contains("one shape"), "{err}");
        let stranger = Graph::new().input("s", &[3]).unwrap();
        assert!(g.merge(Merge::Add {}, &[&y, &stranger]).is_err());
        let err = Model::new(
            &[&x],
            &[&g.merge(Merge::Concatenate {}, &[&y, &other]).unwrap()],
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("input 'other'"), "{err}");
        let model = Model::new(&[&x], &[&y]).unwrap();
        assert!(
            g.layer(Dense::new(2)).call(&x).is_err(),
            "the graph is spent"
        );
        let err = model.predict_many(&[], 4).unwrap_err().to_string();
        assert!(err.contains("takes 1 inputs"), "{err}");
        assert!(model.layer("dense").is_ok());
        assert!(model
            .layer("nope")
            .err()
            .unwrap()
            .to_string()
            .contains("dense"));
    }

    /// Token ids and a padding mask, both of any length: an embedding, a transformer block
    /// reading the mask, and a tag per position.
    fn tagger(seed: u64) -> Model {
        use crate::nn::{Embedding, TransformerEncoder, ANY};
        let g = Graph::with_seed(seed);
        let ids = g.input("ids", &[ANY]).unwrap();
        let mask = g.input("mask", &[ANY]).unwrap();
        let embedded = g
            .named("embed", Embedding::new(6, 8))
            .unwrap()
            .call(&ids)
            .unwrap();
        let h = g
            .named("block", TransformerEncoder::new(2, 12).dropout(0.0))
            .unwrap()
            .call_masked(&embedded, &mask)
            .unwrap();
        let tags = g
            .named("tags", Dense::new(3).activation(Activation::Tanh))
            .unwrap()
            .call(&h)
            .unwrap();
        let mut model = Model::new(&[&ids, &mask], &[&embedded, &tags]).unwrap();
        model
            .compile(Sgd::new(0.1), Loss::MeanSquaredError, &[])
            .unwrap();
        model
    }

    /// A batch of `n` sequences of `len` token ids, the last `pad` of each padding (id 0,
    /// mask 0).
    fn sequences(n: usize, len: usize, pad: usize) -> (Tensor, Tensor) {
        let ids = (0..n * len).map(|i| ((i * 7 + 3) % 5 + 1) as f32);
        let ids: Vec<f32> = ids
            .enumerate()
            .map(|(i, id)| if i % len >= len - pad { 0.0 } else { id })
            .collect();
        let mask = (0..n * len).map(|i| f32::from(u8::from(i % len < len - pad)));
        (
            Tensor::new(&[n, len], ids).unwrap(),
            Tensor::new(&[n, len], mask.collect()).unwrap(),
        )
    }

    #[test]
    fn a_masked_transformer_on_sequences_of_any_length_passes_the_gradient_check() {
        let mut model = tagger(3);
        // Token vectors of unit scale, so that the difference step is small beside them
        // (the block's layer norms divide by their spread).
        model
            .set_weight("embed/embeddings", random(&[6, 8], 10))
            .unwrap();
        let (ids, mask) = sequences(3, 4, 1);
        let targets = random(&[3, 4, 8], 8);
        let tags = random(&[3, 4, 3], 9);
        check_model_gradients(&mut model, &[&ids, &mask], &[&targets, &tags]);
    }

    #[test]
    fn padding_under_the_mask_leaves_the_real_positions_alone() {
        let model = tagger(4);
        let (ids, mask) = sequences(2, 3, 0);
        let (padded, padded_mask) = {
            let (mut ids5, mut mask5) = (Vec::new(), Vec::new());
            for row in 0..2 {
                ids5.extend_from_slice(&ids.data()[row * 3..row * 3 + 3]);
                ids5.extend([0.0, 0.0]);
                mask5.extend([1.0, 1.0, 1.0, 0.0, 0.0]);
            }
            (
                Tensor::new(&[2, 5], ids5).unwrap(),
                Tensor::new(&[2, 5], mask5).unwrap(),
            )
        };
        let short = model.predict_outputs(&[&ids, &mask], &["tags"], 8).unwrap();
        let long = model
            .predict_outputs(&[&padded, &padded_mask], &["tags"], 1)
            .unwrap();
        assert_eq!(short[0].shape(), &[2, 3, 3]);
        assert_eq!(long[0].shape(), &[2, 5, 3]);
        for row in 0..2 {
            for v in 0..9 {
                let (a, b) = (short[0].data()[row * 9 + v], long[0].data()[row * 15 + v]);
                assert!((a - b).abs() < 1e-6, "row {row}, value {v}: {a} vs {b}");
            }
        }
        // Without the mask the padding is attended to, and the real positions change.
        let ones = Tensor::new(&[2, 5], vec![1.0; 10]).unwrap();
        let unmasked = model
            .predict_outputs(&[&padded, &ones], &["tags"], 8)
            .unwrap();
        let moved = (0..9).any(|v| (unmasked[0].data()[v] - long[0].data()[v]).abs() > 1e-4);
        assert!(moved, "the mask made no difference");
        // Only the layers an output needs run: the embedding alone is the table's rows.
        let embedded = model
            .predict_outputs(&[&ids, &mask], &["embed"], 8)
            .unwrap();
        let table = model.layer("embed").unwrap().weights()[0].value.clone();
        let first = ids.data()[0] as usize;
        assert_eq!(
            &embedded[0].data()[..8],
            &table.data()[first * 8..first * 8 + 8]
        );
        let err = model
            .predict_outputs(&[&ids, &mask], &["block"], 8)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no output 'block' (outputs: embed, tags)"),
            "{err}"
        );
    }

    #[test]
    fn sequence_graphs_summarise_save_and_load() {
        let mut model = tagger(5);
        let summary = model.summary();
        assert!(summary.contains("(None, None, 8)"), "{summary}");
        assert!(summary.contains("ids (InputLayer)"), "{summary}");
        let block = summary.lines().find(|l| l.contains("block")).unwrap();
        assert!(block.contains("embed") && block.contains("mask"), "{block}");
        let (ids, mask) = sequences(6, 5, 2);
        let targets = (random(&[6, 5, 8], 1), random(&[6, 5, 3], 2));
        let options = FitOptions {
            epochs: 2,
            batch_size: 4,
            verbose: Verbosity::Silent,
            ..FitOptions::default()
        };
        let before = model.layer("block").unwrap().weights()[0].value.clone();
        // Keras refuses class weights for a model of several outputs: so does fit.
        let weighted = FitOptions {
            class_weight: Some(vec![1.0, 2.0, 3.0]),
            ..options.clone()
        };
        let err = model
            .fit_many(
                &[&ids, &mask],
                &[&targets.0, &targets.1],
                &weighted,
                &mut [],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("one output"), "{err}");
        model
            .fit_many(&[&ids, &mask], &[&targets.0, &targets.1], &options, &mut [])
            .unwrap();
        assert_ne!(model.layer("block").unwrap().weights()[0].value, &before);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tagger.safetensors");
        model.save(&path).unwrap_or_else(|e| panic!("{e}"));
        let loaded = Model::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            loaded.predict_many(&[&ids, &mask], 4).unwrap(),
            model.predict_many(&[&ids, &mask], 4).unwrap()
        );
        assert_eq!(loaded.summary(), model.summary());
    }

    #[test]
    fn sequence_misuse_is_a_clear_error() {
        use crate::nn::{TransformerEncoder, ANY};
        let g = Graph::new();
        let x = g.input("x", &[ANY, 8]).unwrap();
        let err = g.layer(Flatten).call(&x).unwrap_err().to_string();
        assert!(
            err.contains("'flatten'") && err.contains("fixed sizes") && err.contains("(None, 8)"),
            "{err}"
        );
        let mask = g.input("mask", &[ANY]).unwrap();
        let err = g
            .layer(Dense::new(2))
            .call_masked(&x, &mask)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Dense takes one input"), "{err}");
        let wrong = g.input("wrong", &[4]).unwrap();
        let err = g
            .layer(TransformerEncoder::new(2, 4))
            .call_masked(&x, &wrong)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("padding mask") && err.contains("(None)"),
            "{err}"
        );
        let model = tagger(1);
        let (ids, _) = sequences(2, 3, 0);
        let short_mask = Tensor::new(&[2, 2], vec![1.0; 4]).unwrap();
        assert!(model.predict_many(&[&ids, &short_mask], 8).is_err());
        let empty = Tensor::zeros(&[2, 0]);
        let err = model
            .predict_many(&[&empty, &empty], 8)
            .unwrap_err()
            .to_string();
        assert!(err.contains("(batch, any)"), "{err}");
    }
}
