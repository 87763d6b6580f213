//! Batched matrix products and fused multi-head scaled dot-product attention.
//!
//! Attention takes queries, keys and values of shape (batch, sequence, heads · head_dim) and an
//! optional key mask (batch, sequence) of 1 (attend) and 0 (padding): per sample and head,
//! `softmax(Q Kᵀ / √head_dim, masked keys excluded) · V`, written back in the same layout. The
//! attention probabilities are kept for the backward pass. Work is split by sample across the
//! threads.

use super::activation::softmax_fast;
use super::elementwise::store;
use super::matmul::{matmul_serial, MatRef};
use super::threads::run_jobs;
use super::Tensor;
use crate::error::{Error, Result};

/// Checks a batched product's operands, (batch, m, k) and (batch, k, n): returns
/// (batch, m, k, n).
pub fn batch_matmul_dims(a: &[usize], b: &[usize]) -> Result<[usize; 4]> {
    let (&[batch, m, k], &[batch_b, k_b, n]) = (a, b) else {
        return Err(Error::shape(
            "batch_matmul",
            format!("needs (batch, m, k) and (batch, k, n), got {a:?} and {b:?}"),
        ));
    };
    if batch != batch_b || k != k_b {
        return Err(Error::shape(
            "batch_matmul",
            format!("{a:?} and {b:?} do not chain"),
        ));
    }
    Ok([batch, m, k, n])
}

/// `out` (batch, m, n) = `a` (batch, m, k) · `b` (batch, k, n), matrix by matrix.
pub fn batch_matmul(a: &[f32], b: &[f32], [_, m, k, n]: [usize; 4], out: &mut Tensor) {
    let jobs: Vec<_> = out
        .data_mut()
        .chunks_mut((m * n).max(1))
        .zip(a.chunks((m * k).max(1)))
        .zip(b.chunks((k * n).max(1)))
        .collect();
    run_jobs(jobs, |((o, a), b)| {
        matmul_serial(o, MatRef::new(a, m, k), MatRef::new(b, k, n), false)
    });
}

/// The gradient of [`batch_matmul`] with respect to `a`: da = g · bᵀ, per matrix.
pub fn batch_matmul_grad_a(
    g: &[f32],
    b: &[f32],
    [batch, m, k, n]: [usize; 4],
    da: &mut Tensor,
    accumulate: bool,
) {
    for ((da, g), bm) in da
        .data_mut()
        .chunks_mut((m * k).max(1))
        .zip(g.chunks((m * n).max(1)))
        .zip(b.chunks((k * n).max(1)))
        .take(batch)
    {
        matmul_serial(
            da,
            MatRef::new(g, m, n),
            MatRef::new(bm, k, n).t(),
            accumulate,
        );
    }
}

/// The gradient of [`batch_matmul`] with respect to `b`: db = aᵀ · g, per matrix.
pub fn batch_matmul_grad_b(
    g: &[f32],
    a: &[f32],
    [batch, m, k, n]: [usize; 4],
    db: &mut Tensor,
    accumulate: bool,
) {
    for ((db, g), am) in db
        .data_mut()
        .chunks_mut((k * n).max(1))
        .zip(g.chunks((m * n).max(1)))
        .zip(a.chunks((m * k).max(1)))
        .take(batch)
    {
        matmul_serial(
            db,
            MatRef::new(am, m, k).t(),
            MatRef::new(g, m, n),
            accumulate,
        );
    }
}

/// Checks attention's operands, queries (batch, sequence, features) with keys and values of the
/// same shape, and the mask (batch, sequence): returns (batch, sequence, features).
pub fn attention_dims(
    q: &[usize],
    k: &[usize],
    v: &[usize],
    mask: Option<&[usize]>,
    heads: usize,
) -> Result<[usize; 3]> {
    let &[batch, seq, width] = q else {
        return Err(Error::shape(
            "attention",
            format!("needs (batch, sequence, features) queries, got {q:?}"),
        ));
    };
    if heads == 0 || width % heads != 0 {
        return Err(Error::shape(
            "attention",
            format!("{width} features do not split into {heads} heads"),
        ));
    }
    for other in [k, v] {
        if other != q {
            return Err(Error::shape(
                "attention",
                format!("queries {q:?}, keys and values {other:?}"),
            ));
        }
    }
    if let Some(m) = mask {
        if m != [batch, seq] {
            return Err(Error::shape(
                "attention",
                format!(
                    "the mask must be (batch, sequence) = {:?}, got {m:?}",
                    [batch, seq]
                ),
            ));
        }
    }
    Ok([batch, seq, width])
}

/// The length of the probabilities [`attention`] keeps for its backward pass.
pub fn attention_probs_len([batch, seq, _]: [usize; 3], heads: usize) -> usize {
    batch * heads * seq * seq
}

/// Multi-head attention of the whole batch into `out` (batch, seq, width); `probs`
/// ([`attention_probs_len`]) receives the attention probabilities, for a backward pass.
pub fn attention(
    inputs: (&[f32], &[f32], &[f32]),
    mask: Option<&[f32]>,
    dims: [usize; 3],
    heads: usize,
    out: &mut Tensor,
    probs: &mut [f32],
) {
    attention_samples(inputs, mask, dims, heads, out.data_mut(), Some(probs));
}

/// [`attention`] for inference: the same output, with no probabilities kept (each sample's
/// heads reuse one (seq, seq) buffer, where keeping them would take batch · heads · seq² values:
/// 100 MB for 32 texts of 256 tokens and 12 heads).
pub fn attention_inference(
    inputs: (&[f32], &[f32], &[f32]),
    mask: Option<&[f32]>,
    dims: [usize; 3],
    heads: usize,
    out: &mut [f32],
) {
    attention_samples(inputs, mask, dims, heads, out, None);
}

/// Both forms of attention, sample by sample across the threads: `probs` keeps the
/// probabilities when given.
fn attention_samples(
    (q, k, v): (&[f32], &[f32], &[f32]),
    mask: Option<&[f32]>,
    [_, seq, width]: [usize; 3],
    heads: usize,
    out: &mut [f32],
    probs: Option<&mut [f32]>,
) {
    let sample = seq * width;
    let outs = out.chunks_mut(sample.max(1));
    let kept: Vec<Option<&mut [f32]>> = match probs {
        Some(p) => p.chunks_mut((heads * seq * seq).max(1)).map(Some).collect(),
        None => std::iter::repeat_with(|| None).take(outs.len()).collect(),
    };
    let jobs: Vec<_> = outs.zip(kept).enumerate().collect();
    let geometry = Geometry { seq, width, heads };
    run_jobs(jobs, |(b, (o, kept))| {
        let range = b * sample..(b + 1) * sample;
        let keep = mask.map(|m| &m[b * seq..(b + 1) * seq]);
        let probs = match kept {
            Some(p) => Probs::Keep(p),
            None => Probs::Scratch,
        };
        geometry.forward(
            (&q[range.clone()], &k[range.clone()], &v[range]),
            keep,
            o,
            probs,
        );
    });
}

/// Where a sample's attention probabilities go: kept (heads · seq² values) or into one
/// scratch buffer that each head overwrites.
enum Probs<'a> {
    Keep(&'a mut [f32]),
    Scratch,
}

/// The gradients of [`attention`], sample by sample: (dq, dk, dv) each (seq, width).
pub struct AttentionGrads(Vec<[Vec<f32>; 3]>);

impl AttentionGrads {
    /// Writes (or adds, when accumulating) the gradient of input `which` (0: q, 1: k, 2: v).
    pub fn store(&self, which: usize, dst: &mut Tensor, accumulate: bool) {
        let values = self.0.iter().flat_map(|g| g[which].iter().copied());
        store(dst.data_mut(), values, accumulate);
    }
}

/// The gradients of [`attention`] from its inputs, kept probabilities and output gradient.
pub fn attention_backward(
    (q, k, v): (&[f32], &[f32], &[f32]),
    probs: &[f32],
    grad_out: &[f32],
    [batch, seq, width]: [usize; 3],
    heads: usize,
) -> AttentionGrads {
    let geometry = Geometry { seq, width, heads };
    let sample = seq * width;
    AttentionGrads(run_jobs((0..batch).collect(), |b| {
        let range = b * sample..(b + 1) * sample;
        geometry.backward(
            &q[range.clone()],
            &k[range.clone()],
            &v[range.clone()],
            &probs[b * heads * seq * seq..(b + 1) * heads * seq * seq],
            &grad_out[range],
        )
    }))
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
        (q, k, v): (&[f32], &[f32], &[f32]),
        keep: Option<&[f32]>,
        out: &mut [f32],
        probs: Probs,
    ) {
        let (s, d) = (self.seq, self.head_dim());
        let mut scratch = Vec::new();
        // Head h's probabilities start at h · per_head.
        let (probs, per_head) = match probs {
            Probs::Keep(p) => (p, s * s),
            Probs::Scratch => {
                scratch.resize(s * s, 0.0);
                (&mut scratch[..], 0)
            }
        };
        let scale = 1.0 / (d as f32).sqrt();
        let (mut qh, mut kh, mut vh, mut oh) = (
            vec![0.0; s * d],
            vec![0.0; s * d],
            vec![0.0; s * d],
            vec![0.0; s * d],
        );
        for h in 0..self.heads {
            let p = &mut probs[h * per_head..h * per_head + s * s];
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
                    softmax_fast(row);
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
