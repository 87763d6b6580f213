//! The finite-difference gradient checker every op and layer is tested with.
//!
//! The op's output is projected onto random weights `r` (so every output element matters),
//! back-propagated once, and each input element's gradient is compared with the central
//! difference `(f(x + h) - f(x - h)) / 2h` of `f = Σ r · op(x)`.

use super::{Tape, Var};
use crate::error::Result;
use crate::tensor::random::Rng;
use crate::tensor::{numel, Tensor};

/// Step of the central difference; f32 round-off and curvature balance near here.
const STEP: f32 = 5e-3;
const RELATIVE_TOLERANCE: f64 = 1e-2;
const ABSOLUTE_TOLERANCE: f64 = 2e-3;

/// Checks the gradients of `build` at random inputs of the given shapes, drawn with `seed`
/// (magnitudes in [0.2, 2], away from the kink of relu). Returns a description of the first
/// mismatch.
pub fn check_gradients(
    shapes: &[&[usize]],
    seed: u64,
    build: impl Fn(&mut Tape, &[Var]) -> Result<Var>,
) -> Result<(), String> {
    check_gradients_with(shapes, seed, None, build)
}

/// Like [`check_gradients`], with explicit input values when `inputs` is given.
pub fn check_gradients_with(
    shapes: &[&[usize]],
    seed: u64,
    inputs: Option<&[Tensor]>,
    build: impl Fn(&mut Tape, &[Var]) -> Result<Var>,
) -> Result<(), String> {
    let mut rng = Rng::seed(seed);
    // Each input as its shape and values, which the numeric pass perturbs one at a time.
    let mut inputs: Vec<(Vec<usize>, Vec<f32>)> = match inputs {
        Some(given) => given
            .iter()
            .map(|t| (t.shape().to_vec(), t.data().to_vec()))
            .collect(),
        None => shapes
            .iter()
            .map(|shape| {
                let values = (0..numel(shape))
                    .map(|_| {
                        let magnitude = rng.uniform_range(0.2, 2.0);
                        if rng.below(2) == 0 {
                            magnitude
                        } else {
                            -magnitude
                        }
                    })
                    .collect();
                (shape.to_vec(), values)
            })
            .collect(),
    };
    let params = |tape: &mut Tape, inputs: &[(Vec<usize>, Vec<f32>)]| -> Vec<Var> {
        inputs
            .iter()
            .map(|(shape, values)| {
                let value = Tensor::new(shape, values.clone()).expect("lengths agree");
                tape.param(value)
            })
            .collect()
    };

    // Analytic gradients.
    let mut tape = Tape::new();
    let vars = params(&mut tape, &inputs);
    let out = build(&mut tape, &vars).map_err(|e| format!("forward failed: {e}"))?;
    let out_shape = tape.value(out).shape().to_vec();
    let weights = (0..numel(&out_shape))
        .map(|_| rng.uniform_range(-1.0, 1.0))
        .collect();
    let projection = Tensor::new(&out_shape, weights).expect("lengths agree");
    tape.backward_from(out, &projection)
        .map_err(|e| format!("backward failed: {e}"))?;
    let analytic: Vec<Tensor> = vars
        .iter()
        .map(|&v| {
            tape.grad(v)
                .cloned()
                .unwrap_or_else(|| Tensor::zeros(tape.value(v).shape()))
        })
        .collect();

    // Numeric gradients, one element at a time.
    let objective = |inputs: &[(Vec<usize>, Vec<f32>)]| -> Result<f64, String> {
        let mut tape = Tape::new();
        let vars = params(&mut tape, inputs);
        let out = build(&mut tape, &vars).map_err(|e| e.to_string())?;
        Ok(tape
            .value(out)
            .data()
            .iter()
            .zip(projection.data())
            .map(|(&a, &r)| a as f64 * r as f64)
            .sum())
    };
    for i in 0..inputs.len() {
        for k in 0..inputs[i].1.len() {
            let original = inputs[i].1[k];
            inputs[i].1[k] = original + STEP;
            let plus = objective(&inputs)?;
            inputs[i].1[k] = original - STEP;
            let minus = objective(&inputs)?;
            inputs[i].1[k] = original;
            let numeric = (plus - minus) / (2.0 * STEP as f64);
            let got = analytic[i].data()[k] as f64;
            let tolerance = ABSOLUTE_TOLERANCE + RELATIVE_TOLERANCE * got.abs().max(numeric.abs());
            if (got - numeric).abs() > tolerance {
                return Err(format!(
                    "input {i} element {k}: backward gives {got:.6}, finite differences {numeric:.6}"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::ops::Op;

    #[test]
    fn a_wrong_gradient_is_caught() {
        // Record y = x² but declare it as a Scale by 1: the gradient is wrong by 2x.
        let result = check_gradients(&[&[3]], 1, |tape, v| {
            let square = tape.square(v[0])?;
            let i = tape.push(Op::Scale(v[0], 1.0), &[3], true);
            let values = tape.value(square).data().to_vec();
            let (_, out) = tape.split(i);
            out.value.copy_from_slice(&values);
            Ok(Var(i))
        });
        assert!(result.is_err(), "the checker must reject a wrong gradient");
    }
}
