//! The tape: scratch for one training step. The forward pass records ops with their values;
//! `backward` walks them in reverse.
//!
//! The tape owns no weights. A step starts by moving the weights it trains into the tape
//! ([`Tape::param`], no copy), records the forward pass, back-propagates, lets the optimizer
//! update them, and hands them back ([`Tape::take_value`]); [`Tape::reset`] then forgets every
//! node. A reset keeps the nodes' buffers (gradients included), so a training loop that records
//! the same ops every step allocates nothing after the first.

use std::mem;

use super::ops::{self, Op};
use crate::distributed::Shard;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A handle to a value recorded on a [`Tape`], valid until the next [`Tape::reset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var(pub(crate) usize);

#[derive(Clone, Debug, Default)]
pub(crate) struct Node {
    pub value: Tensor,
    pub grad: Tensor,
    /// `grad` holds this step's gradient (otherwise it is stale and gets overwritten).
    pub has_grad: bool,
    pub requires_grad: bool,
    pub op: Op,
    /// Values an op saves for its backward pass (softmax probabilities, im2col patches, …).
    pub aux: Vec<f32>,
    /// A weight's per-example gradient buffer, set aside while `grad` holds the step's
    /// aggregate (private training: see [`Tape::set_grad`]), for the next per-example pass
    /// to reuse instead of growing `grad` again, which would clear it.
    pub spare: Tensor,
}

/// Records operations and computes gradients by reverse accumulation.
///
/// ```
/// use ember::{Tape, Tensor};
/// let mut tape = Tape::new();
/// let x = tape.param(Tensor::new(&[2], vec![3.0, -1.0]).unwrap());
/// let y = tape.mul(x, x).unwrap(); // y = x²
/// let loss = tape.sum(y).unwrap();
/// tape.backward(loss).unwrap();
/// assert_eq!(tape.grad(x).unwrap().data(), &[6.0, -2.0]); // dy/dx = 2x
/// ```
#[derive(Clone, Debug, Default)]
pub struct Tape {
    nodes: Vec<Node>,
    /// Nodes in use; `nodes[len..]` are spare buffers kept for reuse.
    len: usize,
    num_params: usize,
    /// Scratch space an op's backward pass may use (reused between steps).
    pub(crate) scratch: Scratch,
    /// In data-parallel training, which rows of the batch this process records.
    shard: Option<Shard>,
}

/// What a backward pass carries besides the nodes: a reusable temporary, and whether
/// weights' gradients are kept per sample.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch {
    pub first: Vec<f32>,
    /// `Some(batch)` during [`Tape::backward_per_example`].
    pub per_example: Option<usize>,
    /// Whether rules may run fused, leaving the gradients of some intermediate values
    /// unkept: a convolution's output read only by a pooling (see [`Tape::backward`]).
    pub fuse: bool,
}

impl Tape {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves a trainable weight into this step: it receives a gradient, and the optimizer
    /// updates it on the tape. Weights come before the step's other nodes: adding one after
    /// them starts the step again (the tape is reset).
    pub fn param(&mut self, value: Tensor) -> Var {
        self.weight(value, true)
    }

    /// Moves a weight the optimizer never touches into this step (a frozen layer's weight, a
    /// batch-normalization moving average, which its layer updates itself).
    pub fn state(&mut self, value: Tensor) -> Var {
        self.weight(value, false)
    }

    fn weight(&mut self, value: Tensor, requires_grad: bool) -> Var {
        if self.len > self.num_params {
            self.reset();
        }
        let i = self.push(Op::Leaf, &[], requires_grad);
        // The previous step's weight buffer was handed back; this one is moved in, not copied.
        self.nodes[i].value = value;
        self.num_params += 1;
        Var(i)
    }

    /// Hands a value back out of the tape (a weight at the end of its step), leaving an empty
    /// tensor in its place.
    pub fn take_value(&mut self, v: Var) -> Tensor {
        mem::take(&mut self.nodes[v.0].value)
    }

    /// Records a constant input (no gradient), copying `value`.
    pub fn constant(&mut self, value: &Tensor) -> Var {
        let i = self.push(Op::Leaf, value.shape(), false);
        self.nodes[i].value.copy_from_slice(value.data());
        Var(i)
    }

    /// Records the rows `rows` of `source` as a constant input: a mini-batch, gathered
    /// straight into the tape's buffer.
    pub fn constant_rows(&mut self, source: &Tensor, rows: &[usize]) -> Result<Var> {
        let i = self.push(Op::Leaf, &[], false);
        source.gather_rows_into(rows, &mut self.nodes[i].value)?;
        Ok(Var(i))
    }

    /// The value of a recorded variable.
    pub fn value(&self, v: Var) -> &Tensor {
        &self.nodes[v.0].value
    }

    /// The gradient of the last `backward` call with respect to `v`, if it reached `v`.
    pub fn grad(&self, v: Var) -> Option<&Tensor> {
        let node = &self.nodes[v.0];
        node.has_grad.then_some(&node.grad)
    }

    /// Whether gradients flow to `v` (parameters, and anything computed from them).
    pub fn requires_grad(&self, v: Var) -> bool {
        self.nodes[v.0].requires_grad
    }

    /// Forgets every node, weights included; buffers are kept for the next step.
    pub fn reset(&mut self) {
        self.len = 0;
        self.num_params = 0;
    }

    /// What an op saved for its backward pass (batch statistics, for instance).
    pub(crate) fn aux(&self, v: Var) -> &[f32] {
        &self.nodes[v.0].aux
    }

    /// This step's weights (trainable and not), in the order they were moved in.
    pub fn params(&self) -> impl Iterator<Item = Var> {
        (0..self.num_params).map(Var)
    }

    pub fn num_params(&self) -> usize {
        self.num_params
    }

    /// Number of trainable scalars among this step's weights.
    pub fn trainable_len(&self) -> usize {
        self.nodes[..self.num_params]
            .iter()
            .filter(|n| n.requires_grad)
            .map(|n| n.value.len())
            .sum()
    }

    /// Mutable access to one of this step's weights (for optimizers and moving averages).
    pub fn param_mut(&mut self, v: Var) -> &mut Tensor {
        assert!(v.0 < self.num_params, "{v:?} is not a parameter");
        &mut self.nodes[v.0].value
    }

    /// Says which rows of a batch shared among processes this step records (None: the
    /// whole batch): random layers draw for the whole batch and keep these rows.
    pub fn set_shard(&mut self, shard: Option<Shard>) {
        self.shard = shard;
    }

    /// The rows of a shared batch this step records, if the batch is shared.
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// This step's trainable weights, in the order they were moved in.
    pub fn trainable_params(&self) -> impl Iterator<Item = Var> + '_ {
        (0..self.num_params)
            .filter(|&i| self.nodes[i].requires_grad)
            .map(Var)
    }

    /// Replaces a trainable weight's gradient with `values` (its length), or leaves it with
    /// none (None): how gradients summed across processes, or private training's aggregate
    /// of per-example gradients, come back to the step.
    pub fn set_grad(&mut self, v: Var, values: Option<&[f32]>) -> Result<()> {
        let node = &mut self.nodes[v.0];
        if v.0 >= self.num_params || !node.requires_grad {
            return Err(Error::invalid(format!("{v:?} is not a trainable weight")));
        }
        match values {
            Some(values) if values.len() == node.value.len() => {
                // A per-example gradient (larger) is kept aside for the next per-example pass.
                if node.grad.len() > node.value.len() {
                    std::mem::swap(&mut node.grad, &mut node.spare);
                }
                node.grad.reset_to_shape(node.value.shape());
                node.grad.copy_from_slice(values);
                node.has_grad = true;
            }
            Some(values) => {
                return Err(Error::shape(
                    "set_grad",
                    format!(
                        "{} values for a weight of {:?}",
                        values.len(),
                        node.value.shape()
                    ),
                ))
            }
            None => node.has_grad = false,
        }
        Ok(())
    }

    /// Each weight's value with its gradient from the last `backward` (None if none reached it).
    pub fn params_and_grads_mut(&mut self) -> impl Iterator<Item = (&mut Tensor, Option<&Tensor>)> {
        self.nodes[..self.num_params]
            .iter_mut()
            .map(|node| (&mut node.value, node.has_grad.then_some(&node.grad)))
    }

    /// The gradients of this step's trainable weights that the last `backward` reached, in
    /// the order the weights were moved in: what a gradient transform changes before the
    /// optimizer's update.
    pub fn trainable_grads_mut(&mut self) -> Vec<&mut Tensor> {
        self.nodes[..self.num_params]
            .iter_mut()
            .filter(|n| n.requires_grad && n.has_grad)
            .map(|n| &mut n.grad)
            .collect()
    }

    /// Back-propagates a `loss` that is the mean of `batch` samples' own losses, keeping
    /// each sample's share of the weights' gradients apart: afterwards a trainable weight's
    /// [`Tape::grad`] has shape (batch, …the weight's shape), row i the gradient of sample
    /// i's own loss. One backward pass: the weight-gradient rules keep their per-sample
    /// terms instead of summing them (as Opacus's per-layer rules do). Weights may be read
    /// by dense and convolution ops; any other op reading a trained weight is an error
    /// naming it, as is a batch that does not divide an op's rows.
    pub fn backward_per_example(&mut self, loss: Var, batch: usize) -> Result<()> {
        if batch == 0 {
            return Err(Error::invalid(
                "per-example gradients need at least one sample",
            ));
        }
        self.check_scalar(loss, "backward_per_example")?;
        for node in &self.nodes[self.num_params..self.len] {
            for v in ops::per_example_unsupported(&node.op) {
                if v.0 < self.num_params && self.nodes[v.0].requires_grad {
                    return Err(Error::invalid(format!(
                        "per-example gradients: a trained weight is read by {}, which has no \
                         per-example rule (dense and convolution layers have one; freeze the \
                         others)",
                        ops::name(&node.op)
                    )));
                }
            }
            if let Some(rows) = ops::per_example_rows(&node.op, &self.nodes) {
                if rows % batch != 0 {
                    return Err(Error::shape(
                        "backward_per_example",
                        format!(
                            "{} has {rows} rows, not a multiple of the batch {batch}",
                            ops::name(&node.op)
                        ),
                    ));
                }
            }
        }
        // The mean's 1/batch undone: each sample's term is its own loss's gradient.
        let seed = Tensor::full(self.value(loss).shape(), batch as f32);
        self.scratch.per_example = Some(batch);
        let result = self.backward_from(loss, &seed);
        self.scratch.per_example = None;
        result
    }

    /// Back-propagates from a scalar `loss`: afterwards [`Tape::grad`] holds d loss / d v for
    /// every weight and input. To save memory traffic, a convolution whose output only a
    /// pooling reads back-propagates with that pooling as one rule, so the convolution's
    /// output keeps no gradient ([`Tape::grad`] gives None for it); [`Tape::backward_from`]
    /// keeps every intermediate gradient.
    pub fn backward(&mut self, loss: Var) -> Result<()> {
        self.check_scalar(loss, "backward")?;
        let seed = Tensor::full(self.value(loss).shape(), 1.0);
        self.scratch.fuse = true;
        let result = self.backward_from(loss, &seed);
        self.scratch.fuse = false;
        result
    }

    /// An error naming `op` unless `loss` is a scalar.
    fn check_scalar(&self, loss: Var, op: &'static str) -> Result<()> {
        match self.value(loss).len() {
            1 => Ok(()),
            _ => Err(Error::shape(
                op,
                format!(
                    "the loss must be a scalar, got shape {:?}",
                    self.value(loss).shape()
                ),
            )),
        }
    }

    /// Back-propagates from `output` with `seed` as its gradient (a vector-Jacobian product).
    pub fn backward_from(&mut self, output: Var, seed: &Tensor) -> Result<()> {
        if seed.shape() != self.value(output).shape() {
            return Err(Error::shape(
                "backward",
                format!(
                    "seed gradient {:?} does not match output {:?}",
                    seed.shape(),
                    self.value(output).shape()
                ),
            ));
        }
        for node in &mut self.nodes[..self.len] {
            node.has_grad = false;
        }
        let out = &mut self.nodes[output.0];
        if !out.requires_grad {
            return Ok(());
        }
        out.grad.clone_from(seed);
        out.has_grad = true;
        self.propagate(output, &mut |_, _| Ok(()))
    }

    /// Back-propagates a scalar `loss` as [`Tape::backward`] does (fused alike), and as soon
    /// as backward has passed the first use of trainable weights — their gradients are then
    /// final — calls `ready` with them (in the order they become final); it is also called, with
    /// none, after every other node, so that the caller may let its communication progress.
    /// What a data-parallel step all-reduces while the rest of backward runs.
    pub fn backward_overlapped(
        &mut self,
        loss: Var,
        ready: &mut dyn FnMut(&Tape, &[Var]) -> Result<()>,
    ) -> Result<()> {
        self.check_scalar(loss, "backward")?;
        // Each trainable weight's first use: the last node backward reaches that reads it.
        let n = self.num_params;
        let mut first_use = vec![usize::MAX; n];
        for i in n..=loss.0 {
            for v in ops::inputs(&self.nodes[i].op) {
                if v.0 < n {
                    first_use[v.0] = first_use[v.0].min(i);
                }
            }
        }
        let mut order: Vec<usize> = (0..n).filter(|&p| self.nodes[p].requires_grad).collect();
        order.sort_by_key(|&p| std::cmp::Reverse(first_use[p]));
        for node in &mut self.nodes[..self.len] {
            node.has_grad = false;
        }
        let out = &mut self.nodes[loss.0];
        if !out.requires_grad {
            let all: Vec<Var> = order.iter().map(|&p| Var(p)).collect();
            return ready(self, &all);
        }
        out.grad = Tensor::full(out.value.shape(), 1.0);
        out.has_grad = true;
        // Weights no node reads are final at once.
        let mut next = order.iter().take_while(|&&p| first_use[p] > loss.0).count();
        let unused: Vec<Var> = order[..next].iter().map(|&p| Var(p)).collect();
        ready(self, &unused)?;
        self.scratch.fuse = true;
        let result = self.propagate(loss, &mut |tape, i| {
            let done = order[next..]
                .iter()
                .take_while(|&&p| first_use[p] >= i)
                .count();
            let vars: Vec<Var> = order[next..next + done].iter().map(|&p| Var(p)).collect();
            next += done;
            ready(tape, &vars)
        });
        self.scratch.fuse = false;
        result
    }

    /// Runs the backward rules from `output` down, calling `after(tape, i)` once node i is
    /// done (or skipped: no gradient reached it).
    fn propagate(
        &mut self,
        output: Var,
        after: &mut dyn FnMut(&Tape, usize) -> Result<()>,
    ) -> Result<()> {
        for i in (self.num_params..=output.0).rev() {
            if self.nodes[i].has_grad {
                let (before, rest) = self.nodes.split_at_mut(i);
                ops::backward(&rest[0], before, &mut self.scratch);
            }
            after(self, i)?;
        }
        Ok(())
    }

    /// Appends a step node of `shape` (contents unspecified) and returns its index.
    pub(crate) fn push(&mut self, op: Op, shape: &[usize], requires_grad: bool) -> usize {
        let i = self.len;
        if i == self.nodes.len() {
            self.nodes.push(Node::default());
        }
        let node = &mut self.nodes[i];
        node.value.reset_to_shape(shape);
        node.op = op;
        node.has_grad = false;
        node.requires_grad = requires_grad;
        self.len += 1;
        i
    }

    /// Nodes before `i` (read-only inputs), and the step's nodes from `i` on (outputs
    /// computed together).
    pub(crate) fn split_outputs(&mut self, i: usize) -> (&[Node], &mut [Node]) {
        let (before, rest) = self.nodes[..self.len].split_at_mut(i);
        (before, rest)
    }

    /// Nodes before `i` (read-only inputs) and node `i` itself (the output being computed).
    pub(crate) fn split(&mut self, i: usize) -> (&[Node], &mut Node) {
        let (before, rest) = self.nodes.split_at_mut(i);
        (before, &mut rest[0])
    }
}

/// A gradient buffer taken out of its node while a backward rule fills it in.
pub(crate) struct GradOut {
    var: usize,
    pub buf: Tensor,
    /// Add to `buf` (another path already wrote this step's gradient) instead of overwriting.
    pub accumulate: bool,
}

impl GradOut {
    /// Takes `v`'s gradient buffer, shaped like its value, or None when `v` needs no gradient.
    pub fn take(nodes: &mut [Node], v: Var) -> Option<GradOut> {
        Self::take_shaped(nodes, v, None)
    }

    /// Takes a weight's gradient buffer for per-sample terms, shaped (batch, …value's shape):
    /// not zeroed (the per-sample kernels overwrite it unless `accumulate`).
    pub fn take_per_example(nodes: &mut [Node], v: Var, batch: usize) -> Option<GradOut> {
        Self::take_shaped(nodes, v, Some(batch))
    }

    /// The buffer of `v`, reshaped (to the value's shape, with a leading `batch` axis when
    /// given) unless this step already wrote to it.
    fn take_shaped(nodes: &mut [Node], v: Var, batch: Option<usize>) -> Option<GradOut> {
        let node = &mut nodes[v.0];
        if !node.requires_grad {
            return None;
        }
        let accumulate = node.has_grad;
        if batch.is_some() && !accumulate && node.spare.len() > node.grad.len() {
            // The buffer the last per-example pass set aside (see `Tape::set_grad`).
            mem::swap(&mut node.grad, &mut node.spare);
        }
        let mut buf = mem::take(&mut node.grad);
        match (accumulate, batch) {
            (true, _) => {}
            (false, None) => buf.reset_to_shape(node.value.shape()),
            (false, Some(batch)) => {
                let mut shape = vec![batch];
                shape.extend_from_slice(node.value.shape());
                buf.reset_to_shape(&shape);
            }
        }
        Some(GradOut {
            var: v.0,
            buf,
            accumulate,
        })
    }

    /// Like `take`, but zeroed when not accumulating, so the rule can always add.
    pub fn take_zeroed(nodes: &mut [Node], v: Var) -> Option<GradOut> {
        let mut g = Self::take(nodes, v)?;
        if !g.accumulate {
            g.buf.fill(0.0);
            g.accumulate = true;
        }
        Some(g)
    }

    pub fn put(self, nodes: &mut [Node]) {
        let node = &mut nodes[self.var];
        node.grad = self.buf;
        node.has_grad = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sum(tanh(x · w1) · w2), with a third weight nothing reads.
    fn record(tape: &mut Tape) -> (Var, [Var; 3]) {
        let w1 = tape.param(Tensor::new(&[2, 3], vec![0.1, -0.2, 0.3, 0.4, 0.5, -0.6]).unwrap());
        let w2 = tape.param(Tensor::new(&[3, 1], vec![0.7, -0.8, 0.9]).unwrap());
        let w3 = tape.param(Tensor::new(&[2], vec![1.0, 2.0]).unwrap());
        let x = tape.constant(&Tensor::new(&[2, 2], vec![1.0, 2.0, -1.0, 0.5]).unwrap());
        let h = tape.matmul(x, w1).unwrap();
        let h = tape.tanh(h).unwrap();
        let y = tape.matmul(h, w2).unwrap();
        (tape.sum(y).unwrap(), [w1, w2, w3])
    }

    #[test]
    fn overlapped_backward_says_when_each_weight_is_final_and_computes_the_same() {
        let mut plain = Tape::new();
        let (loss, [w1, w2, _]) = record(&mut plain);
        plain.backward(loss).unwrap();
        let mut tape = Tape::new();
        let (loss, weights) = record(&mut tape);
        let mut heard: Vec<(Var, Option<Tensor>)> = Vec::new();
        tape.backward_overlapped(loss, &mut |tape, ready| {
            heard.extend(ready.iter().map(|&v| (v, tape.grad(v).cloned())));
            Ok(())
        })
        .unwrap();
        // Each weight once: the unused one at once, then the last layer's, then the first's,
        // each already holding its final gradient.
        let order: Vec<Var> = heard.iter().map(|(v, _)| *v).collect();
        assert_eq!(order, [weights[2], weights[1], weights[0]]);
        assert_eq!(heard[0].1, None);
        assert_eq!(heard[1].1.as_ref(), plain.grad(w2));
        assert_eq!(heard[2].1.as_ref(), plain.grad(w1));
        assert_eq!(tape.grad(w1), plain.grad(w1));
    }
}
