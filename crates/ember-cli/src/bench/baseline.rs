//! The benchmark's baseline: the reference MLP's training step written by hand as one fused
//! function over plain buffers, calling `gemm` directly. No tape, no layers, no allocation
//! after start-up: what a careful engineer would write for this one network.

use std::time::Instant;

use ember::tensor::matmul::{gemm_row_major, Parallelism};
use ember::tensor::random::Rng;
use ember::Tensor;

const INPUTS: usize = 784;
const HIDDEN: usize = 64;
const CLASSES: usize = 10;
const BATCH: usize = 32;

/// `c (m×n) = a · b` (or `+=` with `accumulate`), with strides given as (row, col) pairs.
#[allow(clippy::too_many_arguments)]
fn gemm(
    c: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_strides: (isize, isize),
    b: &[f32],
    b_strides: (isize, isize),
    accumulate: bool,
) {
    // SAFETY: callers pass buffers that cover the strided matrices.
    unsafe {
        gemm_row_major(
            c.as_mut_ptr(),
            (m, n, k),
            accumulate,
            (a.as_ptr(), a_strides.0, a_strides.1),
            (b.as_ptr(), b_strides.0, b_strides.1),
            Parallelism::None,
        )
    }
}

struct AdamState {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl AdamState {
    fn new(n: usize) -> Self {
        AdamState {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    /// Keras's Adam step, compiled for AVX2 when the CPU has it (as Ember's kernel is).
    fn update(&mut self, w: &mut [f32], g: &[f32], alpha: f32) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.update_avx2(w, g, alpha) };
        }
        self.update_portable(w, g, alpha)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn update_avx2(&mut self, w: &mut [f32], g: &[f32], alpha: f32) {
        self.update_portable(w, g, alpha)
    }

    #[inline(always)]
    fn update_portable(&mut self, w: &mut [f32], g: &[f32], alpha: f32) {
        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(&mut self.m).zip(&mut self.v) {
            *m += (g - *m) * 0.1;
            *v += (g * g - *v) * 0.001;
            *w -= alpha * *m / (v.sqrt() + 1e-7);
        }
    }
}

/// The baseline network and its training state: rows `0..n_train` of `x` / `y` (one-hot)
/// train it, the rest validate it. Each [`Baseline::epoch`] is one timed epoch, so a
/// benchmark can interleave its epochs with Ember's and both see the same machine.
pub struct Baseline<'a> {
    xd: &'a [f32],
    yd: &'a [f32],
    rows: usize,
    rng: Rng,
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
    aw1: AdamState,
    ab1: AdamState,
    aw2: AdamState,
    ab2: AdamState,
    gw1: Vec<f32>,
    gb1: Vec<f32>,
    gw2: Vec<f32>,
    gb2: Vec<f32>,
    xb: Vec<f32>,
    yb: Vec<f32>,
    h: Vec<f32>,
    z: Vec<f32>,
    dh: Vec<f32>,
    order: Vec<usize>,
    n_train: usize,
    step: i32,
    /// Validation accuracy after the last epoch.
    pub val_accuracy: f64,
}

impl<'a> Baseline<'a> {
    pub fn new(x: &'a Tensor, y: &'a Tensor, n_train: usize, seed: u64) -> Self {
        let mut rng = Rng::seed(seed);
        let glorot = |rng: &mut Rng, fan_in: usize, fan_out: usize| -> Vec<f32> {
            let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
            (0..fan_in * fan_out)
                .map(|_| rng.uniform_range(-limit, limit))
                .collect()
        };
        let w1 = glorot(&mut rng, INPUTS, HIDDEN);
        let w2 = glorot(&mut rng, HIDDEN, CLASSES);
        Baseline {
            xd: x.data(),
            yd: y.data(),
            rows: x.rows(),
            rng,
            aw1: AdamState::new(w1.len()),
            ab1: AdamState::new(HIDDEN),
            aw2: AdamState::new(w2.len()),
            ab2: AdamState::new(CLASSES),
            gw1: vec![0.0; w1.len()],
            gb1: vec![0.0; HIDDEN],
            gw2: vec![0.0; w2.len()],
            gb2: vec![0.0; CLASSES],
            w1,
            b1: vec![0.0; HIDDEN],
            w2,
            b2: vec![0.0; CLASSES],
            xb: vec![0.0; BATCH * INPUTS],
            yb: vec![0.0; BATCH * CLASSES],
            h: vec![0.0; BATCH * HIDDEN],
            z: vec![0.0; BATCH * CLASSES],
            dh: vec![0.0; BATCH * HIDDEN],
            order: (0..n_train).collect(),
            n_train,
            step: 0,
            val_accuracy: 0.0,
        }
    }

    /// Trains one epoch and validates; returns its wall time in seconds.
    pub fn epoch(&mut self) -> f64 {
        let Baseline {
            xd,
            yd,
            rows: total_rows,
            rng,
            w1,
            b1,
            w2,
            b2,
            aw1,
            ab1,
            aw2,
            ab2,
            gw1,
            gb1,
            gw2,
            gb2,
            xb,
            yb,
            h,
            z,
            dh,
            order,
            n_train,
            step,
            val_accuracy,
        } = self;
        let (xd, yd, n_train) = (*xd, *yd, *n_train);
        let started = Instant::now();
        rng.shuffle(order);
        for rows in order.chunks(BATCH) {
            let b = rows.len();
            for (i, &r) in rows.iter().enumerate() {
                xb[i * INPUTS..(i + 1) * INPUTS].copy_from_slice(&xd[r * INPUTS..(r + 1) * INPUTS]);
                yb[i * CLASSES..(i + 1) * CLASSES]
                    .copy_from_slice(&yd[r * CLASSES..(r + 1) * CLASSES]);
            }
            // Forward: h = relu(x·w1 + b1), z = h·w2 + b2.
            forward(
                &xb[..b * INPUTS],
                w1,
                b1,
                w2,
                b2,
                &mut h[..b * HIDDEN],
                &mut z[..b * CLASSES],
            );
            // Softmax cross-entropy gradient, in place: dz = (softmax(z) - y) / b.
            for (zr, yr) in z[..b * CLASSES].chunks_mut(CLASSES).zip(yb.chunks(CLASSES)) {
                let max = zr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for v in zr.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                for (v, &t) in zr.iter_mut().zip(yr) {
                    *v = (*v / sum - t) / b as f32;
                }
            }
            let dz = &z[..b * CLASSES];
            // dw2 = hᵀ·dz, db2 = Σ dz, dh = dz·w2ᵀ ⊙ (h > 0)
            gemm(
                gw2,
                HIDDEN,
                CLASSES,
                b,
                h,
                (1, HIDDEN as isize),
                dz,
                (CLASSES as isize, 1),
                false,
            );
            column_sums(gb2, dz, CLASSES);
            gemm(
                &mut dh[..b * HIDDEN],
                b,
                HIDDEN,
                CLASSES,
                dz,
                (CLASSES as isize, 1),
                w2,
                (1, CLASSES as isize),
                false,
            );
            for (d, &hv) in dh[..b * HIDDEN].iter_mut().zip(h.iter()) {
                if hv <= 0.0 {
                    *d = 0.0;
                }
            }
            // dw1 = xᵀ·dh, db1 = Σ dh
            gemm(
                gw1,
                INPUTS,
                HIDDEN,
                b,
                xb,
                (1, INPUTS as isize),
                dh,
                (HIDDEN as isize, 1),
                false,
            );
            column_sums(gb1, &dh[..b * HIDDEN], HIDDEN);
            // Adam, Keras's formulation.
            *step += 1;
            let alpha = 0.001 * (1.0 - 0.999f32.powi(*step)).sqrt() / (1.0 - 0.9f32.powi(*step));
            aw1.update(w1, gw1, alpha);
            ab1.update(b1, gb1, alpha);
            aw2.update(w2, gw2, alpha);
            ab2.update(b2, gb2, alpha);
        }
        // Validation pass, as Ember's fit does every epoch.
        let mut correct = 0;
        let total = *total_rows - n_train;
        for start in (n_train..*total_rows).step_by(BATCH) {
            let b = BATCH.min(*total_rows - start);
            let xs = &xd[start * INPUTS..(start + b) * INPUTS];
            forward(
                xs,
                w1,
                b1,
                w2,
                b2,
                &mut h[..b * HIDDEN],
                &mut z[..b * CLASSES],
            );
            for (i, zr) in z[..b * CLASSES].chunks(CLASSES).enumerate() {
                let yr = &yd[(start + i) * CLASSES..(start + i + 1) * CLASSES];
                correct += (ember::tensor::argmax(zr) == ember::tensor::argmax(yr)) as usize;
            }
        }
        *val_accuracy = correct as f64 / total.max(1) as f64;
        started.elapsed().as_secs_f64()
    }
}

fn forward(
    x: &[f32],
    w1: &[f32],
    b1: &[f32],
    w2: &[f32],
    b2: &[f32],
    h: &mut [f32],
    z: &mut [f32],
) {
    let b = x.len() / INPUTS;
    for row in h.chunks_mut(HIDDEN) {
        row.copy_from_slice(b1);
    }
    gemm(
        h,
        b,
        HIDDEN,
        INPUTS,
        x,
        (INPUTS as isize, 1),
        w1,
        (HIDDEN as isize, 1),
        true,
    );
    h.iter_mut().for_each(|v| *v = v.max(0.0));
    for row in z.chunks_mut(CLASSES) {
        row.copy_from_slice(b2);
    }
    gemm(
        z,
        b,
        CLASSES,
        HIDDEN,
        h,
        (HIDDEN as isize, 1),
        w2,
        (CLASSES as isize, 1),
        true,
    );
}

fn column_sums(out: &mut [f32], m: &[f32], cols: usize) {
    out.fill(0.0);
    for row in m.chunks(cols) {
        out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
    }
}
