//! `BatchNormalization`: normalize each channel (the last axis) to zero mean and unit
//! variance, then scale and shift by learned `gamma` and `beta`.

use serde::{Deserialize, Serialize};

use super::{weight_ref, Layer, LayerConfig, WeightRef};
use crate::autograd::{Pass, Value};
use crate::error::{Error, Result};
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// `type = "batch_normalization"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchNormalizationConfig {
    /// How slowly the moving averages follow the batches, in [0, 1]. Default: 0.99 (Keras).
    pub momentum: f32,
    /// Added to the variance before the square root. Default: 1e-3 (Keras).
    pub epsilon: f32,
    /// Whether to learn the shift `beta`. Default: true.
    pub center: bool,
    /// Whether to learn the scale `gamma`. Default: true.
    pub scale: bool,
}

impl Default for BatchNormalizationConfig {
    fn default() -> Self {
        BatchNormalizationConfig {
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
        }
    }
}

impl BatchNormalizationConfig {
    /// The input shape, and per channel (the last axis): `gamma` and `beta` when learned,
    /// the moving mean and the moving variance.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        let BatchNormalizationConfig {
            momentum,
            epsilon,
            center,
            scale,
        } = *self;
        if !(0.0..=1.0).contains(&momentum) {
            return Err(Error::invalid(format!(
                "BatchNormalization momentum must be in [0, 1], got {momentum}"
            )));
        }
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(Error::invalid(format!(
                "BatchNormalization epsilon must be a positive number, got {epsilon}"
            )));
        }
        let Some(&channels) = input.last().filter(|&&c| c > 0) else {
            return Err(Error::shape(
                "BatchNormalization",
                format!("needs inputs with a non-empty last axis, got {input:?}"),
            ));
        };
        let vectors = 2 + usize::from(center) + usize::from(scale);
        Ok((input.to_vec(), vectors * channels))
    }

    /// How many of the weights the optimizer never touches: the moving mean and variance,
    /// one of each per channel (the last axis of `input`).
    pub fn moving_params(&self, input: &[usize]) -> usize {
        2 * input.last().copied().unwrap_or(0)
    }
}

/// Keras `BatchNormalization()` (axis −1): in training it normalizes with the batch's own
/// statistics and moves `moving_mean` / `moving_variance` towards them
/// (`moving = momentum · moving + (1 − momentum) · batch`); at inference it uses the moving
/// averages. The moving averages are non-trainable weights, saved with the model.
///
/// ```
/// use ember::prelude::*;
/// let mut model = Sequential::new(&[8, 8, 16]);
/// model.add(BatchNormalization::new()).unwrap();
/// assert_eq!(model.count_params(), 4 * 16);
/// assert_eq!(model.count_trainable_params(), 2 * 16);
/// ```
#[derive(Clone, Debug, Default)]
pub struct BatchNormalization {
    config: BatchNormalizationConfig,
    gamma: Option<Tensor>,
    beta: Option<Tensor>,
    moving_mean: Option<Tensor>,
    moving_variance: Option<Tensor>,
}

impl From<BatchNormalizationConfig> for BatchNormalization {
    fn from(config: BatchNormalizationConfig) -> Self {
        BatchNormalization {
            config,
            ..Default::default()
        }
    }
}

impl BatchNormalization {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn momentum(mut self, momentum: f32) -> Self {
        self.config.momentum = momentum;
        self
    }

    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.config.epsilon = epsilon;
        self
    }

    /// Whether to learn the shift `beta`.
    pub fn center(mut self, center: bool) -> Self {
        self.config.center = center;
        self
    }

    /// Whether to learn the scale `gamma`.
    pub fn scale(mut self, scale: bool) -> Self {
        self.config.scale = scale;
        self
    }
}

impl Layer for BatchNormalization {
    fn kind(&self) -> &'static str {
        "BatchNormalization"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        let (output, _) = self.config.shape_and_params(input_shape)?;
        let channels = *input_shape.last().expect("checked by shape_and_params");
        self.gamma = self.config.scale.then(|| Tensor::full(&[channels], 1.0));
        self.beta = self.config.center.then(|| Tensor::zeros(&[channels]));
        self.moving_mean = Some(Tensor::zeros(&[channels]));
        self.moving_variance = Some(Tensor::full(&[channels], 1.0));
        Ok(output)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        // Weights in order: gamma (if scale), beta (if center), moving mean, moving variance.
        const LAYER: &str = "BatchNormalization";
        let gamma = match &self.gamma {
            Some(gamma) => Some(pass.weight(0, Some(gamma), LAYER)?),
            None => None,
        };
        let mut next = gamma.is_some() as usize;
        let beta = match &self.beta {
            Some(beta) => {
                next += 1;
                Some(pass.weight(next - 1, Some(beta), LAYER)?)
            }
            None => None,
        };
        let mean = pass.weight(next, self.moving_mean.as_ref(), LAYER)?;
        let variance = pass.weight(next + 1, self.moving_variance.as_ref(), LAYER)?;
        let BatchNormalizationConfig {
            momentum, epsilon, ..
        } = self.config;
        pass.batch_norm(
            &x,
            (gamma.as_ref(), beta.as_ref()),
            (&mean, &variance),
            epsilon,
            momentum,
        )
    }

    fn weights(&self) -> Vec<WeightRef<'_>> {
        [
            weight_ref("gamma", &self.gamma, true),
            weight_ref("beta", &self.beta, true),
            weight_ref("moving_mean", &self.moving_mean, false),
            weight_ref("moving_variance", &self.moving_variance, false),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn weights_mut(&mut self) -> Vec<&mut Tensor> {
        [
            &mut self.gamma,
            &mut self.beta,
            &mut self.moving_mean,
            &mut self.moving_variance,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::BatchNormalization(self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::gradcheck::check_gradients_with;
    use crate::autograd::{Tape, Var};

    fn built(channels: usize) -> BatchNormalization {
        let mut layer = BatchNormalization::new().momentum(0.9);
        layer.build(&[channels], &mut Rng::seed(0)).unwrap();
        layer
    }

    /// One step as a model runs it: the weights move onto a tape (the moving averages as
    /// state), the layer is recorded, and the weights move back.
    fn step(layer: &mut BatchNormalization, x: &Tensor, training: bool) -> Tensor {
        let mut tape = Tape::new();
        let trainable: Vec<bool> = layer.weights().iter().map(|w| w.trainable).collect();
        let vars: Vec<Var> = layer
            .weights_mut()
            .into_iter()
            .zip(&trainable)
            .map(|(w, &t)| {
                let value = std::mem::take(w);
                if t {
                    tape.param(value)
                } else {
                    tape.state(value)
                }
            })
            .collect();
        assert_eq!(tape.trainable_len(), 2 * x.shape()[x.shape().len() - 1]);
        let xv = tape.constant(x);
        let y = crate::nn::call_on_tape(&*layer, &mut tape, &vars, xv, None, training).unwrap();
        let out = tape.value(y).clone();
        for (w, v) in layer.weights_mut().into_iter().zip(vars) {
            *w = tape.take_value(v);
        }
        out
    }

    #[test]
    fn training_moves_the_averages_and_inference_uses_them() {
        let mut layer = built(2);
        // Channel 0: 1, 3 (mean 2, variance 1); channel 1: 4, 8 (mean 6, variance 4).
        let x = Tensor::new(&[2, 2], vec![1.0, 4.0, 3.0, 8.0]).unwrap();
        let y = step(&mut layer, &x, true);
        let s0 = 1.0 / (1.0f32 + 1e-3).sqrt();
        let s1 = 1.0 / (4.0f32 + 1e-3).sqrt();
        let expected = [-s0, -2.0 * s1, s0, 2.0 * s1];
        for (got, want) in y.data().iter().zip(expected) {
            assert!((got - want).abs() < 1e-6);
        }
        // 0.9 · 0 + 0.1 · 2 and 0.9 · 1 + 0.1 · 1.
        let close =
            |got: &[f32], want: [f32; 2]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6);
        let moving = |layer: &BatchNormalization| {
            let w = layer.weights();
            assert!(
                !w[2].trainable && !w[3].trainable,
                "moving averages are not trained"
            );
            (w[2].value.data().to_vec(), w[3].value.data().to_vec())
        };
        let (mean, variance) = moving(&layer);
        assert!(close(&mean, [0.2, 0.6]));
        assert!(close(&variance, [1.0, 1.3]));
        // Inference reads the moving averages and leaves them alone, with a tape or without.
        let z = step(&mut layer, &x, false);
        let want = (1.0 - 0.2) / (1.0f32 + 1e-3).sqrt();
        assert!((z.data()[0] - want).abs() < 1e-6);
        assert_eq!(layer.forward(&x).unwrap(), z);
        assert_eq!(moving(&layer), (mean, variance));
    }

    #[test]
    fn after_many_steps_inference_matches_training_on_the_same_batch() {
        let mut layer = BatchNormalization::new().momentum(0.9);
        layer.build(&[3, 3, 2], &mut Rng::seed(0)).unwrap();
        let values: Vec<f32> = (0..4 * 18)
            .map(|i| 5.0 + 3.0 * (i as f32 * 0.7).sin())
            .collect();
        let x = Tensor::new(&[4, 3, 3, 2], values).unwrap();
        let mut trained = Tensor::default();
        for _ in 0..300 {
            trained = step(&mut layer, &x, true);
        }
        let y = layer.forward(&x).unwrap();
        for (a, b) in y.data().iter().zip(trained.data()) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn training_mode_gradients_match_finite_differences() {
        let layer = built(3);
        let mut inputs: Vec<Tensor> = layer.weights().iter().map(|w| w.value.clone()).collect();
        inputs[0] = Tensor::new(&[3], vec![1.5, -0.5, 2.0]).unwrap();
        inputs
            .push(Tensor::new(&[4, 3], (0..12).map(|i| (i as f32 * 0.7).sin()).collect()).unwrap());
        check_gradients_with(&[], 7, Some(&inputs), |tape, v| {
            crate::nn::call_on_tape(&layer, tape, &v[..4], v[4], None, true)
        })
        .unwrap();
    }

    #[test]
    fn bad_settings_are_named() {
        for layer in [
            BatchNormalization::new().momentum(1.5),
            BatchNormalization::new().epsilon(0.0),
        ] {
            let mut layer = layer;
            let err = layer.build(&[3], &mut Rng::seed(0)).unwrap_err();
            assert!(err.to_string().contains("BatchNormalization"), "{err}");
        }
    }
}
