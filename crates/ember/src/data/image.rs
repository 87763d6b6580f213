//! Image files (PNG, JPEG) as model inputs: grayscale, the model's size, MNIST's conventions.

use std::path::Path;

use image::imageops::FilterType;
use image::GrayImage;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Loads an image as a (height, width) tensor of gray levels 0–255, light ink on a dark
/// background as in MNIST (an image with a light background is inverted).
///
/// An image already of the target size is used pixel for pixel. Any other size is normalised
/// the way MNIST itself was made: the ink's bounding box is scaled to fit a box of 20/28 of
/// the target, keeping its aspect ratio, and placed so that its centre of mass is at the
/// centre.
pub fn load_image(path: &Path, height: usize, width: usize) -> Result<Tensor> {
    let bytes = crate::read::file(path, crate::read::Limit::IMAGE)?;
    load_image_bytes(&bytes, path, height, width)
}

/// [`load_image`] on an image's bytes (PNG or JPEG, told by content); `path` names it in
/// errors.
pub fn load_image_bytes(bytes: &[u8], path: &Path, height: usize, width: usize) -> Result<Tensor> {
    let decoded = decode_bytes(bytes, path)?;
    let mut gray = decoded.to_luma8();
    if gray.width() == 0 || gray.height() == 0 {
        return Err(Error::data(path, "the image is empty"));
    }
    if border_mean(&gray) > 127.0 {
        image::imageops::invert(&mut gray);
    }
    let gray = if (gray.height() as usize, gray.width() as usize) == (height, width) {
        gray
    } else {
        normalise(&gray, height as u32, width as u32)
    };
    let data = gray.as_raw().iter().map(|&v| v as f32).collect();
    Tensor::new(&[height, width], data)
}

/// Decodes an image file (PNG or JPEG, told by its content), within the decoder's memory
/// limits. A JPEG cut short is an error: the decoder would quietly fill the missing part.
pub fn decode(path: &Path) -> Result<image::DynamicImage> {
    let bytes = crate::read::file(path, crate::read::Limit::IMAGE)?;
    decode_bytes(&bytes, path)
}

/// [`decode`] on a file's bytes; `path` names it in errors (the fuzzed entry point).
pub fn decode_bytes(bytes: &[u8], path: &Path) -> Result<image::DynamicImage> {
    if bytes.starts_with(&[0xFF, 0xD8]) && !jpeg_complete(bytes) {
        return Err(Error::data(
            path,
            "a truncated JPEG: no end-of-image marker after its last scan",
        ));
    }
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .decode()
        .map_err(|e| Error::data(path, format!("cannot decode the image: {e}")))
}

/// Whether a JPEG's last scan (after its last start-of-scan marker, FF DA) is followed by the
/// end-of-image marker (FF D9). Scan data cannot hold FF D9 (its FF bytes are stuffed), so a
/// file cut in its image data has none; bytes appended after a complete image are allowed.
fn jpeg_complete(bytes: &[u8]) -> bool {
    let marker = |m: u8| move |w: &[u8]| w[0] == 0xFF && w[1] == m;
    let Some(scan) = bytes.windows(2).rposition(marker(0xDA)) else {
        return false;
    };
    bytes[scan..].windows(2).any(marker(0xD9))
}

/// Mean gray level of the outermost pixels: the background's brightness.
fn border_mean(img: &GrayImage) -> f64 {
    let (w, h) = img.dimensions();
    let mut sum = 0.0;
    let mut n = 0.0;
    for (x, y, p) in img.enumerate_pixels() {
        if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
            sum += p.0[0] as f64;
            n += 1.0;
        }
    }
    sum / n
}

/// MNIST's normalisation: crop to the ink, fit into 20/28 of the frame, centre the mass.
fn normalise(img: &GrayImage, height: u32, width: u32) -> GrayImage {
    let mut frame = GrayImage::new(width, height);
    let ink = |v: u8| v > 30;
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in img.enumerate_pixels() {
        if ink(p.0[0]) {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    if x0 > x1 {
        return frame; // blank image
    }
    let crop = image::imageops::crop_imm(img, x0, y0, x1 - x0 + 1, y1 - y0 + 1).to_image();
    let box_w = (width * 20).div_ceil(28).max(1) as f64;
    let box_h = (height * 20).div_ceil(28).max(1) as f64;
    let scale = (box_w / crop.width() as f64).min(box_h / crop.height() as f64);
    let new_w = ((crop.width() as f64 * scale).round() as u32).clamp(1, width);
    let new_h = ((crop.height() as f64 * scale).round() as u32).clamp(1, height);
    let digit = image::imageops::resize(&crop, new_w, new_h, FilterType::Triangle);
    // Centre of mass of the resized digit.
    let (mut mass, mut cx, mut cy) = (0.0, 0.0, 0.0);
    for (x, y, p) in digit.enumerate_pixels() {
        let m = p.0[0] as f64;
        mass += m;
        cx += m * x as f64;
        cy += m * y as f64;
    }
    let (cx, cy) = if mass > 0.0 {
        (cx / mass, cy / mass)
    } else {
        (new_w as f64 / 2.0, new_h as f64 / 2.0)
    };
    let left = (width as f64 / 2.0 - cx)
        .round()
        .clamp(0.0, (width - new_w) as f64) as i64;
    let top = (height as f64 / 2.0 - cy)
        .round()
        .clamp(0.0, (height - new_h) as f64) as i64;
    image::imageops::overlay(&mut frame, &digit, left, top);
    frame
}

/// Writes a (height, width) tensor of gray levels 0–255 as a PNG (for tests and tools).
pub fn save_png(path: &Path, pixels: &Tensor) -> Result<()> {
    let [h, w] = pixels.shape() else {
        return Err(Error::shape(
            "save_png",
            format!("needs (height, width), got {:?}", pixels.shape()),
        ));
    };
    let bytes: Vec<u8> = pixels
        .data()
        .iter()
        .map(|&v| v.clamp(0.0, 255.0).round() as u8)
        .collect();
    let img = GrayImage::from_raw(*w as u32, *h as u32, bytes).expect("sizes checked");
    img.save(path)
        .map_err(|e| Error::data(path, format!("cannot write the PNG: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_jpeg_is_refused_and_a_whole_one_read() {
        let scratch = tempfile::tempdir().unwrap();
        let mut img = image::GrayImage::new(64, 64);
        for (x, y, p) in img.enumerate_pixels_mut() {
            p.0[0] = ((x * 7 + y * 3) % 256) as u8;
        }
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&img)
            .unwrap();
        let whole = scratch.path().join("whole.jpg");
        std::fs::write(&whole, &bytes).unwrap();
        assert_eq!(load_image(&whole, 64, 64).unwrap().shape(), &[64, 64]);
        // Bytes after a complete image (some cameras append data) are fine.
        let appended = scratch.path().join("appended.jpg");
        std::fs::write(&appended, [&bytes[..], b"trailing data"].concat()).unwrap();
        assert!(decode(&appended).is_ok());
        for keep in [bytes.len() / 10, bytes.len() / 2, bytes.len() - 2] {
            let cut = scratch.path().join("cut.jpg");
            std::fs::write(&cut, &bytes[..keep]).unwrap();
            let err = load_image(&cut, 64, 64).unwrap_err().to_string();
            assert!(
                err.contains("cut.jpg") && err.contains("truncated JPEG"),
                "{err}"
            );
            let err = crate::data::image_folder::load_image_file(
                &cut,
                8,
                8,
                crate::data::image_folder::ColorMode::Grayscale,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("truncated JPEG"), "{err}");
        }
    }

    #[test]
    fn native_size_round_trips_and_large_dark_on_light_is_normalised() {
        let scratch = tempfile::tempdir().unwrap();
        let stroke = (8..20).map(|y| (y * 28 + 14, 255.0)); // a vertical stroke
        let t = Tensor::from_entries(&[28, 28], stroke).unwrap();
        let path = scratch.path().join("one.png");
        save_png(&path, &t).unwrap();
        assert_eq!(load_image(&path, 28, 28).unwrap(), t);

        // The same stroke, black on white, drawn at 10× the size.
        let big = GrayImage::from_fn(280, 280, |x, y| {
            image::Luma([if (135..146).contains(&x) && (60..200).contains(&y) {
                0
            } else {
                255
            }])
        });
        let path = scratch.path().join("big.png");
        big.save(&path).unwrap();
        let small = load_image(&path, 28, 28).unwrap();
        // Inverted (ink is bright), 20 pixels tall, centred.
        let column: Vec<f32> = (0..28).map(|y| small.data()[y * 28 + 14]).collect();
        let rows_with_ink = column.iter().filter(|&&v| v > 100.0).count();
        assert!((18..=21).contains(&rows_with_ink), "{column:?}");
        assert_eq!(small.data()[0], 0.0);
    }

    #[test]
    fn unreadable_images_name_the_file() {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("broken.png");
        std::fs::write(&path, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        let e = load_image(&path, 28, 28).unwrap_err().to_string();
        assert!(e.contains("broken.png") && e.contains("decode"), "{e}");
        let e = load_image(&scratch.path().join("missing.png"), 28, 28)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.png"), "{e}");
    }
}
