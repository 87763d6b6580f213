//! `BatchNormalization`: normalize each channel (the last axis) to zero mean and unit
//! variance, then scale and shift by learned `gamma` and `beta`.

use super::{Layer, LayerConfig};
use crate::autograd::{NormStats, Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

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
#[derive(Clone, Debug)]
pub struct BatchNormalization {
    momentum: f32,
    epsilon: f32,
    center: bool,
    scale: bool,
    gamma: Option<Var>,
    beta: Option<Var>,
    moving: Option<(Var, Var)>,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        BatchNormalization {
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            gamma: None,
            beta: None,
            moving: None,
        }
    }
}

impl BatchNormalization {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Whether to learn the shift `beta`.
    pub fn center(mut self, center: bool) -> Self {
        self.center = center;
        self
    }

    /// Whether to learn the scale `gamma`.
    pub fn scale(mut self, scale: bool) -> Self {
        self.scale = scale;
        self
    }
}

impl Layer for BatchNormalization {
    fn kind(&self) -> &'static str {
        "BatchNormalization"
    }

    fn build(
        &mut self,
        tape: &mut Tape,
        input_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        let config = self.config();
        let (output, _) = config.shape_and_params(input_shape)?;
        let channels = *input_shape.last().expect("checked by shape_and_params");
        self.gamma = self
            .scale
            .then(|| tape.param(Tensor::full(&[channels], 1.0)));
        self.beta = self.center.then(|| tape.param(Tensor::zeros(&[channels])));
        let mean = tape.state(Tensor::zeros(&[channels]));
        let variance = tape.state(Tensor::full(&[channels], 1.0));
        self.moving = Some((mean, variance));
        Ok(output)
    }

    fn forward(&self, tape: &mut Tape, x: Var, training: bool) -> Result<Var> {
        let (mean, variance) = self
            .moving
            .ok_or_else(|| Error::invalid("BatchNormalization layer used before it was built"))?;
        if !training {
            let stats = NormStats::Given { mean, variance };
            return tape.batch_norm(x, self.gamma, self.beta, stats, self.epsilon);
        }
        let y = tape.batch_norm(x, self.gamma, self.beta, NormStats::Batch, self.epsilon)?;
        let (batch_mean, batch_variance) = tape.batch_moments(y);
        let (batch_mean, batch_variance) = (batch_mean.to_vec(), batch_variance.to_vec());
        let m = self.momentum;
        for (moving, batch) in [(mean, batch_mean), (variance, batch_variance)] {
            for (a, b) in tape.param_mut(moving).data_mut().iter_mut().zip(batch) {
                *a = m * *a + (1.0 - m) * b;
            }
        }
        Ok(y)
    }

    fn params(&self) -> Vec<(&'static str, Var)> {
        let gamma = self.gamma.map(|g| ("gamma", g));
        let beta = self.beta.map(|b| ("beta", b));
        gamma.into_iter().chain(beta).collect()
    }

    fn state(&self) -> Vec<(&'static str, Var)> {
        self.moving
            .map(|(m, v)| vec![("moving_mean", m), ("moving_variance", v)])
            .unwrap_or_default()
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::BatchNormalization {
            momentum: self.momentum,
            epsilon: self.epsilon,
            center: self.center,
            scale: self.scale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::gradcheck::check_gradients_with;

    fn built(channels: usize) -> (Tape, BatchNormalization) {
        let mut tape = Tape::new();
        let mut layer = BatchNormalization::new().momentum(0.9);
        layer
            .build(&mut tape, &[channels], &mut Rng::seed(0))
            .unwrap();
        (tape, layer)
    }

    #[test]
    fn training_moves_the_averages_and_inference_uses_them() {
        let (mut tape, layer) = built(2);
        // Channel 0: 1, 3 (mean 2, variance 1); channel 1: 4, 8 (mean 6, variance 4).
        let x = tape.constant(&Tensor::new(&[2, 2], vec![1.0, 4.0, 3.0, 8.0]).unwrap());
        let y = layer.forward(&mut tape, x, true).unwrap();
        let s0 = 1.0 / (1.0f32 + 1e-3).sqrt();
        let s1 = 1.0 / (4.0f32 + 1e-3).sqrt();
        let expected = [-s0, -2.0 * s1, s0, 2.0 * s1];
        for (got, want) in tape.value(y).data().iter().zip(expected) {
            assert!((got - want).abs() < 1e-6);
        }
        let (mean, variance) = layer.moving.unwrap();
        // 0.9 · 0 + 0.1 · 2 and 0.9 · 1 + 0.1 · 1.
        let close =
            |got: &[f32], want: [f32; 2]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6);
        assert!(close(tape.value(mean).data(), [0.2, 0.6]));
        assert!(close(tape.value(variance).data(), [1.0, 1.3]));
        // Inference reads the moving averages and leaves them alone.
        let z = layer.forward(&mut tape, x, false).unwrap();
        let want = (1.0 - 0.2) / (1.0f32 + 1e-3).sqrt();
        assert!((tape.value(z).data()[0] - want).abs() < 1e-6);
        assert!(close(tape.value(mean).data(), [0.2, 0.6]));
        // The moving averages take no gradient and no optimizer slot.
        assert!(!tape.requires_grad(mean));
        assert_eq!(tape.trainable_len(), 4);
    }

    #[test]
    fn after_many_steps_inference_matches_training_on_the_same_batch() {
        let mut tape = Tape::new();
        let mut layer = BatchNormalization::new().momentum(0.9);
        layer
            .build(&mut tape, &[3, 3, 2], &mut Rng::seed(0))
            .unwrap();
        let values: Vec<f32> = (0..4 * 18)
            .map(|i| 5.0 + 3.0 * (i as f32 * 0.7).sin())
            .collect();
        let x = tape.constant(&Tensor::new(&[4, 3, 3, 2], values).unwrap());
        let mut trained = Tensor::default();
        for _ in 0..300 {
            let y = layer.forward(&mut tape, x, true).unwrap();
            trained = tape.value(y).clone();
        }
        let y = layer.forward(&mut tape, x, false).unwrap();
        for (a, b) in tape.value(y).data().iter().zip(trained.data()) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
    }

    #[test]
    fn training_mode_gradients_match_finite_differences() {
        let (tape, layer) = built(3);
        let mut inputs: Vec<Tensor> = layer
            .params()
            .iter()
            .chain(&layer.state())
            .map(|(_, v)| tape.value(*v).clone())
            .collect();
        inputs[0] = Tensor::new(&[3], vec![1.5, -0.5, 2.0]).unwrap();
        inputs
            .push(Tensor::new(&[4, 3], (0..12).map(|i| (i as f32 * 0.7).sin()).collect()).unwrap());
        check_gradients_with(&[], 7, Some(&inputs), |tape, v| {
            layer.forward(tape, v[4], true)
        })
        .unwrap();
    }

    #[test]
    fn bad_settings_are_named() {
        let mut tape = Tape::new();
        for layer in [
            BatchNormalization::new().momentum(1.5),
            BatchNormalization::new().epsilon(0.0),
        ] {
            let mut layer = layer;
            let err = layer.build(&mut tape, &[3], &mut Rng::seed(0)).unwrap_err();
            assert!(err.to_string().contains("BatchNormalization"), "{err}");
        }
    }
}
