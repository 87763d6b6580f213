//! `Sequential`: a stack of layers, each feeding the next, with Keras's compile step.

use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::loss::Loss;
use crate::metrics::{AccuracyKind, Metric};
use crate::nn::Layer;
use crate::optim::Optimizer;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// A layer of the model with the name Keras would give it ("dense", "dense_1", …).
pub(crate) struct Entry {
    pub name: String,
    pub layer: Box<dyn Layer>,
    pub output_shape: Vec<usize>,
}

/// What `compile` fixed: how the model learns and what it reports.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    pub optimizer: Optimizer,
    pub loss: Loss,
    pub accuracy: Option<AccuracyKind>,
}

/// A linear stack of layers (Keras `Sequential`).
///
/// ```
/// use ember::prelude::*;
/// let mut model = Sequential::with_seed(&[4], 1);
/// model.add(Dense::new(8).activation(Activation::Relu)).unwrap();
/// model.add(Dense::new(3).activation(Activation::Softmax)).unwrap();
/// model.compile(Adam::default(), Loss::SparseCategoricalCrossentropy, &[Metric::Accuracy]).unwrap();
/// let x = Tensor::zeros(&[5, 4]);
/// assert_eq!(model.predict(&x, 32).unwrap().shape(), &[5, 3]);
/// ```
pub struct Sequential {
    pub(crate) input_shape: Vec<usize>,
    pub(crate) layers: Vec<Entry>,
    pub(crate) tape: Tape,
    pub(crate) rng: Rng,
    pub(crate) compiled: Option<Compiled>,
}

impl Sequential {
    /// An empty model for samples of `input_shape` (without the batch axis), seed 0.
    pub fn new(input_shape: &[usize]) -> Self {
        Self::with_seed(input_shape, 0)
    }

    /// An empty model whose weight initialisation and shuffling derive from `seed`.
    pub fn with_seed(input_shape: &[usize], seed: u64) -> Self {
        Sequential {
            input_shape: input_shape.to_vec(),
            layers: Vec::new(),
            tape: Tape::new(),
            rng: Rng::seed(seed),
            compiled: None,
        }
    }

    /// Appends a layer and builds its parameters for the current output shape.
    pub fn add(&mut self, layer: impl Layer + 'static) -> Result<&mut Self> {
        self.add_boxed(Box::new(layer))
    }

    pub fn add_boxed(&mut self, mut layer: Box<dyn Layer>) -> Result<&mut Self> {
        let input = self.output_shape().to_vec();
        let mut init_rng = self.rng.fork();
        let output_shape = layer.build(&mut self.tape, &input, &mut init_rng)?;
        let base = snake_case(layer.kind());
        let same_kind = self
            .layers
            .iter()
            .filter(|e| e.layer.kind() == layer.kind())
            .count();
        let name = if same_kind == 0 {
            base
        } else {
            format!("{base}_{same_kind}")
        };
        self.layers.push(Entry {
            name,
            layer,
            output_shape,
        });
        Ok(self)
    }

    /// Fixes the optimizer, the loss and the metrics (Keras `compile`).
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
        });
        Ok(())
    }

    /// Shape of one input sample.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Shape of one output sample.
    pub fn output_shape(&self) -> &[usize] {
        self.layers
            .last()
            .map_or(&self.input_shape, |e| &e.output_shape)
    }

    /// The layers, in order, with their names.
    pub fn layers(&self) -> impl Iterator<Item = (&str, &dyn Layer)> {
        self.layers
            .iter()
            .map(|e| (e.name.as_str(), e.layer.as_ref()))
    }

    /// Number of scalars in every weight, trainable or not (Keras's "Total params").
    pub fn count_params(&self) -> usize {
        self.tape.params().map(|p| self.tape.value(p).len()).sum()
    }

    /// Number of trainable scalars (without moving averages).
    pub fn count_trainable_params(&self) -> usize {
        self.tape.trainable_len()
    }

    /// Every weight's name ("layer/param") and variable, in the order the tape holds them
    /// (the order optimizer slots are numbered in): trainable and non-trainable alike.
    fn named_vars(&self) -> Vec<(String, Var)> {
        let mut named: Vec<(String, Var)> = self
            .layers
            .iter()
            .flat_map(|e| {
                let mut vars = e.layer.params();
                vars.extend(e.layer.state());
                vars.into_iter()
                    .map(move |(p, v)| (format!("{}/{p}", e.name), v))
            })
            .collect();
        named.sort_by_key(|(_, v)| v.0);
        named
    }

    /// Every weight as ("layer/param", tensor), in layer order, non-trainable ones
    /// (moving averages) included.
    pub fn weights(&self) -> Vec<(String, &Tensor)> {
        self.named_vars()
            .into_iter()
            .map(|(name, v)| (name, self.tape.value(v)))
            .collect()
    }

    /// Replaces one weight's values; the shape must match.
    pub fn set_weight(&mut self, name: &str, value: Tensor) -> Result<()> {
        let var = self
            .named_vars()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| Error::invalid(format!("the model has no weight named '{name}'")))?;
        let slot = self.tape.param_mut(var);
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

    /// The compiled optimizer (with its state), loss and accuracy kind.
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

    /// Runs the layers on `x`; the last one stops before its activation when `logits`.
    /// Returns (output, the activation left to apply).
    pub(crate) fn forward(
        layers: &[Entry],
        tape: &mut Tape,
        x: Var,
        training: bool,
        logits: bool,
    ) -> Result<(Var, crate::Activation)> {
        let mut h = x;
        let last = layers.len().saturating_sub(1);
        for (i, entry) in layers.iter().enumerate() {
            if logits && i == last {
                let act = entry.layer.final_activation();
                return Ok((entry.layer.forward_logits(tape, h, training)?, act));
            }
            h = entry.layer.forward(tape, h, training)?;
        }
        Ok((h, crate::Activation::Linear))
    }

    /// `loss` plus the layers' weight penalties (Keras reports its losses with them too).
    pub(crate) fn with_penalties(layers: &[Entry], tape: &mut Tape, loss: Var) -> Result<Var> {
        let mut total = loss;
        for (var, factor) in layers.iter().flat_map(|e| e.layer.l2_penalties()) {
            let squares = tape.square(var)?;
            let sum = tape.sum(squares)?;
            let penalty = tape.scale(sum, factor)?;
            total = tape.add(total, penalty)?;
        }
        Ok(total)
    }

    /// Checks that `x` holds samples of the model's input shape.
    pub(crate) fn check_input(&self, x: &Tensor, what: &str) -> Result<()> {
        if x.shape().len() != self.input_shape.len() + 1 || x.shape()[1..] != self.input_shape[..] {
            return Err(Error::shape(
                "model input",
                format!(
                    "{what} has shape {:?}, the model expects (batch, {})",
                    x.shape(),
                    self.input_shape
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(())
    }
}

/// Keras's layer names: "MaxPooling2D" → "max_pooling2d", "Conv2D" → "conv2d".
fn snake_case(kind: &str) -> String {
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
}
