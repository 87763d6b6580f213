//! Convolution and pooling kernels on channels-last (NHWC) data: im2col / col2im, so that a
//! convolution is one matrix product; direct convolution, window by window without patches,
//! the alternative `ember bench conv` measures it against; and pooling.

use crate::error::{Error, Result};

/// How a convolution is computed; both give the same values, to rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// Each run of samples' patches laid out by im2col, then one matrix product.
    Im2col,
    /// Window by window, without patches.
    Direct,
}

thread_local! {
    /// The algorithm forced on this thread's convolutions, if any.
    static FORCED: std::cell::Cell<Option<ConvAlgorithm>> = const { std::cell::Cell::new(None) };
}

/// Puts the convolutions this thread runs, forward and backward, on one algorithm
/// (`None`: back to the default, im2col); for benchmarks and tests that compare them. Per
/// thread, so that it never changes a computation running elsewhere.
pub fn force_conv_algorithm(algorithm: Option<ConvAlgorithm>) {
    FORCED.set(algorithm);
}

/// The algorithm this thread's convolutions use.
pub fn conv_algorithm() -> ConvAlgorithm {
    FORCED.get().unwrap_or(ConvAlgorithm::Im2col)
}

/// Shapes of a 2-D convolution or pooling window sliding over NHWC input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub kernel: (usize, usize),
    pub strides: (usize, usize),
    /// Zero rows above and columns left of the input ("same" padding); bottom/right follow.
    pub pad: (usize, usize),
    pub out_height: usize,
    pub out_width: usize,
}

impl Window {
    /// The window over input `(batch, height, width, channels)`; `same` pads so that the
    /// output is ⌈input / stride⌉ (Keras's "same"), otherwise only whole windows ("valid").
    pub fn new(
        input: &[usize],
        kernel: (usize, usize),
        strides: (usize, usize),
        same: bool,
    ) -> Result<Window> {
        let &[batch, height, width, channels] = input else {
            return Err(Error::shape(
                "conv2d",
                format!("needs (batch, height, width, channels) input, got {input:?}"),
            ));
        };
        if kernel.0 == 0 || kernel.1 == 0 || strides.0 == 0 || strides.1 == 0 {
            return Err(Error::invalid(
                "kernel sizes and strides must be at least 1",
            ));
        }
        let (out_height, out_width, pad) = if same {
            let out = |n: usize, s: usize| n.div_ceil(s);
            let total = |n: usize, k: usize, s: usize| ((out(n, s) - 1) * s + k).saturating_sub(n);
            (
                out(height, strides.0),
                out(width, strides.1),
                (
                    total(height, kernel.0, strides.0) / 2,
                    total(width, kernel.1, strides.1) / 2,
                ),
            )
        } else {
            if height < kernel.0 || width < kernel.1 {
                return Err(Error::shape(
                    "conv2d",
                    format!(
                        "a {}x{} window does not fit in {height}x{width} input",
                        kernel.0, kernel.1
                    ),
                ));
            }
            (
                (height - kernel.0) / strides.0 + 1,
                (width - kernel.1) / strides.1 + 1,
                (0, 0),
            )
        };
        Ok(Window {
            batch,
            height,
            width,
            channels,
            kernel,
            strides,
            pad,
            out_height,
            out_width,
        })
    }

    /// The same window over `batch` samples (one thread's share of the batch).
    pub fn with_batch(&self, batch: usize) -> Window {
        Window { batch, ..*self }
    }

    /// Whether the windows cover every input position exactly once (pooling with strides
    /// equal to the pool size, no padding, sizes that divide evenly).
    pub fn tiles_input(&self) -> bool {
        self.pad == (0, 0)
            && self.strides == self.kernel
            && self.out_height * self.kernel.0 == self.height
            && self.out_width * self.kernel.1 == self.width
    }

    /// Input values per sample.
    pub fn input_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Output positions per sample.
    pub fn positions_per_sample(&self) -> usize {
        self.out_height * self.out_width
    }

    /// Rows of the im2col matrix: one per output position.
    pub fn positions(&self) -> usize {
        self.batch * self.out_height * self.out_width
    }

    /// Columns of the im2col matrix: one per (ky, kx, channel).
    pub fn patch_len(&self) -> usize {
        self.kernel.0 * self.kernel.1 * self.channels
    }

    /// Input row and column under kernel offset (ky, kx) at output (oy, ox), if inside.
    #[inline]
    fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let y = (oy * self.strides.0 + ky).checked_sub(self.pad.0)?;
        let x = (ox * self.strides.1 + kx).checked_sub(self.pad.1)?;
        (y < self.height && x < self.width).then_some((y, x))
    }
}

/// A pooling layer's settings: window `size`, `strides`, "same" padding, and whether it
/// averages (otherwise it takes the maximum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pooling {
    pub size: (usize, usize),
    pub strides: (usize, usize),
    pub same: bool,
    pub average: bool,
}

impl Pooling {
    /// Its window over `input` (batch, height, width, channels).
    pub fn window(&self, input: &[usize]) -> Result<Window> {
        Window::new(input, self.size, self.strides, self.same)
    }
}

/// Lays every input patch out as a row: `cols` becomes (positions, kh·kw·channels).
///
/// Every element of `cols` (of length positions · patch length) is written, zeros only where
/// the window hangs over the edge, so the buffer need not be cleared first.
pub fn im2col(x: &[f32], g: &Window, cols: &mut [f32]) {
    debug_assert_eq!(cols.len(), g.positions() * g.patch_len());
    if g.input_len() == 0 || g.patch_len() == 0 {
        cols.fill(0.0);
        return;
    }
    // Rows in (sample, output row, output column) order, walked without divisions.
    let mut rows = cols.chunks_exact_mut(g.patch_len());
    for image in x.chunks_exact(g.input_len()).take(g.batch) {
        for oy in 0..g.out_height {
            for ox in 0..g.out_width {
                let Some(dst) = rows.next() else { return };
                patch_row(image, g, (oy, ox), dst);
            }
        }
    }
}

/// One output position's patch: its window's taps, kernel row by kernel row, zeros outside.
#[inline(always)]
fn patch_row(image: &[f32], g: &Window, (oy, ox): (usize, usize), dst: &mut [f32]) {
    let c = g.channels;
    let (kh, kw) = g.kernel;
    // The taps of one kernel row are neighbouring pixels: contiguous in NHWC, so a row
    // wholly inside the input is one copy of kw · channels values.
    let left = (ox * g.strides.1).checked_sub(g.pad.1);
    let row_inside = left.is_some_and(|x0| x0 + kw <= g.width);
    for ky in 0..kh {
        let taps = &mut dst[ky * kw * c..(ky + 1) * kw * c];
        let y = (oy * g.strides.0 + ky)
            .checked_sub(g.pad.0)
            .filter(|&y| y < g.height);
        match (y, left) {
            (None, _) => taps.fill(0.0),
            (Some(y), Some(x0)) if row_inside => {
                let at = (y * g.width + x0) * c;
                copy(taps, &image[at..at + kw * c]);
            }
            (Some(_), _) => {
                for kx in 0..kw {
                    let tap = &mut taps[kx * c..(kx + 1) * c];
                    match g.source(oy, ox, ky, kx) {
                        Some((y, x)) => {
                            let at = (y * g.width + x) * c;
                            copy(tap, &image[at..at + c]);
                        }
                        None => tap.fill(0.0),
                    }
                }
            }
        }
    }
}

/// Copies `src` into `dst` (the same length): short rows (a kernel row of few channels) by
/// register moves of 8 values, not a call to `memcpy` for each.
#[inline(always)]
fn copy(dst: &mut [f32], src: &[f32]) {
    debug_assert_eq!(dst.len(), src.len());
    match (dst, src) {
        ([d0], [s0]) => *d0 = *s0,
        ([d0, d1, d2], [s0, s1, s2]) => (*d0, *d1, *d2) = (*s0, *s1, *s2),
        (dst, src) if dst.len() % 8 == 0 && dst.len() <= 64 => {
            for (d, s) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
                let values: [f32; 8] = s.try_into().expect("chunks of 8");
                d.copy_from_slice(&values);
            }
        }
        (dst, src) => dst.copy_from_slice(src),
    }
}

/// The adjoint of [`im2col`]: adds each patch row back onto the input positions it came from.
pub fn col2im_add(cols: &[f32], g: &Window, dx: &mut [f32]) {
    let c = g.channels;
    let mut row = 0;
    for n in 0..g.batch {
        let image = &mut dx[n * g.height * g.width * c..(n + 1) * g.height * g.width * c];
        for oy in 0..g.out_height {
            for ox in 0..g.out_width {
                let src = &cols[row * g.patch_len()..(row + 1) * g.patch_len()];
                for ky in 0..g.kernel.0 {
                    for kx in 0..g.kernel.1 {
                        if let Some((y, x)) = g.source(oy, ox, ky, kx) {
                            let at = (ky * g.kernel.1 + kx) * c;
                            let target =
                                &mut image[(y * g.width + x) * c..(y * g.width + x + 1) * c];
                            target
                                .iter_mut()
                                .zip(&src[at..at + c])
                                .for_each(|(t, s)| *t += s);
                        }
                    }
                }
                row += 1;
            }
        }
    }
}

/// Filters accumulated at once by the direct kernels: one AVX-512 register of f32.
const LANES: usize = 16;

/// Direct convolution: `out` (positions, filters) = Σ over each window's taps and channels of
/// input value × kernel row, the kernel laid out (kh, kw, channels, filters) as in Keras.
/// The same arithmetic as [`im2col`] and a product, without writing the patches out.
pub fn direct_conv(x: &[f32], g: &Window, kernel: &[f32], filters: usize, out: &mut [f32]) {
    let c = g.channels;
    debug_assert_eq!(out.len(), g.positions() * filters);
    for_each_window(g, |position, taps| {
        let row = &mut out[position * filters..(position + 1) * filters];
        // Each block of filters is summed in registers over all the window's taps.
        for (block, target) in row.chunks_mut(LANES).enumerate() {
            let mut sums = [0.0f32; LANES];
            let lanes = target.len();
            for &(tap, at) in taps {
                for (channel, &v) in x[at..at + c].iter().enumerate() {
                    let start = (tap * c + channel) * filters + block * LANES;
                    for (s, w) in sums.iter_mut().zip(&kernel[start..start + lanes]) {
                        *s += v * w;
                    }
                }
            }
            target.copy_from_slice(&sums[..lanes]);
        }
    });
}

/// The kernel's gradient by direct convolution: adds Σ over positions of input value ×
/// that position's output gradient `dz` (positions, filters) onto `dk` (kh · kw · channels,
/// filters).
pub fn direct_conv_kernel_grad(x: &[f32], g: &Window, dz: &[f32], filters: usize, dk: &mut [f32]) {
    let c = g.channels;
    for_each_window(g, |position, taps| {
        let grad = &dz[position * filters..(position + 1) * filters];
        for &(tap, at) in taps {
            for (channel, &v) in x[at..at + c].iter().enumerate() {
                axpy(&mut dk[(tap * c + channel) * filters..][..filters], v, grad);
            }
        }
    });
}

/// The input's gradient by direct convolution: adds each tap's kernel rows · its position's
/// output gradient onto the input pixel under it.
pub fn direct_conv_input_grad(
    dz: &[f32],
    g: &Window,
    kernel: &[f32],
    filters: usize,
    dx: &mut [f32],
) {
    let c = g.channels;
    for_each_window(g, |position, taps| {
        let grad = &dz[position * filters..(position + 1) * filters];
        for &(tap, at) in taps {
            for (channel, d) in dx[at..at + c].iter_mut().enumerate() {
                *d += dot(&kernel[(tap * c + channel) * filters..][..filters], grad);
            }
        }
    });
}

/// `y += a · x`, in register-wide blocks.
#[inline(always)]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let mut ys = y.chunks_exact_mut(LANES);
    let mut xs = x.chunks_exact(LANES);
    for (y, x) in (&mut ys).zip(&mut xs) {
        for (y, x) in y.iter_mut().zip(x) {
            *y += a * x;
        }
    }
    for (y, x) in ys.into_remainder().iter_mut().zip(xs.remainder()) {
        *y += a * x;
    }
}

/// `a · b`, with one partial sum per lane.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; LANES];
    let (mut aa, mut bb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (a, b) in (&mut aa).zip(&mut bb) {
        for ((s, a), b) in sums.iter_mut().zip(a).zip(b) {
            *s += a * b;
        }
    }
    let tail: f32 = aa
        .remainder()
        .iter()
        .zip(bb.remainder())
        .map(|(a, b)| a * b)
        .sum();
    sums.iter().sum::<f32>() + tail
}

/// Calls `f(row, taps)` for every output position: `taps` holds, for each of the window's
/// positions that lie inside the input, its place in the kernel (ky · kw + kx) and its flat
/// input offset (of channel 0). One walk for the pooling and direct convolution kernels; the
/// tap buffer is reused across windows.
#[inline(always)]
fn for_each_window(g: &Window, mut f: impl FnMut(usize, &[(usize, usize)])) {
    let mut taps = Vec::with_capacity(g.kernel.0 * g.kernel.1);
    let mut row = 0;
    // No padding and every window inside the input (a "valid" window, as pooling's): each
    // window's taps are its corner's offset plus fixed steps, with no bounds to check.
    let inside = g.pad == (0, 0)
        && g.out_height > 0
        && g.out_width > 0
        && (g.out_height - 1) * g.strides.0 + g.kernel.0 <= g.height
        && (g.out_width - 1) * g.strides.1 + g.kernel.1 <= g.width;
    if inside {
        let steps: Vec<(usize, usize)> = (0..g.kernel.0)
            .flat_map(|ky| {
                (0..g.kernel.1)
                    .map(move |kx| (ky * g.kernel.1 + kx, (ky * g.width + kx) * g.channels))
            })
            .collect();
        taps.extend_from_slice(&steps);
        for n in 0..g.batch {
            for oy in 0..g.out_height {
                for ox in 0..g.out_width {
                    let corner = ((n * g.height + oy * g.strides.0) * g.width + ox * g.strides.1)
                        * g.channels;
                    for (tap, step) in taps.iter_mut().zip(&steps) {
                        tap.1 = corner + step.1;
                    }
                    f(row, &taps);
                    row += 1;
                }
            }
        }
        return;
    }
    for n in 0..g.batch {
        let base = n * g.height * g.width;
        for oy in 0..g.out_height {
            for ox in 0..g.out_width {
                taps.clear();
                for ky in 0..g.kernel.0 {
                    for kx in 0..g.kernel.1 {
                        if let Some((iy, ix)) = g.source(oy, ox, ky, kx) {
                            let tap = ky * g.kernel.1 + kx;
                            taps.push((tap, (base + iy * g.width + ix) * g.channels));
                        }
                    }
                }
                f(row, &taps);
                row += 1;
            }
        }
    }
}

/// Max pooling: each window's maximum per channel into `out` (positions, channels), and,
/// when given, into `argmax` which of the window's taps (its place among the taps inside the
/// input, as an exact small integer) holds it: the first, on ties. Channels are the inner
/// loop, so every window tap is a contiguous, vectorised `max`.
pub fn max_pool(x: &[f32], g: &Window, out: &mut [f32], mut argmax: Option<&mut [f32]>) {
    let c = g.channels;
    for_each_window(g, |row, taps| {
        let best = &mut out[row * c..(row + 1) * c];
        best.fill(f32::NEG_INFINITY);
        match argmax.as_deref_mut() {
            None => {
                for &(_, t) in taps {
                    // `if v > b` rather than f32::max: no NaN bookkeeping, vectorises.
                    for (b, &v) in best.iter_mut().zip(&x[t..t + c]) {
                        *b = if v > *b { v } else { *b };
                    }
                }
            }
            Some(argmax) => {
                let which = &mut argmax[row * c..(row + 1) * c];
                which.fill(0.0);
                for (j, &(_, t)) in taps.iter().enumerate() {
                    let j = (j as f32).to_bits();
                    for ((b, w), &v) in best.iter_mut().zip(which.iter_mut()).zip(&x[t..t + c]) {
                        // Blends on the bits (all ones where v is greater): written as
                        // selects, the compiler branches per value instead of vectorising.
                        let greater = 0u32.wrapping_sub(u32::from(v > *b));
                        *b = f32::from_bits(v.to_bits() & greater | b.to_bits() & !greater);
                        *w = f32::from_bits(j & greater | w.to_bits() & !greater);
                    }
                }
            }
        }
    });
}

/// The gradient of [`max_pool`]: each output's gradient `dy` goes to the tap its `argmax`
/// names; nothing is read from the input.
pub fn max_pool_backward(dy: &[f32], argmax: &[f32], g: &Window, dx: &mut [f32], accumulate: bool) {
    let c = g.channels;
    // When the windows tile the input exactly, every input position gets exactly one value
    // below, so `dx` is written rather than cleared and added to.
    let assign = !accumulate && g.tiles_input();
    if !accumulate && !assign {
        dx.fill(0.0);
    }
    for_each_window(g, |row, taps| {
        let (grad, which) = (&dy[row * c..(row + 1) * c], &argmax[row * c..(row + 1) * c]);
        for (j, &(_, t)) in taps.iter().enumerate() {
            let j = j as f32;
            // Selects, not branches, so it vectorises.
            for ((d, &w), &g) in dx[t..t + c].iter_mut().zip(which).zip(grad) {
                let routed = if w == j { g } else { 0.0 };
                *d = if assign { routed } else { *d + routed };
            }
        }
    });
}

/// Average pooling: each window's mean per channel over the taps inside the input (with
/// "same" padding the border windows average fewer values, as in Keras).
pub fn avg_pool(x: &[f32], g: &Window, out: &mut [f32]) {
    let c = g.channels;
    for_each_window(g, |row, taps| {
        let mean = &mut out[row * c..(row + 1) * c];
        mean.fill(0.0);
        for &(_, t) in taps {
            mean.iter_mut()
                .zip(&x[t..t + c])
                .for_each(|(m, &v)| *m += v);
        }
        let inv = 1.0 / taps.len().max(1) as f32;
        mean.iter_mut().for_each(|m| *m *= inv);
    });
}

/// The gradient of [`avg_pool`]: each output's gradient shared equally by its window's taps.
pub fn avg_pool_backward(dy: &[f32], g: &Window, dx: &mut [f32], accumulate: bool) {
    let c = g.channels;
    if !accumulate {
        dx.fill(0.0);
    }
    for_each_window(g, |row, taps| {
        let share = 1.0 / taps.len().max(1) as f32;
        let grad = &dy[row * c..(row + 1) * c];
        for &(_, t) in taps {
            dx[t..t + c]
                .iter_mut()
                .zip(grad)
                .for_each(|(d, &g)| *d += g * share);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_and_valid_geometry_like_keras() {
        let g = Window::new(&[1, 28, 28, 1], (3, 3), (1, 1), false).unwrap();
        assert_eq!((g.out_height, g.out_width), (26, 26));
        let g = Window::new(&[1, 28, 28, 1], (3, 3), (1, 1), true).unwrap();
        assert_eq!((g.out_height, g.out_width, g.pad), (28, 28, (1, 1)));
        let g = Window::new(&[1, 5, 5, 1], (2, 2), (2, 2), true).unwrap();
        assert_eq!((g.out_height, g.pad), (3, (0, 0)));
        let g = Window::new(&[1, 26, 26, 1], (2, 2), (2, 2), false).unwrap();
        assert_eq!(g.out_height, 13);
        assert!(Window::new(&[1, 2, 2, 1], (3, 3), (1, 1), false).is_err());
        assert!(Window::new(&[2, 2, 1], (1, 1), (1, 1), false).is_err());
    }

    #[test]
    fn im2col_by_hand_and_col2im_is_its_adjoint() {
        // One 3x3 single-channel image, 2x2 kernel, valid: 4 patches.
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let g = Window::new(&[1, 3, 3, 1], (2, 2), (1, 1), false).unwrap();
        let mut cols = vec![f32::NAN; 16];
        im2col(&x, &g, &mut cols);
        assert_eq!(
            cols,
            vec![1., 2., 4., 5., 2., 3., 5., 6., 4., 5., 7., 8., 5., 6., 8., 9.]
        );
        // <im2col(x), c> == <x, col2im(c)> for any c.
        let c: Vec<f32> = (0..16).map(|i| (i as f32 * 0.7).sin()).collect();
        let mut back = vec![0.0; 9];
        col2im_add(&c, &g, &mut back);
        let lhs: f32 = cols.iter().zip(&c).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-4);
    }

    /// `a` (m, k) · `b` (k, n), plainly.
    fn product(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for p in 0..k {
                for j in 0..n {
                    out[i * n + j] += a[i * k + p] * b[p * n + j];
                }
            }
        }
        out
    }

    fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..cols * rows)
            .map(|i| a[(i % rows) * cols + i / rows])
            .collect()
    }

    #[test]
    fn direct_convolution_matches_im2col_and_products_forward_and_backward() {
        let mut rng = crate::tensor::random::Rng::seed(3);
        let mut random =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect() };
        // Valid and same padding, strides, one and several channels, filters that are and
        // are not a multiple of the register width.
        for (input, kernel, strides, same, filters) in [
            ([2, 6, 7, 1], (3, 3), (1, 1), false, 32),
            ([1, 7, 5, 3], (3, 2), (2, 1), true, 5),
            ([2, 5, 5, 4], (2, 3), (1, 2), true, 20),
            // Valid windows, strided, that leave the last row and columns out.
            ([2, 7, 8, 2], (2, 2), (2, 3), false, 3),
        ] {
            let g = Window::new(&input, kernel, strides, same).unwrap();
            let (k, p) = (g.patch_len(), g.positions());
            let x = random(g.batch * g.input_len());
            let w = random(k * filters);
            let dz = random(p * filters);
            let mut cols = vec![0.0; p * k];
            im2col(&x, &g, &mut cols);
            let close = |a: &[f32], b: &[f32]| {
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-4)
            };

            let mut out = vec![f32::NAN; p * filters];
            direct_conv(&x, &g, &w, filters, &mut out);
            assert!(close(&out, &product(&cols, &w, p, k, filters)), "{g:?}");

            let mut dk = vec![1.0; k * filters];
            direct_conv_kernel_grad(&x, &g, &dz, filters, &mut dk);
            let expected: Vec<f32> = product(&transpose(&cols, p, k), &dz, k, p, filters)
                .iter()
                .map(|v| v + 1.0)
                .collect();
            assert!(close(&dk, &expected), "{g:?}");

            let mut dx = vec![0.5; x.len()];
            direct_conv_input_grad(&dz, &g, &w, filters, &mut dx);
            let mut expected = vec![0.5; x.len()];
            col2im_add(
                &product(&dz, &transpose(&w, k, filters), p, filters, k),
                &g,
                &mut expected,
            );
            assert!(close(&dx, &expected), "{g:?}");
        }
    }

    #[test]
    fn avg_pool_by_hand_with_same_padding() {
        // 3x3 image 1..9, 2x2 windows, stride 2, same: windows {1,2,4,5} {3,6} {7,8} {9}.
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let g = Window::new(&[1, 3, 3, 1], (2, 2), (2, 2), true).unwrap();
        let mut out = vec![0.0; 4];
        avg_pool(&x, &g, &mut out);
        assert_eq!(out, vec![3.0, 4.5, 7.5, 9.0]);
        let mut dx = vec![0.0; 9];
        avg_pool_backward(&[4.0, 2.0, 2.0, 1.0], &g, &mut dx, true);
        assert_eq!(dx, vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn max_pool_by_hand() {
        // 4x4, two channels interleaved; 2x2 pooling.
        let x: Vec<f32> = (0..32)
            .map(|i| if i % 2 == 0 { i as f32 } else { -(i as f32) })
            .collect();
        let g = Window::new(&[1, 4, 4, 2], (2, 2), (2, 2), false).unwrap();
        let (mut out, mut argmax) = (vec![0.0; 8], vec![0.0; 8]);
        max_pool(&x, &g, &mut out, Some(&mut argmax));
        // Channel 0 holds 0, 2, 4, … (max at the bottom-right of each window); channel 1
        // holds negatives (max at the top-left).
        assert_eq!(out, vec![10., -1., 14., -5., 26., -17., 30., -21.]);
        assert_eq!(argmax, vec![3., 0., 3., 0., 3., 0., 3., 0.]);
        let mut plain = vec![0.0; 8];
        max_pool(&x, &g, &mut plain, None);
        assert_eq!(plain, out);
        let mut dx = vec![0.0; 32];
        max_pool_backward(&[1.0; 8], &argmax, &g, &mut dx, false);
        assert_eq!((dx[10], dx[1], dx.iter().sum::<f32>()), (1.0, 1.0, 8.0));
        // Ties go to the first tap; a window with padding counts only the taps inside.
        let g = Window::new(&[1, 3, 3, 1], (2, 2), (2, 2), true).unwrap();
        let x = [5.0, 5.0, 1.0, 5.0, 0.0, 7.0, 2.0, 3.0, 7.0];
        let (mut out, mut argmax) = (vec![0.0; 4], vec![0.0; 4]);
        max_pool(&x, &g, &mut out, Some(&mut argmax));
        assert_eq!((out, argmax), (vec![5., 7., 3., 7.], vec![0., 1., 1., 0.]));
    }
}
