//! Optimizers with Keras's update rules and defaults: SGD (momentum, Nesterov), Adam, RMSprop;
//! and L-BFGS for full-batch objectives.

mod adam;
pub mod lbfgs;
mod rmsprop;
mod sgd;
mod transform;

pub use adam::Adam;
pub use lbfgs::{Lbfgs, Minimum};
pub use rmsprop::RmsProp;
pub use sgd::Sgd;
pub use transform::{
    apply_all, keras_clipping, GlobalNormClip, GradientTransform, NormClip, Scale, ValueClip,
};

use serde::{Deserialize, Serialize};

use crate::autograd::Tape;
use crate::tensor::Tensor;

/// An optimizer and its state. In a model file:
/// `optimizer = { type = "adam", learning_rate = 0.001 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Optimizer {
    Sgd(Sgd),
    Adam(Adam),
    Rmsprop(RmsProp),
}

impl Optimizer {
    /// Applies one update to every parameter of `tape` that received a gradient.
    pub fn step(&mut self, tape: &mut Tape) {
        match self {
            Optimizer::Sgd(o) => o.step(tape),
            Optimizer::Adam(o) => o.step(tape),
            Optimizer::Rmsprop(o) => o.step(tape),
        }
    }

    pub fn learning_rate(&self) -> f32 {
        match self {
            Optimizer::Sgd(o) => o.learning_rate,
            Optimizer::Adam(o) => o.learning_rate,
            Optimizer::Rmsprop(o) => o.learning_rate,
        }
    }

    pub fn set_learning_rate(&mut self, learning_rate: f32) {
        match self {
            Optimizer::Sgd(o) => o.learning_rate = learning_rate,
            Optimizer::Adam(o) => o.learning_rate = learning_rate,
            Optimizer::Rmsprop(o) => o.learning_rate = learning_rate,
        }
    }

    /// The gradient transform its Keras clipping option stands for (`clipnorm`,
    /// `clipvalue` or `global_clipnorm`; at most one may be set, as in Keras 3).
    pub fn clipping(&self) -> crate::Result<Vec<Box<dyn GradientTransform>>> {
        let (clipnorm, clipvalue, global) = match self {
            Optimizer::Sgd(o) => (o.clipnorm, o.clipvalue, o.global_clipnorm),
            Optimizer::Adam(o) => (o.clipnorm, o.clipvalue, o.global_clipnorm),
            Optimizer::Rmsprop(o) => (o.clipnorm, o.clipvalue, o.global_clipnorm),
        };
        keras_clipping(clipnorm, clipvalue, global)
    }

    /// Keras's `global_clipnorm`: all gradients together clipped to this norm before each
    /// update.
    pub fn global_clipnorm(mut self, limit: f32) -> Self {
        match &mut self {
            Optimizer::Sgd(o) => o.global_clipnorm = Some(limit),
            Optimizer::Adam(o) => o.global_clipnorm = Some(limit),
            Optimizer::Rmsprop(o) => o.global_clipnorm = Some(limit),
        }
        self
    }

    /// Keras's `clipnorm`: each weight's gradient clipped to this norm before each update.
    pub fn clipnorm(mut self, limit: f32) -> Self {
        match &mut self {
            Optimizer::Sgd(o) => o.clipnorm = Some(limit),
            Optimizer::Adam(o) => o.clipnorm = Some(limit),
            Optimizer::Rmsprop(o) => o.clipnorm = Some(limit),
        }
        self
    }

    /// Keras's name for it.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd(_) => "SGD",
            Optimizer::Adam(_) => "Adam",
            Optimizer::Rmsprop(_) => "RMSprop",
        }
    }

    /// Checks the hyperparameters, naming the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: f32| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be a positive number, got {v}"))
            }
        };
        let fraction = |name: &str, v: f32| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be in [0, 1), got {v}"))
            }
        };
        self.clipping().map_err(|e| e.detail())?;
        match self {
            Optimizer::Sgd(o) => {
                positive("learning_rate", o.learning_rate)?;
                fraction("momentum", o.momentum)
            }
            Optimizer::Adam(o) => {
                positive("learning_rate", o.learning_rate)?;
                fraction("beta_1", o.beta_1)?;
                fraction("beta_2", o.beta_2)?;
                positive("epsilon", o.epsilon)
            }
            Optimizer::Rmsprop(o) => {
                positive("learning_rate", o.learning_rate)?;
                fraction("rho", o.rho)?;
                fraction("momentum", o.momentum)?;
                positive("epsilon", o.epsilon)
            }
        }
    }
}

/// An optimizer's state for a checkpoint: its step count and its per-parameter buffers,
/// named `SLOT/INDEX` ("m/0" is Adam's first moment of parameter 0).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState {
    pub iterations: u64,
    pub tensors: Vec<(String, Tensor)>,
}

impl Optimizer {
    /// The named slots of this optimizer.
    fn slots(&self) -> Vec<(&'static str, &Slots)> {
        match self {
            Optimizer::Sgd(o) => vec![("velocity", &o.velocity)],
            Optimizer::Adam(o) => vec![("m", &o.m), ("v", &o.v)],
            Optimizer::Rmsprop(o) => {
                vec![("mean_square", &o.mean_square), ("velocity", &o.velocity)]
            }
        }
    }

    fn slots_mut(&mut self) -> Vec<(&'static str, &mut Slots)> {
        match self {
            Optimizer::Sgd(o) => vec![("velocity", &mut o.velocity)],
            Optimizer::Adam(o) => vec![("m", &mut o.m), ("v", &mut o.v)],
            Optimizer::Rmsprop(o) => vec![
                ("mean_square", &mut o.mean_square),
                ("velocity", &mut o.velocity),
            ],
        }
    }

    /// Steps taken so far.
    pub fn iterations(&self) -> u64 {
        match self {
            Optimizer::Sgd(o) => o.iterations,
            Optimizer::Adam(o) => o.iterations,
            Optimizer::Rmsprop(o) => o.iterations,
        }
    }

    /// A copy of the state, for saving.
    pub fn state(&self) -> OptimizerState {
        let mut tensors = Vec::new();
        for (name, slots) in self.slots() {
            for (i, t) in slots.0.iter().enumerate() {
                if !t.is_empty() {
                    tensors.push((format!("{name}/{i}"), t.clone()));
                }
            }
        }
        OptimizerState {
            iterations: self.iterations(),
            tensors,
        }
    }

    /// Restores a saved state; `param_shapes[i]` is parameter i's shape. Errors name the
    /// offending buffer.
    pub fn load_state(
        &mut self,
        state: OptimizerState,
        param_shapes: &[Vec<usize>],
    ) -> Result<(), String> {
        let kind = self.name();
        let mut slots = self.slots_mut();
        for (name, tensor) in state.tensors {
            let (slot, index) = name
                .split_once('/')
                .and_then(|(s, i)| Some((s, i.parse::<usize>().ok()?)))
                .ok_or_else(|| format!("optimizer buffer '{name}' is not named SLOT/INDEX"))?;
            let shape = param_shapes.get(index).ok_or_else(|| {
                format!(
                    "optimizer buffer '{name}' refers to parameter {index}, the model has {}",
                    param_shapes.len()
                )
            })?;
            if tensor.shape() != shape.as_slice() {
                return Err(format!(
                    "optimizer buffer '{name}' has shape {:?}, parameter {index} is {shape:?}",
                    tensor.shape()
                ));
            }
            let target = slots.iter_mut().find(|(s, _)| *s == slot).ok_or_else(|| {
                format!("optimizer buffer '{name}': {kind} has no state named '{slot}'")
            })?;
            // Running averages of squares are never negative; nothing is ever infinite.
            let squares = matches!(slot, "v" | "mean_square");
            if let Some(bad) = tensor
                .data()
                .iter()
                .find(|v| !v.is_finite() || (squares && **v < 0.0))
            {
                return Err(format!(
                    "optimizer buffer '{name}' holds {bad}, which {kind}'s '{slot}' cannot hold"
                ));
            }
            let buffers = &mut target.1 .0;
            if buffers.len() <= index {
                buffers.resize_with(index + 1, Tensor::default);
            }
            buffers[index] = tensor;
        }
        drop(slots);
        match self {
            Optimizer::Sgd(o) => o.iterations = state.iterations,
            Optimizer::Adam(o) => o.iterations = state.iterations,
            Optimizer::Rmsprop(o) => o.iterations = state.iterations,
        }
        Ok(())
    }
}

impl From<Sgd> for Optimizer {
    fn from(o: Sgd) -> Self {
        Optimizer::Sgd(o)
    }
}

impl From<Adam> for Optimizer {
    fn from(o: Adam) -> Self {
        Optimizer::Adam(o)
    }
}

impl From<RmsProp> for Optimizer {
    fn from(o: RmsProp) -> Self {
        Optimizer::Rmsprop(o)
    }
}

/// Per-parameter state buffers (moments), created zeroed on first use.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Slots(pub(crate) Vec<Tensor>);

impl Slots {
    /// The slot for parameter `index`, shaped like `like`.
    pub fn get(&mut self, index: usize, like: &Tensor) -> &mut Tensor {
        if self.0.len() <= index {
            self.0.resize_with(index + 1, Tensor::default);
        }
        if self.0[index].shape() != like.shape() {
            self.0[index] = Tensor::zeros(like.shape());
        }
        &mut self.0[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_saved_state_is_refused() {
        let shapes = vec![vec![2]];
        let state = |slot: &str, values: Vec<f32>| OptimizerState {
            iterations: 3,
            tensors: vec![(format!("{slot}/0"), Tensor::new(&[2], values).unwrap())],
        };
        let mut adam = Optimizer::from(Adam::new(0.1));
        adam.load_state(state("v", vec![0.5, 0.0]), &shapes)
            .unwrap();
        adam.load_state(state("m", vec![-0.5, 0.1]), &shapes)
            .unwrap();
        for (slot, values, says) in [
            ("v", vec![0.5, -1.0], "holds -1"),
            ("m", vec![f32::NAN, 0.0], "holds NaN"),
            ("v", vec![f32::INFINITY, 0.0], "holds inf"),
        ] {
            let err = adam.load_state(state(slot, values), &shapes).unwrap_err();
            assert!(
                err.contains(says) && err.contains(&format!("'{slot}/0'")),
                "{err}"
            );
        }
        let mut rmsprop = Optimizer::from(RmsProp::new(0.1));
        let err = rmsprop
            .load_state(state("mean_square", vec![-2.0, 0.0]), &shapes)
            .unwrap_err();
        assert!(err.contains("holds -2"), "{err}");
    }
}
