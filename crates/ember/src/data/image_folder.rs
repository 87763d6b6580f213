//! Image folders: one subfolder per class, PNG or JPEG files inside (Keras's
//! `image_dataset_from_directory`). Images are resized to the model's size (bilinear, aspect
//! ratio not kept, as Keras) and converted to grayscale or RGB. Files that cannot be decoded
//! are skipped and reported with their path and reason, never a panic; files without an
//! image extension are counted and left alone.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Channels an image is converted to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColorMode {
    /// One channel.
    Grayscale,
    /// Three channels (Keras's default).
    #[default]
    Rgb,
}

impl ColorMode {
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Grayscale => 1,
            ColorMode::Rgb => 3,
        }
    }
}

/// The images of a folder, ready for a model.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// (images, height, width, channels), values 0–255.
    pub images: Tensor,
    /// Class index of each image.
    pub labels: Vec<usize>,
    /// Class names (subfolder names), in index order.
    pub classes: Vec<String>,
    /// Each image's file.
    pub files: Vec<PathBuf>,
    /// Files with an image extension that could not be read, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Files ignored because their extension is not an image's.
    pub ignored: usize,
}

/// Whether `path` has an extension Ember decodes (.png, .jpg, .jpeg, any case).
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .is_some_and(|e| matches!(e.as_str(), "png" | "jpg" | "jpeg"))
}

/// Loads one image file as (height, width, channels) values 0–255, resized with bilinear
/// interpolation.
pub fn load_image_file(
    path: &Path,
    height: usize,
    width: usize,
    color: ColorMode,
) -> Result<Tensor> {
    let bytes = crate::read::file(path, crate::read::Limit::IMAGE)?;
    image_from_bytes(&bytes, path, height, width, color)
}

/// [`load_image_file`] on an image's bytes; `path` names it in errors.
pub fn image_from_bytes(
    bytes: &[u8],
    path: &Path,
    height: usize,
    width: usize,
    color: ColorMode,
) -> Result<Tensor> {
    if height == 0 || width == 0 {
        return Err(Error::invalid(format!(
            "image size must be positive, got {height}x{width}"
        )));
    }
    let decoded = super::image::decode_bytes(bytes, path)?;
    if decoded.width() == 0 || decoded.height() == 0 {
        return Err(Error::data(path, "the image is empty"));
    }
    let resized = if (decoded.height() as usize, decoded.width() as usize) == (height, width) {
        decoded
    } else {
        decoded.resize_exact(width as u32, height as u32, FilterType::Triangle)
    };
    let data: Vec<f32> = match color {
        ColorMode::Grayscale => resized.to_luma8().into_raw(),
        ColorMode::Rgb => resized.to_rgb8().into_raw(),
    }
    .into_iter()
    .map(f32::from)
    .collect();
    Tensor::new(&[height, width, color.channels()], data)
}

/// The class subfolders of a folder of `what` ("images", "documents"), sorted by name; a
/// symbolic link to a folder counts as one.
pub fn class_folders(dir: &Path, what: &str) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut classes = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        // `Path::is_dir` follows links, so a folder of linked class folders works.
        if entry.path().is_dir() {
            classes.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    classes.sort();
    if classes.is_empty() {
        return Err(Error::data(
            dir,
            format!("no class subfolders: a folder of {what} holds one subfolder per class"),
        ));
    }
    Ok(classes)
}

/// The image files of `dir`'s subfolders named `classes`, each with its class index (class
/// by class, sorted by name within a class; a missing folder has none), and the count of
/// other files, left alone.
pub fn class_files(dir: &Path, classes: &[String]) -> Result<(Vec<(PathBuf, usize)>, usize)> {
    let mut files = Vec::new();
    let mut ignored = 0;
    for (label, class) in classes.iter().enumerate() {
        let folder = dir.join(class);
        if !folder.is_dir() {
            continue;
        }
        let mut in_class = Vec::new();
        for entry in std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, e))? {
            let path = entry.map_err(|e| Error::io(&folder, e))?.path();
            if path.is_file() && is_image_file(&path) {
                in_class.push(path);
            } else if path.is_file() {
                ignored += 1;
            }
        }
        in_class.sort();
        files.extend(in_class.into_iter().map(|p| (p, label)));
    }
    Ok((files, ignored))
}

/// Reads every image of `dir`'s class subfolders. With `classes`, those subfolders in that
/// order (a test folder must use its training folder's classes); otherwise every subfolder,
/// sorted by name.
pub fn read_image_folder(
    dir: &Path,
    height: usize,
    width: usize,
    color: ColorMode,
    classes: Option<&[String]>,
) -> Result<ImageSet> {
    let found = class_folders(dir, "images")?;
    let classes: Vec<String> = match classes {
        Some(given) => {
            if let Some(extra) = found.iter().find(|c| !given.contains(c)) {
                return Err(Error::data(
                    dir,
                    format!(
                        "class folder '{extra}' is not one of the model's classes ({})",
                        given.join(", ")
                    ),
                ));
            }
            given.to_vec()
        }
        None => found,
    };
    let (files, ignored) = class_files(dir, &classes)?;
    let decoded: Vec<Result<Tensor>> = files
        .par_iter()
        .map(|(path, _)| load_image_file(path, height, width, color))
        .collect();
    let per_image = height * width * color.channels();
    let mut data = Vec::with_capacity(files.len() * per_image);
    let (mut labels, mut kept, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for ((path, label), image) in files.into_iter().zip(decoded) {
        match image {
            Ok(t) => {
                data.extend_from_slice(t.data());
                labels.push(label);
                kept.push(path);
            }
            Err(e) => {
                let reason = match e {
                    Error::Data { message, .. } => message,
                    Error::Io { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                skipped.push((path, reason));
            }
        }
    }
    if kept.is_empty() {
        return Err(Error::data(
            dir,
            format!(
                "no readable .png/.jpg/.jpeg images in its class folders ({} unreadable)",
                skipped.len()
            ),
        ));
    }
    Ok(ImageSet {
        images: Tensor::new(&[kept.len(), height, width, color.channels()], data)?,
        labels,
        classes,
        files: kept,
        skipped,
        ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_classes_resizes_and_reports_bad_files() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        for class in ["cat", "ant"] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
        }
        // A red 4x2 PNG and a 2x2 gray JPEG; a corrupt PNG; a text file.
        let red = image::RgbImage::from_pixel(4, 2, image::Rgb([200, 10, 10]));
        red.save(dir.join("cat/red.png")).unwrap();
        let gray = image::GrayImage::from_pixel(2, 2, image::Luma([100]));
        gray.save(dir.join("ant/gray.JPG")).unwrap();
        std::fs::write(dir.join("ant/broken.png"), b"\x89PNG not really").unwrap();
        std::fs::write(dir.join("ant/notes.txt"), b"hello").unwrap();

        let set = read_image_folder(dir, 3, 3, ColorMode::Rgb, None).unwrap();
        assert_eq!(set.classes, ["ant", "cat"]);
        assert_eq!(set.labels, [0, 1]);
        assert_eq!(set.images.shape(), &[2, 3, 3, 3]);
        // Resizing a flat colour keeps it (JPEG may shift a gray level slightly).
        let ant = &set.images.data()[..27];
        assert!(ant.iter().all(|&v| (v - 100.0).abs() <= 2.0), "{ant:?}");
        assert_eq!(&set.images.data()[27..30], &[200.0, 10.0, 10.0]);
        assert_eq!(set.skipped.len(), 1);
        assert!(set.skipped[0].0.ends_with("ant/broken.png"));
        assert!(set.skipped[0].1.contains("decode"), "{}", set.skipped[0].1);
        assert_eq!(set.ignored, 1);

        let gray = read_image_folder(dir, 2, 4, ColorMode::Grayscale, None).unwrap();
        assert_eq!(gray.images.shape(), &[2, 2, 4, 1]);

        // A test folder must use the training classes.
        let err = read_image_folder(dir, 3, 3, ColorMode::Rgb, Some(&["cat".into()]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("'ant'"), "{err}");
    }

    #[test]
    fn empty_and_missing_folders_are_errors() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let err = read_image_folder(dir, 2, 2, ColorMode::Rgb, None).unwrap_err();
        assert!(err.to_string().contains("no class subfolders"), "{err}");
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/x.png"), b"junk").unwrap();
        let err = read_image_folder(dir, 2, 2, ColorMode::Rgb, None).unwrap_err();
        assert!(err.to_string().contains("no readable"), "{err}");
        assert!(read_image_folder(&dir.join("missing"), 2, 2, ColorMode::Rgb, None).is_err());
    }
}
