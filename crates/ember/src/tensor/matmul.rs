//! Matrix products through the `gemm` crate, which picks AVX-512 / FMA / SSE kernels at run time.
//!
//! Transposed operands are passed as strides, never copied.

pub use gemm_common::Parallelism;

/// Below this many multiply-adds one thread is faster than waking the pool.
const PARALLEL_MIN_WORK: usize = 1 << 22;

/// A row-major matrix operand, optionally read as its transpose.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    /// Rows and columns as stored.
    pub rows: usize,
    pub cols: usize,
    /// Read the matrix as its transpose.
    pub transposed: bool,
}

impl<'a> MatRef<'a> {
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        debug_assert_eq!(data.len(), rows * cols);
        MatRef {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    /// The same storage read as its transpose.
    pub fn t(self) -> Self {
        MatRef {
            transposed: !self.transposed,
            ..self
        }
    }

    /// (rows, cols) as read.
    pub fn dims(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// (column stride, row stride) as read.
    fn strides(&self) -> (isize, isize) {
        if self.transposed {
            (self.cols as isize, 1)
        } else {
            (1, self.cols as isize)
        }
    }
}

/// `dst = a · b`, or `dst += a · b` with `accumulate`. `dst` is row-major (m, n).
///
/// Panics if the shapes disagree: callers check shapes and report errors first.
pub fn matmul(dst: &mut [f32], a: MatRef, b: MatRef, accumulate: bool) {
    matmul_on(dst, a, b, accumulate, super::threads::kernel_threads());
}

/// [`matmul`] into a tensor holding (m, n) values.
pub fn matmul_into(dst: &mut super::Tensor, a: MatRef, b: MatRef, accumulate: bool) {
    matmul(dst.data_mut(), a, b, accumulate);
}

/// [`matmul`] on one thread: for callers that already split the work across threads.
pub fn matmul_serial(dst: &mut [f32], a: MatRef, b: MatRef, accumulate: bool) {
    matmul_on(dst, a, b, accumulate, 1);
}

fn matmul_on(dst: &mut [f32], a: MatRef, b: MatRef, accumulate: bool, threads: usize) {
    let (m, k) = a.dims();
    let (k2, n) = b.dims();
    assert_eq!(k, k2, "matmul inner dimensions");
    assert_eq!(dst.len(), m * n, "matmul output size");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    let parallelism = if threads > 1 && m * n * k >= PARALLEL_MIN_WORK {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    let (a_cs, a_rs) = a.strides();
    let (b_cs, b_rs) = b.strides();
    // SAFETY: every pointer covers its full matrix (checked above through the
    // dimensions and the MatRef invariant) and dst does not alias a or b.
    unsafe {
        gemm_row_major(
            dst.as_mut_ptr(),
            (m, n, k),
            accumulate,
            (a.data.as_ptr(), a_rs, a_cs),
            (b.data.as_ptr(), b_rs, b_cs),
            parallelism,
        );
    }
}

/// `dst (m×n, row-major) = lhs · rhs`, or `+=` with `accumulate`, through `gemm`'s `f32`
/// kernel; `lhs` and `rhs` are (pointer, row stride, column stride), strides non-negative.
///
/// The kernel prefers a column-major destination, so a destination of more than one column
/// is computed as `dstᵀ = rhsᵀ · lhsᵀ`: the transposes are the same buffers with their
/// strides swapped.
///
/// # Safety
/// Every pointer covers its matrix under its strides, `dst` covers `m × n` contiguous
/// floats and aliases neither input.
pub unsafe fn gemm_row_major(
    dst: *mut f32,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (*const f32, isize, isize),
    (rhs, rhs_rs, rhs_cs): (*const f32, isize, isize),
    parallelism: Parallelism,
) {
    let kernel = gemm_f32::gemm::f32::get_gemm_fn();
    if n == 1 {
        // One column: row-major and column-major are the same layout.
        // The kernel's arguments: sizes, then (pointer, column stride, row stride) each.
        unsafe {
            kernel(
                m,
                1,
                k,
                dst,
                1,
                1,
                accumulate,
                lhs,
                lhs_cs,
                lhs_rs,
                rhs,
                rhs_cs,
                rhs_rs,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
        return;
    }
    // dstᵀ is n × m with column stride n and row stride 1; rhsᵀ is n × k, lhsᵀ is k × m.
    unsafe {
        kernel(
            n,
            m,
            k,
            dst,
            n as isize,
            1,
            accumulate,
            rhs,
            rhs_rs,
            rhs_cs,
            lhs,
            lhs_rs,
            lhs_cs,
            1.0, // dst scale, when accumulating
            1.0, // product scale
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Inner dimensions up to this are done by [`short_k_product`] and [`short_k_outer_sum`]
/// rather than `gemm`, whose packing costs more than the arithmetic when there are only a
/// few products per output (a first convolution over one or three channels).
pub const SHORT_K: usize = 16;

/// `out = a · b` for `a` (m, k) and `b` (k, n), k small: each output row is built in place
/// from k scaled rows of `b`.
pub fn short_k_product(out: &mut [f32], a: &[f32], b: &[f32], k: usize, n: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { short_k_product_avx512(out, a, b, k, n) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { short_k_product_avx2(out, a, b, k, n) };
        }
    }
    short_k_product_portable(out, a, b, k, n)
}

/// `out += aᵀ · b` for `a` (m, k) and `b` (m, n), k small: `out` (k, n) stays in cache while
/// the m rows stream past.
pub fn short_k_outer_sum(out: &mut [f32], a: &[f32], b: &[f32], k: usize, n: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { short_k_outer_sum_avx512(out, a, b, k, n) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { short_k_outer_sum_avx2(out, a, b, k, n) };
        }
    }
    short_k_outer_sum_portable(out, a, b, k, n)
}

/// Columns per register block in the short-k kernels: one AVX-512 register, two AVX2 ones.
const LANES: usize = 16;

#[inline(always)]
fn short_k_product_body(out: &mut [f32], a: &[f32], b: &[f32], k: usize, n: usize) {
    debug_assert_eq!(b.len(), k * n);
    let blocked = n - n % LANES;
    for (row, a_row) in out.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
        // A block of the output row stays in registers across the k products.
        for col in (0..blocked).step_by(LANES) {
            let mut acc = [0.0f32; LANES];
            for (t, &x) in a_row.iter().enumerate() {
                let w = &b[t * n + col..t * n + col + LANES];
                for l in 0..LANES {
                    acc[l] = x.mul_add(w[l], acc[l]);
                }
            }
            row[col..col + LANES].copy_from_slice(&acc);
        }
        for col in blocked..n {
            row[col] = a_row
                .iter()
                .enumerate()
                .fold(0.0, |s, (t, &x)| x.mul_add(b[t * n + col], s));
        }
    }
}

#[inline(always)]
fn short_k_outer_sum_body(out: &mut [f32], a: &[f32], b: &[f32], k: usize, n: usize) {
    debug_assert_eq!(out.len(), k * n);
    let blocked = n - n % LANES;
    for t in 0..k {
        // One block of output row t in registers while every input row streams past.
        for col in (0..blocked).step_by(LANES) {
            let mut acc = [0.0f32; LANES];
            for (a_row, b_row) in a.chunks_exact(k).zip(b.chunks_exact(n)) {
                let x = a_row[t];
                let v = &b_row[col..col + LANES];
                for l in 0..LANES {
                    acc[l] = x.mul_add(v[l], acc[l]);
                }
            }
            for (o, v) in out[t * n + col..t * n + col + LANES].iter_mut().zip(acc) {
                *o += v;
            }
        }
        for col in blocked..n {
            let total = a
                .chunks_exact(k)
                .zip(b.chunks_exact(n))
                .fold(0.0, |s, (a_row, b_row)| a_row[t].mul_add(b_row[col], s));
            out[t * n + col] += total;
        }
    }
}

fn short_k_product_portable(out: &mut [f32], a: &[f32], b: &[f32], k: usize, n: usize) {
    short_k_product_body(out, a, b, k, n)
}

fn short_k_outer_sum_portable(out: &mut [f32], a: &[f32], b: &[f32], k: usize, n: usize) {
    short_k_outer_sum_body(out, a, b, k, n)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn short_k_product_avx512(out: &mut [f32], a: &[f32], b: &[f32], k: usize, n: usize) {
    short_k_product_body(out, a, b, k, n)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn short_k_product_avx2(out: &mut [f32], a: &[f32], b: &[f32], k: usize, n: usize) {
    short_k_product_body(out, a, b, k, n)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn short_k_outer_sum_avx512(out: &mut [f32], a: &[f32], b: &[f32], k: usize, n: usize) {
    short_k_outer_sum_body(out, a, b, k, n)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn short_k_outer_sum_avx2(out: &mut [f32], a: &[f32], b: &[f32], k: usize, n: usize) {
    short_k_outer_sum_body(out, a, b, k, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut out = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                out[j * rows + i] = x[i * cols + j];
            }
        }
        out
    }

    #[test]
    fn short_k_kernels_match_naive() {
        let (m, k, n) = (37, 9, 20);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut out = vec![f32::NAN; m * n];
        short_k_product(&mut out, &a, &b, k, n);
        for (got, want) in out.iter().zip(naive(&a, &b, m, k, n)) {
            assert!((got - want).abs() < 1e-5);
        }
        // aᵀ · c for c (m, n), added to what is there.
        let c: Vec<f32> = (0..m * n).map(|i| (i as f32 * 0.23).sin()).collect();
        let mut sum = vec![1.0; k * n];
        short_k_outer_sum(&mut sum, &a, &c, k, n);
        let expected = naive(&transpose(&a, m, k), &c, k, m, n);
        for (got, want) in sum.iter().zip(expected) {
            assert!((got - 1.0 - want).abs() < 1e-4, "{got} vs {want}");
        }
    }

    #[test]
    fn all_transpose_combinations_match_naive() {
        let (m, k, n) = (7, 13, 5);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let expected = naive(&a, &b, m, k, n);
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        for (a_ref, b_ref) in [
            (MatRef::new(&a, m, k), MatRef::new(&b, k, n)),
            (MatRef::new(&at, k, m).t(), MatRef::new(&b, k, n)),
            (MatRef::new(&a, m, k), MatRef::new(&bt, n, k).t()),
            (MatRef::new(&at, k, m).t(), MatRef::new(&bt, n, k).t()),
        ] {
            let mut out = vec![0.0; m * n];
            matmul(&mut out, a_ref, b_ref, false);
            for (x, y) in out.iter().zip(&expected) {
                assert!((x - y).abs() < 1e-4, "{x} vs {y}");
            }
            // Accumulating adds the product a second time.
            matmul(&mut out, a_ref, b_ref, true);
            for (x, y) in out.iter().zip(&expected) {
                assert!((x - 2.0 * y).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn hand_computed_product() {
        // [[1, 2], [3, 4]] · [[5, 6], [7, 8]] = [[19, 22], [43, 50]]
        let mut out = vec![0.0; 4];
        matmul(
            &mut out,
            MatRef::new(&[1., 2., 3., 4.], 2, 2),
            MatRef::new(&[5., 6., 7., 8.], 2, 2),
            false,
        );
        assert_eq!(out, vec![19., 22., 43., 50.]);
    }
}
