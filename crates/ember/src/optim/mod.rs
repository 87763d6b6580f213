//! Optimizers with Keras's update rules and defaults: SGD (momentum, Nesterov), Adam, RMSprop.

mod adam;
mod rmsprop;
mod sgd;

pub use adam::Adam;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

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
pub(crate) struct Slots(Vec<Tensor>);

impl Slots {
    /// The slot for parameter `index`, shaped like `like`.
    pub fn get(&mut self, index: usize, like: &Tensor) -> &mut [f32] {
        if self.0.len() <= index {
            self.0.resize_with(index + 1, Tensor::default);
        }
        if self.0[index].shape() != like.shape() {
            self.0[index] = Tensor::zeros(like.shape());
        }
        self.0[index].data_mut()
    }
}
