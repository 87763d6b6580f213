//! Image augmentation layers (Keras's `RandomFlip`, `RandomTranslation`, `RandomRotation`):
//! in training each image gets its own random transform, drawn from a seeded stream; at
//! evaluation and prediction they pass images through unchanged.

use serde::{Deserialize, Serialize};

use super::dropout::SeedStream;
use super::{Layer, LayerConfig};
use crate::autograd::{Affine, FillMode, Pass, Value};
use crate::error::{Error, Result};
use crate::tensor::random::Rng;

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

/// `type = "random_flip"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomFlipConfig {
    /// Default: "horizontal_and_vertical" (Keras).
    #[serde(default)]
    pub mode: FlipMode,
}

/// `type = "random_translation"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomTranslationConfig {
    /// The largest shift, as a fraction of the height, either way; in [0, 1].
    pub height_factor: f32,
    /// The largest shift, as a fraction of the width, either way; in [0, 1].
    pub width_factor: f32,
    /// Default: "reflect" (Keras).
    #[serde(default)]
    pub fill_mode: FillMode,
}

/// `type = "random_rotation"` in a model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomRotationConfig {
    /// The largest turn, as a fraction of a full circle, either way; in [0, 1].
    pub factor: f32,
    /// Default: "reflect" (Keras).
    #[serde(default)]
    pub fill_mode: FillMode,
}

impl RandomFlipConfig {
    /// The input shape, for (height, width, channels) images; no parameters.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        image_shape("RandomFlip", input, &[])
    }
}

impl RandomTranslationConfig {
    /// The input shape, for (height, width, channels) images and factors in [0, 1]; no
    /// parameters.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        let factors = [
            ("height_factor", self.height_factor),
            ("width_factor", self.width_factor),
        ];
        image_shape("RandomTranslation", input, &factors)
    }
}

impl RandomRotationConfig {
    /// The input shape, for (height, width, channels) images and a factor in [0, 1]; no
    /// parameters.
    pub fn shape_and_params(&self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        image_shape("RandomRotation", input, &[("factor", self.factor)])
    }
}

/// Checks an augmentation layer: (height, width, channels) images and factors in [0, 1].
fn image_shape(
    kind: &str,
    input: &[usize],
    factors: &[(&str, f32)],
) -> Result<(Vec<usize>, usize)> {
    for &(name, value) in factors {
        if !(0.0..=1.0).contains(&value) {
            return Err(Error::invalid(format!(
                "{kind} {name} must be in [0, 1], got {value}"
            )));
        }
    }
    match input {
        [h, w, c] if *h > 0 && *w > 0 && *c > 0 => Ok((input.to_vec(), 0)),
        _ => Err(Error::invalid(format!(
            "{kind} needs (height, width, channels) images, got samples of {input:?}"
        ))),
    }
}

/// What an augmentation layer draws per image: its config.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Flip(RandomFlipConfig),
    Translation(RandomTranslationConfig),
    Rotation(RandomRotationConfig),
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
    /// Seed of the next batch's transforms; advanced on every training forward pass.
    next_seed: SeedStream,
}

impl From<RandomFlipConfig> for Augment {
    fn from(config: RandomFlipConfig) -> Self {
        Augment::new(Kind::Flip(config))
    }
}

impl From<RandomTranslationConfig> for Augment {
    fn from(config: RandomTranslationConfig) -> Self {
        Augment::new(Kind::Translation(config))
    }
}

impl From<RandomRotationConfig> for Augment {
    fn from(config: RandomRotationConfig) -> Self {
        Augment::new(Kind::Rotation(config))
    }
}

impl Augment {
    fn new(kind: Kind) -> Self {
        Augment {
            kind,
            next_seed: SeedStream::default(),
        }
    }

    /// Keras `RandomFlip(mode)`: mirror each image with probability ½ per axis.
    pub fn flip(mode: FlipMode) -> Self {
        Augment::from(RandomFlipConfig { mode })
    }

    /// Keras `RandomTranslation(height_factor, width_factor)`: shift each image by up to
    /// these fractions of its height and width, in either direction.
    pub fn translation(height_factor: f32, width_factor: f32) -> Self {
        Augment::from(RandomTranslationConfig {
            height_factor,
            width_factor,
            fill_mode: FillMode::default(),
        })
    }

    /// Keras `RandomRotation(factor)`: turn each image by up to `factor` · 2π, either way.
    pub fn rotation(factor: f32) -> Self {
        Augment::from(RandomRotationConfig {
            factor,
            fill_mode: FillMode::default(),
        })
    }

    /// How points from outside the image are filled (default: reflect, as Keras). A flip
    /// brings in no such points, so it has no fill mode.
    pub fn fill_mode(mut self, fill: FillMode) -> Self {
        match &mut self.kind {
            Kind::Flip(_) => {}
            Kind::Translation(c) => c.fill_mode = fill,
            Kind::Rotation(c) => c.fill_mode = fill,
        }
        self
    }

    fn fill(&self) -> FillMode {
        match &self.kind {
            Kind::Flip(_) => FillMode::default(),
            Kind::Translation(c) => c.fill_mode,
            Kind::Rotation(c) => c.fill_mode,
        }
    }

    /// One random transform for an image of `height` × `width`.
    fn draw(&self, rng: &mut Rng, height: usize, width: usize) -> Affine {
        let symmetric = |rng: &mut Rng, limit: f32| rng.uniform_range(-limit, limit);
        match &self.kind {
            Kind::Flip(RandomFlipConfig { mode }) => {
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
            Kind::Translation(c) => Affine {
                shift: [
                    symmetric(rng, c.height_factor * height as f32),
                    symmetric(rng, c.width_factor * width as f32),
                ],
                ..Affine::IDENTITY
            },
            Kind::Rotation(c) => {
                let angle = symmetric(rng, c.factor * std::f32::consts::TAU);
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
            Kind::Translation(_) => "RandomTranslation",
            Kind::Rotation(_) => "RandomRotation",
        }
    }

    fn build(&mut self, input_shape: &[usize], rng: &mut Rng) -> Result<Vec<usize>> {
        let (output, _) = match &self.kind {
            Kind::Flip(c) => c.shape_and_params(input_shape)?,
            Kind::Translation(c) => c.shape_and_params(input_shape)?,
            Kind::Rotation(c) => c.shape_and_params(input_shape)?,
        };
        self.next_seed.restart(rng.next_u64());
        Ok(output)
    }

    fn call(&self, pass: &mut Pass, x: Value, _mask: Option<Value>) -> Result<Value<'static>> {
        if !pass.training() {
            return Ok(x.into_owned());
        }
        let shape = pass.shape(&x)?.to_vec();
        let &[batch, height, width, _] = shape.as_slice() else {
            return Err(Error::shape(
                self.kind(),
                format!("needs (batch, height, width, channels) images, got {shape:?}"),
            ));
        };
        let seed = self.next_seed.next();
        let mut rng = Rng::seed(seed);
        // A batch shared among processes: this one's rows of the whole batch's draws.
        let (skip, drawn) = match pass.shard(batch) {
            Some(shard) => (shard.offset, shard.offset + batch),
            None => (0, batch),
        };
        let transforms: Vec<Affine> = (0..drawn)
            .map(|_| self.draw(&mut rng, height, width))
            .skip(skip)
            .collect();
        pass.warp(&x, &transforms, self.fill())
    }

    fn skip_call(&self) {
        self.next_seed.next();
    }

    fn config(&self) -> LayerConfig {
        match &self.kind {
            Kind::Flip(c) => LayerConfig::RandomFlip(c.clone()),
            Kind::Translation(c) => LayerConfig::RandomTranslation(c.clone()),
            Kind::Rotation(c) => LayerConfig::RandomRotation(c.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::{Tape, Var};
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
            assert_eq!(
                crate::nn::call_on_tape(&layer, &mut tape, &[], x, None, false).unwrap(),
                x
            );
            let outputs: Vec<Tensor> = (0..4)
                .map(|_| {
                    let y = crate::nn::call_on_tape(&layer, &mut tape, &[], x, None, true).unwrap();
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
            let y = crate::nn::call_on_tape(&layer, &mut tape, &[], x, None, true).unwrap();
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
