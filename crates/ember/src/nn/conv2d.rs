//! `Conv2D`: a 2-D convolution over channels-last images, `activation(conv(x) + bias)`.

use serde::{Deserialize, Serialize};

use super::{init, Layer, LayerConfig, WeightRef};
use crate::autograd::{Pass, Value};
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

/// `type = "conv2d"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2DConfig {
    pub filters: usize,
    pub kernel_size: Size2,
    /// Default: 1.
    #[serde(default = "one_by_one")]
    pub strides: Size2,
    /// Default: "valid".
    #[serde(default)]
    pub padding: Padding,
    /// Default: linear (none).
    #[serde(default)]
    pub activation: Activation,
    /// Default: true.
    #[serde(default = "super::config::yes")]
    pub use_bias: bool,
}

fn one_by_one() -> Size2 {
    Size2::Square(1)
}

impl Conv2DConfig {
    /// Output shape for one (height, width, channels) sample, and the parameter count,
    /// without building.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
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
            self.kernel_size.dims(),
            self.strides.dims(),
            self.padding == Padding::Same,
        )?;
        let (kh, kw) = self.kernel_size.dims();
        let params = [kh, kw, c, self.filters]
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .and_then(|k| k.checked_add(if self.use_bias { self.filters } else { 0 }))
            .ok_or_else(|| Error::invalid("Conv2D is too large"))?;
        Ok((vec![g.out_height, g.out_width, self.filters], params))
    }
}

/// Keras `Conv2D(filters, kernel_size, strides=1, padding="valid", activation)`:
/// glorot-uniform kernel of shape (kh, kw, channels, filters), zero bias.
#[derive(Clone, Debug)]
pub struct Conv2D {
    config: Conv2DConfig,
    kernel: Option<Tensor>,
    bias: Option<Tensor>,
}

impl From<Conv2DConfig> for Conv2D {
    fn from(config: Conv2DConfig) -> Self {
        Conv2D {
            config,
            kernel: None,
            bias: None,
        }
    }
}

impl Conv2D {
    pub fn new(filters: usize, (height, width): (usize, usize)) -> Self {
        Conv2D::from(Conv2DConfig {
            filters,
            kernel_size: Size2::Rect([height, width]),
            strides: Size2::Rect([1, 1]),
            padding: Padding::Valid,
            activation: Activation::Linear,
            use_bias: true,
        })
    }

    pub fn activation(mut self, activation: Activation) -> Self {
        self.config.activation = activation;
        self
    }

    pub fn strides(mut self, (height, width): (usize, usize)) -> Self {
        self.config.strides = Size2::Rect([height, width]);
        self
    }

    pub fn padding(mut self, padding: Padding) -> Self {
        self.config.padding = padding;
        self
    }

    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.config.use_bias = use_bias;
        self
    }
}

impl Layer for Conv2D {
    fn kind(&self) -> &'static str {
        "Conv2D"
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut Rng) -> Result<Vec<usize>> {
        let (output, _) = self.config.shape_and_params(input_shape)?;
        let (kh, kw) = self.config.kernel_size.dims();
        let (channels, filters) = (input_shape[2], self.config.filters);
        let receptive = kh * kw;
        let kernel = init::glorot_uniform(
            &[kh, kw, channels, filters],
            receptive * channels,
            receptive * filters,
            rng,
        );
        self.kernel = Some(kernel);
        self.bias = self.config.use_bias.then(|| Tensor::zeros(&[filters]));
        Ok(output)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        let c = &self.config;
        let kernel = pass.weight(0, self.kernel.as_ref(), "Conv2D")?;
        let bias = match &self.bias {
            Some(bias) => Some(pass.weight(1, Some(bias), "Conv2D")?),
            None => None,
        };
        let window = (c.strides.dims(), c.padding == Padding::Same);
        let activation = pass.activation(c.activation);
        pass.conv2d(&x, &kernel, bias.as_ref(), window, activation)
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

    fn config(&self) -> LayerConfig {
        LayerConfig::Conv2d(self.config.clone())
    }
}
