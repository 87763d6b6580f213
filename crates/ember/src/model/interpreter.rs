//! The one graph interpreter: a model's calls run in order through a [`Pass`] — eager at
//! inference (`&self`, nothing recorded, each value dropped after its last reader) and
//! recording on a tape in training and for gradients.

use super::functional::{Call, Entry, Model, Operation, Source, StepWeights};
use crate::autograd::{Pass, Pooling, Tape, Value, Var};
use crate::error::{Error, Result};
use crate::nn;
use crate::tensor::activation::Activation;
use crate::tensor::Tensor;

/// A model's calls and outputs without its layers, so that a training step can borrow the
/// layers mutably while reading the graph.
pub(crate) struct GraphView {
    pub calls: Vec<Call>,
    pub outputs: Vec<Source>,
}

/// A recorded graph: each output with the activation left to apply, and every call's value.
pub(crate) type Recorded = (Vec<(Var, Activation)>, Vec<Var>);

/// What a run returns: each target with the activation left to apply to it (a fused
/// output's), and the value of every call still held (all of them when recording).
pub(crate) struct Run {
    pub outputs: Vec<(Value<'static>, Activation)>,
    pub values: Vec<Option<Value<'static>>>,
}

/// Runs the calls that `targets` depend on, in `pass`'s mode. `training` turns on what only
/// training does, in trainable layers and layers without weights (Keras: a frozen batch
/// normalization uses its moving averages). With `logits`, a target that nothing else reads
/// stops before its layer's final activation, returned beside it for the loss to fuse. An
/// eager run hands each value to its last reader (a reshape then reuses the buffer) and
/// drops it.
pub(crate) fn run(
    layers: &[Entry],
    calls: &[Call],
    pass: &mut Pass,
    inputs: &[Value],
    targets: &[Source],
    (training, logits): (bool, bool),
) -> Result<Run> {
    let needed = needed_calls(calls, targets);
    let mut uses = call_uses(calls, targets, &needed);
    let fused: Vec<usize> = match logits {
        true => targets
            .iter()
            .filter_map(|&t| match t {
                Source::Call(c) if uses[c] == 1 => Some(c),
                _ => None,
            })
            .collect(),
        false => Vec::new(),
    };
    let recording = pass.is_recording();
    // Poolings that a convolution computed with its own output, by call.
    let mut pooled_ahead: Vec<Option<Value<'static>>> = vec![None; calls.len()];
    let mut values: Vec<Option<Value<'static>>> = vec![None; calls.len()];
    let mut activations = vec![Activation::Linear; calls.len()];
    for (c, call) in calls.iter().enumerate() {
        if !needed[c] {
            continue;
        }
        let entry = &layers[call.layer];
        let fuse = fused.contains(&c);
        let trains = training && (entry.trainable || !pass.has_weights(call.layer));
        let previous = pass.enter(call.layer, trains, fuse);
        let pooled_by = pooled_by(layers, calls, &needed, &uses, c);
        pass.pool_next(pooled_by.map(|(_, pooling)| pooling));
        let out = match (&entry.op, call.inputs.as_slice()) {
            (Operation::Layer(layer), &[source]) => {
                if fuse {
                    activations[c] = layer.final_activation();
                }
                // The last reader of an eager value takes it; others borrow it.
                let x = match source {
                    Source::Input(i) => inputs[i].view(),
                    Source::Call(p) => {
                        uses[p] -= 1;
                        match uses[p] == 0 && !recording {
                            true => values[p].take().ok_or_else(freed)?,
                            false => values[p].as_ref().ok_or_else(freed)?.view(),
                        }
                    }
                };
                match pooled_ahead[c].take() {
                    Some(pooled) => Ok(pooled),
                    None => layer.call(pass, x, None),
                }
            }
            (op, sources) => {
                let xs = sources
                    .iter()
                    .map(|&s| match s {
                        Source::Input(i) => Ok(inputs[i].view()),
                        Source::Call(p) => Ok(values[p].as_ref().ok_or_else(freed)?.view()),
                    })
                    .collect::<Result<Vec<Value>>>()?;
                match op {
                    Operation::Layer(layer) => match xs.as_slice() {
                        [x, mask] if layer.takes_mask() => {
                            layer.call(pass, x.view(), Some(mask.view()))
                        }
                        _ => Err(nn::no_mask(layer.kind())),
                    },
                    Operation::Merge(merge) => merge.call(pass, &xs),
                }
            }
        };
        pass.leave(previous);
        if let (Some((d, _)), Some(pooled)) = (pooled_by, pass.take_pooled()) {
            pooled_ahead[d] = Some(pooled);
        }
        let out = out?;
        if call.inputs.len() > 1 {
            for &s in &call.inputs {
                if let Source::Call(p) = s {
                    uses[p] -= 1;
                    if uses[p] == 0 && !recording {
                        values[p] = None;
                    }
                }
            }
        }
        values[c] = Some(out);
    }
    let mut outputs = Vec::with_capacity(targets.len());
    for (k, &s) in targets.iter().enumerate() {
        outputs.push(match s {
            Source::Input(i) => (inputs[i].view().into_owned(), Activation::Linear),
            Source::Call(c) => {
                // Hand the value over unless a later target is the same value.
                let value = match targets[k + 1..].contains(&s) || recording {
                    true => values[c].clone(),
                    false => values[c].take(),
                };
                (value.ok_or_else(freed)?, activations[c])
            }
        });
    }
    Ok(Run { outputs, values })
}

/// When call `c` is a convolution whose output only a pooling reads: that call, and the
/// pooling, for the convolution to compute with its own output (in cache, run by run).
fn pooled_by(
    layers: &[Entry],
    calls: &[Call],
    needed: &[bool],
    uses: &[usize],
    c: usize,
) -> Option<(usize, Pooling)> {
    let is_conv = matches!(&layers[calls[c].layer].op, Operation::Layer(l) if l.kind() == "Conv2D");
    if !is_conv || uses[c] != 1 {
        return None;
    }
    let d =
        (c + 1..calls.len()).find(|&d| needed[d] && calls[d].inputs.contains(&Source::Call(c)))?;
    match (&layers[calls[d].layer].op, calls[d].inputs.as_slice()) {
        (Operation::Layer(layer), [_]) => Some((d, layer.pooling()?)),
        _ => None,
    }
}

fn freed() -> Error {
    Error::invalid("internal: a graph value was read after it was freed")
}

/// Which calls the `targets` depend on.
fn needed_calls(calls: &[Call], targets: &[Source]) -> Vec<bool> {
    let mut needed = vec![false; calls.len()];
    let mut stack: Vec<Source> = targets.to_vec();
    while let Some(source) = stack.pop() {
        if let Source::Call(c) = source {
            if !needed[c] {
                needed[c] = true;
                stack.extend(calls[c].inputs.iter().copied());
            }
        }
    }
    needed
}

/// How many times each call's value is read: by the `needed` calls, and once more for each
/// target.
fn call_uses(calls: &[Call], targets: &[Source], needed: &[bool]) -> Vec<usize> {
    let mut uses = vec![0; calls.len()];
    let sources = calls
        .iter()
        .zip(needed)
        .filter(|(_, &n)| n)
        .flat_map(|(c, _)| c.inputs.iter())
        .chain(targets);
    for source in sources {
        if let Source::Call(c) = *source {
            uses[c] += 1;
        }
    }
    uses
}

impl Model {
    /// The calls and outputs, apart from the layers.
    pub(crate) fn graph(&self) -> GraphView {
        GraphView {
            calls: self.calls.clone(),
            outputs: self.outputs.clone(),
        }
    }

    /// Records the graph on `tape` for a batch of `inputs`, each layer's weights already on
    /// it (`weights`). Returns each output with the activation left to apply (see [`run`]),
    /// and the value of every call, in call order.
    #[allow(clippy::too_many_arguments)]
    /// A training step of which this process has no samples (data-parallel training):
    /// every call that would train tells its layer to move its random draws on, as
    /// [`run`] in training would call it (trainable layers and layers without weights).
    pub(crate) fn skip_training_step(layers: &[Entry], graph: &GraphView) {
        let needed = needed_calls(&graph.calls, &graph.outputs);
        for (call, _) in graph.calls.iter().zip(needed).filter(|(_, n)| *n) {
            let entry = &layers[call.layer];
            if let Operation::Layer(layer) = &entry.op {
                if entry.trainable || entry.op.weights().is_empty() {
                    layer.skip_call();
                }
            }
        }
    }

    pub(crate) fn record(
        layers: &[Entry],
        graph: &GraphView,
        tape: &mut Tape,
        weights: &StepWeights,
        inputs: &[Var],
        training: bool,
        logits: bool,
    ) -> Result<Recorded> {
        let mut pass = Pass::record(tape, weights, training);
        let inputs: Vec<Value> = inputs.iter().map(|&v| Value::Var(v)).collect();
        let run = run(
            layers,
            &graph.calls,
            &mut pass,
            &inputs,
            &graph.outputs,
            (training, logits),
        )?;
        let outputs = run
            .outputs
            .into_iter()
            .map(|(v, activation)| Ok((v.var()?, activation)))
            .collect::<Result<_>>()?;
        let values = run
            .values
            .into_iter()
            .map(|v| v.ok_or_else(freed)?.var())
            .collect::<Result<_>>()?;
        Ok((outputs, values))
    }

    /// Runs the graph on a batch of `inputs` without a tape. Returns each output with the
    /// activation left to apply (see [`run`]).
    pub(crate) fn infer(
        &self,
        inputs: &[&Tensor],
        logits: bool,
    ) -> Result<Vec<(Tensor, Activation)>> {
        self.infer_targets(inputs, &self.outputs, logits)
    }

    /// The values of the outputs numbered `which` (in the order of
    /// [`Model::output_names`]) for a batch of `inputs`, tape-free, running only the calls
    /// they need: the features of a few layers of a deep model, say. `inputs` are not
    /// checked: see [`Model::predict_outputs`].
    pub(crate) fn infer_outputs(&self, inputs: &[&Tensor], which: &[usize]) -> Result<Vec<Tensor>> {
        let targets = which
            .iter()
            .map(|&k| {
                self.outputs.get(k).copied().ok_or_else(|| {
                    Error::invalid(format!(
                        "output {k} asked for, the model has {}",
                        self.outputs.len()
                    ))
                })
            })
            .collect::<Result<Vec<Source>>>()?;
        Ok(self
            .infer_targets(inputs, &targets, false)?
            .into_iter()
            .map(|(t, _)| t)
            .collect())
    }

    fn infer_targets(
        &self,
        inputs: &[&Tensor],
        targets: &[Source],
        logits: bool,
    ) -> Result<Vec<(Tensor, Activation)>> {
        let inputs: Vec<Value> = inputs.iter().map(|&x| Value::from(x)).collect();
        let run = run(
            &self.layers,
            &self.calls,
            &mut Pass::eager(),
            &inputs,
            targets,
            (false, logits),
        )?;
        run.outputs
            .into_iter()
            .map(|(v, activation)| Ok((v.into_tensor()?, activation)))
            .collect()
    }
}
