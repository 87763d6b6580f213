//! `MaxPooling2D`: the largest value of each window, per channel.

use super::conv2d::{Padding, Size2};
use super::{Layer, LayerConfig};
use crate::autograd::{Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::conv::Window;
use crate::tensor::random::Rng;

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

    fn build(
        &mut self,
        _tape: &mut Tape,
        input_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        self.output_shape(input_shape)
    }

    fn forward(&self, tape: &mut Tape, x: Var, _training: bool) -> Result<Var> {
        tape.max_pool2d(
            x,
            self.pool_size,
            self.strides,
            self.padding == Padding::Same,
        )
    }

    fn params(&self) -> Vec<(&'static str, Var)> {
        Vec::new()
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

    fn build(
        &mut self,
        _tape: &mut Tape,
        input_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        self.pool.output_shape(input_shape)
    }

    fn forward(&self, tape: &mut Tape, x: Var, _training: bool) -> Result<Var> {
        let p = &self.pool;
        tape.avg_pool2d(x, p.pool_size, p.strides, p.padding == Padding::Same)
    }

    fn params(&self) -> Vec<(&'static str, Var)> {
        Vec::new()
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

    fn build(
        &mut self,
        _tape: &mut Tape,
        input_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<Vec<usize>> {
        match input_shape {
            [_, _, c] => Ok(vec![*c]),
            _ => Err(Error::shape(
                "GlobalAveragePooling2D",
                format!("needs (height, width, channels) samples, got {input_shape:?}"),
            )),
        }
    }

    fn forward(&self, tape: &mut Tape, x: Var, _training: bool) -> Result<Var> {
        let shape = tape.value(x).shape().to_vec();
        let [n, h, w, c] = shape[..] else {
            return Err(Error::shape(
                "GlobalAveragePooling2D",
                format!("needs 4-D input, got {shape:?}"),
            ));
        };
        // One window over the whole image, then drop the 1×1 spatial axes.
        let pooled = tape.avg_pool2d(x, (h, w), (h, w), false)?;
        tape.reshape(pooled, &[n, c])
    }

    fn params(&self) -> Vec<(&'static str, Var)> {
        Vec::new()
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::GlobalAveragePooling2d {}
    }
}
