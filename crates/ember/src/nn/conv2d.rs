//! `Conv2D`: a 2-D convolution over channels-last images, `activation(conv(x) + bias)`.

use serde::{Deserialize, Serialize};

use super::{init, Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::activation::Activation;
use crate::tensor::conv::Window;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// Keras padding: "valid" (whole windows only) or "same" (output size ⌈input / stride⌉).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    #[default]
    Valid,
    Same,
}

/// A size written as one number (square) or as [height, width], as Keras accepts both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size2 {
    Square(usize),
    Rect([usize; 2]),
}

impl Size2 {
    pub fn dims(self) -> (usize, usize) {
        match self {
            Size2::Square(n) => (n, n),
            Size2::Rect([h, w]) => (h, w),
        }
    }
}

/// Keras `Conv2D(filters, kernel_size, strides=1, padding="valid", activation)`:
/// glorot-uniform kernel of shape (kh, kw, channels, filters), zero bias.
#[derive(Clone, Debug)]
pub struct Conv2D {
    pub(crate) filters: usize,
    pub(crate) kernel_size: (usize, usize),
    pub(crate) strides: (usize, usize),
    pub(crate) padding: Padding,
    pub(crate) activation: Activation,
    pub(crate) use_bias: bool,
    kernel: Option<Var>,
    bias: Option<Var>,
}

impl Conv2D {
    pub fn new(filters: usize, kernel_size: (usize, usize)) -> Self {
        Conv2D {
            filters,
            kernel_size,
            strides: (1, 1),
            padding: Padding::Valid,
            activation: Activation::Linear,
            use_bias: true,
            kernel: None,
            bias: None,
        }
    }

    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    pub fn strides(mut self, strides: (usize, usize)) -> Self {
        self.strides = strides;
        self
    }

    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Output shape for one (height, width, channels) sample, and the parameter count.
    pub(crate) fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        let &[h, w, c] = input else {
            return Err(Error::shape(
                "Conv2D",
                format!("needs (height, width, channels) samples, got {input:?}"),
            ));
        };
        if self.filters == 0 {
            return Err(Error::invalid("Conv2D filters must be at least 1"));
        }
        let g = Window::new(
            &[1, h, w, c],
            self.kernel_size,
            self.strides,
            self.padding == Padding::Same,
        )?;
        let (kh, kw) = self.kernel_size;
        let params = [kh, kw, c, self.filters]
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .and_then(|k| k.checked_add(if self.use_bias { self.filters } else { 0 }))
            .ok_or_else(|| Error::invalid("Conv2D is too large"))?;
        Ok((vec![g.out_height, g.out_width, self.filters], params))
    }

    fn run(&self, tape: &mut Tape, x: Var, activation: Activation) -> Result<Var> {
        let kernel = self
            .kernel
            .ok_or_else(|| Error::invalid("Conv2D layer used before it was built"))?;
        tape.conv2d(
            x,
            kernel,
            self.bias,
            self.strides,
            self.padding == Padding::Same,
            activation,
        )
    }
}

impl Layer for Conv2D {
    fn kind(&self) -> &'static str {
        "Conv2D"
    }

    fn build(
        &mut self,
        tape: &mut Tape,
        input_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        let (output, _) = self.shape_and_params(input_shape)?;
        let (kh, kw) = self.kernel_size;
        let channels = input_shape[2];
        let receptive = kh * kw;
        let kernel = init::glorot_uniform(
            &[kh, kw, channels, self.filters],
            receptive * channels,
            receptive * self.filters,
            rng,
        );
        self.kernel = Some(tape.param(kernel));
        self.bias = self
            .use_bias
            .then(|| tape.param(Tensor::zeros(&[self.filters])));
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
        self.kernel
            .map(|k| ("kernel", k))
            .into_iter()
            .chain(self.bias.map(|b| ("bias", b)))
            .collect()
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Conv2d {
            filters: self.filters,
            kernel_size: Size2::Rect([self.kernel_size.0, self.kernel_size.1]),
            strides: Size2::Rect([self.strides.0, self.strides.1]),
            padding: self.padding,
            activation: self.activation,
            use_bias: self.use_bias,
        }
    }
}
