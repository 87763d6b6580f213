//! `MaxPooling2D`: the largest value of each window, per channel.

use super::conv2d::{Padding, Size2};
use super::{Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::conv::Window;
use crate::tensor::forward;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// Keras `MaxPooling2D(pool_size=2, strides=pool_size, padding="valid")`.
#[derive(Clone, Debug)]
pub struct MaxPooling2D {
    pub(crate) pool_size: (usize, usize),
    pub(crate) strides: (usize, usize),
    pub(crate) padding: Padding,
}

impl MaxPooling2D {
    pub fn new(pool_size: (usize, usize)) -> Self {
        MaxPooling2D {
            pool_size,
            strides: pool_size,
            padding: Padding::Valid,
        }
    }

    pub fn strides(mut self, strides: (usize, usize)) -> Self {
        self.strides = strides;
        self
    }

    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    pub(crate) fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let &[h, w, c] = input else {
            return Err(Error::shape(
                "MaxPooling2D",
                format!("needs (height, width, channels) samples, got {input:?}"),
            ));
        };
        let g = Window::new(
            &[1, h, w, c],
            self.pool_size,
            self.strides,
            self.padding == Padding::Same,
        )?;
        Ok(vec![g.out_height, g.out_width, c])
    }
}

impl Layer for MaxPooling2D {
    fn kind(&self) -> &'static str {
        "MaxPooling2D"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        self.output_shape(input_shape)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let same = self.padding == Padding::Same;
        forward::max_pool2d(x, self.pool_size, self.strides, same)
    }

    fn record(&self, tape: &mut Tape, _weights: &[Var], x: Var, _training: bool) -> Result<Var> {
        let same = self.padding == Padding::Same;
        tape.max_pool2d(x, self.pool_size, self.strides, same)
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::MaxPooling2d {
            pool_size: Size2::Rect([self.pool_size.0, self.pool_size.1]),
            strides: Some(Size2::Rect([self.strides.0, self.strides.1])),
            padding: self.padding,
        }
    }
}

/// Keras `AveragePooling2D(pool_size=2, strides=pool_size, padding="valid")`.
#[derive(Clone, Debug)]
pub struct AveragePooling2D {
    pub(crate) pool: MaxPooling2D,
}

impl AveragePooling2D {
    pub fn new(pool_size: (usize, usize)) -> Self {
        AveragePooling2D {
            pool: MaxPooling2D::new(pool_size),
        }
    }

    pub fn strides(mut self, strides: (usize, usize)) -> Self {
        self.pool = self.pool.strides(strides);
        self
    }

    pub fn padding(mut self, padding: Padding) -> Self {
        self.pool = self.pool.padding(padding);
        self
    }
}

impl Layer for AveragePooling2D {
    fn kind(&self) -> &'static str {
        "AveragePooling2D"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        self.pool.output_shape(input_shape)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let p = &self.pool;
        forward::avg_pool2d(x, p.pool_size, p.strides, p.padding == Padding::Same)
    }

    fn record(&self, tape: &mut Tape, _weights: &[Var], x: Var, _training: bool) -> Result<Var> {
        let p = &self.pool;
        tape.avg_pool2d(x, p.pool_size, p.strides, p.padding == Padding::Same)
    }

    fn config(&self) -> LayerConfig {
        let LayerConfig::MaxPooling2d {
            pool_size,
            strides,
            padding,
        } = self.pool.config()
        else {
            unreachable!("MaxPooling2D::config is a pooling config")
        };
        LayerConfig::AveragePooling2d {
            pool_size,
            strides,
            padding,
        }
    }
}

/// Keras `GlobalAveragePooling2D()`: (batch, height, width, channels) → (batch, channels).
#[derive(Clone, Debug, Default)]
pub struct GlobalAveragePooling2D;

impl Layer for GlobalAveragePooling2D {
    fn kind(&self) -> &'static str {
        "GlobalAveragePooling2D"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        match input_shape {
            [_, _, c] => Ok(vec![*c]),
            _ => Err(Error::shape(
                "GlobalAveragePooling2D",
                format!("needs (height, width, channels) samples, got {input_shape:?}"),
            )),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let [n, h, w, c] = global_dims(x.shape())?;
        // One window over the whole image, then drop the 1×1 spatial axes.
        forward::avg_pool2d(x, (h, w), (h, w), false)?.reshape(&[n, c])
    }

    fn record(&self, tape: &mut Tape, _weights: &[Var], x: Var, _training: bool) -> Result<Var> {
        let [n, h, w, c] = global_dims(tape.value(x).shape())?;
        let pooled = tape.avg_pool2d(x, (h, w), (h, w), false)?;
        tape.reshape(pooled, &[n, c])
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::GlobalAveragePooling2d {}
    }
}

/// (batch, height, width, channels) of a global pooling's input.
fn global_dims(shape: &[usize]) -> Result<[usize; 4]> {
    match *shape {
        [n, h, w, c] => Ok([n, h, w, c]),
        _ => Err(Error::shape(
            "GlobalAveragePooling2D",
            format!("needs 4-D input, got {shape:?}"),
        )),
    }
}
