//! Quantised weights (ggml's block formats) and their matrix products.
//!
//! A quantised matrix stores each row as blocks: 32 (or, for the K-quants, 256) elements
//! sharing scales. [`QMatrix::matmul`] multiplies `n` activation rows by the matrix's
//! transpose, as a linear layer does. For Q4_0, Q4_1 and Q8_0 weights the activations are
//! quantised to 8 bits per block first (Q8_0 / Q8_1, as llama.cpp does) and each block's dot
//! product is computed in integers — AVX-512 VNNI or AVX2 chosen at run time, a scalar loop
//! elsewhere — then scaled; other types are expanded to `f32` a row at a time. Rows are
//! shared among the threads; every weight row is read once for up to four activation rows.

use std::fmt;

use half::{bf16, f16};

use super::matmul::MatRef;
use super::{GradBuf, Tensor};
use crate::error::{Error, Result};

/// The element types of ggml tensors that Ember reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q8_0,
    Q4K,
    Q6K,
}

impl QuantType {
    /// The type of ggml type id `id`, if Ember reads it.
    pub fn from_ggml(id: u32) -> Option<QuantType> {
        Some(match id {
            0 => QuantType::F32,
            1 => QuantType::F16,
            2 => QuantType::Q4_0,
            3 => QuantType::Q4_1,
            8 => QuantType::Q8_0,
            12 => QuantType::Q4K,
            14 => QuantType::Q6K,
            30 => QuantType::BF16,
            _ => return None,
        })
    }

    /// Elements per block.
    pub fn block_len(self) -> usize {
        match self {
            QuantType::F32 | QuantType::F16 | QuantType::BF16 => 1,
            QuantType::Q4_0 | QuantType::Q4_1 | QuantType::Q8_0 => 32,
            QuantType::Q4K | QuantType::Q6K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            QuantType::F32 => 4,
            QuantType::F16 | QuantType::BF16 => 2,
            QuantType::Q4_0 => 18,
            QuantType::Q4_1 => 20,
            QuantType::Q8_0 => 34,
            QuantType::Q4K => 144,
            QuantType::Q6K => 210,
        }
    }

    /// Bytes of a row of `cols` elements (`cols` a multiple of the block length).
    pub fn row_bytes(self, cols: usize) -> usize {
        cols / self.block_len() * self.block_bytes()
    }
}

impl fmt::Display for QuantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuantType::F32 => "F32",
            QuantType::F16 => "F16",
            QuantType::BF16 => "BF16",
            QuantType::Q4_0 => "Q4_0",
            QuantType::Q4_1 => "Q4_1",
            QuantType::Q8_0 => "Q8_0",
            QuantType::Q4K => "Q4_K",
            QuantType::Q6K => "Q6_K",
        })
    }
}

fn half_at(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// Expands one row (whole blocks of `kind`) into `out`, one `f32` per element.
pub fn dequantize_row(kind: QuantType, bytes: &[u8], out: &mut [f32]) {
    assert_eq!(bytes.len(), kind.row_bytes(out.len()), "whole blocks");
    let n = kind.block_len();
    let blocks = bytes.chunks_exact(kind.block_bytes());
    match kind {
        QuantType::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        QuantType::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half_at(b, 0);
            }
        }
        QuantType::BF16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
            }
        }
        QuantType::Q4_0 => {
            for (y, b) in out.chunks_exact_mut(n).zip(blocks) {
                let d = half_at(b, 0);
                for (j, &q) in b[2..18].iter().enumerate() {
                    y[j] = ((q & 15) as i32 - 8) as f32 * d;
                    y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
                }
            }
        }
        QuantType::Q4_1 => {
            for (y, b) in out.chunks_exact_mut(n).zip(blocks) {
                let (d, m) = (half_at(b, 0), half_at(b, 2));
                for (j, &q) in b[4..20].iter().enumerate() {
                    y[j] = (q & 15) as f32 * d + m;
                    y[j + 16] = (q >> 4) as f32 * d + m;
                }
            }
        }
        QuantType::Q8_0 => {
            for (y, b) in out.chunks_exact_mut(n).zip(blocks) {
                let d = half_at(b, 0);
                for (o, &q) in y.iter_mut().zip(&b[2..34]) {
                    *o = (q as i8) as f32 * d;
                }
            }
        }
        QuantType::Q4K => {
            for (y, b) in out.chunks_exact_mut(n).zip(blocks) {
                let (d, min) = (half_at(b, 0), half_at(b, 2));
                let scales = &b[4..16];
                let qs = &b[16..144];
                for (j, (y64, q32)) in y.chunks_exact_mut(64).zip(qs.chunks_exact(32)).enumerate() {
                    let (sc1, m1) = scale_min_k4(2 * j, scales);
                    let (sc2, m2) = scale_min_k4(2 * j + 1, scales);
                    let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
                    let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
                    for (l, &q) in q32.iter().enumerate() {
                        y64[l] = d1 * (q & 15) as f32 - m1;
                        y64[l + 32] = d2 * (q >> 4) as f32 - m2;
                    }
                }
            }
        }
        QuantType::Q6K => {
            for (y, b) in out.chunks_exact_mut(n).zip(blocks) {
                let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
                let d = half_at(b, 208);
                for half in 0..2 {
                    let (ql, qh) = (&ql[64 * half..], &qh[32 * half..]);
                    let sc = &sc[8 * half..];
                    let y = &mut y[128 * half..];
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 15) | ((qh[l] & 3) << 4)) as i32 - 32;
                        let q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                        let s = |k: usize| d * (sc[is + k] as i8) as f32;
                        y[l] = s(0) * q1 as f32;
                        y[l + 32] = s(2) * q2 as f32;
                        y[l + 64] = s(4) * q3 as f32;
                        y[l + 96] = s(6) * q4 as f32;
                    }
                }
            }
        }
    }
}

/// Q4_K's 6-bit scale and minimum of sub-block `j` (of 8), packed in 12 bytes.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// 32 activations quantised to 8 bits: `x ≈ d · qs`. `d` and `s` are rounded to `f16`, as
/// ggml stores them, so that products match llama.cpp's.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(16))]
pub struct Q8Block {
    pub qs: [i8; 32],
    pub d: f32,
    /// `d · Σ qs` (Q8_1's second scale, used by Q4_1).
    pub s: f32,
    /// `Σ qs`.
    pub sum: i32,
}

/// Quantises `x` (a multiple of 32 long) into blocks, as ggml's AVX2 `quantize_row_q8_1`
/// does: `d = max|x| / 127`, `q = round_half_even(x · 127 / max|x|)`.
pub fn quantize_q8(x: &[f32], out: &mut Vec<Q8Block>) {
    assert_eq!(x.len() % 32, 0, "whole blocks");
    out.clear();
    out.extend(x.chunks_exact(32).map(|v| {
        let amax = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut qs = [0i8; 32];
        let mut sum = 0i32;
        for (q, &x) in qs.iter_mut().zip(v) {
            *q = round_half_even(x * id) as i8;
            sum += *q as i32;
        }
        Q8Block {
            qs,
            d: f16::from_f32(d).to_f32(),
            s: f16::from_f32(d * sum as f32).to_f32(),
            sum,
        }
    }));
}

/// `x` rounded to the nearest integer, ties to even, for |x| ≤ 2²²: adding and taking away
/// 1.5·2²³ leaves no fraction bits, and the default rounding mode rounds ties to even. (A
/// plain `round_ties_even` calls libm's `rintf` on x86-64 without SSE4.1.)
fn round_half_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

/// A matrix of `rows` rows of `cols` elements in one of ggml's formats: a linear layer's
/// weight (out × in).
#[derive(Clone, Debug)]
pub struct QMatrix {
    pub kind: QuantType,
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<u8>,
}

/// How many activation rows share one pass over a weight row.
const TOKENS: usize = 4;

impl QMatrix {
    /// A matrix over `data`, checked to hold exactly `rows` rows of `cols` elements.
    pub fn new(kind: QuantType, rows: usize, cols: usize, data: Vec<u8>) -> Result<QMatrix> {
        if !cols.is_multiple_of(kind.block_len()) {
            return Err(Error::shape(
                "QMatrix::new",
                format!("rows of {cols} elements are not whole {kind} blocks"),
            ));
        }
        let want = rows.checked_mul(kind.row_bytes(cols));
        if want != Some(data.len()) {
            return Err(Error::shape(
                "QMatrix::new",
                format!(
                    "{rows} × {cols} {kind} needs {want:?} bytes, got {}",
                    data.len()
                ),
            ));
        }
        Ok(QMatrix {
            kind,
            rows,
            cols,
            data,
        })
    }

    fn row(&self, r: usize) -> &[u8] {
        let n = self.kind.row_bytes(self.cols);
        &self.data[r * n..(r + 1) * n]
    }

    /// Row `r` expanded to `f32` (an embedding lookup).
    pub fn row_f32(&self, r: usize, out: &mut [f32]) {
        dequantize_row(self.kind, self.row(r), out);
    }

    /// The whole matrix expanded to `f32` (rows × cols, row-major) into `out`.
    pub fn dequantize(&self, out: &mut Vec<f32>) {
        out.clear();
        out.resize(self.rows * self.cols, 0.0);
        for (r, row) in out.chunks_exact_mut(self.cols).enumerate() {
            self.row_f32(r, row);
        }
    }

    /// `out[t][r] = Σ_c x[t][c] · self[r][c]` for the `n` rows of `x` (n × cols, row-major);
    /// `out` is n × rows.
    pub fn matmul(&self, x: &[f32], n: usize, out: &mut [f32]) {
        matmul_shared(&[self], x, n, &mut [out], &mut Vec::new());
    }

    /// Whether products with this matrix quantise their activations to 8 bits first.
    fn reads_q8(&self) -> bool {
        matches!(
            self.kind,
            QuantType::Q4_0 | QuantType::Q4_1 | QuantType::Q8_0
        )
    }

    /// The product with activations already quantised by [`quantize_q8`] (n × cols/32
    /// blocks), for Q4_0, Q4_1 and Q8_0 matrices.
    pub fn matmul_q8(&self, x: &[Q8Block], n: usize, out: &mut [f32]) {
        let nb = self.cols / 32;
        assert_eq!(x.len(), n * nb, "QMatrix::matmul_q8 input");
        assert_eq!(out.len(), n * self.rows, "QMatrix::matmul_q8 output");
        let dot = kernel(self.kind);
        let rows = self.rows;
        let out = SharedOut(out.as_mut_ptr());
        self.for_row_chunks(n, |r0, r1| {
            let mut sums = [0f32; TOKENS];
            for t0 in (0..n).step_by(TOKENS) {
                let t1 = (t0 + TOKENS).min(n);
                let xs: [&[Q8Block]; TOKENS] =
                    std::array::from_fn(|i| &x[(t0 + i).min(t1 - 1) * nb..][..nb]);
                for r in r0..r1 {
                    dot(self.row(r), &xs[..t1 - t0], &mut sums);
                    for (i, &s) in sums[..t1 - t0].iter().enumerate() {
                        // SAFETY: each (token, row) is written by exactly one task.
                        unsafe { out.write((t0 + i) * rows + r, s) };
                    }
                }
            }
        });
    }

    fn matmul_f32(&self, x: &[f32], n: usize, out: &mut [f32]) {
        let (rows, cols) = (self.rows, self.cols);
        let out = SharedOut(out.as_mut_ptr());
        self.for_row_chunks(n, |r0, r1| {
            let mut w = vec![0f32; cols];
            for r in r0..r1 {
                dequantize_row(self.kind, self.row(r), &mut w);
                for t in 0..n {
                    let s = crate::tensor::factorization::dot(&w, &x[t * cols..][..cols]);
                    // SAFETY: each (token, row) is written by exactly one task.
                    unsafe { out.write(t * rows + r, s) };
                }
            }
        });
    }

    /// Runs `f(first, end)` over chunks of rows, on the thread team when the work is worth
    /// it (a token step runs hundreds of these products of a few microseconds each).
    fn for_row_chunks(&self, n: usize, f: impl Fn(usize, usize) + Sync) {
        let threads = crate::tensor::threads::num_threads();
        let work = self.data.len() * n.div_ceil(TOKENS);
        if threads == 1 || work < 1 << 14 {
            return f(0, self.rows);
        }
        // A few chunks per thread balance the load; chunks of at least 16 rows keep the
        // scheduling cost small.
        let chunk = self.rows.div_ceil(threads * 4).max(16);
        crate::tensor::team::parallel_for(self.rows.div_ceil(chunk), &|c| {
            f(c * chunk, ((c + 1) * chunk).min(self.rows))
        });
    }
}

/// The output shape of `x · wᵀ` for `x` (…, cols): (…, rows).
pub fn matmul_shape(x: &[usize], w: &QMatrix) -> Result<Vec<usize>> {
    match x.split_last() {
        Some((&cols, lead)) if cols == w.cols => Ok([lead, &[w.rows]].concat()),
        _ => Err(Error::shape(
            "qlinear",
            format!(
                "input {x:?} against a {} × {} {} matrix",
                w.rows, w.cols, w.kind
            ),
        )),
    }
}

/// [`QMatrix::matmul`] of each matrix of `ws` with the same `x` into `outs`: `x` is
/// quantised to 8 bits once for all of them (a block's Q, K and V share it, as do its gate
/// and up), into `quantised`, a buffer the caller keeps so that a model's every product
/// reuses one.
pub fn matmul_shared(
    ws: &[&QMatrix],
    x: &[f32],
    n: usize,
    outs: &mut [&mut [f32]],
    quantised: &mut Vec<Q8Block>,
) {
    let mut fresh = true;
    for (w, out) in ws.iter().zip(outs.iter_mut()) {
        assert_eq!(x.len(), n * w.cols, "QMatrix::matmul input");
        assert_eq!(out.len(), n * w.rows, "QMatrix::matmul output");
        if w.reads_q8() {
            if fresh {
                quantize_q8(x, quantised);
                fresh = false;
            }
            w.matmul_q8(quantised, n, out);
        } else {
            w.matmul_f32(x, n, out);
        }
    }
}

/// `out = x · wᵀ` into the tape's output tensor `out` (…, rows), quantising `x` for the
/// product as inference does.
pub fn matmul_into(w: &QMatrix, x: &Tensor, out: &mut Tensor) {
    let input = x.data();
    matmul_shared(
        &[w],
        input,
        input.len() / w.cols.max(1),
        &mut [out.data_mut()],
        &mut Vec::new(),
    );
}

/// The gradient of `y = x · wᵀ` with respect to `x`: `dx = dy · w` for `dy` (n × rows) and
/// the matrix expanded to `f32` (rows × cols, from [`QMatrix::dequantize`]); written into
/// `dx` (n × cols), or added to it when accumulating.
pub fn matmul_input_grad(dy: &[f32], w: &[f32], rows: usize, cols: usize, dx: GradBuf) {
    let n = dy.len() / rows.max(1);
    super::matmul::matmul(
        dx.buf.data_mut(),
        MatRef::new(dy, n, rows),
        MatRef::new(w, rows, cols),
        dx.accumulate,
    );
}

/// A pointer to an output that tasks write disjoint elements of.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: tasks write disjoint elements only.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}
impl SharedOut {
    /// SAFETY: `i` in bounds and written by no other task.
    unsafe fn write(self, i: usize, v: f32) {
        unsafe { *self.0.add(i) = v }
    }
}

/// A block dot kernel: one weight row against up to [`TOKENS`] quantised activation rows.
type DotKernel = fn(&[u8], &[&[Q8Block]], &mut [f32; TOKENS]);

fn kernel(kind: QuantType) -> DotKernel {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") && has!("f16c") {
            let vnni = has!("avx512vnni") && has!("avx512vl");
            return match (kind, vnni) {
                (QuantType::Q4_0, true) => x86::q4_0_vnni,
                (QuantType::Q4_1, true) => x86::q4_1_vnni,
                (QuantType::Q8_0, true) => x86::q8_0_vnni,
                (QuantType::Q4_0, false) => x86::q4_0_avx2,
                (QuantType::Q4_1, false) => x86::q4_1_avx2,
                (QuantType::Q8_0, false) => x86::q8_0_avx2,
                _ => unreachable!("integer kernels are for Q4_0, Q4_1 and Q8_0"),
            };
        }
    }
    scalar_kernel(kind)
}

fn scalar_kernel(kind: QuantType) -> DotKernel {
    match kind {
        QuantType::Q4_0 => scalar::q4_0,
        QuantType::Q4_1 => scalar::q4_1,
        QuantType::Q8_0 => scalar::q8_0,
        _ => unreachable!("integer kernels are for Q4_0, Q4_1 and Q8_0"),
    }
}

/// The reference kernels: integer dot products per block, scaled in `f32`.
mod scalar {
    use super::{half_at, Q8Block, TOKENS};

    pub fn q4_0(row: &[u8], xs: &[&[Q8Block]], out: &mut [f32; TOKENS]) {
        for (t, x) in xs.iter().enumerate() {
            out[t] = row
                .chunks_exact(18)
                .zip(x.iter())
                .map(|(b, y)| {
                    let mut s = 0i32;
                    for (j, &q) in b[2..].iter().enumerate() {
                        s += (q & 15) as i32 * y.qs[j] as i32
                            + (q >> 4) as i32 * y.qs[j + 16] as i32;
                    }
                    half_at(b, 0) * y.d * (s - 8 * y.sum) as f32
                })
                .sum();
        }
    }

    pub fn q4_1(row: &[u8], xs: &[&[Q8Block]], out: &mut [f32; TOKENS]) {
        for (t, x) in xs.iter().enumerate() {
            out[t] = row
                .chunks_exact(20)
                .zip(x.iter())
                .map(|(b, y)| {
                    let mut s = 0i32;
                    for (j, &q) in b[4..].iter().enumerate() {
                        s += (q & 15) as i32 * y.qs[j] as i32
                            + (q >> 4) as i32 * y.qs[j + 16] as i32;
                    }
                    half_at(b, 0) * y.d * s as f32 + half_at(b, 2) * y.s
                })
                .sum();
        }
    }

    pub fn q8_0(row: &[u8], xs: &[&[Q8Block]], out: &mut [f32; TOKENS]) {
        for (t, x) in xs.iter().enumerate() {
            out[t] = row
                .chunks_exact(34)
                .zip(x.iter())
                .map(|(b, y)| {
                    let s: i32 = b[2..]
                        .iter()
                        .zip(&y.qs)
                        .map(|(&q, &v)| (q as i8) as i32 * v as i32)
                        .sum();
                    half_at(b, 0) * y.d * s as f32
                })
                .sum();
        }
    }
}

/// AVX2 kernels, with the integer dot products done by AVX-512 VNNI's `vpdpbusd` where the
/// CPU has it and by `vpmaddubsw` + `vpmaddwd` elsewhere.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Q8Block, TOKENS};
    use std::arch::x86_64::*;

    macro_rules! kernels {
        ($features:literal, $flavour:ident) => {
            /// Σ over 4-byte groups of unsigned `a` × signed `b`, in 8 i32 lanes.
            #[inline]
            #[target_feature(enable = $features)]
            fn idot(a: __m256i, b: __m256i) -> __m256i {
                kernels!(@idot $flavour, a, b)
            }

            /// Two f16 scales at `p` as f32.
            #[inline]
            #[target_feature(enable = $features)]
            fn scales(b: &[u8]) -> (f32, f32) {
                let v = _mm_cvtph_ps(_mm_cvtsi32_si128(i32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_shuffle_ps(v, v, 1)))
            }

            #[inline]
            #[target_feature(enable = $features)]
            fn hsum(v: __m256) -> f32 {
                let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
            }

            /// 16 bytes of nibbles at `p` as 32 bytes: the low nibbles, then the high.
            #[inline]
            #[target_feature(enable = $features)]
            fn nibbles(q: &[u8]) -> __m256i {
                // SAFETY: the caller passes 16 bytes.
                let v = unsafe { _mm_loadu_si128(q.as_ptr().cast()) };
                let lo = _mm_and_si128(v, _mm_set1_epi8(15));
                let hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(15));
                _mm256_set_m128i(hi, lo)
            }

            #[inline]
            #[target_feature(enable = $features)]
            fn load(y: &Q8Block) -> __m256i {
                // SAFETY: 32 bytes of the block.
                unsafe { _mm256_loadu_si256(y.qs.as_ptr().cast()) }
            }

            #[target_feature(enable = $features)]
            pub(super) fn q4_0(row: &[u8], xs: &[&[Q8Block]], out: &mut [f32; TOKENS]) {
                let mut acc = [_mm256_setzero_ps(); TOKENS];
                for (b, block) in row.chunks_exact(18).enumerate() {
                    let (d, _) = scales(&block[..4]);
                    let qx = nibbles(&block[2..18]);
                    for (t, x) in xs.iter().enumerate() {
                        let y = &x[b];
                        let i = _mm256_cvtepi32_ps(idot(qx, load(y)));
                        // Σ (q − 8)·y = Σ q·y − 8 Σ y: the correction goes in one lane.
                        let i = _mm256_sub_ps(i, _mm256_castps128_ps256(_mm_set_ss(8.0 * y.sum as f32)));
                        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), i, acc[t]);
                    }
                }
                for t in 0..xs.len() {
                    out[t] = hsum(acc[t]);
                }
            }

            #[target_feature(enable = $features)]
            pub(super) fn q4_1(row: &[u8], xs: &[&[Q8Block]], out: &mut [f32; TOKENS]) {
                let mut acc = [_mm256_setzero_ps(); TOKENS];
                let mut mins = [0f32; TOKENS];
                for (b, block) in row.chunks_exact(20).enumerate() {
                    let (d, m) = scales(&block[..4]);
                    let qx = nibbles(&block[4..20]);
                    for (t, x) in xs.iter().enumerate() {
                        let y = &x[b];
                        let i = _mm256_cvtepi32_ps(idot(qx, load(y)));
                        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), i, acc[t]);
                        mins[t] += m * y.s;
                    }
                }
                for t in 0..xs.len() {
                    out[t] = hsum(acc[t]) + mins[t];
                }
            }

            #[target_feature(enable = $features)]
            pub(super) fn q8_0(row: &[u8], xs: &[&[Q8Block]], out: &mut [f32; TOKENS]) {
                let mut acc = [_mm256_setzero_ps(); TOKENS];
                for (b, block) in row.chunks_exact(34).enumerate() {
                    let (d, _) = scales(&block[..4]);
                    // SAFETY: 32 bytes after the scale.
                    let qx = unsafe { _mm256_loadu_si256(block[2..34].as_ptr().cast()) };
                    // Signed × signed as unsigned × signed: |x| · (y with x's sign).
                    let ax = _mm256_sign_epi8(qx, qx);
                    for (t, x) in xs.iter().enumerate() {
                        let y = &x[b];
                        let sy = _mm256_sign_epi8(load(y), qx);
                        let i = _mm256_cvtepi32_ps(idot(ax, sy));
                        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), i, acc[t]);
                    }
                }
                for t in 0..xs.len() {
                    out[t] = hsum(acc[t]);
                }
            }
        };
        (@idot vnni, $a:ident, $b:ident) => {
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), $a, $b)
        };
        (@idot avx2, $a:ident, $b:ident) => {
            _mm256_madd_epi16(_mm256_maddubs_epi16($a, $b), _mm256_set1_epi16(1))
        };
    }

    mod vnni {
        use super::*;
        kernels!("avx2,fma,f16c,avx512vnni,avx512vl", vnni);
    }
    mod avx2 {
        use super::*;
        kernels!("avx2,fma,f16c", avx2);
    }

    // Safe entry points: `kernel` hands them out only after checking the CPU's features.
    macro_rules! entry {
        ($name:ident, $module:ident :: $f:ident) => {
            pub fn $name(row: &[u8], xs: &[&[Q8Block]], out: &mut [f32; TOKENS]) {
                // SAFETY: chosen by `kernel` only when the CPU has the module's features.
                unsafe { $module::$f(row, xs, out) }
            }
        };
    }
    entry!(q4_0_vnni, vnni::q4_0);
    entry!(q4_1_vnni, vnni::q4_1);
    entry!(q8_0_vnni, vnni::q8_0);
    entry!(q4_0_avx2, avx2::q4_0);
    entry!(q4_1_avx2, avx2::q4_1);
    entry!(q8_0_avx2, avx2::q8_0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::random::Rng;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn fixture() -> serde_json::Value {
        serde_json::from_str(include_str!("quant_reference.json")).unwrap()
    }

    fn floats(v: &serde_json::Value) -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| f32::from_bits(b.as_u64().unwrap() as u32))
            .collect()
    }

    /// Every format's expansion equals gguf-py's `dequantize` on the same random blocks, bit
    /// for bit (`quant_reference.json`, written by bench/gguf_quant_fixture.py).
    #[test]
    fn dequantization_matches_gguf_py() {
        let fixture = fixture();
        let cases = fixture["dequantize"].as_object().unwrap();
        let kinds = [
            QuantType::F16,
            QuantType::BF16,
            QuantType::Q4_0,
            QuantType::Q4_1,
            QuantType::Q8_0,
            QuantType::Q4K,
            QuantType::Q6K,
        ];
        for kind in kinds {
            let case = &cases[&kind.to_string()];
            let bytes = hex(case["bytes_hex"].as_str().unwrap());
            let want = floats(&case["bits"]);
            let mut got = vec![0f32; want.len()];
            dequantize_row(kind, &bytes, &mut got);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g.to_bits(), w.to_bits(), "{kind}[{i}]: {g} vs {w}");
            }
        }
        assert_eq!(
            cases.len(),
            kinds.len(),
            "every format in the fixture is tested"
        );
    }

    /// Activations quantise as ggml's `quantize_row_q8_1` does (scales rounded to f16, the
    /// second scale d·Σq).
    #[test]
    fn q8_quantization_matches_the_reference() {
        let fixture = fixture();
        let q = &fixture["quantize"];
        let x = floats(&q["input"]["bits"]);
        let mut blocks = Vec::new();
        quantize_q8(&x, &mut blocks);
        let want = &q["Q8_1"];
        assert_eq!(blocks.len(), 2);
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(b.d, want["d_values"][i].as_f64().unwrap() as f32);
            assert_eq!(b.s, want["s_values"][i].as_f64().unwrap() as f32);
            let qs: Vec<i8> = want["qs"][i]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap() as i8)
                .collect();
            assert_eq!(b.qs.to_vec(), qs);
            assert_eq!(b.sum, qs.iter().map(|&v| v as i32).sum::<i32>());
            // gguf-py's Q8_0 gives the same integers.
            assert_eq!(q["Q8_0"]["qs"][i], want["qs"][i]);
        }
    }

    fn random_matrix(kind: QuantType, rows: usize, cols: usize, rng: &mut Rng) -> QMatrix {
        let mut data = vec![0u8; rows * kind.row_bytes(cols)];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (rng.next_u64() >> 56) as u8 ^ (i as u8);
        }
        // Valid, moderate f16 scales where the format has them.
        let scale_bytes: &[usize] = match kind {
            QuantType::Q4_0 | QuantType::Q8_0 => &[0],
            QuantType::Q4_1 => &[0, 2],
            _ => &[],
        };
        for block in data.chunks_exact_mut(kind.block_bytes()) {
            for &at in scale_bytes {
                let v = f16::from_f32(0.01 + 0.05 * rng.uniform()).to_bits();
                block[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
        }
        QMatrix::new(kind, rows, cols, data).unwrap()
    }

    /// The SIMD kernels give the scalar kernels' products (to rounding), for 1 to 5 rows of
    /// activations and several threads' chunks; and the products approximate the `f32`
    /// product of the expanded matrix within the 8-bit quantisation of the activations.
    #[test]
    fn integer_kernels_agree_with_scalar_and_with_f32() {
        let mut rng = Rng::seed(3);
        for kind in [QuantType::Q4_0, QuantType::Q4_1, QuantType::Q8_0] {
            let (rows, cols) = (70, 96);
            let w = random_matrix(kind, rows, cols, &mut rng);
            for n in 1..=5 {
                let x: Vec<f32> = (0..n * cols).map(|_| rng.normal(1.0)).collect();
                let mut got = vec![0f32; n * rows];
                w.matmul(&x, n, &mut got);
                let mut q = Vec::new();
                quantize_q8(&x, &mut q);
                let scalar = scalar_kernel(kind);
                let mut dense = vec![0f32; cols];
                for r in 0..rows {
                    w.row_f32(r, &mut dense);
                    for t in 0..n {
                        let mut s = [0f32; TOKENS];
                        scalar(w.row(r), &[&q[t * 3..t * 3 + 3]], &mut s);
                        let g = got[t * rows + r];
                        assert!(
                            (g - s[0]).abs() <= 1e-4 * s[0].abs().max(1.0),
                            "{kind} {g} {}",
                            s[0]
                        );
                        let exact: f32 = dense.iter().zip(&x[t * cols..]).map(|(a, b)| a * b).sum();
                        let scale: f32 = dense.iter().map(|a| a.abs()).sum::<f32>() * 0.02;
                        assert!((g - exact).abs() <= scale, "{kind}: {g} vs f32 {exact}");
                    }
                }
            }
        }
    }

    #[test]
    fn expanded_formats_multiply_in_f32() {
        let mut rng = Rng::seed(4);
        let (rows, cols) = (5, 8);
        let values: Vec<f32> = (0..rows * cols).map(|_| rng.normal(1.0)).collect();
        let data = values
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect();
        let w = QMatrix::new(QuantType::F16, rows, cols, data).unwrap();
        let x: Vec<f32> = (0..2 * cols).map(|_| rng.normal(1.0)).collect();
        let mut got = vec![0f32; 2 * rows];
        w.matmul(&x, 2, &mut got);
        for t in 0..2 {
            for r in 0..rows {
                let want: f32 = (0..cols)
                    .map(|c| f16::from_f32(values[r * cols + c]).to_f32() * x[t * cols + c])
                    .sum();
                assert!((got[t * rows + r] - want).abs() < 1e-5);
            }
        }
        assert!(QMatrix::new(QuantType::Q4_1, 2, 48, vec![0; 40]).is_err());
        assert!(QMatrix::new(QuantType::Q4_1, 2, 64, vec![0; 41]).is_err());
    }
}
