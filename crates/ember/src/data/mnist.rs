//! The MNIST layout: a folder with the four standard IDX files, plain or gzip-compressed.

use std::path::{Path, PathBuf};

use super::idx::read_idx;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// MNIST as tensors: images (n, 28, 28) with raw pixel values 0–255, labels (n,) as class indices.
#[derive(Clone, Debug)]
pub struct Mnist {
    pub train_images: Tensor,
    pub train_labels: Tensor,
    pub test_images: Tensor,
    pub test_labels: Tensor,
}

impl Mnist {
    /// Loads the four files from `dir` (each as `NAME` or `NAME.gz`).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::data(
                dir,
                "not a directory (expected a folder with the four MNIST IDX files)",
            ));
        }
        let (train_images, train_labels) = load_pair(dir, TRAIN_IMAGES, TRAIN_LABELS)?;
        let (test_images, test_labels) = load_pair(dir, TEST_IMAGES, TEST_LABELS)?;
        Ok(Mnist {
            train_images,
            train_labels,
            test_images,
            test_labels,
        })
    }

    /// The training and test label files [`Mnist::load`] reads in `dir`.
    pub fn label_files(dir: &Path) -> Result<[PathBuf; 2]> {
        Ok([find(dir, TRAIN_LABELS)?, find(dir, TEST_LABELS)?])
    }
}

/// The four files of an IDX image set under any names: training images and labels, test
/// images and labels.
#[derive(Clone, Copy, Debug)]
pub struct IdxFiles<'a> {
    pub train_images: &'a Path,
    pub train_labels: &'a Path,
    pub test_images: &'a Path,
    pub test_labels: &'a Path,
}

impl Mnist {
    /// Loads any IDX image set from its four files (plain or gzip, by content), checking
    /// that images and labels agree.
    pub fn load_files(files: IdxFiles) -> Result<Self> {
        let (train_images, train_labels) = load_paths(files.train_images, files.train_labels)?;
        let (test_images, test_labels) = load_paths(files.test_images, files.test_labels)?;
        if train_images.shape()[1..] != test_images.shape()[1..] {
            return Err(Error::data(
                files.test_images,
                format!(
                    "test images are {:?}, training images {:?}",
                    &test_images.shape()[1..],
                    &train_images.shape()[1..]
                ),
            ));
        }
        Ok(Mnist {
            train_images,
            train_labels,
            test_images,
            test_labels,
        })
    }
}

fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{name}.gz"));
    let plain = dir.join(name);
    if plain.is_file() {
        Ok(plain)
    } else if gz.is_file() {
        Ok(gz)
    } else {
        Err(Error::data(dir, format!("missing {name} (or {name}.gz)")))
    }
}

/// Loads images and labels and checks that they agree: one label per image, labels integral.
fn load_pair(dir: &Path, images: &str, labels: &str) -> Result<(Tensor, Tensor)> {
    load_paths(&find(dir, images)?, &find(dir, labels)?)
}

fn load_paths(images_path: &Path, labels_path: &Path) -> Result<(Tensor, Tensor)> {
    let images = read_idx(images_path)?;
    let labels = read_idx(labels_path)?;
    if labels.shape().len() != 1 {
        return Err(Error::data(
            labels_path,
            format!(
                "labels must be one-dimensional, got dimensions {:?}",
                labels.shape()
            ),
        ));
    }
    if images.shape().len() < 2 {
        return Err(Error::data(
            images_path,
            format!(
                "images need at least two dimensions, got {:?}",
                images.shape()
            ),
        ));
    }
    if images.rows() != labels.len() {
        return Err(Error::data(
            images_path,
            format!(
                "{} images but {} has {} labels",
                images.rows(),
                labels_path.display(),
                labels.len()
            ),
        ));
    }
    Ok((images, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::encode_u8;

    #[test]
    fn count_mismatch_and_missing_files_are_reported() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
        write(TRAIN_IMAGES, encode_u8(&[3, 2, 2], &[0; 12]));
        write(TRAIN_LABELS, encode_u8(&[2], &[1, 2]));
        write(TEST_IMAGES, encode_u8(&[1, 2, 2], &[0; 4]));
        let m = Mnist::load(dir).unwrap_err().to_string();
        assert!(m.contains("3 images but") && m.contains("2 labels"), "{m}");
        write(TRAIN_LABELS, encode_u8(&[3], &[1, 2, 3]));
        let m = Mnist::load(dir).unwrap_err().to_string();
        assert!(m.contains("missing t10k-labels-idx1-ubyte"), "{m}");
        write(TEST_LABELS, encode_u8(&[1], &[7]));
        let mnist = Mnist::load(dir).unwrap();
        assert_eq!(mnist.train_images.shape(), &[3, 2, 2]);
        assert_eq!(mnist.test_labels.data(), &[7.]);
        std::fs::remove_dir_all(dir).unwrap();
        assert!(Mnist::load(dir)
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
    }
}
