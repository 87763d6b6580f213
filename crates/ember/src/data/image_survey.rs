//! What an image folder holds, read from its files' headers without decoding a pixel: the
//! classes and their image counts, the images' sizes and whether any is in colour, so that
//! a model can be made to fit the folder.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::dataset::split_folders;
use super::image_folder::{class_files, class_folders};
use crate::error::{Error, Result};

/// An image folder, surveyed.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageFolderSurvey {
    /// Class names (subfolder names), sorted.
    pub classes: Vec<String>,
    /// Images per class, in class order (those whose header could be read).
    pub counts: Vec<usize>,
    /// Each (height, width) found and how many images have it, the most common first
    /// (ties: the smaller area first).
    pub sizes: Vec<([usize; 2], usize)>,
    /// Images stored in colour (not as gray levels, with or without alpha).
    pub in_colour: usize,
    /// Image files whose header could not be read; reading the folder reports each.
    pub unreadable: usize,
    /// The folder's own train/ and test/ subfolders, when it has both (see
    /// [`split_folders`]); both are surveyed.
    pub split: Option<[PathBuf; 2]>,
}

impl ImageFolderSurvey {
    /// Images whose header was read.
    pub fn images(&self) -> usize {
        self.counts.iter().sum()
    }
}

/// Surveys the image folder `dir` as [`crate::data::dataset::DataSpec`] reads one: its class
/// subfolders, or those of its train/ and test/ subfolders (the classes are the training
/// folder's). An error when it holds no readable image.
pub fn survey_image_folder(dir: &Path) -> Result<ImageFolderSurvey> {
    let split = split_folders(dir);
    let folders: Vec<&Path> = match &split {
        Some(both) => both.iter().map(PathBuf::as_path).collect(),
        None => vec![dir],
    };
    let classes = class_folders(folders[0], "images")?;
    let mut files = Vec::new();
    for folder in &folders {
        files.extend(class_files(folder, &classes)?.0);
    }
    let headers: Vec<Option<Header>> = files.par_iter().map(|(p, _)| header(p)).collect();
    let mut counts = vec![0; classes.len()];
    let mut sizes: Vec<([usize; 2], usize)> = Vec::new();
    let (mut in_colour, mut unreadable) = (0, 0);
    for ((_, label), found) in files.iter().zip(headers) {
        let Some(found) = found else {
            unreadable += 1;
            continue;
        };
        counts[*label] += 1;
        in_colour += found.colour as usize;
        match sizes.iter_mut().find(|(size, _)| *size == found.size) {
            Some((_, n)) => *n += 1,
            None => sizes.push((found.size, 1)),
        }
    }
    if sizes.is_empty() {
        return Err(Error::data(
            dir,
            format!(
                "no readable .png/.jpg/.jpeg images in its class folders ({unreadable} unreadable)"
            ),
        ));
    }
    sizes.sort_by_key(|&([h, w], n)| (std::cmp::Reverse(n), h * w, h));
    Ok(ImageFolderSurvey {
        classes,
        counts,
        sizes,
        in_colour,
        unreadable,
        split,
    })
}

/// What an image file's header says.
struct Header {
    /// (height, width).
    size: [usize; 2],
    colour: bool,
}

/// The header of an image file (PNG or JPEG, told by its content), or None when it cannot
/// be read.
fn header(path: &Path) -> Option<Header> {
    use image::ImageDecoder;

    let decoder = image::ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?
        .into_decoder()
        .ok()?;
    let (width, height) = decoder.dimensions();
    (width > 0 && height > 0).then(|| Header {
        size: [height as usize, width as usize],
        colour: decoder.color_type().has_color(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_classes_sizes_and_colour_from_headers() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        for class in ["cat", "ant", "bee"] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
        }
        let gray = image::GrayImage::from_pixel(6, 4, image::Luma([90]));
        for i in 0..3 {
            gray.save(dir.join(format!("ant/{i}.png"))).unwrap();
        }
        gray.save(dir.join("bee/0.jpg")).unwrap();
        image::RgbImage::from_pixel(5, 5, image::Rgb([1, 2, 3]))
            .save(dir.join("cat/rgb.png"))
            .unwrap();
        std::fs::write(dir.join("cat/broken.png"), b"not a png").unwrap();
        std::fs::write(dir.join("cat/notes.txt"), b"not an image").unwrap();

        let survey = survey_image_folder(dir).unwrap();
        assert_eq!(survey.classes, ["ant", "bee", "cat"]);
        assert_eq!(survey.counts, [3, 1, 1]);
        assert_eq!(survey.images(), 5);
        assert_eq!(survey.sizes, [([4, 6], 4), ([5, 5], 1)]);
        assert_eq!((survey.in_colour, survey.unreadable), (1, 1));
        assert_eq!(survey.split, None);
    }

    #[test]
    fn train_and_test_folders_are_surveyed_together() {
        let scratch = tempfile::tempdir().unwrap();
        let image = image::GrayImage::from_pixel(3, 3, image::Luma([9]));
        for (split, class) in [("train", "a"), ("train", "b"), ("test", "a")] {
            let folder = scratch.path().join(split).join(class);
            std::fs::create_dir_all(&folder).unwrap();
            image.save(folder.join("x.png")).unwrap();
        }
        let survey = survey_image_folder(scratch.path()).unwrap();
        assert_eq!(survey.classes, ["a", "b"]);
        assert_eq!(survey.counts, [2, 1]);
        assert!(survey.split.is_some());

        let empty = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(empty.path().join("a")).unwrap();
        let err = survey_image_folder(empty.path()).unwrap_err().to_string();
        assert!(err.contains("no readable"), "{err}");
    }
}
