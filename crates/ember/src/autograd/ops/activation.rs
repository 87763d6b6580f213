//! Activation functions as recorded ops (relu, sigmoid, tanh, softmax over the last axis, gelu).

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::Result;
use crate::tensor::activation::Activation;

impl Tape {
    /// `activation(x)`; softmax runs over the last axis.
    pub fn activation(&mut self, activation: Activation, x: Var) -> Result<Var> {
        let shape = self.value(x).shape().to_vec();
        let i = self.push(
            super::Op::Activation(activation, x),
            &shape,
            self.requires_grad(x),
        );
        let (before, out) = self.split(i);
        out.value.copy_from_slice(before[x.0].value.data());
        activation.apply_to(&mut out.value);
        Ok(Var(i))
    }

    pub fn relu(&mut self, x: Var) -> Result<Var> {
        self.activation(Activation::Relu, x)
    }

    pub fn sigmoid(&mut self, x: Var) -> Result<Var> {
        self.activation(Activation::Sigmoid, x)
    }

    pub fn tanh(&mut self, x: Var) -> Result<Var> {
        self.activation(Activation::Tanh, x)
    }

    pub fn softmax(&mut self, x: Var) -> Result<Var> {
        self.activation(Activation::Softmax, x)
    }
}

pub(crate) fn backward(activation: Activation, x: Var, out: &Node, nodes: &mut [Node]) {
    let Some(mut grad) = GradOut::take(nodes, x) else {
        return;
    };
    let acc = grad.accumulate;
    let (input, output) = (nodes[x.0].value.data(), out.value.data());
    activation.gradient((input, output), out.grad.data(), &mut grad.buf, acc);
    grad.put(nodes);
}

#[cfg(test)]
mod tests {
    use crate::autograd::gradcheck::check_gradients;
    use crate::tensor::activation::Activation;

    #[test]
    fn activation_gradients_match_finite_differences() {
        for act in [
            Activation::Linear,
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Softmax,
            Activation::Gelu,
        ] {
            check_gradients(&[&[3, 4]], 21, |tape, v| tape.activation(act, v[0]))
                .unwrap_or_else(|e| panic!("{act:?}: {e}"));
        }
    }
}
