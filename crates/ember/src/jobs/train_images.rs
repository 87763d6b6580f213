//! Training on a folder of images without a model file (`ember train --image-dir DIR`): the
//! folder is surveyed (classes, image size, colour), a small convnet is written for it as
//! the model file a user could have written, and that file is trained as any other — so the
//! saved model, `summary`, `evaluate`, `predict`, `serve` and `explain` treat it alike.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::checks;
use super::outputs::OutputFiles;
use super::train_file::{train_file, Start, TrainFileEvent, TrainFileOptions, TrainedFile};
use crate::data::image_folder::ColorMode;
use crate::data::image_survey::{survey_image_folder, ImageFolderSurvey};
use crate::error::{Error, Result};
use crate::model::Verbosity;
use crate::spec::ModelSpec;

/// The longest side images are given: larger ones are scaled down to it (aspect kept), so
/// that photos train in minutes on a CPU.
pub const MAX_SIDE: usize = 64;
/// The shortest side the convnet takes: two 3×3 convolutions and two 2×2 poolings leave a
/// 10-pixel side one pixel wide; smaller images are enlarged to it.
pub const MIN_SIDE: usize = 10;

/// Settings of the generated model file; `None` leaves its default (noted at each field).
#[derive(Clone, Debug, Default)]
pub struct ImageFolderSettings {
    /// Most epochs (default 30; early stopping on val_loss usually ends sooner).
    pub epochs: Option<usize>,
    /// Default 32.
    pub batch_size: Option<usize>,
    /// Weight initialisation and shuffling (default 1).
    pub seed: Option<u64>,
    /// The last training images held out for validation (default 0.2; 0: no early stopping).
    pub validation_split: Option<f32>,
    /// Adam's learning rate (default Keras's, 0.001).
    pub learning_rate: Option<f32>,
    /// The share of each class held out for the test (default 0.2); a folder with train/ and
    /// test/ subfolders has its own test set, and refuses it.
    pub test_size: Option<f32>,
}

/// The model file written for an image folder.
#[derive(Clone, Debug)]
pub struct ImageModelFile {
    /// What the folder holds.
    pub survey: ImageFolderSurvey,
    /// The (height, width) every image is resized to.
    pub image_size: [usize; 2],
    pub color_mode: ColorMode,
    /// The model file's text, what the data says about the model in comments at its top.
    pub text: String,
    /// The same, parsed.
    pub spec: ModelSpec,
}

impl ImageModelFile {
    /// What was read from the folder and made of it, a line each (`dir` as the user gave it).
    pub fn description(&self, dir: &Path) -> String {
        describe(dir, &self.survey, self.image_size, self.color_mode)
            + &format!(
                "model: Conv2D 32 → MaxPooling2D → Conv2D 64 → MaxPooling2D → Flatten → \
                 Dropout 0.5 → Dense {} softmax, Adam (--print-model-file prints its model file)\n",
                self.survey.classes.len()
            )
    }
}

/// What was read from the folder: its classes and counts, and the images' size and colour.
fn describe(
    dir: &Path,
    survey: &ImageFolderSurvey,
    image_size: [usize; 2],
    color_mode: ColorMode,
) -> String {
    let counts: Vec<String> = survey
        .classes
        .iter()
        .zip(&survey.counts)
        .map(|(class, n)| format!("{class} {n}"))
        .collect();
    let mut out = format!(
        "{}: {} images in {} classes ({}){}{}\n",
        dir.display(),
        survey.images(),
        survey.classes.len(),
        counts.join(", "),
        match survey.split {
            Some(_) => "; its train/ and test/ folders are the training and test images",
            None => "",
        },
        match survey.unreadable {
            0 => String::new(),
            n => format!("; {n} unreadable file(s) left out"),
        },
    );
    let [height, width] = image_size;
    let [most_h, most_w] = survey.sizes[0].0;
    let (most, images) = (survey.sizes[0].1, survey.images());
    let fit = format!("scaled to fit {MIN_SIDE} to {MAX_SIDE} pixels a side");
    let size = match (survey.sizes.len(), image_size == [most_h, most_w]) {
        (1, true) => "every image's size".to_string(),
        (1, false) => format!("every image is {most_h}×{most_w}, {fit}"),
        (n, true) => format!(
            "the most common of {n} sizes ({most} of {images} images); the others are resized \
             to it"
        ),
        (n, false) => format!(
            "the most common of {n} sizes is {most_h}×{most_w} ({most} of {images} images), \
             {fit}; every image is resized to it"
        ),
    };
    let colour = match (color_mode, survey.in_colour) {
        (ColorMode::Grayscale, _) => "every image is stored in gray levels".to_string(),
        (ColorMode::Rgb, n) if n == images => "every image is in colour".into(),
        (ColorMode::Rgb, n) => format!("{n} of {images} images are in colour"),
    };
    let _ = writeln!(out, "image size {height}×{width}: {size}");
    let _ = writeln!(out, "color mode {}: {colour}", color_name(color_mode));
    out
}

/// The model file's name for a colour mode.
fn color_name(color: ColorMode) -> &'static str {
    match color {
        ColorMode::Grayscale => "grayscale",
        ColorMode::Rgb => "rgb",
    }
}

/// The size a folder's images are given: the most common size, scaled down (aspect kept)
/// so that neither side exceeds [`MAX_SIDE`], and no side below [`MIN_SIDE`].
pub fn model_image_size(survey: &ImageFolderSurvey) -> [usize; 2] {
    let [height, width] = survey.sizes[0].0;
    let longest = height.max(width);
    let scale = match longest > MAX_SIDE {
        true => MAX_SIDE as f64 / longest as f64,
        false => 1.0,
    };
    let side = |s: usize| ((s as f64 * scale).round() as usize).clamp(MIN_SIDE, MAX_SIDE);
    [side(height), side(width)]
}

/// Surveys the image folder `dir` and writes the model file for it, with `settings`; the
/// settings are checked (and named as the command line's flags) before the folder is read.
pub fn image_model_file(dir: &Path, settings: &ImageFolderSettings) -> Result<ImageModelFile> {
    if let Some(epochs) = settings.epochs {
        crate::model::check_epochs(epochs)?;
    }
    if settings.batch_size == Some(0) {
        return Err(Error::invalid("--batch-size must be at least 1"));
    }
    checks::learning_rate(settings.learning_rate)?;
    checks::validation_split(settings.validation_split)?;
    if let Some(size) = settings.test_size {
        checks::test_size(size)?;
    }
    let survey = survey_image_folder(dir)?;
    if survey.split.is_some() && settings.test_size.is_some() {
        return Err(Error::data(
            dir,
            "--test-size does nothing here: the folder's train/ and test/ subfolders are its \
             training and test images",
        ));
    }
    if let [only] = survey.classes.as_slice() {
        return Err(Error::data(
            dir,
            format!("one class folder ('{only}'): a classifier needs two or more"),
        ));
    }
    let absolute = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    let dir_text = absolute.to_str().ok_or_else(|| {
        Error::data(
            dir,
            "a model file names its folder in UTF-8: rename the folder",
        )
    })?;
    let image_size = model_image_size(&survey);
    let color_mode = match survey.in_colour {
        0 => ColorMode::Grayscale,
        _ => ColorMode::Rgb,
    };
    let description = describe(&absolute, &survey, image_size, color_mode);
    let header = "# A convnet for an image folder, written by `ember train --image-dir`:\n"
        .to_string()
        + &description
            .lines()
            .map(|l| format!("#   {l}\n"))
            .collect::<String>();
    let text = header + &model_file_text(dir_text, &survey, image_size, color_mode, settings);
    let spec = ModelSpec::parse(&text, dir)?;
    Ok(ImageModelFile {
        survey,
        image_size,
        color_mode,
        text,
        spec,
    })
}

/// The model file for the surveyed folder at `dir` (absolute): the Keras "simple MNIST
/// convnet" with as many outputs as classes, Adam, early stopping on val_loss.
fn model_file_text(
    dir: &str,
    survey: &ImageFolderSurvey,
    [height, width]: [usize; 2],
    color_mode: ColorMode,
    settings: &ImageFolderSettings,
) -> String {
    let channels = color_mode.channels();
    let classes = survey.classes.len();
    let optimizer = match settings.learning_rate {
        Some(rate) => format!("{{ type = \"adam\", learning_rate = {rate:?} }}"),
        None => "{ type = \"adam\" }".into(),
    };
    let validation_split = settings.validation_split.unwrap_or(0.2);
    let early_stopping = match validation_split > 0.0 {
        true => "[[callbacks]]\ntype = \"early_stopping\"\nmonitor = \"val_loss\"\npatience = 5\n\
                 restore_best_weights = true\n"
            .to_string(),
        false => "# No early stopping: without a validation split there is no val_loss to watch.\n"
            .to_string(),
    };
    let test_split = match survey.split {
        Some(_) => String::new(),
        None => format!(
            "{:<29} # of each class, held out for the test\n",
            format!("test_split = {:?}", settings.test_size.unwrap_or(0.2))
        ),
    };
    format!(
        r#"
[model]
input_shape = [{height}, {width}, {channels}]    # height, width, channels

[[layers]]
type = "conv2d"
filters = 32
kernel_size = [3, 3]
activation = "relu"

[[layers]]
type = "max_pooling2d"
pool_size = [2, 2]

[[layers]]
type = "conv2d"
filters = 64
kernel_size = [3, 3]
activation = "relu"

[[layers]]
type = "max_pooling2d"
pool_size = [2, 2]

[[layers]]
type = "flatten"

[[layers]]
type = "dropout"
rate = 0.5

[[layers]]
type = "dense"
units = {classes}
activation = "softmax"

[compile]
optimizer = {optimizer}
loss = "categorical_crossentropy"
metrics = ["accuracy"]

[fit]
epochs = {epochs}
batch_size = {batch_size}
validation_split = {validation_split:?}
seed = {seed}

{early_stopping}
[data]
format = "image_folder"
dir = {dir}
image_size = [{height}, {width}]
color_mode = "{color}"
{test_split}scale = 255.0                 # pixels 0-255 become 0-1 (Keras's Rescaling(1/255))
one_hot = true
"#,
        epochs = settings.epochs.unwrap_or(30),
        batch_size = settings.batch_size.unwrap_or(32),
        seed = settings.seed.unwrap_or(1),
        dir = toml::Value::String(dir.to_string()),
        color = color_name(color_mode),
    )
}

/// Training on an image folder: the folder, the settings of its model file, and the run's.
pub struct TrainImagesOptions {
    pub dir: PathBuf,
    pub settings: ImageFolderSettings,
    /// The per-epoch output (default: the fit options' default).
    pub verbose: Option<Verbosity>,
    pub outputs: OutputFiles,
}

/// What [`train_image_folder`] reports as it goes.
pub enum TrainImagesEvent<'a> {
    /// The folder was surveyed and its model file written; training starts.
    Surveyed(&'a ImageModelFile),
    /// A step of training that model file.
    Training(TrainFileEvent<'a>),
}

impl TrainImagesEvent<'_> {
    /// The event as the command line says it; `dir` is the folder as given. Skipped images
    /// are a warning (for stderr), the rest is for stdout.
    pub fn text(&self, dir: &Path) -> String {
        match self {
            TrainImagesEvent::Surveyed(made) => made.description(dir),
            TrainImagesEvent::Training(event) => event.text(dir),
        }
    }
}

/// The trained model file, with the folder's class names.
pub struct TrainedImages {
    pub trained: TrainedFile,
    pub classes: Vec<String>,
}

/// Surveys the folder, writes its model file and trains it as `ember train FILE` would;
/// `on_event` hears of each step. The outputs and settings are checked before any image is
/// read.
pub fn train_image_folder(
    job: TrainImagesOptions,
    mut on_event: impl FnMut(TrainImagesEvent),
) -> Result<TrainedImages> {
    job.outputs.check(&[&job.dir], None)?;
    let made = image_model_file(&job.dir, &job.settings)?;
    on_event(TrainImagesEvent::Surveyed(&made));
    let trained = train_file(
        TrainFileOptions {
            start: Start::File {
                spec: Box::new(made.spec.clone()),
                path: job.dir.clone(),
            },
            data: None,
            epochs: None,
            batch_size: None,
            seed: None,
            validation_split: None,
            optimizer: None,
            metrics: None,
            learning_rate: None,
            verbose: job.verbose,
            outputs: job.outputs,
        },
        |event| on_event(TrainImagesEvent::Training(event)),
    )?;
    Ok(TrainedImages {
        trained,
        classes: made.survey.classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey(sizes: &[([usize; 2], usize)], in_colour: usize) -> ImageFolderSurvey {
        ImageFolderSurvey {
            classes: vec!["a".into(), "b".into()],
            counts: vec![sizes.iter().map(|s| s.1).sum::<usize>(), 0],
            sizes: sizes.to_vec(),
            in_colour,
            unreadable: 0,
            split: None,
        }
    }

    #[test]
    fn images_keep_their_common_size_within_the_convnets_bounds() {
        assert_eq!(model_image_size(&survey(&[([28, 28], 5)], 0)), [28, 28]);
        // The most common size wins; photos are scaled down, aspect kept.
        let photos = survey(&[([480, 640], 9), ([28, 28], 1)], 9);
        assert_eq!(model_image_size(&photos), [48, 64]);
        // A long thin strip keeps at least MIN_SIDE; tiny icons are enlarged.
        assert_eq!(model_image_size(&survey(&[([5, 1000], 1)], 0)), [10, 64]);
        assert_eq!(model_image_size(&survey(&[([8, 8], 1)], 0)), [10, 10]);
    }

    #[test]
    fn the_model_file_fits_the_folder_and_parses_with_the_settings() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("pets \"quoted\"");
        for (class, size) in [("cat", (40, 30)), ("dog", (40, 30)), ("eel", (20, 20))] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
            image::RgbImage::from_pixel(size.0, size.1, image::Rgb([9, 8, 7]))
                .save(dir.join(class).join("x.png"))
                .unwrap();
        }
        let settings = ImageFolderSettings {
            epochs: Some(3),
            learning_rate: Some(0.0005),
            validation_split: Some(0.0),
            ..Default::default()
        };
        let made = image_model_file(&dir, &settings).unwrap();
        assert_eq!(
            (made.image_size, made.color_mode),
            ([30, 40], ColorMode::Rgb)
        );
        let spec = &made.spec;
        assert_eq!(spec.model.input_shape, [30, 40, 3]);
        assert_eq!(spec.fit.epochs, 3);
        assert_eq!(spec.compile.optimizer.learning_rate(), 0.0005);
        assert!(spec.callbacks.is_empty(), "no val_loss to watch");
        let data = spec.data.as_ref().unwrap();
        assert_eq!(data.dir, std::path::absolute(&dir).unwrap());
        assert_eq!((data.scale, data.test_split), (255.0, Some(0.2)));
        assert!(spec.summary().unwrap().contains("(None, 3)"));
        let description = made.description(Path::new("pets"));
        assert!(
            description.starts_with("pets: 3 images in 3 classes (cat 1, dog 1, eel 1)")
                && description.contains(
                    "image size 30×40: the most common of 2 sizes (2 of 3 images); the others"
                )
                && description.contains("color mode rgb: every image is in colour"),
            "{description}"
        );
        assert!(made.text.starts_with("# A convnet for an image folder"));

        // Defaults: early stopping on val_loss.
        let made = image_model_file(&dir, &ImageFolderSettings::default()).unwrap();
        assert_eq!(made.spec.callbacks.len(), 1);
        assert_eq!(made.spec.fit.validation_split, 0.2);

        let bad = ImageFolderSettings {
            test_size: Some(1.5),
            ..Default::default()
        };
        let err = image_model_file(&dir, &bad).unwrap_err().to_string();
        assert!(err.contains("--test-size"), "{err}");
        std::fs::remove_dir_all(dir.join("dog")).unwrap();
        std::fs::remove_dir_all(dir.join("eel")).unwrap();
        let err = image_model_file(&dir, &ImageFolderSettings::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("one class folder ('cat')"), "{err}");

        // A folder with its own test images takes no --test-size.
        for split in ["train", "test"] {
            for class in ["cat", "dog"] {
                let folder = dir.join(split).join(class);
                std::fs::create_dir_all(&folder).unwrap();
                image::GrayImage::new(12, 12)
                    .save(folder.join("x.png"))
                    .unwrap();
            }
        }
        let made = image_model_file(&dir, &ImageFolderSettings::default()).unwrap();
        assert_eq!(made.color_mode, ColorMode::Grayscale);
        assert_eq!(made.spec.data.as_ref().unwrap().test_split, None);
        let split = ImageFolderSettings {
            test_size: Some(0.3),
            ..Default::default()
        };
        let err = image_model_file(&dir, &split).unwrap_err().to_string();
        assert!(err.contains("--test-size does nothing here"), "{err}");
    }
}
