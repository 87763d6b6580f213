//! Gradient transforms: what happens to a step's gradients between back-propagation and the
//! optimizer's update. A training step is *gradients → transforms, in order → update*;
//! clipping lives here today, and an all-reduce across processes or privacy noise is one
//! more transform in the same list.

use std::fmt::Debug;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// One stage between back-propagation and the optimizer. `apply` receives the gradients of
/// the trainable weights that the loss reached, in the order of the model's weights, and
/// may change them in place (clip, scale, sum across processes, add noise).
///
/// ```
/// use ember::optim::GradientTransform;
/// use ember::Tensor;
///
/// /// Doubles every gradient: the same as SGD at twice the learning rate.
/// #[derive(Clone, Debug)]
/// struct Double;
/// impl GradientTransform for Double {
///     fn name(&self) -> &'static str { "double" }
///     fn apply(&mut self, grads: &mut [&mut Tensor]) -> ember::Result<()> {
///         grads.iter_mut().for_each(|g| g.scale_in_place(2.0));
///         Ok(())
///     }
///     fn clone_box(&self) -> Box<dyn GradientTransform> { Box::new(self.clone()) }
/// }
/// ```
pub trait GradientTransform: Send + Sync + Debug {
    /// A short name for messages ("global_clipnorm").
    fn name(&self) -> &'static str;

    /// Transforms one step's gradients in place.
    fn apply(&mut self, grads: &mut [&mut Tensor]) -> Result<()>;

    /// A copy of the transform and its state (a compiled model can be cloned).
    fn clone_box(&self) -> Box<dyn GradientTransform>;
}

impl Clone for Box<dyn GradientTransform> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Runs `transforms` over `grads`, in order; an error names the transform.
pub fn apply_all(
    transforms: &mut [Box<dyn GradientTransform>],
    grads: &mut [&mut Tensor],
) -> Result<()> {
    for transform in transforms {
        transform.apply(grads).map_err(|e| {
            Error::invalid(format!(
                "gradient transform {}: {}",
                transform.name(),
                e.detail()
            ))
        })?;
    }
    Ok(())
}

fn positive(name: &str, value: f32) -> Result<f32> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(Error::invalid(format!(
            "{name} must be a positive number, got {value}"
        )))
    }
}

/// The factor that brings a gradient of norm `norm` within `limit`: TensorFlow's
/// `clip_by_norm`, `limit / max(norm, limit)` (1 when already within it).
fn clip_factor(norm: f64, limit: f32) -> f32 {
    (limit as f64 / norm.max(limit as f64)) as f32
}

/// Keras's `global_clipnorm`: when the norm of all gradients together exceeds `limit`,
/// every gradient is scaled by `limit / global_norm` (TensorFlow's `clip_by_global_norm`),
/// so the update keeps its direction.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalNormClip {
    limit: f32,
}

impl GlobalNormClip {
    pub fn new(limit: f32) -> Result<Self> {
        Ok(GlobalNormClip {
            limit: positive("global_clipnorm", limit)?,
        })
    }

    /// `√(Σ over every gradient of Σ g²)`.
    pub fn global_norm(grads: &[&mut Tensor]) -> f64 {
        grads.iter().map(|g| g.sum_of_squares()).sum::<f64>().sqrt()
    }
}

impl GradientTransform for GlobalNormClip {
    fn name(&self) -> &'static str {
        "global_clipnorm"
    }

    fn apply(&mut self, grads: &mut [&mut Tensor]) -> Result<()> {
        let norm = Self::global_norm(grads);
        if !norm.is_finite() {
            // Scaling by 0 would hide the NaN; TerminateOnNan sees the loss instead.
            return Ok(());
        }
        let factor = clip_factor(norm, self.limit);
        if factor < 1.0 {
            grads.iter_mut().for_each(|g| g.scale_in_place(factor));
        }
        Ok(())
    }

    fn clone_box(&self) -> Box<dyn GradientTransform> {
        Box::new(self.clone())
    }
}

/// Keras's `clipnorm`: each weight's gradient is clipped to norm `limit` on its own.
#[derive(Clone, Debug, PartialEq)]
pub struct NormClip {
    limit: f32,
}

impl NormClip {
    pub fn new(limit: f32) -> Result<Self> {
        Ok(NormClip {
            limit: positive("clipnorm", limit)?,
        })
    }
}

impl GradientTransform for NormClip {
    fn name(&self) -> &'static str {
        "clipnorm"
    }

    fn apply(&mut self, grads: &mut [&mut Tensor]) -> Result<()> {
        for g in grads.iter_mut() {
            let norm = g.sum_of_squares().sqrt();
            if norm.is_finite() && norm > self.limit as f64 {
                g.scale_in_place(clip_factor(norm, self.limit));
            }
        }
        Ok(())
    }

    fn clone_box(&self) -> Box<dyn GradientTransform> {
        Box::new(self.clone())
    }
}

/// Keras's `clipvalue`: every gradient element limited to `[-limit, limit]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueClip {
    limit: f32,
}

impl ValueClip {
    pub fn new(limit: f32) -> Result<Self> {
        Ok(ValueClip {
            limit: positive("clipvalue", limit)?,
        })
    }
}

impl GradientTransform for ValueClip {
    fn name(&self) -> &'static str {
        "clipvalue"
    }

    fn apply(&mut self, grads: &mut [&mut Tensor]) -> Result<()> {
        grads
            .iter_mut()
            .for_each(|g| g.clamp_in_place(-self.limit, self.limit));
        Ok(())
    }

    fn clone_box(&self) -> Box<dyn GradientTransform> {
        Box::new(self.clone())
    }
}

/// Multiplies every gradient by a constant (loss scaling, or averaging a sum of gradients
/// over processes).
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    factor: f32,
}

impl Scale {
    pub fn new(factor: f32) -> Result<Self> {
        if !factor.is_finite() {
            return Err(Error::invalid(format!(
                "a gradient scale must be finite, got {factor}"
            )));
        }
        Ok(Scale { factor })
    }
}

impl GradientTransform for Scale {
    fn name(&self) -> &'static str {
        "scale"
    }

    fn apply(&mut self, grads: &mut [&mut Tensor]) -> Result<()> {
        grads.iter_mut().for_each(|g| g.scale_in_place(self.factor));
        Ok(())
    }

    fn clone_box(&self) -> Box<dyn GradientTransform> {
        Box::new(self.clone())
    }
}

/// Keras's clipping options of an optimizer (`clipnorm`, `clipvalue`, `global_clipnorm`) as
/// the transform it stands for. As in Keras 3, at most one may be set: combined, Keras 3
/// refuses them and Keras 2 applied only one, so a combination has no single meaning.
pub fn keras_clipping(
    clipnorm: Option<f32>,
    clipvalue: Option<f32>,
    global_clipnorm: Option<f32>,
) -> Result<Vec<Box<dyn GradientTransform>>> {
    let set = [clipnorm, clipvalue, global_clipnorm]
        .iter()
        .filter(|o| o.is_some())
        .count();
    if set > 1 {
        let show = |o: Option<f32>| o.map_or("none".to_string(), |v| v.to_string());
        return Err(Error::invalid(format!(
            "only one of clipnorm, clipvalue and global_clipnorm can be set (as in Keras); got clipnorm = {}, clipvalue = {}, global_clipnorm = {}",
            show(clipnorm),
            show(clipvalue),
            show(global_clipnorm)
        )));
    }
    let transform: Option<Box<dyn GradientTransform>> = if let Some(limit) = clipvalue {
        Some(Box::new(ValueClip::new(limit)?))
    } else if let Some(limit) = clipnorm {
        Some(Box::new(NormClip::new(limit)?))
    } else if let Some(limit) = global_clipnorm {
        Some(Box::new(GlobalNormClip::new(limit)?))
    } else {
        None
    };
    Ok(transform.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensors(values: &[&[f32]]) -> Vec<Tensor> {
        values
            .iter()
            .map(|v| Tensor::new(&[v.len()], v.to_vec()).unwrap())
            .collect()
    }

    fn run(transform: &mut dyn GradientTransform, values: &[&[f32]]) -> Vec<Vec<f32>> {
        let mut grads = tensors(values);
        let mut refs: Vec<&mut Tensor> = grads.iter_mut().collect();
        transform.apply(&mut refs).unwrap();
        grads.iter().map(|g| g.data().to_vec()).collect()
    }

    fn close(a: &[Vec<f32>], b: &[&[f32]]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(a, b)| {
                a.len() == b.len() && a.iter().zip(*b).all(|(x, y)| (x - y).abs() < 1e-6)
            })
    }

    #[test]
    fn global_norm_clipping_follows_keras_formula_by_hand() {
        // Gradients [3, 4] and [12]: global norm √(9 + 16 + 144) = 13. With
        // global_clipnorm = 6.5, Keras scales all by 6.5 / 13 = 0.5.
        let out = run(
            &mut GlobalNormClip::new(6.5).unwrap(),
            &[&[3.0, 4.0], &[12.0]],
        );
        assert!(close(&out, &[&[1.5, 2.0], &[6.0]]), "{out:?}");
        // Within the limit: unchanged.
        let out = run(
            &mut GlobalNormClip::new(13.5).unwrap(),
            &[&[3.0, 4.0], &[12.0]],
        );
        assert!(close(&out, &[&[3.0, 4.0], &[12.0]]), "{out:?}");
        // clipnorm clips each on its own: [3, 4] (norm 5) → [1.8, 2.4] at 3; [12] → [3].
        let out = run(&mut NormClip::new(3.0).unwrap(), &[&[3.0, 4.0], &[12.0]]);
        assert!(close(&out, &[&[1.8, 2.4], &[3.0]]), "{out:?}");
        let out = run(&mut ValueClip::new(3.5).unwrap(), &[&[3.0, -4.0], &[12.0]]);
        assert!(close(&out, &[&[3.0, -3.5], &[3.5]]), "{out:?}");
    }

    #[test]
    fn bad_limits_and_combined_options_are_refused() {
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(GlobalNormClip::new(bad).is_err());
            assert!(NormClip::new(bad).is_err());
            assert!(ValueClip::new(bad).is_err());
        }
        // Keras 3 refuses any two of the three.
        for (norm, value, global) in [
            (Some(1.0), None, Some(1.0)),
            (Some(1.0), Some(2.0), None),
            (None, Some(2.0), Some(1.0)),
        ] {
            let err = keras_clipping(norm, value, global).unwrap_err();
            assert!(err.to_string().contains("only one of"), "{err}");
        }
        for (options, name) in [
            ((Some(1.0), None, None), "clipnorm"),
            ((None, Some(1.0), None), "clipvalue"),
            ((None, None, Some(1.0)), "global_clipnorm"),
        ] {
            let chain = keras_clipping(options.0, options.1, options.2).unwrap();
            let names: Vec<&str> = chain.iter().map(|t| t.name()).collect();
            assert_eq!(names, [name]);
        }
        assert!(keras_clipping(None, None, None).unwrap().is_empty());
    }

    #[test]
    fn a_nan_gradient_is_left_for_the_loss_to_report() {
        let out = run(&mut GlobalNormClip::new(1.0).unwrap(), &[&[f32::NAN, 4.0]]);
        assert!(out[0][0].is_nan() && out[0][1] == 4.0);
    }
}
