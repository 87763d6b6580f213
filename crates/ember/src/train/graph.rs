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

use super::model::{default_name, Call, Entry, InputSpec, Model, ModelKind, Operation, Source};
use crate::error::{Error, Result};
use crate::nn::{Layer, Merge};
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
        if shape.is_empty() || shape.contains(&0) {
            return Err(Error::invalid(format!(
                "input '{name}' needs a non-empty shape of positive sizes, got {shape:?}"
            )));
        }
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
            Ok(b) => default_name(&b.layers, layer.kind()),
            Err(_) => layer.kind().to_string(),
        };
        self.add(name, Operation::Layer(Box::new(layer)))
            .expect("a default name is unique")
    }

    /// Adds a layer under `name`, which must be unique in the model.
    pub fn named(&self, name: &str, layer: impl Layer + 'static) -> Result<GraphLayer> {
        self.add(name.to_string(), Operation::Layer(Box::new(layer)))
    }

    /// Adds a boxed layer under `name` (Keras's default name when None).
    pub fn add_boxed(&self, name: Option<&str>, layer: Box<dyn Layer>) -> Result<GraphLayer> {
        let name = match name {
            Some(n) => n.to_string(),
            None => default_name(&self.open()?.layers, layer.kind()),
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
        Ok(default_name(&self.open()?.layers, kind))
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
            .map_err(|e| Error::invalid(format!("layer '{name}': {e}")))?;
        let layer = self.add(name.to_string(), Operation::Merge(merge))?;
        self.push_call(layer.index, inputs, output_shape)
    }

    fn add(&self, name: String, op: Operation) -> Result<GraphLayer> {
        let mut b = self.open()?;
        check_name(&b, &name)?;
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

fn check_name(b: &Builder, name: &str) -> Result<()> {
    let taken = b.inputs.iter().any(|i| i.name == name) || b.layers.iter().any(|e| e.name == name);
    if name.is_empty() || taken {
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
                    let shape = layer
                        .build(&x.shape, &mut init_rng)
                        .map_err(|e| Error::invalid(format!("layer '{}': {e}", entry.name)))?;
                    built_for[self.index] = Some(x.shape.clone());
                    shape
                }
            }
        };
        self.graph.push_call(self.index, &[x], output_shape)
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
