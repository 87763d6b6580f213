//! Image augmentation layers (Keras's `RandomFlip`, `RandomTranslation`, `RandomRotation`):
//! in training each image gets its own random transform, drawn from a seeded stream; at
//! evaluation and prediction they pass images through unchanged.

use serde::{Deserialize, Serialize};

use super::dropout::SeedStream;
use super::{Layer, LayerConfig};
use crate::autograd::{Affine, FillMode, Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

/// Which axes `RandomFlip` may mirror.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlipMode {
    /// Left–right.
    Horizontal,
    /// Top–bottom.
    Vertical,
    /// Each independently (Keras's default).
    #[default]
    HorizontalAndVertical,
}

/// What an augmentation layer draws per image.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Flip(FlipMode),
    /// Shifts up to these fractions of the height and width, either way.
    Translation {
        height: f32,
        width: f32,
    },
    /// Turns up to this fraction of a full circle, either way.
    Rotation {
        factor: f32,
    },
}

/// One augmentation layer; build it with [`Augment::flip`], [`Augment::translation`] or
/// [`Augment::rotation`].
///
/// ```
/// use ember::prelude::*;
/// use ember::nn::Augment;
/// let mut model = Sequential::with_seed(&[28, 28, 1], 1);
/// model.add(Augment::translation(0.1, 0.1)).unwrap();
/// model.add(Augment::rotation(0.05)).unwrap();
/// assert_eq!(model.output_shape(), &[28, 28, 1]);
/// assert_eq!(model.count_params(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct Augment {
    kind: Kind,
    fill: FillMode,
    /// Seed of the next batch's transforms; advanced on every training forward pass.
    next_seed: SeedStream,
}

impl Augment {
    fn new(kind: Kind) -> Self {
        Augment {
            kind,
            fill: FillMode::Reflect,
            next_seed: SeedStream::default(),
        }
    }

    /// Keras `RandomFlip(mode)`: mirror each image with probability ½ per axis.
    pub fn flip(mode: FlipMode) -> Self {
        Self::new(Kind::Flip(mode))
    }

    /// Keras `RandomTranslation(height_factor, width_factor)`: shift each image by up to
    /// these fractions of its height and width, in either direction.
    pub fn translation(height_factor: f32, width_factor: f32) -> Self {
        Self::new(Kind::Translation {
            height: height_factor,
            width: width_factor,
        })
    }

    /// Keras `RandomRotation(factor)`: turn each image by up to `factor` · 2π, either way.
    pub fn rotation(factor: f32) -> Self {
        Self::new(Kind::Rotation { factor })
    }

    /// How points from outside the image are filled (default: reflect, as Keras).
    pub fn fill_mode(mut self, fill: FillMode) -> Self {
        self.fill = fill;
        self
    }

    /// One random transform for an image of `height` × `width`.
    fn draw(&self, rng: &mut Rng, height: usize, width: usize) -> Affine {
        let symmetric = |rng: &mut Rng, limit: f32| rng.uniform_range(-limit, limit);
        match self.kind {
            Kind::Flip(mode) => {
                let (vertical, horizontal) = match mode {
                    FlipMode::Horizontal => (false, true),
                    FlipMode::Vertical => (true, false),
                    FlipMode::HorizontalAndVertical => (true, true),
                };
                let mut sign = |allowed: bool| {
                    if allowed && rng.below(2) == 1 {
                        -1.0
                    } else {
                        1.0
                    }
                };
                let (sy, sx) = (sign(vertical), sign(horizontal));
                Affine {
                    matrix: [[sy, 0.0], [0.0, sx]],
                    shift: [0.0, 0.0],
                }
            }
            Kind::Translation {
                height: fh,
                width: fw,
            } => Affine {
                shift: [
                    symmetric(rng, fh * height as f32),
                    symmetric(rng, fw * width as f32),
                ],
                ..Affine::IDENTITY
            },
            Kind::Rotation { factor } => {
                let angle = symmetric(rng, factor * std::f32::consts::TAU);
                let (sin, cos) = angle.sin_cos();
                Affine {
                    matrix: [[cos, -sin], [sin, cos]],
                    shift: [0.0, 0.0],
                }
            }
        }
    }
}

impl Layer for Augment {
    fn kind(&self) -> &'static str {
        match self.kind {
            Kind::Flip(_) => "RandomFlip",
            Kind::Translation { .. } => "RandomTranslation",
            Kind::Rotation { .. } => "RandomRotation",
        }
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut Rng) -> Result<Vec<usize>> {
        let (output, _) = self.config().shape_and_params(input_shape)?;
        self.next_seed.restart(rng.next_u64());
        Ok(output)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }

    fn forward_owned(&self, x: Tensor) -> Result<Tensor> {
        Ok(x)
    }

    fn record(&self, tape: &mut Tape, _weights: &[Var], x: Var, training: bool) -> Result<Var> {
        if !training {
            return Ok(x);
        }
        let shape = tape.value(x).shape().to_vec();
        let &[batch, height, width, _] = shape.as_slice() else {
            return Err(Error::shape(
                self.kind(),
                format!("needs (batch, height, width, channels) images, got {shape:?}"),
            ));
        };
        let seed = self.next_seed.next();
        let mut rng = Rng::seed(seed);
        let transforms: Vec<Affine> = (0..batch)
            .map(|_| self.draw(&mut rng, height, width))
            .collect();
        tape.warp(x, &transforms, self.fill)
    }

    fn config(&self) -> LayerConfig {
        match self.kind {
            Kind::Flip(mode) => LayerConfig::RandomFlip { mode },
            Kind::Translation { height, width } => LayerConfig::RandomTranslation {
                height_factor: height,
                width_factor: width,
                fill_mode: self.fill,
            },
            Kind::Rotation { factor } => LayerConfig::RandomRotation {
                factor,
                fill_mode: self.fill,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    fn image(tape: &mut Tape) -> (Var, Tensor) {
        let values: Vec<f32> = (0..2 * 6 * 6).map(|i| (i as f32 * 0.37).sin()).collect();
        let t = Tensor::new(&[2, 6, 6, 2], [values.clone(), values].concat()).unwrap();
        (tape.constant(&t), t)
    }

    #[test]
    fn identity_at_inference_and_fresh_transforms_in_training() {
        for layer in [
            Augment::flip(FlipMode::HorizontalAndVertical),
            Augment::translation(0.2, 0.2),
            Augment::rotation(0.1),
        ] {
            let mut layer = layer;
            let mut tape = Tape::new();
            layer.build(&[6, 6, 2], &mut Rng::seed(1)).unwrap();
            let (x, original) = image(&mut tape);
            assert_eq!(layer.record(&mut tape, &[], x, false).unwrap(), x);
            let outputs: Vec<Tensor> = (0..4)
                .map(|_| {
                    let y = layer.record(&mut tape, &[], x, true).unwrap();
                    tape.value(y).clone()
                })
                .collect();
            assert!(
                outputs.iter().any(|o| o != &original),
                "{}: training changes images",
                layer.kind()
            );
            assert!(outputs.windows(2).any(|w| w[0] != w[1]), "{}", layer.kind());
        }
    }

    #[test]
    fn a_flip_mirrors_exactly() {
        let mut layer = Augment::flip(FlipMode::Horizontal);
        let mut tape = Tape::new();
        layer.build(&[1, 3, 1], &mut Rng::seed(3)).unwrap();
        let x = tape.constant(&Tensor::new(&[1, 1, 3, 1], vec![1.0, 2.0, 3.0]).unwrap());
        let mut seen = Vec::new();
        for _ in 0..16 {
            let y = layer.record(&mut tape, &[], x, true).unwrap();
            seen.push(tape.value(y).data().to_vec());
        }
        assert!(seen
            .iter()
            .all(|v| v == &[1.0, 2.0, 3.0] || v == &[3.0, 2.0, 1.0]));
        assert!(seen.iter().any(|v| v == &[3.0, 2.0, 1.0]));
        assert!(seen.iter().any(|v| v == &[1.0, 2.0, 3.0]));
    }

    #[test]
    fn settings_and_shapes_are_checked() {
        for (mut layer, shape) in [
            (Augment::translation(1.5, 0.0), vec![4, 4, 1]),
            (Augment::rotation(-0.1), vec![4, 4, 1]),
            (Augment::rotation(0.1), vec![16]),
        ] {
            let err = layer.build(&shape, &mut Rng::seed(0)).unwrap_err();
            assert!(err.to_string().contains("Random"), "{err}");
        }
    }
}
