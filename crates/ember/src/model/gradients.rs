//! Gradients of a model's output with respect to its input, and to one layer's output: what
//! the attribution methods of [`crate::explain`] are made of.

use crate::autograd::Tape;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

use super::functional::{Model, Source, StepWeights};

/// What [`Model::output_gradients`] found for a batch.
#[derive(Clone, Debug)]
pub struct OutputGradients {
    /// Each row's score: the model's output for its target (a probability for a softmax or
    /// sigmoid output; for a one-unit output, target 0 scores one minus the output).
    pub scores: Vec<f32>,
    /// d score / d input, row by row, in the input's shape.
    pub input: Tensor,
    /// The asked-for layer's output and d score / d that output, row by row.
    pub layer: Option<(Tensor, Tensor)>,
}

impl Model {
    /// Back-propagates each row's score (the first output's value at that row's target) to
    /// the input, and to the output of the layer named `layer` if given. Rows do not mix at
    /// inference, so row r of each gradient is the gradient of row r's score alone. Inference
    /// mode: dropout passes through, normalisation uses its moving averages.
    pub fn output_gradients(
        &self,
        x: &Tensor,
        targets: &[usize],
        layer: Option<&str>,
    ) -> Result<OutputGradients> {
        self.gradients_of(x, targets, layer, false)
    }

    /// [`Model::output_gradients`] of the target's logit, the output before its final
    /// activation (softmax, sigmoid) where the output layer applies one: what Grad-CAM
    /// differentiates, since a saturated probability has next to no gradient. For a one-unit
    /// output, target 0's logit is minus the output's. `scores` are still probabilities.
    pub fn logit_gradients(
        &self,
        x: &Tensor,
        targets: &[usize],
        layer: Option<&str>,
    ) -> Result<OutputGradients> {
        self.gradients_of(x, targets, layer, true)
    }

    fn gradients_of(
        &self,
        x: &Tensor,
        targets: &[usize],
        layer: Option<&str>,
        logits: bool,
    ) -> Result<OutputGradients> {
        if self.inputs.len() != 1 {
            return Err(Error::invalid(format!(
                "explanations need a model with one input, this one has {}",
                self.inputs.len()
            )));
        }
        self.check_inputs(&[x], "x")?;
        let rows = x.rows();
        if targets.len() != rows {
            return Err(Error::invalid(format!(
                "{} targets for {rows} samples",
                targets.len()
            )));
        }
        let width = self.output_shape().iter().product::<usize>();
        if self.output_shape().len() != 1 {
            return Err(Error::invalid(format!(
                "explanations need an output of one vector per sample, not {:?}",
                self.output_shape()
            )));
        }
        // A one-unit output has two targets: 1 (the output) and 0 (one minus it).
        let classes = width.max(2);
        if let Some(&t) = targets.iter().find(|&&t| t >= classes) {
            return Err(Error::invalid(format!(
                "target {t}: the model's output has {classes} classes"
            )));
        }
        let call = layer.map(|name| self.single_call_of(name)).transpose()?;
        let mut tape = Tape::new();
        let weights: StepWeights = self
            .layers
            .iter()
            .map(|e| {
                e.op.weights()
                    .iter()
                    .map(|w| tape.state(w.value.clone()))
                    .collect()
            })
            .collect();
        let input = tape.param(x.clone());
        let graph = self.graph();
        let (outputs, values) = Model::record(
            &self.layers,
            &graph,
            &mut tape,
            &weights,
            &[input],
            false,
            logits,
        )?;
        let (out, activation) = outputs[0];
        let mut probabilities = tape.value(out).clone();
        activation.apply_to(&mut probabilities);
        let probabilities = probabilities.data();
        // The output's gradient: 1 at each target (±1 for a one-unit output).
        let mut scores = Vec::with_capacity(rows);
        let mut seed = Vec::with_capacity(rows);
        for (r, &t) in targets.iter().enumerate() {
            if width == 1 {
                let p = probabilities[r];
                let (score, sign) = if t == 1 { (p, 1.0) } else { (1.0 - p, -1.0) };
                scores.push(score);
                seed.push((r, sign));
            } else {
                scores.push(probabilities[r * width + t]);
                seed.push((r * width + t, 1.0));
            }
        }
        let seed = Tensor::from_entries(tape.value(out).shape(), seed)?;
        tape.backward_from(out, &seed)?;
        let gradient = |v| {
            tape.grad(v)
                .cloned()
                .unwrap_or_else(|| Tensor::zeros(tape.value(v).shape()))
        };
        let input_gradient = gradient(input);
        let layer = call.map(|c| (tape.value(values[c]).clone(), gradient(values[c])));
        Ok(OutputGradients {
            scores,
            input: input_gradient,
            layer,
        })
    }

    /// The one call of the layer named `name` (a layer called twice has no single output).
    fn single_call_of(&self, name: &str) -> Result<usize> {
        let layer = self
            .layers
            .iter()
            .position(|e| e.name == name)
            .ok_or_else(|| self.no_layer(name))?;
        let calls: Vec<usize> = (0..self.calls.len())
            .filter(|&c| self.calls[c].layer == layer)
            .collect();
        match calls[..] {
            [c] => Ok(c),
            _ => Err(Error::invalid(format!(
                "layer '{name}' is called {} times: its output is not one tensor",
                calls.len()
            ))),
        }
    }

    /// Where Grad-CAM looks by default: the last convolution called once, followed through
    /// the layers that keep its shape and only transform it (batch normalisation, an
    /// activation, dropout), as Keras's Grad-CAM reads the last convolution's activation;
    /// without a convolution, the last layer called once whose output is an image.
    pub fn last_image_layer(&self) -> Option<&str> {
        let once = |l: usize| self.calls.iter().filter(|c| c.layer == l).count() == 1;
        let images: Vec<usize> = (0..self.calls.len())
            .filter(|&c| self.calls[c].output_shape.len() == 3 && once(self.calls[c].layer))
            .collect();
        let kind = |c: usize| self.layers[self.calls[c].layer].op.kind();
        let Some(mut at) = images.iter().rev().copied().find(|&c| kind(c) == "Conv2D") else {
            return images
                .last()
                .map(|&c| self.layers[self.calls[c].layer].name.as_str());
        };
        while let Some(next) = (at + 1..self.calls.len()).find(|&c| {
            self.calls[c].inputs == [Source::Call(at)]
                && self.calls[c].output_shape == self.calls[at].output_shape
                && matches!(kind(c), "BatchNormalization" | "Activation" | "Dropout")
                && once(self.calls[c].layer)
        }) {
            at = next;
        }
        Some(self.layers[self.calls[at].layer].name.as_str())
    }

    /// The shape of one sample of the output of the layer named `name`.
    pub fn layer_output_shape(&self, name: &str) -> Result<&[usize]> {
        let c = self.single_call_of(name)?;
        Ok(self.shape_of(Source::Call(c)))
    }
}
