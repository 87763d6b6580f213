//! Matrix products through the `gemm` crate, which picks AVX-512 / FMA / SSE kernels at run time.
//!
//! Transposed operands are passed as strides, never copied.

use gemm::Parallelism;

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
    matmul_on(dst, a, b, accumulate, super::threads::num_threads());
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
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a_cs,
            a_rs,
            b.data.as_ptr(),
            b_cs,
            b_rs,
            1.0, // dst scale, when accumulating
            1.0, // product scale
            false,
            false,
            false,
            parallelism,
        );
    }
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
