//! `Model`: a graph of layer calls from named inputs to outputs (Keras's functional model),
//! with its weights, compile step and weight access. `Sequential` is the special case of a
//! straight stack.

use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::metrics::{AccuracyKind, Metric};
use crate::nn::{self, Layer, LayerConfig, Merge, WeightRef};
use crate::optim::{GradientTransform, Optimizer};
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// What a layer of the graph computes: a layer with one input, or a merge of several.
pub(crate) enum Operation {
    Layer(Box<dyn Layer>),
    Merge(Merge),
}

impl Operation {
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::Layer(layer) => layer.kind(),
            Operation::Merge(merge) => merge.kind(),
        }
    }

    pub fn weights(&self) -> Vec<WeightRef<'_>> {
        match self {
            Operation::Layer(layer) => layer.weights(),
            Operation::Merge(_) => Vec::new(),
        }
    }

    fn weights_mut(&mut self) -> Vec<&mut Tensor> {
        match self {
            Operation::Layer(layer) => layer.weights_mut(),
            Operation::Merge(_) => Vec::new(),
        }
    }
}

/// A layer of the model, with the name Keras would give it ("dense", "dense_1", …), and
/// whether `fit` updates its weights.
pub(crate) struct Entry {
    pub name: String,
    pub op: Operation,
    pub trainable: bool,
}

/// Where a value of the graph comes from: a model input, or the output of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Input(usize),
    Call(usize),
}

/// One call of a layer on the outputs of earlier calls (a layer called twice, with its
/// weights shared, has two calls).
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub layer: usize,
    pub inputs: Vec<Source>,
    /// Shape of one output sample.
    pub output_shape: Vec<usize>,
}

/// A named model input and the shape of one sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

/// What `compile` fixed: how the model learns and what it reports.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    pub optimizer: Optimizer,
    pub loss: Loss,
    pub accuracy: Option<AccuracyKind>,
    /// What a step's gradients go through before the update, after the caller's own
    /// (all-reduce, privacy noise): the optimizer's Keras clipping comes last.
    pub transforms: Vec<Box<dyn GradientTransform>>,
    /// Differentially private training's settings and ledger (`Model::make_private`).
    pub privacy: Option<crate::privacy::Privacy>,
}

/// A model: layers called on inputs and on each other's outputs, from `inputs` to `outputs`
/// (Keras `Model(inputs, outputs)`); built with [`crate::Graph`] or as a [`crate::Sequential`].
/// Inference (`predict`, `evaluate`) takes `&self`, records nothing, and may run from many
/// threads at once.
pub struct Model {
    pub(crate) kind: ModelKind,
    pub(crate) inputs: Vec<InputSpec>,
    pub(crate) layers: Vec<Entry>,
    /// Calls in an order where every call comes after the calls it reads.
    pub(crate) calls: Vec<Call>,
    pub(crate) outputs: Vec<Source>,
    pub(crate) rng: Rng,
    pub(crate) compiled: Option<Compiled>,
}

/// Whether the model was built as a straight stack (Keras prints it as "sequential").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModelKind {
    Sequential,
    Functional,
}

/// Each layer's weights moved onto a tape for one step.
pub(crate) type StepWeights = Vec<Vec<Var>>;

impl Model {
    /// Fixes the optimizer, the loss and the metrics (Keras `compile`). With several
    /// outputs, the loss applies to each and the training loss is their sum.
    pub fn compile(
        &mut self,
        optimizer: impl Into<Optimizer>,
        loss: Loss,
        metrics: &[Metric],
    ) -> Result<()> {
        let optimizer = optimizer.into();
        optimizer.validate().map_err(Error::InvalidArgument)?;
        if self.layers.is_empty() {
            return Err(Error::invalid("cannot compile a model without layers"));
        }
        let outputs = self.output_shape().last().copied().unwrap_or(1);
        let accuracy = metrics
            .contains(&Metric::Accuracy)
            .then(|| loss.accuracy_kind(outputs));
        self.compiled = Some(Compiled {
            optimizer,
            loss,
            accuracy,
            transforms: Vec::new(),
            privacy: None,
        });
        Ok(())
    }

    /// Adds a stage between back-propagation and the optimizer's update: each training
    /// step's gradients go through the transforms in the order they were added, then
    /// through the optimizer's own clipping (`clipnorm`, `global_clipnorm`, `clipvalue`).
    /// Call after `compile`; compiling again removes them.
    pub fn add_gradient_transform(&mut self, transform: Box<dyn GradientTransform>) -> Result<()> {
        self.compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("call compile() before add_gradient_transform()"))?
            .transforms
            .push(transform);
        Ok(())
    }

    /// The model's inputs, in the order `predict` and `fit` take them.
    pub fn inputs(&self) -> &[InputSpec] {
        &self.inputs
    }

    /// Shape of one sample of the first input.
    pub fn input_shape(&self) -> &[usize] {
        self.inputs.first().map_or(&[], |i| &i.shape)
    }

    /// Shape of one sample of the first output.
    pub fn output_shape(&self) -> &[usize] {
        self.outputs
            .first()
            .map_or(&[], |&source| self.shape_of(source))
    }

    /// Shapes of one sample of each output.
    pub fn output_shapes(&self) -> Vec<&[usize]> {
        self.outputs.iter().map(|&s| self.shape_of(s)).collect()
    }

    pub(crate) fn shape_of(&self, source: Source) -> &[usize] {
        match source {
            Source::Input(i) => &self.inputs[i].shape,
            Source::Call(c) => &self.calls[c].output_shape,
        }
    }

    /// Whether the model is a straight stack: one input, each layer feeding the next.
    pub fn is_sequential(&self) -> bool {
        self.kind == ModelKind::Sequential
    }

    /// The layers, in order, with their names.
    pub fn layers(&self) -> impl Iterator<Item = (&str, &dyn Layer)> {
        self.layers.iter().filter_map(|e| match &e.op {
            Operation::Layer(layer) => Some((e.name.as_str(), layer.as_ref())),
            Operation::Merge(_) => None,
        })
    }

    /// The layer named `name` (Keras `model.get_layer(name)`); merge layers have no
    /// [`Layer`] of their own and are not found.
    pub fn layer(&self, name: &str) -> Result<&dyn Layer> {
        match self.layers.iter().find(|e| e.name == name).map(|e| &e.op) {
            Some(Operation::Layer(layer)) => Ok(layer.as_ref()),
            Some(Operation::Merge(_)) => Err(Error::invalid(format!(
                "layer '{name}' is a merge layer, with no weights"
            ))),
            None => Err(self.no_layer(name)),
        }
    }

    /// The layer named `name`, mutably: to set its weights, say (loading pretrained ones).
    pub fn layer_mut(&mut self, name: &str) -> Result<&mut dyn Layer> {
        let error = self.no_layer(name);
        match self
            .layers
            .iter_mut()
            .find(|e| e.name == name)
            .map(|e| &mut e.op)
        {
            Some(Operation::Layer(layer)) => Ok(layer.as_mut()),
            Some(Operation::Merge(_)) => Err(Error::invalid(format!(
                "layer '{name}' is a merge layer, with no weights"
            ))),
            None => Err(error),
        }
    }

    pub(crate) fn no_layer(&self, name: &str) -> Error {
        let names: Vec<&str> = self.layers.iter().map(|e| e.name.as_str()).collect();
        Error::invalid(format!(
            "the model has no layer named '{name}' (it has {})",
            names.join(", ")
        ))
    }

    /// Freezes (`false`) or unfreezes a layer: `fit` leaves a frozen layer's weights as
    /// they are, and a frozen batch normalization uses its moving averages (as in Keras).
    pub fn set_trainable(&mut self, name: &str, trainable: bool) -> Result<()> {
        let error = self.no_layer(name);
        let entry = self
            .layers
            .iter_mut()
            .find(|e| e.name == name)
            .ok_or(error)?;
        entry.trainable = trainable;
        Ok(())
    }

    /// Whether `fit` updates the layer named `name`.
    pub fn is_trainable(&self, name: &str) -> Result<bool> {
        self.layers
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.trainable)
            .ok_or_else(|| self.no_layer(name))
    }

    /// Each layer's name, configuration (None for a merge) and whether it trains, in order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Option<LayerConfig>, bool)> {
        self.layers.iter().map(|e| {
            let config = match &e.op {
                Operation::Layer(layer) => Some(layer.config()),
                Operation::Merge(_) => None,
            };
            (e.name.as_str(), config, e.trainable)
        })
    }

    /// The name of each call's output: the layer's name for its first call, `layer#k` for
    /// its k-th later one.
    fn call_names(&self) -> Vec<String> {
        let mut seen = vec![0; self.layers.len()];
        self.calls
            .iter()
            .map(|c| {
                let k = seen[c.layer];
                seen[c.layer] += 1;
                match k {
                    0 => self.layers[c.layer].name.clone(),
                    k => format!("{}#{k}", self.layers[c.layer].name),
                }
            })
            .collect()
    }

    fn source_names(&self, sources: &[Source], calls: &[String]) -> Vec<String> {
        sources
            .iter()
            .map(|&s| match s {
                Source::Input(i) => self.inputs[i].name.clone(),
                Source::Call(c) => calls[c].clone(),
            })
            .collect()
    }

    /// The names of the values the model outputs.
    pub fn output_names(&self) -> Vec<String> {
        self.source_names(&self.outputs, &self.call_names())
    }

    /// Every call in order, as a model file lists it.
    pub(crate) fn call_list(&self) -> Vec<CallInfo> {
        let names = self.call_names();
        let mut seen = vec![false; self.layers.len()];
        self.calls
            .iter()
            .enumerate()
            .map(|(c, call)| {
                let entry = &self.layers[call.layer];
                let first = !std::mem::replace(&mut seen[call.layer], true);
                let (config, merge) = match &entry.op {
                    Operation::Layer(layer) => (Some(layer.config()), None),
                    Operation::Merge(merge) => (None, Some(*merge)),
                };
                CallInfo {
                    name: names[c].clone(),
                    layer: entry.name.clone(),
                    first,
                    config,
                    merge,
                    inputs: self.source_names(&call.inputs, &names),
                    trainable: entry.trainable,
                }
            })
            .collect()
    }

    /// Number of scalars in every weight, trainable or not (Keras's "Total params").
    pub fn count_params(&self) -> usize {
        self.weights().iter().map(|(_, t)| t.len()).sum()
    }

    /// Number of scalars `fit` updates: neither moving averages nor frozen layers.
    pub fn count_trainable_params(&self) -> usize {
        self.layers
            .iter()
            .filter(|e| e.trainable)
            .flat_map(|e| e.op.weights())
            .filter(|w| w.trainable)
            .map(|w| w.value.len())
            .sum()
    }

    /// Every weight as ("layer/param", tensor), in layer order, non-trainable ones
    /// (moving averages) included. This is also the order of optimizer slots.
    pub fn weights(&self) -> Vec<(String, &Tensor)> {
        self.layers
            .iter()
            .flat_map(|e| {
                e.op.weights()
                    .into_iter()
                    .map(move |w| (format!("{}/{}", e.name, w.name), w.value))
            })
            .collect()
    }

    /// Replaces one weight's values; the shape must match.
    pub fn set_weight(&mut self, name: &str, value: Tensor) -> Result<()> {
        let (layer, param) = name
            .split_once('/')
            .ok_or_else(|| Error::invalid(format!("the model has no weight named '{name}'")))?;
        let entry = self.layers.iter_mut().find(|e| e.name == layer);
        let slot = entry.and_then(|e| {
            let names: Vec<&str> = e.op.weights().iter().map(|w| w.name).collect();
            let i = names.iter().position(|&n| n == param)?;
            e.op.weights_mut().into_iter().nth(i)
        });
        let slot =
            slot.ok_or_else(|| Error::invalid(format!("the model has no weight named '{name}'")))?;
        if slot.shape() != value.shape() {
            return Err(Error::shape(
                "set_weight",
                format!("{name} is {:?}, got {:?}", slot.shape(), value.shape()),
            ));
        }
        *slot = value;
        Ok(())
    }

    /// Every weight's value, in layer order (Keras `get_weights`).
    pub fn get_weights(&self) -> Vec<Tensor> {
        self.weights().into_iter().map(|(_, t)| t.clone()).collect()
    }

    /// Replaces every weight, in the order of `get_weights` (Keras `set_weights`).
    pub fn set_weights(&mut self, weights: Vec<Tensor>) -> Result<()> {
        let names: Vec<String> = self.weights().into_iter().map(|(n, _)| n).collect();
        if names.len() != weights.len() {
            return Err(Error::invalid(format!(
                "the model has {} weights, got {}",
                names.len(),
                weights.len()
            )));
        }
        for (name, value) in names.iter().zip(weights) {
            self.set_weight(name, value)?;
        }
        Ok(())
    }

    /// The optimizer's current learning rate (0 before `compile`).
    pub fn learning_rate(&self) -> f32 {
        self.compiled
            .as_ref()
            .map_or(0.0, |c| c.optimizer.learning_rate())
    }

    /// Changes the optimizer's learning rate (for schedules).
    pub fn set_learning_rate(&mut self, learning_rate: f32) -> Result<()> {
        let compiled = self
            .compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("call compile() before setting the learning rate"))?;
        if !(learning_rate.is_finite() && learning_rate >= 0.0) {
            return Err(Error::invalid(format!(
                "learning rate must be a non-negative number, got {learning_rate}"
            )));
        }
        compiled.optimizer.set_learning_rate(learning_rate);
        Ok(())
    }

    /// The compiled optimizer (with its state).
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.compiled.as_ref().map(|c| &c.optimizer)
    }

    pub(crate) fn optimizer_mut(&mut self) -> Option<&mut Optimizer> {
        self.compiled.as_mut().map(|c| &mut c.optimizer)
    }

    /// The compiled loss.
    pub fn loss(&self) -> Option<Loss> {
        self.compiled.as_ref().map(|c| c.loss)
    }

    /// How many classes the model tells apart: its one output's units, when it is compiled
    /// with a categorical (or sparse categorical) cross-entropy; None for any other model.
    pub fn classes(&self) -> Option<usize> {
        match (self.loss()?, self.output_shapes().as_slice()) {
            (Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy, [shape]) => {
                shape.last().copied()
            }
            _ => None,
        }
    }

    /// Which accuracy the model reports, if compiled with it.
    pub fn accuracy_kind(&self) -> Option<AccuracyKind> {
        self.compiled.as_ref().and_then(|c| c.accuracy)
    }

    /// The optimizer, loss and accuracy fixed by `compile`, or an error naming the call.
    pub(crate) fn compiled(&self, call: &str) -> Result<Compiled> {
        self.compiled
            .clone()
            .ok_or_else(|| Error::invalid(format!("call compile() before {call}()")))
    }

    /// Moves every layer's weights onto `tape` for one step (no copy): trainable weights of
    /// trainable layers take gradients, the rest do not.
    pub(crate) fn weights_onto(layers: &mut [Entry], tape: &mut Tape) -> StepWeights {
        tape.reset();
        let flags: Vec<Vec<bool>> = layers
            .iter()
            .map(|e| {
                e.op.weights()
                    .iter()
                    .map(|w| w.trainable && e.trainable)
                    .collect()
            })
            .collect();
        layers
            .iter_mut()
            .zip(flags)
            .map(|(e, flags)| {
                e.op.weights_mut()
                    .into_iter()
                    .zip(flags)
                    .map(|(w, train)| {
                        let value = std::mem::take(w);
                        if train {
                            tape.param(value)
                        } else {
                            tape.state(value)
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Moves the weights back from `tape` into their layers after a step.
    pub(crate) fn weights_back(layers: &mut [Entry], tape: &mut Tape, vars: &StepWeights) {
        for (e, vars) in layers.iter_mut().zip(vars) {
            for (w, &v) in e.op.weights_mut().into_iter().zip(vars) {
                *w = tape.take_value(v);
            }
        }
    }

    /// Checks that `xs` hold one batch per input, each of the input's sample shape, with the
    /// same number of samples.
    pub(crate) fn check_inputs(&self, xs: &[&Tensor], what: &str) -> Result<()> {
        if xs.len() != self.inputs.len() {
            return Err(Error::invalid(format!(
                "the model takes {} inputs ({}), got {}",
                self.inputs.len(),
                self.input_names(),
                xs.len()
            )));
        }
        for (x, input) in xs.iter().zip(&self.inputs) {
            // A dimension declared ANY (Keras's None) takes any positive size.
            let fits = x.shape().len() == input.shape.len() + 1
                && x.shape()[1..]
                    .iter()
                    .zip(&input.shape)
                    .all(|(&got, &want)| match want {
                        nn::ANY => got > 0,
                        want => got == want,
                    });
            if !fits {
                let name = if self.inputs.len() == 1 {
                    what.to_string()
                } else {
                    format!("{what} '{}'", input.name)
                };
                return Err(Error::shape(
                    "model input",
                    format!(
                        "{name} has shape {:?}, the model expects (batch, {})",
                        x.shape(),
                        input
                            .shape
                            .iter()
                            .map(|&d| match d {
                                nn::ANY => "any".to_string(),
                                d => d.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if x.rows() != xs[0].rows() {
                return Err(Error::shape(
                    "model input",
                    format!(
                        "input '{}' has {} samples, input '{}' has {}",
                        input.name,
                        x.rows(),
                        self.inputs[0].name,
                        xs[0].rows()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn input_names(&self) -> String {
        let names: Vec<&str> = self.inputs.iter().map(|i| i.name.as_str()).collect();
        names.join(", ")
    }

    /// `loss` plus the layers' weight penalties (Keras reports its losses with them too).
    pub(crate) fn with_penalties(
        layers: &[Entry],
        tape: &mut Tape,
        weights: &StepWeights,
        loss: Var,
    ) -> Result<Var> {
        let mut total = loss;
        for (e, vars) in layers.iter().zip(weights) {
            let Operation::Layer(layer) = &e.op else {
                continue;
            };
            for (i, factor) in layer.l2_penalties() {
                let var = vars[i];
                let squares = tape.square(var)?;
                let sum = tape.sum(squares)?;
                let penalty = tape.scale(sum, factor)?;
                total = tape.add(total, penalty)?;
            }
        }
        Ok(total)
    }

    /// The layers' weight penalties added to `loss`, without a tape (the same arithmetic).
    pub(crate) fn add_penalties(&self, loss: f32) -> Result<f32> {
        use crate::autograd::{BinaryOp, UnaryOp};
        use crate::tensor::forward;
        let mut total = Tensor::scalar(loss);
        for e in &self.layers {
            let Operation::Layer(layer) = &e.op else {
                continue;
            };
            let weights = layer.weights();
            for (i, factor) in layer.l2_penalties() {
                let squares = forward::unary(UnaryOp::Square, weights[i].value)?;
                let penalty = forward::scale(&forward::sum(&squares), factor);
                total = forward::binary(BinaryOp::Add, &total, &penalty)?;
            }
        }
        total.item()
    }
}

/// One call of a layer, described by names (for model files).
pub(crate) struct CallInfo {
    /// The name of the call's output.
    pub name: String,
    pub layer: String,
    /// Whether this is the layer's first call (later ones share its weights).
    pub first: bool,
    pub config: Option<LayerConfig>,
    pub merge: Option<Merge>,
    pub inputs: Vec<String>,
    pub trainable: bool,
}

/// Keras's layer names: "MaxPooling2D" → "max_pooling2d", "Conv2D" → "conv2d".
pub(crate) fn snake_case(kind: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for ch in kind.chars() {
        if ch.is_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = ch.is_lowercase();
        out.extend(ch.to_lowercase());
    }
    out
}

/// How many layers of each kind a model has, for the names Keras gives new ones: "dense",
/// then "dense_1", … (kept as layers are added: naming the 100,000th layer costs no more than
/// the first).
#[derive(Clone, Debug, Default)]
pub(crate) struct KindCounts(std::collections::HashMap<&'static str, usize>);

impl KindCounts {
    /// The name Keras gives the next layer of `kind`.
    pub fn next_name(&self, kind: &str) -> String {
        let base = snake_case(kind);
        match self.0.get(kind).copied().unwrap_or(0) {
            0 => base,
            n => format!("{base}_{n}"),
        }
    }

    /// Counts one more layer of `kind`.
    pub fn add(&mut self, kind: &'static str) {
        *self.0.entry(kind).or_insert(0) += 1;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn layer_names_follow_keras() {
        for (kind, name) in [
            ("Dense", "dense"),
            ("Conv2D", "conv2d"),
            ("MaxPooling2D", "max_pooling2d"),
        ] {
            assert_eq!(super::snake_case(kind), name);
        }
    }

    #[test]
    fn default_names_count_each_kind_as_layers_are_added() {
        use crate::prelude::*;
        let mut stack = Sequential::new(&[4]);
        for _ in 0..3 {
            stack.add(Dense::new(4)).unwrap();
            stack.add(ActivationLayer::new(Activation::Relu)).unwrap();
        }
        let names: Vec<&str> = stack.layers().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "dense",
                "activation",
                "dense_1",
                "activation_1",
                "dense_2",
                "activation_2"
            ]
        );
        // In a graph, a layer given its own name still counts toward its kind's next default,
        // and a name is taken once only.
        let g = Graph::new();
        let x = g.input("x", &[4]).unwrap();
        let a = g.named("mine", Dense::new(4)).unwrap().call(&x).unwrap();
        let b = g.layer(Dense::new(4)).call(&a).unwrap();
        let sum = g.merge(Merge::Add {}, &[&a, &b]).unwrap();
        assert!(g.named("mine", Dense::new(2)).is_err());
        assert!(g.named("x", Dense::new(2)).is_err());
        let model = Model::new(&[&x], &[&sum]).unwrap();
        let names: Vec<String> = model.call_list().iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, ["mine", "dense_1", "add"]);
    }
}
