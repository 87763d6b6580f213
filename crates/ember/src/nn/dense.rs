//! `Dense`: a fully connected layer, `activation(x · kernel + bias)`.

use super::{init, Layer, LayerConfig, Regularizer};
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::activation::Activation;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

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
    units: usize,
    activation: Activation,
    use_bias: bool,
    kernel_l2: Option<f32>,
    kernel: Option<Var>,
    bias: Option<Var>,
}

impl Dense {
    pub fn new(units: usize) -> Self {
        Dense {
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_l2: None,
            kernel: None,
            bias: None,
        }
    }

    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Adds factor · Σ kernel² to the training loss (Keras `kernel_regularizer=l2(factor)`);
    /// 0 adds nothing.
    pub fn kernel_l2(mut self, factor: f32) -> Self {
        self.kernel_l2 = (factor != 0.0).then_some(factor);
        self
    }

    pub fn units(&self) -> usize {
        self.units
    }

    fn run(&self, tape: &mut Tape, x: Var, activation: Activation) -> Result<Var> {
        let kernel = self
            .kernel
            .ok_or_else(|| Error::invalid("Dense layer used before it was built"))?;
        tape.linear(x, kernel, self.bias, activation)
    }
}

impl Layer for Dense {
    fn kind(&self) -> &'static str {
        "Dense"
    }

    fn build(
        &mut self,
        tape: &mut Tape,
        input_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        if self.units == 0 {
            return Err(Error::invalid("Dense units must be at least 1"));
        }
        if let Some(l2) = self.kernel_l2.filter(|l2| !(l2.is_finite() && *l2 >= 0.0)) {
            return Err(Error::invalid(format!(
                "Dense kernel_regularizer l2 must be a finite number ≥ 0, got {l2}"
            )));
        }
        let Some(&inputs) = input_shape.last().filter(|&&n| n > 0) else {
            return Err(Error::shape(
                "Dense",
                format!("needs inputs with a non-empty last axis, got {input_shape:?}"),
            ));
        };
        let kernel = init::glorot_uniform(&[inputs, self.units], inputs, self.units, rng);
        self.kernel = Some(tape.param(kernel));
        self.bias = self
            .use_bias
            .then(|| tape.param(Tensor::zeros(&[self.units])));
        let mut output = input_shape.to_vec();
        *output.last_mut().expect("checked non-empty") = self.units;
        Ok(output)
    }

    fn forward(&self, tape: &mut Tape, x: Var, _training: bool) -> Result<Var> {
        self.run(tape, x, self.activation)
    }

    fn final_activation(&self) -> Activation {
        self.activation
    }

    fn forward_logits(&self, tape: &mut Tape, x: Var, _training: bool) -> Result<Var> {
        self.run(tape, x, Activation::Linear)
    }

    fn params(&self) -> Vec<(&'static str, Var)> {
        let kernel = self.kernel.map(|k| ("kernel", k));
        let bias = self.bias.map(|b| ("bias", b));
        kernel.into_iter().chain(bias).collect()
    }

    fn l2_penalties(&self) -> Vec<(Var, f32)> {
        match (self.kernel, self.kernel_l2) {
            (Some(kernel), Some(l2)) if l2 > 0.0 => vec![(kernel, l2)],
            _ => Vec::new(),
        }
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Dense {
            units: self.units,
            activation: self.activation,
            use_bias: self.use_bias,
            kernel_regularizer: self.kernel_l2.map(|l2| Regularizer { l2 }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::gradcheck::check_gradients_with;

    #[test]
    fn builds_shapes_and_counts_like_keras() {
        let mut tape = Tape::new();
        let mut dense = Dense::new(64);
        let out = dense.build(&mut tape, &[784], &mut Rng::seed(0)).unwrap();
        assert_eq!(out, vec![64]);
        assert_eq!(tape.value(dense.params()[0].1).shape(), &[784, 64]);
        assert!(tape
            .value(dense.params()[1].1)
            .data()
            .iter()
            .all(|&b| b == 0.0));
        let mut no_bias = Dense::new(3).use_bias(false);
        no_bias
            .build(&mut tape, &[5, 4], &mut Rng::seed(0))
            .unwrap();
        assert_eq!(no_bias.params().len(), 1);
        assert!(Dense::new(0)
            .build(&mut tape, &[4], &mut Rng::seed(0))
            .is_err());
        assert!(Dense::new(2)
            .build(&mut tape, &[], &mut Rng::seed(0))
            .is_err());
        let err = Dense::new(2)
            .kernel_l2(-0.1)
            .build(&mut tape, &[4], &mut Rng::seed(0))
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
            let mut tape = Tape::new();
            let mut dense = Dense::new(3).activation(act);
            dense.build(&mut tape, &[4], &mut Rng::seed(2)).unwrap();
            let weights: Vec<Tensor> = dense
                .params()
                .iter()
                .map(|(_, v)| tape.value(*v).clone())
                .collect();
            let x = Tensor::new(&[2, 4], vec![0.5, -1.0, 1.5, 0.3, -0.7, 0.9, -1.2, 0.4]).unwrap();
            let inputs = [x, weights[0].clone(), weights[1].clone()];
            check_gradients_with(&[], 5, Some(&inputs), |tape, v| {
                tape.linear(v[0], v[1], Some(v[2]), act)
            })
            .unwrap_or_else(|e| panic!("{act:?}: {e}"));
        }
    }
}
