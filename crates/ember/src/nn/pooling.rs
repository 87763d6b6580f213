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
