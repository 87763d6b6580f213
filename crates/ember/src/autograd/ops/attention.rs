//! Batched matrix products and fused multi-head scaled dot-product attention.
//!
//! Attention takes queries, keys and values of shape (batch, sequence, heads · head_dim) and an
//! optional key mask (batch, sequence) of 1 (attend) and 0 (padding): per sample and head,
//! `softmax(Q Kᵀ / √head_dim, masked keys excluded) · V`, written back in the same layout. The
//! attention probabilities are kept for the backward pass. Work is split by sample across the
//! threads.

use crate::autograd::tape::{GradOut, Node, Tape, Var};
use crate::error::{Error, Result};
use crate::tensor::activation::softmax_in_place;
use crate::tensor::matmul::{matmul_serial, MatRef};
use crate::tensor::threads::run_jobs;

impl Tape {
    /// `a · b` for each of a batch of matrices: (batch, m, k) · (batch, k, n) → (batch, m, n).
    pub fn batch_matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        let (&[batch, m, k], &[batch_b, k_b, n]) = (self.value(a).shape(), self.value(b).shape())
        else {
            return Err(Error::shape(
                "batch_matmul",
                format!(
                    "needs (batch, m, k) and (batch, k, n), got {:?} and {:?}",
                    self.value(a).shape(),
                    self.value(b).shape()
                ),
            ));
        };
        if batch != batch_b || k != k_b {
            return Err(Error::shape(
                "batch_matmul",
                format!(
                    "{:?} and {:?} do not chain",
                    self.value(a).shape(),
                    self.value(b).shape()
                ),
            ));
        }
        let requires_grad = self.requires_grad(a) || self.requires_grad(b);
        let i = self.push(super::Op::BatchMatMul(a, b), &[batch, m, n], requires_grad);
        let (before, out) = self.split(i);
        let jobs: Vec<_> = out
            .value
            .data_mut()
            .chunks_mut((m * n).max(1))
            .zip(before[a.0].value.data().chunks((m * k).max(1)))
            .zip(before[b.0].value.data().chunks((k * n).max(1)))
            .collect();
        run_jobs(jobs, |((o, a), b)| {
            matmul_serial(o, MatRef::new(a, m, k), MatRef::new(b, k, n), false)
        });
        Ok(Var(i))
    }

    /// Multi-head scaled dot-product attention over `heads` heads (see the module notes).
    pub fn attention(
        &mut self,
        q: Var,
        k: Var,
        v: Var,
        mask: Option<Var>,
        heads: usize,
    ) -> Result<Var> {
        let shape = self.value(q).shape().to_vec();
        let &[batch, seq, width] = shape.as_slice() else {
            return Err(Error::shape(
                "attention",
                format!("needs (batch, sequence, features) queries, got {shape:?}"),
            ));
        };
        if heads == 0 || width % heads != 0 {
            return Err(Error::shape(
                "attention",
                format!("{width} features do not split into {heads} heads"),
            ));
        }
        for other in [k, v] {
            if self.value(other).shape() != shape.as_slice() {
                return Err(Error::shape(
                    "attention",
                    format!(
                        "queries {shape:?}, keys and values {:?}",
                        self.value(other).shape()
                    ),
                ));
            }
        }
        if let Some(m) = mask {
            if self.value(m).shape() != [batch, seq] {
                return Err(Error::shape(
                    "attention",
                    format!(
                        "the mask must be (batch, sequence) = {:?}, got {:?}",
                        [batch, seq],
                        self.value(m).shape()
                    ),
                ));
            }
        }
        let requires_grad = [q, k, v].iter().any(|&x| self.requires_grad(x));
        let i = self.push(
            super::Op::Attention { q, k, v, heads },
            &shape,
            requires_grad,
        );
        let (before, out) = self.split(i);
        let sample = seq * width;
        let probs_per_sample = heads * seq * seq;
        out.aux.resize(batch * probs_per_sample, 0.0);
        let mask_values = mask.map(|m| before[m.0].value.data());
        let jobs: Vec<_> = out
            .value
            .data_mut()
            .chunks_mut(sample.max(1))
            .zip(out.aux.chunks_mut(probs_per_sample.max(1)))
            .enumerate()
            .collect();
        let (qv, kv, vv) = (
            before[q.0].value.data(),
            before[k.0].value.data(),
            before[v.0].value.data(),
        );
        let geometry = Geometry { seq, width, heads };
        run_jobs(jobs, |(b, (o, probs))| {
            let range = b * sample..(b + 1) * sample;
            let keep = mask_values.map(|m| &m[b * seq..(b + 1) * seq]);
            geometry.forward(
                &qv[range.clone()],
                &kv[range.clone()],
                &vv[range],
                keep,
                o,
                probs,
            );
        });
        Ok(Var(i))
    }
}

/// The shapes of one sample's attention.
#[derive(Clone, Copy)]
struct Geometry {
    seq: usize,
    width: usize,
    heads: usize,
}

impl Geometry {
    fn head_dim(&self) -> usize {
        self.width / self.heads
    }

    /// Copies head `h` of a (seq, width) sample into a contiguous (seq, head_dim) matrix.
    fn gather(&self, x: &[f32], h: usize, dst: &mut [f32]) {
        let d = self.head_dim();
        for (row, out) in x.chunks_exact(self.width).zip(dst.chunks_exact_mut(d)) {
            out.copy_from_slice(&row[h * d..(h + 1) * d]);
        }
    }

    /// Writes (or adds) a (seq, head_dim) matrix into head `h` of a (seq, width) sample.
    fn scatter(&self, src: &[f32], h: usize, x: &mut [f32]) {
        let d = self.head_dim();
        for (row, s) in x.chunks_exact_mut(self.width).zip(src.chunks_exact(d)) {
            row[h * d..(h + 1) * d].copy_from_slice(s);
        }
    }

    fn forward(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        keep: Option<&[f32]>,
        out: &mut [f32],
        probs: &mut [f32],
    ) {
        let (s, d) = (self.seq, self.head_dim());
        let scale = 1.0 / (d as f32).sqrt();
        let (mut qh, mut kh, mut vh, mut oh) = (
            vec![0.0; s * d],
            vec![0.0; s * d],
            vec![0.0; s * d],
            vec![0.0; s * d],
        );
        for (h, p) in probs.chunks_exact_mut(s * s).enumerate() {
            self.gather(q, h, &mut qh);
            self.gather(k, h, &mut kh);
            self.gather(v, h, &mut vh);
            qh.iter_mut().for_each(|x| *x *= scale);
            matmul_serial(p, MatRef::new(&qh, s, d), MatRef::new(&kh, s, d).t(), false);
            for row in p.chunks_exact_mut(s) {
                if let Some(keep) = keep {
                    for (x, &m) in row.iter_mut().zip(keep) {
                        if m == 0.0 {
                            *x = f32::NEG_INFINITY;
                        }
                    }
                }
                if row.iter().all(|x| *x == f32::NEG_INFINITY) {
                    row.fill(0.0); // every key masked: attend to nothing
                } else {
                    softmax_in_place(row);
                }
            }
            matmul_serial(&mut oh, MatRef::new(p, s, s), MatRef::new(&vh, s, d), false);
            self.scatter(&oh, h, out);
        }
    }

    /// Gradients of one sample: (dq, dk, dv), each (seq, width).
    fn backward(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        probs: &[f32],
        dout: &[f32],
    ) -> [Vec<f32>; 3] {
        let (s, d) = (self.seq, self.head_dim());
        let scale = 1.0 / (d as f32).sqrt();
        let mut grads = [
            vec![0.0; s * self.width],
            vec![0.0; s * self.width],
            vec![0.0; s * self.width],
        ];
        let mut buffers = [(); 6].map(|_| vec![0.0; s * d]);
        let mut dp = vec![0.0; s * s];
        for (h, p) in probs.chunks_exact(s * s).enumerate() {
            let [qh, kh, vh, doh, dqh, dkh] = &mut buffers;
            self.gather(q, h, qh);
            self.gather(k, h, kh);
            self.gather(v, h, vh);
            self.gather(dout, h, doh);
            // dV = Pᵀ · dO
            let mut dvh = vec![0.0; s * d];
            matmul_serial(
                &mut dvh,
                MatRef::new(p, s, s).t(),
                MatRef::new(doh, s, d),
                false,
            );
            // dP = dO · Vᵀ; dS = P ⊙ (dP − rowsum(dP ⊙ P)), scaled by 1/√d for Q and K.
            matmul_serial(
                &mut dp,
                MatRef::new(doh, s, d),
                MatRef::new(vh, s, d).t(),
                false,
            );
            for (dp_row, p_row) in dp.chunks_exact_mut(s).zip(p.chunks_exact(s)) {
                let dot: f32 = dp_row.iter().zip(p_row).map(|(a, b)| a * b).sum();
                for (x, &pv) in dp_row.iter_mut().zip(p_row) {
                    *x = pv * (*x - dot) * scale;
                }
            }
            // dQ = dS · K, dK = dSᵀ · Q
            matmul_serial(dqh, MatRef::new(&dp, s, s), MatRef::new(kh, s, d), false);
            matmul_serial(
                dkh,
                MatRef::new(&dp, s, s).t(),
                MatRef::new(qh, s, d),
                false,
            );
            self.scatter(dqh, h, &mut grads[0]);
            self.scatter(dkh, h, &mut grads[1]);
            self.scatter(&dvh, h, &mut grads[2]);
        }
        grads
    }
}

pub(crate) fn backward_attention(
    [q, k, v]: [Var; 3],
    heads: usize,
    out: &Node,
    nodes: &mut [Node],
) {
    let &[batch, seq, width] = out.value.shape() else {
        return;
    };
    let geometry = Geometry { seq, width, heads };
    let sample = seq * width;
    let (qv, kv, vv) = (
        nodes[q.0].value.data(),
        nodes[k.0].value.data(),
        nodes[v.0].value.data(),
    );
    let per_sample = run_jobs((0..batch).collect(), |b| {
        let range = b * sample..(b + 1) * sample;
        geometry.backward(
            &qv[range.clone()],
            &kv[range.clone()],
            &vv[range.clone()],
            &out.aux[b * heads * seq * seq..(b + 1) * heads * seq * seq],
            &out.grad.data()[range],
        )
    });
    // One input at a time, so that q, k and v may be the same variable.
    for (which, var) in [q, k, v].into_iter().enumerate() {
        if let Some(mut grad) = GradOut::take(nodes, var) {
            grad.fill_from(per_sample.iter().flat_map(|g| g[which].iter().copied()));
            grad.put(nodes);
        }
    }
}

pub(crate) fn backward_batch_matmul(a: Var, b: Var, out: &Node, nodes: &mut [Node]) {
    let &[batch, m, n] = out.value.shape() else {
        return;
    };
    let k = nodes[a.0].value.shape()[2];
    let g = out.grad.data();
    if let Some(mut grad) = GradOut::take(nodes, a) {
        // da = g · bᵀ, per matrix.
        let acc = grad.accumulate;
        let bv = nodes[b.0].value.data();
        for ((da, g), bm) in grad
            .buf
            .data_mut()
            .chunks_mut((m * k).max(1))
            .zip(g.chunks((m * n).max(1)))
            .zip(bv.chunks((k * n).max(1)))
            .take(batch)
        {
            matmul_serial(da, MatRef::new(g, m, n), MatRef::new(bm, k, n).t(), acc);
        }
        grad.put(nodes);
    }
    if let Some(mut grad) = GradOut::take(nodes, b) {
        // db = aᵀ · g, per matrix.
        let acc = grad.accumulate;
        let av = nodes[a.0].value.data();
        for ((db, g), am) in grad
            .buf
            .data_mut()
            .chunks_mut((k * n).max(1))
            .zip(g.chunks((m * n).max(1)))
            .zip(av.chunks((m * k).max(1)))
            .take(batch)
        {
            matmul_serial(db, MatRef::new(am, m, k).t(), MatRef::new(g, m, n), acc);
        }
        grad.put(nodes);
    }
}

#[cfg(test)]
mod tests {
    use crate::autograd::gradcheck::check_gradients;
    use crate::{Tape, Tensor};

    #[test]
    fn batch_matmul_by_hand_and_gradients() {
        let mut tape = Tape::new();
        let a = tape.constant(&Tensor::new(&[2, 1, 2], vec![1., 2., 3., 4.]).unwrap());
        let b = tape.constant(&Tensor::new(&[2, 2, 1], vec![5., 6., 7., 8.]).unwrap());
        let y = tape.batch_matmul(a, b).unwrap();
        assert_eq!(tape.value(y).data(), &[17., 53.]);
        assert!(tape.batch_matmul(a, a).is_err());
        check_gradients(&[&[3, 2, 4], &[3, 4, 5]], 8, |tape, v| {
            tape.batch_matmul(v[0], v[1])
        })
        .unwrap();
    }

    #[test]
    fn attention_by_hand() {
        // One head, two positions; equal scores → the mean of the values. With the second key
        // masked, every query reads the first value only.
        let mut tape = Tape::new();
        let q = tape.constant(&Tensor::new(&[1, 2, 2], vec![0., 0., 0., 0.]).unwrap());
        let v = tape.constant(&Tensor::new(&[1, 2, 2], vec![1., 2., 3., 4.]).unwrap());
        let y = tape.attention(q, q, v, None, 1).unwrap();
        assert_eq!(tape.value(y).data(), &[2., 3., 2., 3.]);
        let mask = tape.constant(&Tensor::new(&[1, 2], vec![1., 0.]).unwrap());
        let y = tape.attention(q, q, v, Some(mask), 1).unwrap();
        assert_eq!(tape.value(y).data(), &[1., 2., 1., 2.]);
        assert!(tape.attention(q, q, v, None, 3).is_err());
    }

    #[test]
    fn attention_gradients_match_finite_differences() {
        // Two samples, three positions, two heads of two; the second sample's last key masked.
        check_gradients(&[&[2, 3, 4], &[2, 3, 4], &[2, 3, 4]], 12, |tape, v| {
            let mask = tape.constant(&Tensor::new(&[2, 3], vec![1., 1., 1., 1., 1., 0.]).unwrap());
            tape.attention(v[0], v[1], v[2], Some(mask), 2)
        })
        .unwrap();
        // Self-attention: one variable as queries, keys and values.
        check_gradients(&[&[1, 3, 4]], 13, |tape, v| {
            tape.attention(v[0], v[0], v[0], None, 2)
        })
        .unwrap();
    }
}
