//! The finite-difference gradient checker every op and layer is tested with.
//!
//! The op's output is projected onto random weights `r` (so every output element matters),
//! back-propagated once, and each input element's gradient is compared with the central
//! difference `(f(x + h) - f(x - h)) / 2h` of `f = Σ r · op(x)`.

use super::{Tape, Var};
use crate::error::Result;
use crate::tensor::random::Rng;
use crate::tensor::Tensor;

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
    let mut inputs: Vec<Tensor> = match inputs {
        Some(given) => given.to_vec(),
        None => shapes
            .iter()
            .map(|shape| {
                let mut t = Tensor::zeros(shape);
                for v in t.data_mut() {
                    let magnitude = rng.uniform_range(0.2, 2.0);
                    *v = if rng.below(2) == 0 {
                        magnitude
                    } else {
                        -magnitude
                    };
                }
                t
            })
            .collect(),
    };

    // Analytic gradients.
    let mut tape = Tape::new();
    let vars: Vec<Var> = inputs.iter().map(|t| tape.param(t.clone())).collect();
    let out = build(&mut tape, &vars).map_err(|e| format!("forward failed: {e}"))?;
    let mut projection = tape.value(out).clone();
    for v in projection.data_mut() {
        *v = rng.uniform_range(-1.0, 1.0);
    }
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
    let objective = |inputs: &[Tensor]| -> Result<f64, String> {
        let mut tape = Tape::new();
        let vars: Vec<Var> = inputs.iter().map(|t| tape.param(t.clone())).collect();
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
        for k in 0..inputs[i].len() {
            let original = inputs[i].data()[k];
            inputs[i].data_mut()[k] = original + STEP;
            let plus = objective(&inputs)?;
            inputs[i].data_mut()[k] = original - STEP;
            let minus = objective(&inputs)?;
            inputs[i].data_mut()[k] = original;
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
            out.value.data_mut().copy_from_slice(&values);
            Ok(Var(i))
        });
        assert!(result.is_err(), "the checker must reject a wrong gradient");
    }
}
