//! Pooling layers: the largest or mean value of each window, per channel, or of the whole image.

use serde::{Deserialize, Serialize};

use super::conv2d::{Padding, Size2};
use super::{Layer, LayerConfig};
use crate::autograd::{Pass, Pooling, Value};
use crate::error::{Error, Result};
use crate::tensor::conv::Window;
use crate::tensor::random::Rng;

/// `type = "max_pooling2d"` or `type = "average_pooling2d"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolingConfig {
    /// Default: 2.
    #[serde(default = "two_by_two")]
    pub pool_size: Size2,
    /// Default: the pool size.
    #[serde(default)]
    pub strides: Option<Size2>,
    /// Default: "valid".
    #[serde(default)]
    pub padding: Padding,
}

fn two_by_two() -> Size2 {
    Size2::Square(2)
}

impl PoolingConfig {
    fn new((height, width): (usize, usize)) -> Self {
        PoolingConfig {
            pool_size: Size2::Rect([height, width]),
            strides: None,
            padding: Padding::Valid,
        }
    }

    /// Output shape for one (height, width, channels) sample (pooling has no parameters),
    /// without building.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        let &[h, w, c] = input else {
            return Err(Error::shape(
                "Pooling2D",
                format!("needs (height, width, channels) samples, got {input:?}"),
            ));
        };
        let g = Window::new(&[1, h, w, c], self.pool(), self.strides(), self.same())?;
        Ok((vec![g.out_height, g.out_width, c], 0))
    }

    fn pooling(&self, average: bool) -> Option<Pooling> {
        Some(Pooling {
            size: self.pool(),
            strides: self.strides(),
            same: self.same(),
            average,
        })
    }

    fn pool(&self) -> (usize, usize) {
        self.pool_size.dims()
    }

    fn strides(&self) -> (usize, usize) {
        self.strides.unwrap_or(self.pool_size).dims()
    }

    fn same(&self) -> bool {
        self.padding == Padding::Same
    }
}

/// Keras `MaxPooling2D(pool_size=2, strides=pool_size, padding="valid")`.
#[derive(Clone, Debug)]
pub struct MaxPooling2D {
    config: PoolingConfig,
}

/// Keras `AveragePooling2D(pool_size=2, strides=pool_size, padding="valid")`.
#[derive(Clone, Debug)]
pub struct AveragePooling2D {
    config: PoolingConfig,
}

impl From<PoolingConfig> for MaxPooling2D {
    fn from(config: PoolingConfig) -> Self {
        MaxPooling2D { config }
    }
}

impl From<PoolingConfig> for AveragePooling2D {
    fn from(config: PoolingConfig) -> Self {
        AveragePooling2D { config }
    }
}

impl MaxPooling2D {
    pub fn new(pool_size: (usize, usize)) -> Self {
        MaxPooling2D::from(PoolingConfig::new(pool_size))
    }

    pub fn strides(mut self, (height, width): (usize, usize)) -> Self {
        self.config.strides = Some(Size2::Rect([height, width]));
        self
    }

    pub fn padding(mut self, padding: Padding) -> Self {
        self.config.padding = padding;
        self
    }
}

impl AveragePooling2D {
    pub fn new(pool_size: (usize, usize)) -> Self {
        AveragePooling2D::from(PoolingConfig::new(pool_size))
    }

    pub fn strides(mut self, (height, width): (usize, usize)) -> Self {
        self.config.strides = Some(Size2::Rect([height, width]));
        self
    }

    pub fn padding(mut self, padding: Padding) -> Self {
        self.config.padding = padding;
        self
    }
}

impl Layer for MaxPooling2D {
    fn kind(&self) -> &'static str {
        "MaxPooling2D"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        Ok(self.config.shape_and_params(input_shape)?.0)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        let c = &self.config;
        pass.pool2d(&x, c.pool(), c.strides(), c.same(), false)
    }

    fn pooling(&self) -> Option<Pooling> {
        self.config.pooling(false)
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::MaxPooling2d(self.config.clone())
    }
}

impl Layer for AveragePooling2D {
    fn kind(&self) -> &'static str {
        "AveragePooling2D"
    }

    fn build(&mut self, input_shape: &[usize], _rng: &mut Rng) -> Result<Vec<usize>> {
        Ok(self.config.shape_and_params(input_shape)?.0)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        let c = &self.config;
        pass.pool2d(&x, c.pool(), c.strides(), c.same(), true)
    }

    fn pooling(&self) -> Option<Pooling> {
        self.config.pooling(true)
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::AveragePooling2d(self.config.clone())
    }
}

/// `type = "global_average_pooling2d"` in a model file: no settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalAveragePooling2DConfig {}

impl GlobalAveragePooling2DConfig {
    /// (height, width, channels) samples become (channels); no parameters.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        match input {
            [_, _, c] => Ok((vec![*c], 0)),
            _ => Err(Error::shape(
                "GlobalAveragePooling2D",
                format!("needs (height, width, channels) samples, got {input:?}"),
            )),
        }
    }
}

impl From<GlobalAveragePooling2DConfig> for GlobalAveragePooling2D {
    fn from(_: GlobalAveragePooling2DConfig) -> Self {
        GlobalAveragePooling2D
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
        Ok(GlobalAveragePooling2DConfig {}
            .shape_and_params(input_shape)?
            .0)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        let [n, h, w, c] = global_dims(pass.shape(&x)?)?;
        // One window over the whole image, then drop the 1×1 spatial axes.
        let pooled = pass.pool2d(&x, (h, w), (h, w), false, true)?;
        pass.reshape(pooled, &[n, c])
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::GlobalAveragePooling2d(GlobalAveragePooling2DConfig {})
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
