//! A model file's `[data]` section and the data set it names: MNIST or any IDX files, or a
//! folder of images, read, split and prepared (scaled, reshaped, labels one-hot).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::image_folder::{image_from_bytes, read_image_folder, ColorMode};
use crate::data::{to_categorical, IdxFiles, Mnist};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// `[data]`: where the training and test data come from and how they are prepared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub format: DataFormat,
    /// Folder of the data, relative to the model file.
    pub dir: PathBuf,
    /// Inputs are divided by this (255 turns bytes into [0, 1]).
    #[serde(default = "one")]
    pub scale: f32,
    /// Flatten each sample to one axis (28×28 images → 784 features).
    #[serde(default)]
    pub flatten: bool,
    /// Give each sample this shape instead, e.g. [28, 28, 1] for a convolutional network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reshape: Option<Vec<usize>>,
    /// One-hot encode the labels (for categorical_crossentropy); otherwise class indices.
    #[serde(default)]
    pub one_hot: bool,
    /// image_folder: the (height, width) every image is resized to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<[usize; 2]>,
    /// image_folder: "grayscale" (1 channel) or "rgb" (3, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_mode: Option<ColorMode>,
    /// image_folder: the fraction of each class held out for the test (default 0.2), when
    /// the folder has no train/ and test/ subfolders of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_split: Option<f32>,
    /// idx: the four files, relative to `dir` (any names; plain or gzip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<IdxPaths>,
    /// image_folder: the class names in label order; recorded when a model is trained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// The smallest and largest prepared input value of the training data; recorded when a
    /// model is trained, so that prediction can refuse inputs far outside it (see
    /// [`DataSpec::check_input_range`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_range: Option<[f32; 2]>,
}

/// The four files of an `idx` data section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdxPaths {
    pub train_images: PathBuf,
    pub train_labels: PathBuf,
    pub test_images: PathBuf,
    pub test_labels: PathBuf,
}

fn one() -> f32 {
    1.0
}

/// Data formats a model file can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// A folder with the four MNIST-named IDX files, plain or gzip.
    Mnist,
    /// Any IDX image set: the four files named in `files`, relative to `dir`.
    Idx,
    /// A folder with one subfolder of PNG / JPEG images per class; either split into
    /// train/ and test/ folders of that form, or split here (`test_split`).
    ImageFolder,
}

/// Training and test data, prepared as the data section asks.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub x_train: Tensor,
    pub y_train: Tensor,
    pub x_test: Tensor,
    pub y_test: Tensor,
    /// Class names in label order (image folders; empty for MNIST, whose classes are digits).
    pub classes: Vec<String>,
    /// Images that could not be read and were left out, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// (height, width) of 2-D image samples, for recording in a saved model.
    pub image_size: Option<[usize; 2]>,
    /// The IDX files the training and test labels were read from (None for an image
    /// folder, whose labels are its class folders).
    pub label_files: Option<[PathBuf; 2]>,
}

impl Dataset {
    /// Refuses a label outside the `classes` a model tells apart (0 to `classes` − 1),
    /// naming its file, its sample and its value. One stray label would otherwise widen the
    /// one-hot targets of both sets, and be reported as a shape mismatch of whichever set
    /// is checked first. An image folder's labels are checked with the model's shape.
    pub fn check_labels(&self, classes: usize) -> Result<()> {
        let Some(files) = &self.label_files else {
            return Ok(());
        };
        for (y, file) in [&self.y_train, &self.y_test].into_iter().zip(files) {
            // One-hot rows (n, k) hold their label as the position of the 1.
            let labels: Vec<f32> = match y.shape() {
                [_, _] => y.argmax_rows().into_iter().map(|l| l as f32).collect(),
                _ => y.data().to_vec(),
            };
            let outside = |v: f32| !(v >= 0.0 && v.fract() == 0.0 && (v as usize) < classes);
            let Some(sample) = labels.iter().position(|&v| outside(v)) else {
                continue;
            };
            let others = labels.iter().filter(|&&v| outside(v)).count() - 1;
            let more = match others {
                0 => String::new(),
                n => format!(
                    "; {n} other samples' labels are outside them too: give the last layer as \
                     many units as there are classes"
                ),
            };
            return Err(Error::data(
                file,
                format!(
                    "sample {sample} has label {}, outside the model's {classes} classes \
                     (0 to {}){more}",
                    labels[sample],
                    classes.saturating_sub(1)
                ),
            ));
        }
        Ok(())
    }
}

/// An image folder's train/ and test/ subfolders, when it has both: then they are its
/// training and test images, each a folder of class subfolders.
pub fn split_folders(dir: &Path) -> Option<[PathBuf; 2]> {
    let (train, test) = (dir.join("train"), dir.join("test"));
    (train.is_dir() && test.is_dir()).then_some([train, test])
}

impl DataSpec {
    /// Loads and prepares the data; a relative `dir` is taken from `base` (the model file's folder).
    pub fn load(&self, base: &Path) -> Result<Dataset> {
        self.load_from(&base.join(&self.dir))
    }

    /// Loads and prepares the data from `dir`, ignoring the file's `dir`.
    pub fn load_from(&self, dir: &Path) -> Result<Dataset> {
        match self.format {
            DataFormat::Mnist => {
                let mnist = Mnist::load(dir)?;
                // One width for both sets, whatever labels each happens to contain.
                let classes = mnist
                    .train_labels
                    .data()
                    .iter()
                    .chain(mnist.test_labels.data())
                    .fold(0.0f32, |m, &v| m.max(v)) as usize
                    + 1;
                Ok(Dataset {
                    x_train: self.prepare_inputs(mnist.train_images)?,
                    y_train: self.prepare_labels(&mnist.train_labels, classes)?,
                    x_test: self.prepare_inputs(mnist.test_images)?,
                    y_test: self.prepare_labels(&mnist.test_labels, classes)?,
                    classes: Vec::new(),
                    skipped: Vec::new(),
                    image_size: Some([28, 28]),
                    label_files: Some(Mnist::label_files(dir)?),
                })
            }
            DataFormat::ImageFolder => self.load_image_folder(dir),
            DataFormat::Idx => {
                let files = self.files.as_ref().ok_or_else(|| {
                    Error::invalid(
                        "an idx data section needs files = { train_images, train_labels, test_images, test_labels }",
                    )
                })?;
                let label_files = [dir.join(&files.train_labels), dir.join(&files.test_labels)];
                let set = Mnist::load_files(IdxFiles {
                    train_images: &dir.join(&files.train_images),
                    train_labels: &label_files[0],
                    test_images: &dir.join(&files.test_images),
                    test_labels: &label_files[1],
                })?;
                let classes = set
                    .train_labels
                    .data()
                    .iter()
                    .chain(set.test_labels.data())
                    .fold(0.0f32, |m, &v| m.max(v)) as usize
                    + 1;
                let image_size = match set.train_images.shape() {
                    &[_, h, w] => Some([h, w]),
                    _ => None,
                };
                Ok(Dataset {
                    image_size,
                    x_train: self.prepare_inputs(set.train_images)?,
                    y_train: self.prepare_labels(&set.train_labels, classes)?,
                    x_test: self.prepare_inputs(set.test_images)?,
                    y_test: self.prepare_labels(&set.test_labels, classes)?,
                    classes: Vec::new(),
                    skipped: Vec::new(),
                    label_files: Some(label_files),
                })
            }
        }
    }

    /// The (height, width, color) of an image-folder data section, or an error naming the
    /// missing field.
    fn image_geometry(&self) -> Result<(usize, usize, ColorMode)> {
        let [height, width] = self.image_size.ok_or_else(|| {
            Error::invalid("an image_folder data section needs image_size = [height, width]")
        })?;
        if height == 0 || width == 0 {
            return Err(Error::invalid(format!(
                "image_size must be positive, got [{height}, {width}]"
            )));
        }
        Ok((height, width, self.color_mode.unwrap_or_default()))
    }

    /// Reads an image folder: its train/ and test/ subfolders when it has both (the
    /// training images shuffled, seed 0, as Keras's `image_dataset_from_directory` does, so
    /// that a validation split of the last ones holds every class), otherwise every class
    /// folder, split per class (stratified, seed 0, so every training run of the folder
    /// tests on the same images).
    fn load_image_folder(&self, dir: &Path) -> Result<Dataset> {
        let (height, width, color) = self.image_geometry()?;
        let known = (!self.classes.is_empty()).then_some(self.classes.as_slice());
        let labels_tensor = |labels: &[usize]| {
            Tensor::new(&[labels.len()], labels.iter().map(|&l| l as f32).collect())
        };
        let (train, test, classes, skipped) = if let Some([train_dir, test_dir]) =
            split_folders(dir)
        {
            let train = read_image_folder(&train_dir, height, width, color, known)?;
            let test = read_image_folder(&test_dir, height, width, color, Some(&train.classes))?;
            let mut order: Vec<usize> = (0..train.labels.len()).collect();
            crate::tensor::random::Rng::seed(0).shuffle(&mut order);
            let labels: Vec<usize> = order.iter().map(|&r| train.labels[r]).collect();
            let skipped = [train.skipped, test.skipped].concat();
            (
                (train.images.gather_rows(&order)?, labels_tensor(&labels)?),
                (test.images, labels_tensor(&test.labels)?),
                train.classes,
                skipped,
            )
        } else {
            let all = read_image_folder(dir, height, width, color, known)?;
            let fraction = self.test_split.unwrap_or(0.2);
            let (train_rows, test_rows) = crate::data::split::train_test_split(
                all.labels.len(),
                Some(&all.labels),
                fraction,
                0,
            )
            .map_err(|e| Error::data(dir, format!("cannot hold out a test set: {}", e.detail())))?;
            let pick = |rows: &[usize]| -> Result<(Tensor, Tensor)> {
                let labels: Vec<usize> = rows.iter().map(|&r| all.labels[r]).collect();
                Ok((all.images.gather_rows(rows)?, labels_tensor(&labels)?))
            };
            (
                pick(&train_rows)?,
                pick(&test_rows)?,
                all.classes,
                all.skipped,
            )
        };
        let n_classes = classes.len();
        Ok(Dataset {
            x_train: self.prepare_inputs(train.0)?,
            y_train: self.prepare_labels(&train.1, n_classes)?,
            x_test: self.prepare_inputs(test.0)?,
            y_test: self.prepare_labels(&test.1, n_classes)?,
            classes,
            skipped,
            image_size: Some([height, width]),
            label_files: None,
        })
    }

    /// Records what prediction needs to read new inputs as `data` was read from `dir`: its
    /// class names, its image size, and the folder, absolutely, so that a saved model can be
    /// evaluated and resumed from anywhere.
    pub fn record_read(&mut self, data: &Dataset, dir: &Path) {
        if !data.classes.is_empty() {
            self.classes = data.classes.clone();
        }
        if self.image_size.is_none() && self.format != DataFormat::Mnist {
            self.image_size = data.image_size;
        }
        self.dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    }

    /// Records the range of the prepared training inputs `x` (see [`DataSpec::input_range`]).
    pub fn record_input_range(&mut self, x: &Tensor) {
        self.input_range = crate::tensor::reduce::min_max(x.data()).map(|(lo, hi)| [lo, hi]);
    }

    /// Refuses prepared inputs `x` (read from `path`) with a value further outside the
    /// training inputs' range than that range is wide: a network meeting values it never saw
    /// the like of (an IDX of 3e38 floats for a model trained on pixels) answers with
    /// confidence and means nothing. Values a little outside (a brighter photo) pass. The
    /// error gives values in the file's own units (before the scale the model divides by).
    pub fn check_input_range(&self, x: &Tensor, path: &Path) -> Result<()> {
        self.check_range(x, path, self.scale)
    }

    /// [`DataSpec::check_input_range`] for inputs given already prepared (a server's tensor
    /// requests), the error in the network's units.
    pub fn check_prepared_range(&self, x: &Tensor, path: &Path) -> Result<()> {
        self.check_range(x, path, 1.0)
    }

    fn check_range(&self, x: &Tensor, path: &Path, units: f32) -> Result<()> {
        let Some([lo, hi]) = self.input_range else {
            return Ok(());
        };
        let margin = (hi - lo).max(f32::MIN_POSITIVE);
        let row_len = x.row_len().max(1);
        let Some(i) = x
            .data()
            .iter()
            .position(|&v| !(v >= lo - margin && v <= hi + margin))
        else {
            return Ok(());
        };
        let shown = |v: f32| {
            let v = v * units;
            match v.abs() {
                a if a != 0.0 && !(1e-4..1e6).contains(&a) => format!("{v:e}"),
                _ => format!("{v}"),
            }
        };
        Err(Error::data(
            path,
            format!(
                "sample {} holds {} at position {}, far outside the values the model was \
                 trained on ({} to {}): refusing to answer for it",
                i / row_len,
                shown(x.data()[i]),
                i % row_len,
                shown(lo),
                shown(hi)
            ),
        ))
    }

    /// Reads one input image the way this data section reads its training images.
    pub fn load_image(&self, path: &Path) -> Result<Tensor> {
        let bytes = crate::read::file(path, crate::read::Limit::IMAGE)?;
        self.load_image_bytes(&bytes, path)
    }

    /// [`DataSpec::load_image`] on an image's bytes; `path` names it in errors.
    pub fn load_image_bytes(&self, bytes: &[u8], path: &Path) -> Result<Tensor> {
        match self.format {
            DataFormat::Mnist => crate::data::image::load_image_bytes(bytes, path, 28, 28),
            DataFormat::Idx => {
                let [h, w] = self.image_size.ok_or_else(|| {
                    Error::invalid("this model's data section does not record its image size")
                })?;
                crate::data::image::load_image_bytes(bytes, path, h, w)
            }
            DataFormat::ImageFolder => {
                let (height, width, color) = self.image_geometry()?;
                image_from_bytes(bytes, path, height, width, color)
            }
        }
    }

    /// The shape of one raw sample, before flattening (28×28 for MNIST).
    pub fn sample_shape(&self) -> Vec<usize> {
        match self.format {
            DataFormat::Mnist => vec![28, 28],
            DataFormat::Idx => self.image_size.map_or_else(Vec::new, |s| s.to_vec()),
            DataFormat::ImageFolder => match self.image_geometry() {
                Ok((h, w, color)) => vec![h, w, color.channels()],
                Err(_) => Vec::new(),
            },
        }
    }

    /// Applies the preprocessing (scaling, flattening) to raw samples (n, …).
    pub fn prepare_inputs(&self, mut x: Tensor) -> Result<Tensor> {
        if self.scale != 1.0 {
            x.scale_in_place(1.0 / self.scale);
        }
        if self.flatten {
            let (rows, row_len) = (x.rows(), x.row_len());
            x = x.reshape(&[rows, row_len])?;
        }
        if let Some(sample) = &self.reshape {
            let mut shape = vec![x.rows()];
            shape.extend_from_slice(sample);
            x = x.reshape(&shape)?;
        }
        Ok(x)
    }

    fn prepare_labels(&self, y: &Tensor, classes: usize) -> Result<Tensor> {
        if self.one_hot {
            to_categorical(y, Some(classes))
        } else {
            Ok(y.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_train_folder_is_shuffled_so_its_last_images_are_not_one_class() {
        let scratch = tempfile::tempdir().unwrap();
        for (split, per_class) in [("train", 8), ("test", 2)] {
            for (class, level) in [("dark", 20u8), ("light", 220)] {
                let folder = scratch.path().join(split).join(class);
                std::fs::create_dir_all(&folder).unwrap();
                for i in 0..per_class {
                    let image = image::GrayImage::from_pixel(4, 4, image::Luma([level]));
                    image.save(folder.join(format!("{i}.png"))).unwrap();
                }
            }
        }
        let spec: DataSpec = toml::from_str(
            "format = \"image_folder\"\ndir = \".\"\nimage_size = [4, 4]\ncolor_mode = \"grayscale\"",
        )
        .unwrap();
        let data = spec.load_from(scratch.path()).unwrap();
        assert_eq!(data.classes, ["dark", "light"]);
        let labels = data.y_train.data();
        assert_eq!(labels.iter().filter(|&&l| l == 1.0).count(), 8);
        // The last quarter (a validation split of 0.25) holds both classes.
        let last = &labels[12..];
        assert!(last.contains(&0.0) && last.contains(&1.0), "{labels:?}");
        // Each image keeps its label: dark images are class 0.
        for (row, &label) in data.x_train.data().chunks(16).zip(labels) {
            assert_eq!(row[0] > 127.0, label == 1.0);
        }
        // The test images stay in class order.
        assert_eq!(data.y_test.data(), &[0.0, 0.0, 1.0, 1.0]);
    }
}
