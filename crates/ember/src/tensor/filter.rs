//! Image filters over channels-last images: a Gaussian blur (the blurred baseline of
//! Integrated Gradients) and a bilinear resize of a map (Grad-CAM's map to the input's size).

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Blurs each image of `x` (samples, height, width, channels) with a Gaussian of standard
/// deviation `sigma` pixels, separably, the kernel cut at 3σ (or at the image's larger side,
/// beyond which it reaches no pixel) and renormalised at the edges (edge pixels average only
/// the pixels that exist).
pub fn gaussian_blur(x: &Tensor, sigma: f32) -> Result<Tensor> {
    let &[n, h, w, c] = x.shape() else {
        return Err(Error::shape(
            "gaussian_blur",
            format!(
                "expected images (samples, height, width, channels), got {:?}",
                x.shape()
            ),
        ));
    };
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(Error::invalid(format!(
            "blur sigma must be > 0, got {sigma}"
        )));
    }
    let radius = ((3.0 * sigma).ceil() as isize).min(h.max(w) as isize);
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|d| (-(d as f32).powi(2) / (2.0 * sigma * sigma)).exp())
        .collect();
    let pass = |src: &[f32], dst: &mut [f32], along_rows: bool| {
        for img in 0..n {
            for i in 0..h {
                for j in 0..w {
                    for ch in 0..c {
                        let (mut sum, mut weight) = (0.0f32, 0.0f32);
                        for (k, &g) in kernel.iter().enumerate() {
                            let d = k as isize - radius;
                            let (ii, jj) = if along_rows {
                                (i as isize + d, j as isize)
                            } else {
                                (i as isize, j as isize + d)
                            };
                            if ii < 0 || jj < 0 || ii >= h as isize || jj >= w as isize {
                                continue;
                            }
                            let at = ((img * h + ii as usize) * w + jj as usize) * c + ch;
                            sum += g * src[at];
                            weight += g;
                        }
                        dst[((img * h + i) * w + j) * c + ch] = sum / weight;
                    }
                }
            }
        }
    };
    let mut across = vec![0.0; x.len()];
    pass(x.data(), &mut across, false);
    let mut out = vec![0.0; x.len()];
    pass(&across, &mut out, true);
    Tensor::new(x.shape(), out)
}

/// Grad-CAM's map (Selvaraju et al. 2017) over the positions of one image's layer output:
/// each channel weighted by its gradient's mean over the positions, summed, negatives cut.
/// `activations` and `gradients` are (positions, channels).
pub fn grad_cam_map(activations: &[f32], gradients: &[f32], channels: usize) -> Vec<f32> {
    let positions = activations.len() / channels;
    let mut weights = vec![0.0f64; channels];
    for row in gradients.chunks_exact(channels) {
        for (w, &g) in weights.iter_mut().zip(row) {
            *w += g as f64;
        }
    }
    weights.iter_mut().for_each(|w| *w /= positions as f64);
    activations
        .chunks_exact(channels)
        .map(|row| {
            let v: f64 = row.iter().zip(&weights).map(|(&a, w)| a as f64 * w).sum();
            v.max(0.0) as f32
        })
        .collect()
}

/// Resizes a one-channel map of `from` (height, width) to `to`, bilinearly with half-pixel
/// centres (TensorFlow's `resize(…, "bilinear")`, PyTorch's `align_corners=False`).
pub fn resize_bilinear(map: &[f32], from: (usize, usize), to: (usize, usize)) -> Result<Vec<f32>> {
    let ((h, w), (oh, ow)) = (from, to);
    if map.len() != h * w || h == 0 || w == 0 {
        return Err(Error::shape(
            "resize_bilinear",
            format!("a map of {} values is not {h}×{w}", map.len()),
        ));
    }
    let source = |o: usize, outer: usize, inner: usize| {
        let x = ((o as f32 + 0.5) * inner as f32 / outer as f32 - 0.5).max(0.0);
        let lo = (x.floor() as usize).min(inner - 1);
        let hi = (lo + 1).min(inner - 1);
        (lo, hi, x - lo as f32)
    };
    let mut out = Vec::with_capacity(oh * ow);
    for i in 0..oh {
        let (i0, i1, fi) = source(i, oh, h);
        for j in 0..ow {
            let (j0, j1, fj) = source(j, ow, w);
            let top = map[i0 * w + j0] * (1.0 - fj) + map[i0 * w + j1] * fj;
            let bottom = map[i1 * w + j0] * (1.0 - fj) + map[i1 * w + j1] * fj;
            out.push(top * (1.0 - fi) + bottom * fi);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grad_cam_weights_channels_by_their_mean_gradient_and_cuts_negatives() {
        // Two positions, two channels: weights (mean gradients) 1 and -0.5.
        let activations = [2.0, 1.0, 1.0, 4.0];
        let gradients = [1.0, 0.0, 1.0, -1.0];
        assert_eq!(grad_cam_map(&activations, &gradients, 2), [1.5, 0.0]);
    }

    #[test]
    fn a_blur_keeps_a_constant_image_and_spreads_a_point_symmetrically() {
        let flat = Tensor::full(&[1, 5, 6, 2], 3.0);
        let blurred = gaussian_blur(&flat, 1.5).unwrap();
        assert!(blurred.data().iter().all(|&v| (v - 3.0).abs() < 1e-5));
        let mut point = vec![0.0; 49];
        point[24] = 1.0;
        let b = gaussian_blur(&Tensor::new(&[1, 7, 7, 1], point).unwrap(), 1.0).unwrap();
        let d = b.data();
        // Centre highest, symmetric, the mass kept (3σ fits inside the image).
        assert!(d[24] > d[23] && d[23] > d[22]);
        assert!((d[23] - d[25]).abs() < 1e-6 && (d[17] - d[31]).abs() < 1e-6);
        assert!((d[23] - d[17]).abs() < 1e-6);
        // The centre: g(0)² / (Σ g)², g(d) = exp(−d²/2) for d in −3..=3, by hand 0.159244.
        assert!((d[24] - 0.159_244).abs() < 1e-5, "{}", d[24]);
        assert!(gaussian_blur(&Tensor::zeros(&[2, 3]), 1.0).is_err());
        assert!(gaussian_blur(&flat, 0.0).is_err());
    }

    #[test]
    fn bilinear_resize_matches_hand_computed_values() {
        // 2×2 → 4×4 with half-pixel centres: output row 1 reads source row 0.25.
        let out = resize_bilinear(&[0.0, 1.0, 2.0, 3.0], (2, 2), (4, 4)).unwrap();
        assert_eq!(&out[0..4], &[0.0, 0.25, 0.75, 1.0]);
        assert_eq!(&out[4..8], &[0.5, 0.75, 1.25, 1.5]);
        assert_eq!(&out[12..16], &[2.0, 2.25, 2.75, 3.0]);
        // The same size is the identity.
        let same = resize_bilinear(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3), (2, 3)).unwrap();
        assert_eq!(same, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(resize_bilinear(&[1.0], (2, 2), (3, 3)).is_err());
    }
}
