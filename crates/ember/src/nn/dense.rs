//! `Dense`: a fully connected layer, `activation(x · kernel + bias)`.

use serde::{Deserialize, Serialize};

use super::{init, Layer, LayerConfig, WeightRef};
use crate::autograd::{Pass, Value};
use crate::error::{Error, Result};
use crate::tensor::activation::Activation;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// A weight penalty, as Keras's `regularizers.L2(l2)`: l2 · Σ w² added to the loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regularizer {
    pub l2: f32,
}

/// `type = "dense"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseConfig {
    pub units: usize,
    /// Default: linear (none).
    #[serde(default)]
    pub activation: Activation,
    /// Default: true.
    #[serde(default = "super::config::yes")]
    pub use_bias: bool,
    /// Default: none. `kernel_regularizer = { l2 = 0.0001 }`: factor · Σ kernel² added to the loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_regularizer: Option<Regularizer>,
}

impl DenseConfig {
    /// Output shape and parameter count for samples of `input`, without building.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        let units = self.units;
        if units == 0 {
            return Err(Error::invalid("Dense units must be at least 1"));
        }
        if let Some(l2) = self.l2().filter(|l2| !(l2.is_finite() && *l2 >= 0.0)) {
            return Err(Error::invalid(format!(
                "Dense kernel_regularizer l2 must be a finite number ≥ 0, got {l2}"
            )));
        }
        let Some(&inputs) = input.last().filter(|&&n| n > 0) else {
            return Err(Error::shape(
                "Dense",
                format!("needs inputs with a non-empty last axis, got {input:?}"),
            ));
        };
        let params = inputs
            .checked_mul(units)
            .and_then(|w| w.checked_add(if self.use_bias { units } else { 0 }))
            .ok_or_else(|| {
                Error::invalid(format!("Dense({units}) on {inputs} inputs is too large"))
            })?;
        let mut output = input.to_vec();
        *output.last_mut().expect("checked non-empty") = units;
        Ok((output, params))
    }

    fn l2(&self) -> Option<f32> {
        self.kernel_regularizer.map(|r| r.l2)
    }
}

/// Keras `Dense(units, activation)`: glorot-uniform kernel, zero bias; optionally an L2
/// penalty on the kernel (`kernel_regularizer=l2(factor)`).
///
/// ```
/// use ember::prelude::*;
/// let mut model = Sequential::new(&[3]);
/// model.add(Dense::new(2).activation(Activation::Relu)).unwrap();
/// assert_eq!(model.count_params(), 3 * 2 + 2);
/// ```
#[derive(Clone, Debug)]
pub struct Dense {
    config: DenseConfig,
    kernel: Option<Tensor>,
    bias: Option<Tensor>,
}

impl From<DenseConfig> for Dense {
    fn from(config: DenseConfig) -> Self {
        let l2 = config.l2();
        let dense = Dense {
            config,
            kernel: None,
            bias: None,
        };
        // A penalty of 0 is no penalty: dropped, so it is not written back to the file.
        match l2 {
            Some(l2) => dense.kernel_l2(l2),
            None => dense,
        }
    }
}

impl Dense {
    pub fn new(units: usize) -> Self {
        Dense::from(DenseConfig {
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_regularizer: None,
        })
    }

    pub fn activation(mut self, activation: Activation) -> Self {
        self.config.activation = activation;
        self
    }

    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.config.use_bias = use_bias;
        self
    }

    /// Adds factor · Σ kernel² to the training loss (Keras `kernel_regularizer=l2(factor)`);
    /// 0 adds nothing.
    pub fn kernel_l2(mut self, factor: f32) -> Self {
        self.config.kernel_regularizer = (factor != 0.0).then_some(Regularizer { l2: factor });
        self
    }

    pub fn units(&self) -> usize {
        self.config.units
    }
}

impl Layer for Dense {
    fn kind(&self) -> &'static str {
        "Dense"
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut Rng) -> Result<Vec<usize>> {
        let (output, _) = self.config.shape_and_params(input_shape)?;
        let (inputs, units) = (input_shape[input_shape.len() - 1], self.config.units);
        self.kernel = Some(init::glorot_uniform(&[inputs, units], inputs, units, rng));
        self.bias = self.config.use_bias.then(|| Tensor::zeros(&[units]));
        Ok(output)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        let kernel = pass.weight(0, self.kernel.as_ref(), "Dense")?;
        let bias = match &self.bias {
            Some(bias) => Some(pass.weight(1, Some(bias), "Dense")?),
            None => None,
        };
        let activation = pass.activation(self.config.activation);
        pass.linear(&x, &kernel, bias.as_ref(), activation)
    }

    fn final_activation(&self) -> Activation {
        self.config.activation
    }

    fn weights(&self) -> Vec<WeightRef<'_>> {
        let kernel = self.kernel.as_ref().map(|value| WeightRef {
            name: "kernel",
            value,
            trainable: true,
        });
        let bias = self.bias.as_ref().map(|value| WeightRef {
            name: "bias",
            value,
            trainable: true,
        });
        kernel.into_iter().chain(bias).collect()
    }

    fn weights_mut(&mut self) -> Vec<&mut Tensor> {
        self.kernel.iter_mut().chain(self.bias.iter_mut()).collect()
    }

    fn l2_penalties(&self) -> Vec<(usize, f32)> {
        match (&self.kernel, self.config.l2()) {
            (Some(_), Some(l2)) if l2 > 0.0 => vec![(0, l2)],
            _ => Vec::new(),
        }
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Dense(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::gradcheck::check_gradients_with;

    #[test]
    fn builds_shapes_and_counts_like_keras() {
        let mut dense = Dense::new(64);
        let out = dense.build(&[784], &mut Rng::seed(0)).unwrap();
        assert_eq!(out, vec![64]);
        let weights = dense.weights();
        assert_eq!(weights[0].value.shape(), &[784, 64]);
        assert!(weights[1].value.data().iter().all(|&b| b == 0.0));
        let mut no_bias = Dense::new(3).use_bias(false);
        no_bias.build(&[5, 4], &mut Rng::seed(0)).unwrap();
        assert_eq!(no_bias.weights().len(), 1);
        assert!(Dense::new(0).build(&[4], &mut Rng::seed(0)).is_err());
        assert!(Dense::new(2).build(&[], &mut Rng::seed(0)).is_err());
        let err = Dense::new(2)
            .kernel_l2(-0.1)
            .build(&[4], &mut Rng::seed(0))
            .unwrap_err();
        assert!(err.to_string().contains("kernel_regularizer l2"), "{err}");
        // A penalty of 0 is no penalty, and not written to the model file.
        assert_eq!(
            Dense::new(2).kernel_l2(0.0).config(),
            Dense::new(2).config()
        );
    }

    #[test]
    fn layer_gradients_match_finite_differences() {
        for act in [Activation::Relu, Activation::Softmax, Activation::Tanh] {
            let mut dense = Dense::new(3).activation(act);
            dense.build(&[4], &mut Rng::seed(2)).unwrap();
            let weights: Vec<Tensor> = dense.weights().iter().map(|w| w.value.clone()).collect();
            let x = Tensor::new(&[2, 4], vec![0.5, -1.0, 1.5, 0.3, -0.7, 0.9, -1.2, 0.4]).unwrap();
            let inputs = [x, weights[0].clone(), weights[1].clone()];
            check_gradients_with(&[], 5, Some(&inputs), |tape, v| {
                crate::nn::call_on_tape(&dense, tape, &v[1..], v[0], None, true)
            })
            .unwrap_or_else(|e| panic!("{act:?}: {e}"));
        }
    }
}
