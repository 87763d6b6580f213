//! Pictures of explanations: a heat map of an image's attributions beside the image.

use std::io::Cursor;

use crate::error::{Error, Result};

/// The smallest side a heat map is drawn at: small inputs (MNIST's 28 pixels) are enlarged by
/// whole pixels.
const MIN_SIDE: usize = 280;

/// The image `(height, width, channels)` on the left and its attributions over it on the
/// right, as PNG bytes. Magnitudes (saliency, SmoothGrad, Grad-CAM) are drawn in one hue from
/// transparent to opaque yellow-red; signed attributions (Integrated Gradients) in red where
/// they raise the score and blue where they lower it. Colours are scaled to the 99th
/// percentile of the magnitudes, so that one extreme pixel does not wash out the rest; the
/// image is scaled to its own range.
pub fn heat_map(
    image: &[f32],
    shape: (usize, usize, usize),
    attributions: &[f32],
    signed: bool,
) -> Result<Vec<u8>> {
    let (h, w, c) = shape;
    if image.len() != h * w * c || attributions.len() != image.len() || h == 0 || w == 0 {
        return Err(Error::invalid(format!(
            "a heat map needs an image of {h}×{w}×{c} values and as many attributions, got {} and {}",
            image.len(),
            attributions.len()
        )));
    }
    let scale = MIN_SIDE.div_ceil(h.min(w)).clamp(1, 16);
    let (oh, ow) = (h * scale, w * scale);
    let (lo, hi) = image
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, u), &v| {
            (l.min(v), u.max(v))
        });
    let range = if hi > lo { hi - lo } else { 1.0 };
    // One attribution per pixel: the channels summed.
    let per_pixel: Vec<f32> = attributions.chunks(c).map(|p| p.iter().sum()).collect();
    let mut magnitudes: Vec<f32> = per_pixel
        .iter()
        .map(|v| v.abs())
        .filter(|v| v.is_finite())
        .collect();
    magnitudes.sort_by(f32::total_cmp);
    let top = magnitudes
        .get(((magnitudes.len() as f64 * 0.99) as usize).min(magnitudes.len().saturating_sub(1)))
        .copied()
        .filter(|&v| v > 0.0)
        .unwrap_or(1.0);
    let gap = 8;
    let width = 2 * ow + gap;
    let mut pixels = vec![255u8; oh * width * 3];
    for i in 0..oh {
        for j in 0..ow {
            let p = (i / scale) * w + j / scale;
            let rgb: [f32; 3] = if c >= 3 {
                [0, 1, 2].map(|k| (image[p * c + k] - lo) / range)
            } else {
                [(image[p * c] - lo) / range; 3]
            };
            let base = rgb.map(|v| (v.clamp(0.0, 1.0) * 255.0).round());
            let at = |x: usize| (i * width + x) * 3;
            pixels[at(j)..at(j) + 3].copy_from_slice(&base.map(|v| v as u8));
            let a = per_pixel[p];
            let strength = (a.abs() / top).clamp(0.0, 1.0);
            let colour = match (signed, a >= 0.0) {
                (false, _) => [255.0, 255.0 * (1.0 - strength) * 0.9, 0.0],
                (true, true) => [220.0, 30.0, 30.0],
                (true, false) => [30.0, 80.0, 230.0],
            };
            // Dim the image under the map so that the colours read.
            let alpha = 0.85 * strength;
            let mixed: [u8; 3] = [0, 1, 2].map(|k| {
                ((base[k] * 0.6) * (1.0 - alpha) + colour[k] * alpha)
                    .round()
                    .clamp(0.0, 255.0) as u8
            });
            let x = ow + gap + j;
            pixels[at(x)..at(x) + 3].copy_from_slice(&mixed);
        }
    }
    let png = image::RgbImage::from_raw(width as u32, oh as u32, pixels)
        .ok_or_else(|| Error::invalid("cannot draw the heat map"))?;
    let mut bytes = Vec::new();
    png.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| Error::invalid(format!("cannot encode the heat map: {e}")))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heat_map_shows_the_image_and_colours_only_where_attributions_are() {
        // A 4×4 grey image, one attributed pixel (row 1, column 2).
        let image = vec![0.5f32; 16];
        let mut attributions = vec![0.0f32; 16];
        attributions[6] = 1.0;
        let png = heat_map(&image, (4, 4, 1), &attributions, false).unwrap();
        let picture = image::load_from_memory(&png).unwrap().to_rgb8();
        // Enlarged by whole pixels, at most 16 times.
        let scale = 16;
        assert_eq!(picture.dimensions(), (2 * 4 * scale + 8, 4 * scale));
        let right = 4 * scale + 8;
        let hot = picture.get_pixel(right + 2 * scale + 5, scale + 5);
        let cold = picture.get_pixel(right + 5, 5);
        assert!(hot[0] > 200 && hot[2] < 60, "{hot:?}");
        assert_eq!(
            cold[0], cold[2],
            "no colour where nothing is attributed: {cold:?}"
        );
        // Signed: negative is blue.
        attributions[6] = -1.0;
        let png = heat_map(&image, (4, 4, 1), &attributions, true).unwrap();
        let picture = image::load_from_memory(&png).unwrap().to_rgb8();
        let blue = picture.get_pixel(right + 2 * scale + 5, scale + 5);
        assert!(blue[2] > 150 && blue[0] < 80, "{blue:?}");
        assert!(heat_map(&image, (4, 4, 1), &attributions[..3], true).is_err());
    }
}
