//! The kernels of a decoder-only transformer: RMS normalisation, rotary position embeddings,
//! causal grouped-query attention over a key–value cache, SwiGLU and softmax, and the
//! gradients of the normalisation, the rotation and SwiGLU.
//!
//! They follow ggml's arithmetic where it shows in the results: sums of squares in `f64`,
//! RoPE angles built by repeated multiplication in `f32`, queries and attention weights
//! rounded to `f16` as llama.cpp's `f16` cache makes them, so that logits agree with
//! llama.cpp's to a few thousandths.

use half::f16;

use super::matmul::{matmul_serial, MatRef};
use super::{GradBuf, Tensor};
use crate::error::{Error, Result};

/// `x ← x / rms(x) · weight`, row by row (`weight.len()` wide).
pub fn rms_norm(x: &mut [f32], weight: &[f32], eps: f32) {
    let n = weight.len();
    for row in x.chunks_exact_mut(n) {
        let sum: f64 = row.iter().map(|&v| (v * v) as f64).sum();
        let scale = 1.0 / ((sum / n as f64) as f32 + eps).sqrt();
        for (v, w) in row.iter_mut().zip(weight) {
            *v = *v * scale * w;
        }
    }
}

/// The gradients of [`rms_norm`] from its output's `dy`: the input's into `dx`, the weight's
/// into `dweight` (each skipped when None).
pub fn rms_norm_backward(
    dy: &[f32],
    x: &[f32],
    weight: &[f32],
    eps: f32,
    mut dx: Option<GradBuf>,
    dweight: Option<GradBuf>,
) {
    let n = weight.len();
    let mut dw = vec![0f32; if dweight.is_some() { n } else { 0 }];
    for (r, (xr, dyr)) in x.chunks_exact(n).zip(dy.chunks_exact(n)).enumerate() {
        let sum: f64 = xr.iter().map(|&v| (v * v) as f64).sum();
        let scale = 1.0 / ((sum / n as f64) as f32 + eps).sqrt();
        if let Some(g) = &mut dx {
            // d scale / d x_j = −scale³ · x_j / n.
            let dot: f64 = (0..n).map(|j| (dyr[j] * weight[j] * xr[j]) as f64).sum();
            let k = dot as f32 * scale * scale * scale / n as f32;
            let out = &mut g.buf.data_mut()[r * n..][..n];
            for j in 0..n {
                let v = scale * weight[j] * dyr[j] - k * xr[j];
                store(&mut out[j], v, g.accumulate);
            }
        }
        for (j, d) in dw.iter_mut().enumerate() {
            *d += dyr[j] * xr[j] * scale;
        }
    }
    if let Some(g) = dweight {
        for (d, &v) in g.buf.data_mut().iter_mut().zip(&dw) {
            store(d, v, g.accumulate);
        }
    }
}

/// The feature count of an RMS normalisation of `x` (…, features) by `weight` (features).
pub fn rms_norm_features(x: &[usize], weight: &[usize], eps: f32) -> Result<usize> {
    let features = x.last().copied().unwrap_or(0);
    if weight != [features] || features == 0 {
        return Err(Error::shape(
            "rms_norm",
            format!("input {x:?} and weight {weight:?} (must be [features])"),
        ));
    }
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::invalid(format!(
            "rms_norm epsilon must be positive, got {eps}"
        )));
    }
    Ok(features)
}

/// [`rms_norm`] of `x` into `out`, a tensor of `x`'s shape (the tape's output).
pub fn rms_norm_into(out: &mut Tensor, x: &Tensor, weight: &Tensor, eps: f32) {
    let y = out.data_mut();
    y.copy_from_slice(x.data());
    rms_norm(y, weight.data(), eps);
}

/// [`rope`] of `x` into `out`, a tensor of `x`'s shape (the tape's output).
pub fn rope_into(out: &mut Tensor, x: &Tensor, spec: &Rope, first: usize, factors: Option<&[f32]>) {
    let y = out.data_mut();
    y.copy_from_slice(x.data());
    rope(y, spec, first, factors);
}

/// The gradient of [`rope`]: `dy` rotated back, written into `dx` or added to it.
pub fn rope_backward_into(
    dy: &[f32],
    spec: &Rope,
    first: usize,
    factors: Option<&[f32]>,
    dx: GradBuf,
) {
    let mut d = dy.to_vec();
    rope_backward(&mut d, spec, first, factors);
    super::reduce::copy_backward(&d, dx.buf, dx.accumulate);
}

/// [`swiglu`] of `gate` and `up` into `out`, a tensor of their shape (the tape's output).
pub fn swiglu_into(out: &mut Tensor, gate: &Tensor, up: &Tensor) {
    let y = out.data_mut();
    y.copy_from_slice(gate.data());
    swiglu(y, up.data());
}

/// How RoPE pairs a head's dimensions: adjacent ones (llama's layout in GGUF files, whose
/// converter permutes the Q and K rows for it) or the two halves (GPT-NeoX, Qwen2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeLayout {
    Adjacent,
    Halves,
}

/// A model's rotary position embedding: rows of `heads` heads of `head_dim`, pair `i` of a
/// head at position `p` rotated by `p · base^(-2i/head_dim) / factors[i]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rope {
    pub heads: usize,
    pub head_dim: usize,
    pub base: f32,
    pub layout: RopeLayout,
}

/// Rotary embeddings of `x`'s rows, at positions `first..`, in place.
pub fn rope(x: &mut [f32], spec: &Rope, first: usize, factors: Option<&[f32]>) {
    rotate(x, spec, first, factors, false);
}

/// The gradient of [`rope`], in place: `dy` rotated back by the same angles (a rotation's
/// transpose is its inverse).
pub fn rope_backward(dy: &mut [f32], spec: &Rope, first: usize, factors: Option<&[f32]>) {
    rotate(dy, spec, first, factors, true);
}

fn rotate(x: &mut [f32], spec: &Rope, first: usize, factors: Option<&[f32]>, back: bool) {
    let Rope {
        heads,
        head_dim,
        base,
        layout,
    } = *spec;
    let half = head_dim / 2;
    let step = base.powf(-2.0 / head_dim as f32);
    let mut cos_sin = vec![(0f32, 0f32); half];
    for (t, row) in x.chunks_exact_mut(heads * head_dim).enumerate() {
        let mut theta = (first + t) as f32;
        for (i, cs) in cos_sin.iter_mut().enumerate() {
            let angle = theta / factors.map_or(1.0, |f| f[i]);
            let sin = angle.sin();
            *cs = (angle.cos(), if back { -sin } else { sin });
            theta *= step;
        }
        for head in row.chunks_exact_mut(head_dim) {
            for (i, &(c, s)) in cos_sin.iter().enumerate() {
                let (a, b) = match layout {
                    RopeLayout::Adjacent => (2 * i, 2 * i + 1),
                    RopeLayout::Halves => (i, i + half),
                };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * c - x1 * s;
                head[b] = x0 * s + x1 * c;
            }
        }
    }
}

/// `gate ← silu(gate) · up`.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// Checks that `x` (…, heads · head_dim) fits `spec`, with `factors` (head_dim / 2) if given.
pub fn rope_check(x: &[usize], spec: &Rope, factors: Option<&[f32]>) -> Result<()> {
    let width = x.last().copied().unwrap_or(0);
    if !spec.head_dim.is_multiple_of(2) || spec.heads * spec.head_dim != width || width == 0 {
        return Err(Error::shape(
            "rope",
            format!(
                "input {x:?} is not rows of {} heads of an even {}",
                spec.heads, spec.head_dim
            ),
        ));
    }
    if let Some(f) = factors.filter(|f| f.len() != spec.head_dim / 2) {
        return Err(Error::shape(
            "rope",
            format!(
                "{} frequency factors for heads of {}",
                f.len(),
                spec.head_dim
            ),
        ));
    }
    Ok(())
}

/// The gradients of [`swiglu`] from its output's `dy`, into `dgate` and `dup` (each skipped
/// when None).
pub fn swiglu_backward(
    dy: &[f32],
    gate: &[f32],
    up: &[f32],
    dgate: Option<GradBuf>,
    dup: Option<GradBuf>,
) {
    if let Some(g) = dgate {
        for (((d, &dy), &x), &u) in g.buf.data_mut().iter_mut().zip(dy).zip(gate).zip(up) {
            // silu'(x) = σ(x) · (1 + x · (1 − σ(x))).
            let sigmoid = 1.0 / (1.0 + (-x).exp());
            store(
                d,
                dy * u * sigmoid * (1.0 + x * (1.0 - sigmoid)),
                g.accumulate,
            );
        }
    }
    if let Some(g) = dup {
        for ((d, &dy), &x) in g.buf.data_mut().iter_mut().zip(dy).zip(gate) {
            store(d, dy * x / (1.0 + (-x).exp()), g.accumulate);
        }
    }
}

/// Checks that SwiGLU's gate and up have one shape.
pub fn swiglu_check(gate: &[usize], up: &[usize]) -> Result<()> {
    if gate != up {
        return Err(Error::shape(
            "swiglu",
            format!("gate {gate:?} and up {up:?} differ"),
        ));
    }
    Ok(())
}

/// Writes `v` into a gradient element, or adds it when accumulating.
fn store(d: &mut f32, v: f32, accumulate: bool) {
    if accumulate {
        *d += v;
    } else {
        *d = v;
    }
}

/// `x` rounded to the nearest `f16`, as a value stored in an `f16` cache reads back.
pub fn round_f16(x: &mut [f32]) {
    for v in x {
        *v = f16::from_f32(*v).to_f32();
    }
}

/// One layer's key–value cache: per key–value head, the keys and the values of every
/// position so far, `head_dim` each, contiguous.
#[derive(Clone, Debug, Default)]
pub struct LayerCache {
    pub keys: Vec<Vec<f32>>,
    pub values: Vec<Vec<f32>>,
}

impl LayerCache {
    pub fn new(kv_heads: usize) -> Self {
        LayerCache {
            keys: vec![Vec::new(); kv_heads],
            values: vec![Vec::new(); kv_heads],
        }
    }

    /// Appends `tokens` rows of keys and values (kv_heads × head_dim each), rounded to
    /// `f16` as llama.cpp's cache stores them.
    pub fn append(&mut self, k: &[f32], v: &[f32], head_dim: usize) {
        let kv_heads = self.keys.len();
        for (rk, rv) in k
            .chunks_exact(kv_heads * head_dim)
            .zip(v.chunks_exact(kv_heads * head_dim))
        {
            for h in 0..kv_heads {
                let at = self.keys[h].len();
                self.keys[h].extend_from_slice(&rk[h * head_dim..][..head_dim]);
                round_f16(&mut self.keys[h][at..]);
                self.values[h].extend_from_slice(&rv[h * head_dim..][..head_dim]);
                round_f16(&mut self.values[h][at..]);
            }
        }
    }

    /// Drops every position from `len` on.
    pub fn truncate(&mut self, len: usize, head_dim: usize) {
        for k in self.keys.iter_mut().chain(self.values.iter_mut()) {
            k.truncate(len * head_dim);
        }
    }
}

/// Causal attention of `tokens` queries (tokens × heads × head_dim, already rotated), the
/// last `tokens` of the cache's positions, over every cached position up to each query's
/// own; the result (tokens × heads × head_dim) goes to `out`. Query head `h` reads key–value
/// head `h / (heads / kv_heads)`.
pub fn causal_attention(
    q: &[f32],
    cache: &LayerCache,
    heads: usize,
    head_dim: usize,
    out: &mut [f32],
) {
    let kv_heads = cache.keys.len();
    let group = heads / kv_heads;
    let tokens = q.len() / (heads * head_dim);
    let len = cache.keys[0].len() / head_dim;
    let first = len - tokens;
    let scale = 1.0 / (head_dim as f32).sqrt();
    let one_head = |h: usize| -> Vec<f32> {
        let (keys, values) = (&cache.keys[h / group], &cache.values[h / group]);
        let mut qh = vec![0f32; tokens * head_dim];
        for t in 0..tokens {
            qh[t * head_dim..][..head_dim]
                .copy_from_slice(&q[(t * heads + h) * head_dim..][..head_dim]);
        }
        round_f16(&mut qh);
        let mut scores = vec![0f32; tokens * len];
        matmul_serial(
            &mut scores,
            MatRef::new(&qh, tokens, head_dim),
            MatRef::new(keys, len, head_dim).t(),
            false,
        );
        for (t, row) in scores.chunks_exact_mut(len).enumerate() {
            let visible = first + t + 1;
            softmax(&mut row[..visible], scale);
            row[visible..].fill(0.0);
            round_f16(&mut row[..visible]);
        }
        let mut oh = vec![0f32; tokens * head_dim];
        matmul_serial(
            &mut oh,
            MatRef::new(&scores, tokens, len),
            MatRef::new(values, len, head_dim),
            false,
        );
        oh
    };
    let per_head: Vec<std::sync::Mutex<Vec<f32>>> =
        (0..heads).map(|_| Default::default()).collect();
    super::team::parallel_for(heads, &|h| {
        *per_head[h].lock().unwrap_or_else(|e| e.into_inner()) = one_head(h);
    });
    let per_head: Vec<Vec<f32>> = per_head
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect();
    for (h, oh) in per_head.iter().enumerate() {
        for t in 0..tokens {
            out[(t * heads + h) * head_dim..][..head_dim]
                .copy_from_slice(&oh[t * head_dim..][..head_dim]);
        }
    }
}

/// The head size of causal attention of `q` (tokens, heads · head_dim) with new keys `k` and
/// values `v` (tokens, kv_heads · head_dim) over `cache` (kv_heads heads).
pub fn cached_attention_head_dim(
    q: &[usize],
    k: &[usize],
    v: &[usize],
    cache: &LayerCache,
    heads: usize,
) -> Result<usize> {
    let kv_heads = cache.keys.len();
    let bad = |why: &str| {
        Err(Error::shape(
            "cached_attention",
            format!("q {q:?}, k {k:?}, v {v:?}, {heads} heads, a cache of {kv_heads}: {why}"),
        ))
    };
    if q.len() != 2 || k != v || k.len() != 2 || q[0] != k[0] || q[0] == 0 {
        return bad("need (tokens, width) each, as many tokens in each");
    }
    if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
        return bad("the heads must share the key-value heads evenly");
    }
    let head_dim = q[1] / heads;
    if head_dim == 0 || q[1] != heads * head_dim || k[1] != kv_heads * head_dim {
        return bad("query and key heads differ in size");
    }
    if cache.keys.iter().any(|c| !c.len().is_multiple_of(head_dim)) {
        return bad("the cache holds heads of another size");
    }
    Ok(head_dim)
}

/// `x ← softmax(scale · x)`, with the sum in `f64`.
pub fn softmax(x: &mut [f32], scale: f32) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v * scale));
    let mut sum = 0f64;
    for v in x.iter_mut() {
        *v = (*v * scale - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_matches_hand_computation() {
        let mut x = vec![3.0, 4.0, 0.0, -4.0, 0.0, 3.0];
        rms_norm(&mut x, &[1.0, 2.0, 0.5], 0.0);
        // rms of (3, 4, 0) is 5/√3.
        let r = 5.0 / 3f32.sqrt();
        let want = [3.0 / r, 8.0 / r, 0.0, -4.0 / r, 0.0, 1.5 / r];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
    }

    #[test]
    fn rope_rotates_pairs_by_position_times_frequency() {
        // One head of 4: pairs (0,1) at frequency 1 and (2,3) at base^(-1/2) = 0.01.
        let spec = |layout| Rope {
            heads: 1,
            head_dim: 4,
            base: 10000.0,
            layout,
        };
        let mut x = vec![1.0, 0.0, 1.0, 0.0];
        rope(&mut x, &spec(RopeLayout::Adjacent), 3, None);
        let want = [3f32.cos(), 3f32.sin(), 0.03f32.cos(), 0.03f32.sin()];
        for (a, b) in x.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
        let mut y = vec![1.0, 1.0, 0.0, 0.0];
        rope(&mut y, &spec(RopeLayout::Halves), 3, Some(&[1.0, 3.0]));
        let want = [3f32.cos(), 0.01f32.cos(), 3f32.sin(), 0.01f32.sin()];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
        // Rotations keep norms, and position 0 is the identity.
        let mut z = vec![0.3, -0.7, 0.2, 0.9];
        let before = z.clone();
        rope(&mut z, &spec(RopeLayout::Adjacent), 0, None);
        assert_eq!(z, before);
        // Rotating back undoes a rotation.
        rope(&mut z, &spec(RopeLayout::Halves), 5, Some(&[1.0, 3.0]));
        rope_backward(&mut z, &spec(RopeLayout::Halves), 5, Some(&[1.0, 3.0]));
        for (a, b) in z.iter().zip(&before) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
    }

    /// Attention over the cache equals the textbook formula computed directly, for a
    /// prompt and then one more token, with two query heads sharing each key–value head.
    #[test]
    fn causal_attention_matches_the_formula() {
        let (heads, kv_heads, d) = (4, 2, 8);
        let mut rng = crate::tensor::random::Rng::seed(9);
        let mut gen = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.normal(1.0)).collect() };
        let (q, k, v) = (
            gen(5 * heads * d),
            gen(5 * kv_heads * d),
            gen(5 * kv_heads * d),
        );
        let reference = |t: usize, h: usize| -> Vec<f32> {
            let g = h / 2;
            let f = |x: f32| f16::from_f32(x).to_f32();
            let mut w: Vec<f32> = (0..=t)
                .map(|j| {
                    (0..d)
                        .map(|i| f(q[(t * heads + h) * d + i]) * f(k[(j * kv_heads + g) * d + i]))
                        .sum::<f32>()
                })
                .collect();
            softmax(&mut w, 1.0 / (d as f32).sqrt());
            (0..d)
                .map(|i| {
                    (0..=t)
                        .map(|j| f(w[j]) * f(v[(j * kv_heads + g) * d + i]))
                        .sum()
                })
                .collect()
        };
        let mut cache = LayerCache::new(kv_heads);
        cache.append(&k[..4 * kv_heads * d], &v[..4 * kv_heads * d], d);
        let mut out = vec![0f32; 4 * heads * d];
        causal_attention(&q[..4 * heads * d], &cache, heads, d, &mut out);
        cache.append(&k[4 * kv_heads * d..], &v[4 * kv_heads * d..], d);
        let mut last = vec![0f32; heads * d];
        causal_attention(&q[4 * heads * d..], &cache, heads, d, &mut last);
        out.extend(last);
        for t in 0..5 {
            for h in 0..heads {
                let want = reference(t, h);
                let got = &out[(t * heads + h) * d..][..d];
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-4, "t{t} h{h}: {a} {b}");
                }
            }
        }
    }

    #[test]
    fn swiglu_and_softmax() {
        let mut g = vec![0.0, 1.0, -2.0];
        swiglu(&mut g, &[5.0, 2.0, 1.0]);
        let silu = |x: f32| x / (1.0 + (-x).exp());
        assert_eq!(g, vec![0.0, silu(1.0) * 2.0, silu(-2.0)]);
        let mut p = vec![1.0, 2.0, 3.0];
        softmax(&mut p, 2.0);
        let e: Vec<f64> = [2f64, 4., 6.].iter().map(|x| x.exp()).collect();
        let s: f64 = e.iter().sum();
        for (a, b) in p.iter().zip(&e) {
            assert!((*a as f64 - b / s).abs() < 1e-6);
        }
    }
}
