//! `Tensor`: a shape plus contiguous row-major `f32` storage, and every numeric kernel Ember runs.
//!
//! Only this module writes a tensor's storage: code outside it reads values (`data`) and asks
//! for results through the kernels here, which take their outputs as `&mut Tensor` (or a
//! [`GradBuf`]). That makes `tensor/` the one room a GPU backend would replace: it would
//! implement the storage (a device buffer behind `Tensor`, with `new` / `data` copying to and
//! from the host) and the kernels of these files — elementwise maths and broadcasting,
//! reductions, matrix products, the dense and convolution layers with their gradients, pooling,
//! normalisation, attention, embeddings, warps, losses, activations, optimiser updates,
//! quantised matmul, statistics and L2 normalisation.

pub mod activation;
pub mod attention;
pub mod broadcast;
pub mod concat;
pub mod conv;
pub mod conv2d;
pub mod decoder;
pub mod denormal;
pub mod elementwise;
pub mod embedding;
pub mod factorization;
pub mod filter;
pub mod forward;
pub mod linear;
pub mod loss;
pub mod matmul;
pub mod mt19937;
pub mod normalization;
pub mod privacy;
pub mod quant;
pub mod random;
pub mod reduce;
pub mod stats;
pub mod team;
pub mod threads;
pub mod update;
pub mod warp;

use crate::error::{Error, Result};

/// An n-dimensional array of `f32`, contiguous and row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// A gradient buffer a backward kernel fills: written, or added to when `accumulate` (another
/// path already wrote this step's gradient).
pub struct GradBuf<'a> {
    buf: &'a mut Tensor,
    accumulate: bool,
}

impl<'a> GradBuf<'a> {
    pub fn new(buf: &'a mut Tensor, accumulate: bool) -> Self {
        GradBuf { buf, accumulate }
    }
}

/// Number of elements of a shape (1 for a scalar, whose shape is `[]`).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Number of elements, or None when the product overflows (shapes from files).
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

impl Tensor {
    /// A tensor of `shape` holding `data` (row-major); the lengths must agree.
    ///
    /// ```
    /// let t = ember::Tensor::new(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    /// assert_eq!(t.shape(), &[2, 2]);
    /// assert!(ember::Tensor::new(&[3], vec![1.0]).is_err());
    /// ```
    pub fn new(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        if numel(shape) != data.len() {
            return Err(Error::shape(
                "Tensor::new",
                format!(
                    "shape {shape:?} needs {} values, got {}",
                    numel(shape),
                    data.len()
                ),
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, 0.0)
    }

    /// A tensor with every element equal to `value`.
    pub fn full(shape: &[usize], value: f32) -> Self {
        Tensor {
            shape: shape.to_vec(),
            data: vec![value; numel(shape)],
        }
    }

    /// A scalar (shape `[]`).
    pub fn scalar(value: f32) -> Self {
        Tensor {
            shape: Vec::new(),
            data: vec![value],
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The storage, writable: only the kernels of this module use it.
    fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Size of the first axis (samples, for a batch).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Number of elements in one row (product of every axis but the first).
    pub fn row_len(&self) -> usize {
        numel(self.shape.get(1..).unwrap_or(&[]))
    }

    /// The value of a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        match self.data.as_slice() {
            [v] => Ok(*v),
            _ => Err(Error::shape(
                "item",
                format!("expected one element, shape is {:?}", self.shape),
            )),
        }
    }

    /// The same data under another shape with the same number of elements.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Self> {
        if checked_numel(shape) != Some(self.data.len()) {
            return Err(Error::shape(
                "reshape",
                format!("cannot reshape {:?} into {shape:?}", self.shape),
            ));
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    /// Sets every element to `value`.
    pub fn fill(&mut self, value: f32) {
        self.data.fill(value);
    }

    /// Overwrites the elements with `values` (of the same length), keeping the shape.
    pub fn copy_from_slice(&mut self, values: &[f32]) {
        self.data.copy_from_slice(values);
    }

    /// Multiplies every element by `factor`, in place.
    pub fn scale_in_place(&mut self, factor: f32) {
        self.data.iter_mut().for_each(|v| *v *= factor);
    }

    /// Limits every element to `[lo, hi]`, in place (NaN stays NaN).
    pub fn clamp_in_place(&mut self, lo: f32, hi: f32) {
        self.data.iter_mut().for_each(|v| *v = v.clamp(lo, hi));
    }

    /// The size of the last axis (1 for a scalar).
    pub fn row_len_last(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    /// Each row divided by its L2 norm (PyTorch's `F.normalize`), in place.
    pub fn l2_normalize_rows(&mut self) {
        let width = self.row_len().max(1);
        self.data.chunks_mut(width).for_each(stats::l2_normalize);
    }

    /// `(x − mean) / scale` for each column of the rows, in place.
    pub fn standardize_columns(&mut self, mean: &[f32], scale: &[f32]) {
        stats::standardize_columns(&mut self.data, mean, scale);
    }

    /// A tensor of `shape` whose row i is `rows[i]` where given, zeros elsewhere.
    pub fn from_rows(
        shape: &[usize],
        rows: impl IntoIterator<Item = (usize, Vec<f32>)>,
    ) -> Result<Tensor> {
        let mut t = Tensor::zeros(shape);
        let width = t.row_len();
        for (i, row) in rows {
            let Some(target) = t
                .data
                .get_mut(i * width..(i + 1) * width)
                .filter(|_| row.len() == width)
            else {
                return Err(Error::shape(
                    "from_rows",
                    format!("row {i} of {} values does not fit {shape:?}", row.len()),
                ));
            };
            target.copy_from_slice(&row);
        }
        Ok(t)
    }

    /// A tensor of `shape`, zero but for `entries`, each (index into the row-major data, value).
    pub fn from_entries(
        shape: &[usize],
        entries: impl IntoIterator<Item = (usize, f32)>,
    ) -> Result<Tensor> {
        let mut t = Tensor::zeros(shape);
        for (i, value) in entries {
            let Some(slot) = t.data.get_mut(i) else {
                return Err(Error::shape(
                    "from_entries",
                    format!("index {i} is outside {shape:?}"),
                ));
            };
            *slot = value;
        }
        Ok(t)
    }

    /// The transpose of a matrix: (rows, cols) → (cols, rows).
    pub fn transpose(&self) -> Result<Tensor> {
        let &[rows, cols] = self.shape.as_slice() else {
            return Err(Error::shape(
                "transpose",
                format!("expected a matrix, shape is {:?}", self.shape),
            ));
        };
        let mut t = Tensor::zeros(&[cols, rows]);
        for (r, row) in self.data.chunks_exact(cols.max(1)).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                t.data[c * rows + r] = v;
            }
        }
        Ok(t)
    }

    /// Reorders the rows' values in `columns` (a range of each row): row r takes what row
    /// `order[r]` held there. Permutation importance shuffles one feature this way.
    pub fn permute_columns(&mut self, columns: std::ops::Range<usize>, order: &[usize]) {
        let (width, span) = (self.row_len(), columns.len());
        let current: Vec<f32> = (0..self.rows())
            .flat_map(|r| self.data[r * width + columns.start..r * width + columns.end].to_vec())
            .collect();
        for (r, &from) in order.iter().enumerate() {
            self.data[r * width + columns.start..r * width + columns.end]
                .copy_from_slice(&current[from * span..(from + 1) * span]);
        }
    }

    /// `Σ x²` over every element, in f64.
    pub fn sum_of_squares(&self) -> f64 {
        reduce::sum_of_squares(&self.data)
    }

    /// Rows `rows` (indices along the first axis), gathered into a new tensor.
    pub fn gather_rows(&self, rows: &[usize]) -> Result<Tensor> {
        let mut out = Tensor::default();
        self.gather_rows_into(rows, &mut out)?;
        Ok(out)
    }

    /// Like [`Tensor::gather_rows`], reusing `out`'s storage.
    pub fn gather_rows_into(&self, rows: &[usize], out: &mut Tensor) -> Result<()> {
        let row_len = self.row_len();
        let n = self.rows();
        if let Some(&bad) = rows.iter().find(|&&r| r >= n) {
            return Err(Error::shape(
                "gather_rows",
                format!("row {bad} out of range for {n} rows"),
            ));
        }
        out.shape.clear();
        out.shape.push(rows.len());
        out.shape
            .extend_from_slice(self.shape.get(1..).unwrap_or(&[]));
        out.data.clear();
        out.data.reserve(rows.len() * row_len);
        for &r in rows {
            out.data
                .extend_from_slice(&self.data[r * row_len..(r + 1) * row_len]);
        }
        Ok(())
    }

    /// Asks the CPU to start loading rows `rows` into its caches (a hint, with no effect on
    /// any result): a training loop calls it with the next mini-batch's rows while it
    /// computes on the current one, so that gathering them later does not wait on memory.
    pub fn prefetch_rows(&self, rows: &[usize]) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let row_len = self.row_len();
            for &r in rows {
                let Some(row) = self.data.get(r * row_len..(r + 1) * row_len) else {
                    continue;
                };
                // One hint per 64-byte cache line.
                for line in row.chunks(16) {
                    // SAFETY: a prefetch hint never faults, and the pointer is in bounds.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = rows;
    }

    /// Rows `start..end` as a new tensor.
    pub fn slice_rows(&self, start: usize, end: usize) -> Result<Tensor> {
        if start > end || end > self.rows() {
            return Err(Error::shape(
                "slice_rows",
                format!("rows {start}..{end} out of range for {} rows", self.rows()),
            ));
        }
        let row_len = self.row_len();
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        Ok(Tensor {
            shape,
            data: self.data[start * row_len..end * row_len].to_vec(),
        })
    }

    /// Index of the largest element of each row (first one on ties).
    pub fn argmax_rows(&self) -> Vec<usize> {
        let row_len = self.row_len().max(1);
        self.data.chunks(row_len).map(argmax).collect()
    }

    /// True when no element is NaN or infinite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// Reshapes to `shape` without keeping values, reusing the allocation: for buffers
    /// that the caller overwrites completely.
    pub(crate) fn reset_to_shape(&mut self, shape: &[usize]) {
        self.shape.clear();
        self.shape.extend_from_slice(shape);
        self.data.resize(numel(shape), 0.0);
    }
}

/// Index of the largest value (first one on ties; NaN never wins).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_and_slice_rows() {
        let t = Tensor::new(&[3, 2], vec![0., 1., 2., 3., 4., 5.]).unwrap();
        let g = t.gather_rows(&[2, 0]).unwrap();
        assert_eq!(g.shape(), &[2, 2]);
        assert_eq!(g.data(), &[4., 5., 0., 1.]);
        assert!(t.gather_rows(&[3]).is_err());
        let s = t.slice_rows(1, 3).unwrap();
        assert_eq!(s.data(), &[2., 3., 4., 5.]);
        assert!(t.slice_rows(2, 4).is_err());
    }

    #[test]
    fn built_from_entries_transposed_and_permuted() {
        let t = Tensor::from_entries(&[2, 3], [(1, 5.0), (5, -1.0)]).unwrap();
        assert_eq!(t.data(), &[0., 5., 0., 0., 0., -1.]);
        assert!(Tensor::from_entries(&[2, 3], [(6, 1.0)]).is_err());
        let t = t.transpose().unwrap();
        assert_eq!(t.shape(), &[3, 2]);
        assert_eq!(t.data(), &[0., 0., 5., 0., 0., -1.]);
        assert!(Tensor::zeros(&[2]).transpose().is_err());
        let mut t = Tensor::new(&[3, 3], (0..9).map(|v| v as f32).collect()).unwrap();
        t.permute_columns(1..3, &[2, 0, 1]);
        assert_eq!(t.data(), &[0., 7., 8., 3., 1., 2., 6., 4., 5.]);
    }

    #[test]
    fn argmax_takes_first_of_ties() {
        let t = Tensor::new(&[2, 3], vec![1., 3., 3., 0., -1., -2.]).unwrap();
        assert_eq!(t.argmax_rows(), vec![1, 0]);
    }

    #[test]
    fn reshape_checks_element_count() {
        let t = Tensor::zeros(&[2, 3]);
        assert_eq!(t.clone().reshape(&[3, 2]).unwrap().shape(), &[3, 2]);
        assert!(t.reshape(&[4]).is_err());
        assert_eq!(Tensor::scalar(2.5).item().unwrap(), 2.5);
        assert!(Tensor::zeros(&[2]).item().is_err());
    }
}
