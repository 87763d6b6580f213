//! Merge layers: `Add`, `Multiply`, `Concatenate` and `Dot`, which combine the outputs of
//! several layers of a functional model into one (Keras's merging layers). They have no
//! weights.

use serde::{Deserialize, Serialize};

use crate::autograd::{BinaryOp, Pass, Value};
use crate::error::{Error, Result};
use crate::tensor::concat::concat_shape;
use crate::tensor::Tensor;

/// How a merge layer combines its inputs. In a model file: `type = "add"` (or
/// `"multiply"`, `"concatenate"`, `"dot"`) with `inputs = ["a", "b"]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Merge {
    /// Elementwise sum of inputs of one shape (Keras `Add`).
    Add {},
    /// Elementwise product of inputs of one shape (Keras `Multiply`).
    Multiply {},
    /// Inputs side by side along the last axis (Keras `Concatenate(axis=-1)`).
    Concatenate {},
    /// The dot product of two vectors per sample: (n) and (n) → (1) (Keras `Dot(axes=1)`).
    Dot {},
}

impl Merge {
    /// The Keras class name.
    pub fn kind(&self) -> &'static str {
        match self {
            Merge::Add {} => "Add",
            Merge::Multiply {} => "Multiply",
            Merge::Concatenate {} => "Concatenate",
            Merge::Dot {} => "Dot",
        }
    }

    /// The model-file `type` names of the merge layers.
    pub const TYPES: [&'static str; 4] = ["add", "multiply", "concatenate", "dot"];

    /// The shape of one output sample for inputs of `shapes` (without the batch axis).
    pub fn output_shape(&self, shapes: &[&[usize]]) -> Result<Vec<usize>> {
        let kind = self.kind();
        if shapes.len() < 2 || matches!(self, Merge::Dot {}) && shapes.len() != 2 {
            let needs = if matches!(self, Merge::Dot {}) {
                "exactly 2"
            } else {
                "at least 2"
            };
            return Err(Error::shape(
                kind,
                format!("needs {needs} inputs, got {}", shapes.len()),
            ));
        }
        match self {
            Merge::Add {} | Merge::Multiply {} => {
                if let Some(other) = shapes.iter().find(|s| **s != shapes[0]) {
                    return Err(Error::shape(
                        kind,
                        format!(
                            "inputs must have one shape, got {:?} and {other:?}",
                            shapes[0]
                        ),
                    ));
                }
                Ok(shapes[0].to_vec())
            }
            Merge::Concatenate {} => {
                let mut shape = shapes[0].to_vec();
                for s in &shapes[1..] {
                    shape = concat_shape(&shape, s)?;
                }
                Ok(shape)
            }
            Merge::Dot {} => match (shapes[0], shapes[1]) {
                ([n], [m]) if n == m => Ok(vec![1]),
                (a, b) => Err(Error::shape(
                    kind,
                    format!("needs two vectors of one length per sample, got {a:?} and {b:?}"),
                )),
            },
        }
    }

    /// The merged value of a batch, computed through `pass` (at once, or recorded).
    pub fn call(&self, pass: &mut Pass, xs: &[Value]) -> Result<Value<'static>> {
        let shapes = xs
            .iter()
            .map(|x| Ok(pass.shape(x)?.iter().skip(1).copied().collect()))
            .collect::<Result<Vec<Vec<usize>>>>()?;
        let shapes: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
        self.output_shape(&shapes)?;
        match self {
            Merge::Add {} | Merge::Multiply {} => {
                let op = self.binary_op();
                let mut total = pass.binary(op, &xs[0], &xs[1])?;
                for x in &xs[2..] {
                    total = pass.binary(op, &total, x)?;
                }
                Ok(total)
            }
            Merge::Concatenate {} => {
                let mut joined = pass.concat(&xs[0], &xs[1])?;
                for x in &xs[2..] {
                    joined = pass.concat(&joined, x)?;
                }
                Ok(joined)
            }
            Merge::Dot {} => {
                let shape = pass.shape(&xs[0])?.to_vec();
                let (rows, n) = (shape[0], last(&shape));
                let a = pass.reshape(xs[0].view(), &[rows, 1, n])?;
                let b = pass.reshape(xs[1].view(), &[rows, n, 1])?;
                let dot = pass.batch_matmul(&a, &b)?;
                pass.reshape(dot, &[rows, 1])
            }
        }
    }

    /// The merged value of a batch, at inference.
    pub fn forward(&self, xs: &[&Tensor]) -> Result<Tensor> {
        let xs: Vec<Value> = xs.iter().map(|&x| Value::from(x)).collect();
        self.call(&mut Pass::eager(), &xs)?.into_tensor()
    }

    fn binary_op(&self) -> BinaryOp {
        match self {
            Merge::Multiply {} => BinaryOp::Mul,
            _ => BinaryOp::Add,
        }
    }
}

fn last(shape: &[usize]) -> usize {
    shape.last().copied().unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::gradcheck::check_gradients;
    use crate::autograd::{Tape, Var};

    #[test]
    fn shapes_follow_keras_and_mismatches_are_named() {
        assert_eq!(
            Merge::Add {}.output_shape(&[&[4], &[4], &[4]]).unwrap(),
            [4]
        );
        assert_eq!(
            Merge::Concatenate {}
                .output_shape(&[&[2, 3], &[2, 5]])
                .unwrap(),
            [2, 8]
        );
        assert_eq!(Merge::Dot {}.output_shape(&[&[6], &[6]]).unwrap(), [1]);
        let err = Merge::Add {}.output_shape(&[&[4], &[5]]).unwrap_err();
        assert!(err.to_string().contains("Add"), "{err}");
        assert!(Merge::Multiply {}.output_shape(&[&[4]]).is_err());
        assert!(Merge::Dot {}.output_shape(&[&[3], &[4]]).is_err());
        assert!(Merge::Concatenate {}
            .output_shape(&[&[2, 3], &[3, 3]])
            .is_err());
    }

    #[test]
    fn values_match_hand_computed_ones() {
        let a = Tensor::new(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let b = Tensor::new(&[2, 2], vec![5.0, 6.0, 7.0, 8.0]).unwrap();
        let run = |m: Merge| m.forward(&[&a, &b]).unwrap().into_data();
        assert_eq!(run(Merge::Add {}), [6.0, 8.0, 10.0, 12.0]);
        assert_eq!(run(Merge::Multiply {}), [5.0, 12.0, 21.0, 32.0]);
        assert_eq!(
            run(Merge::Concatenate {}),
            [1.0, 2.0, 5.0, 6.0, 3.0, 4.0, 7.0, 8.0]
        );
        assert_eq!(run(Merge::Dot {}), [17.0, 53.0]);
    }

    #[test]
    fn tape_and_inference_agree_and_gradients_match_finite_differences() {
        for merge in [
            Merge::Add {},
            Merge::Multiply {},
            Merge::Concatenate {},
            Merge::Dot {},
        ] {
            let inputs = if matches!(merge, Merge::Dot {}) { 2 } else { 3 };
            let shapes: Vec<&[usize]> = vec![&[3, 4]; inputs];
            let record = |tape: &mut Tape, v: &[Var]| {
                let xs: Vec<Value> = v.iter().map(|&v| Value::Var(v)).collect();
                merge.call(&mut Pass::record(tape, &[], true), &xs)?.var()
            };
            check_gradients(&shapes, 3, record).unwrap_or_else(|e| panic!("{merge:?}: {e}"));
            let xs: Vec<Tensor> = (0..inputs)
                .map(|k| {
                    Tensor::new(
                        &[3, 4],
                        (0..12).map(|i| (i * (k + 2)) as f32 * 0.1).collect(),
                    )
                    .unwrap()
                })
                .collect();
            let refs: Vec<&Tensor> = xs.iter().collect();
            let mut tape = Tape::new();
            let vars: Vec<Var> = xs.iter().map(|x| tape.constant(x)).collect();
            let recorded = record(&mut tape, &vars).unwrap();
            assert_eq!(
                tape.value(recorded),
                &merge.forward(&refs).unwrap(),
                "{merge:?}"
            );
        }
    }
}
