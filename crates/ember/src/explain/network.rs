//! Explaining a saved network's predictions on input files (images, IDX, CSV rows of
//! numbers), read and prepared as `ember predict` reads them.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::saved::NetworkModel;
use crate::tensor::filter::gaussian_blur;
use crate::tensor::Tensor;

use super::gradients::{grad_cam, integrated_gradients, saliency, smooth_grad, SmoothGrad};
use super::{Explanation, Method};

/// The reference input of a method.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Baseline {
    /// Every input value 0 after preparation: a black image.
    Black,
    /// The input blurred by a Gaussian of this standard deviation in pixels.
    Blur(f32),
}

/// How to explain.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub method: Method,
    /// The class to explain, by name or number; by default each sample's predicted class.
    pub target: Option<String>,
    pub baseline: Baseline,
    /// Integrated Gradients' points.
    pub steps: usize,
    pub smooth: SmoothGrad,
    /// Grad-CAM's layer (default: the last convolution).
    pub layer: Option<String>,
}

/// One sample's explanation, with where it came from and what the model said.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleExplanation {
    pub input: String,
    /// The sample's number within its input, and how many the input holds (IDX, CSV).
    pub sample: usize,
    pub samples_in_input: usize,
    /// The predicted class and the explained one, by name.
    pub label: String,
    pub target: String,
    pub explanation: Explanation,
    /// The prepared input, for pictures.
    pub values: Vec<f32>,
}

impl NetworkModel {
    /// The image geometry (height, width, channels) of the model's samples, if images.
    pub fn image_geometry(&self, model_path: &Path) -> Result<Option<(usize, usize, usize)>> {
        Ok(match self.data(model_path)?.sample_shape()[..] {
            [h, w] => Some((h, w, 1)),
            [h, w, c] => Some((h, w, c)),
            _ => None,
        })
    }

    /// The classes' names (their numbers where the model has none).
    fn class_names(&self, model_path: &Path) -> Result<Vec<String>> {
        let classes = self.model.output_shape().iter().product::<usize>().max(2);
        let names = &self.data(model_path)?.classes;
        Ok((0..classes)
            .map(|c| names.get(c).cloned().unwrap_or_else(|| c.to_string()))
            .collect())
    }

    /// Explains every sample of the input files (folders of images are read whole), as
    /// `options` says.
    pub fn explain_files(
        &self,
        inputs: &[PathBuf],
        model_path: &Path,
        options: &Options,
    ) -> Result<Vec<SampleExplanation>> {
        let mut out = Vec::new();
        let inputs = crate::saved::expand_folders(inputs)?;
        let progress = crate::progress::Progress::new("Explaining", inputs.len(), "inputs");
        for input in &inputs {
            progress.advance(1);
            let bytes = crate::read::file(input, crate::read::Limit::INPUT)?;
            out.extend(self.explain_bytes(&bytes, input, model_path, options)?);
        }
        Ok(out)
    }

    /// [`NetworkModel::explain_files`] for one input's bytes; `input` names it.
    pub fn explain_bytes(
        &self,
        bytes: &[u8],
        input: &Path,
        model_path: &Path,
        options: &Options,
    ) -> Result<Vec<SampleExplanation>> {
        let data = self.data(model_path)?;
        let x = self.read_input_bytes(bytes, input, data)?;
        self.explain_samples(&x, &input.display().to_string(), model_path, options)
    }

    /// Explains samples already prepared as the training data was, (n, …) as
    /// [`NetworkModel::prepare`] makes them (a server's request); `input` names them.
    pub fn explain_samples(
        &self,
        x: &Tensor,
        input: &str,
        model_path: &Path,
        options: &Options,
    ) -> Result<Vec<SampleExplanation>> {
        let names = self.class_names(model_path)?;
        let predicted: Vec<usize> = {
            let p = self.model.predict(x, 256)?;
            let width = p.row_len().max(1);
            p.data()
                .chunks(width)
                .map(|row| match width {
                    1 => (row[0] > 0.5) as usize,
                    _ => crate::tensor::argmax(row),
                })
                .collect()
        };
        let targets = match &options.target {
            Some(t) => vec![class_index(t, &names)?; x.rows()],
            None => predicted.clone(),
        };
        let baseline = match options.baseline {
            Baseline::Black => Tensor::zeros(x.shape()),
            Baseline::Blur(sigma) => {
                let (h, w, c) = self
                    .image_geometry(model_path)?
                    .ok_or_else(|| Error::invalid("a blurred baseline needs a model of images"))?;
                gaussian_blur(&x.clone().reshape(&[x.rows(), h, w, c])?, sigma)?
                    .reshape(x.shape())?
            }
        };
        let explanations = match options.method {
            Method::Saliency => saliency(&self.model, x, &targets, &baseline)?,
            Method::SmoothGrad => smooth_grad(&self.model, x, &targets, &baseline, options.smooth)?,
            Method::IntegratedGradients => {
                integrated_gradients(&self.model, x, &targets, &baseline, options.steps)?
            }
            Method::GradCam => {
                if self.model.input_shape().len() != 3 {
                    return Err(Error::invalid(format!(
                        "grad-cam explains a convolutional network of images; this model takes \
                         samples of shape {:?} (try integrated-gradients or saliency)",
                        self.model.input_shape()
                    )));
                }
                grad_cam(
                    &self.model,
                    x,
                    &targets,
                    &baseline,
                    options.layer.as_deref(),
                )?
            }
            other => {
                return Err(Error::invalid(format!(
                    "--method {} does not explain a network of {}: use saliency, smoothgrad, \
                     integrated-gradients or grad-cam",
                    other.name(),
                    if self.image_geometry(model_path)?.is_some() {
                        "images"
                    } else {
                        "numbers"
                    }
                )))
            }
        };
        let width = x.row_len();
        Ok(explanations
            .into_iter()
            .enumerate()
            .map(|(sample, explanation)| SampleExplanation {
                input: input.to_string(),
                sample,
                samples_in_input: x.rows(),
                label: names[predicted[sample]].clone(),
                target: names[explanation.target].clone(),
                values: x.data()[sample * width..(sample + 1) * width].to_vec(),
                explanation,
            })
            .collect())
    }
}

/// A class given by name, or by number.
pub fn class_index(target: &str, names: &[String]) -> Result<usize> {
    if let Some(i) = names.iter().position(|n| n == target) {
        return Ok(i);
    }
    match target.parse::<usize>() {
        Ok(i) if i < names.len() => Ok(i),
        _ => Err(Error::invalid(format!(
            "--target '{target}' is not one of the model's classes ({})",
            names.join(", ")
        ))),
    }
}
