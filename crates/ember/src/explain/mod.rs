//! Why did the model say that: attributions of a prediction to the model's inputs.
//!
//! - Gradients ([`gradients`]): saliency (Simonyan et al., 2014), SmoothGrad (Smilkov et al.,
//!   2017), Integrated Gradients (Sundararajan et al., 2017) and Grad-CAM (Selvaraju et al.,
//!   2017), for any network with one input: images, table rows, TF-IDF vectors.
//! - Tables ([`table`]): permutation importance over a held-out set (scikit-learn's
//!   definition) and per-prediction Integrated Gradients or Shapley values ([`shap`]) over
//!   the raw columns.
//! - Text ([`text`]): per-word Integrated Gradients through TF-IDF features, occlusion
//!   word by word for any text classifier, and a page of coloured words.
//! - Pictures ([`render`]): a heat map over the input image, a bar chart of columns.
//!
//! Every method explains one target class per sample: the probability the model gives it is
//! the `score`; Integrated Gradients' attributions add up to `score − baseline_score`.

pub mod gradients;
pub mod network;
pub mod quadrature;
pub mod render;
pub mod shap;
pub mod table;
pub mod text;

use crate::error::{Error, Result};

pub use gradients::{grad_cam, integrated_gradients, saliency, smooth_grad, SmoothGrad};
pub use table::{column_attributions, column_shap, permutation_importance, ColumnImportance};

/// An attribution method, named as on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Saliency,
    SmoothGrad,
    IntegratedGradients,
    GradCam,
    Permutation,
    Shap,
    Occlusion,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::Saliency,
        Method::SmoothGrad,
        Method::IntegratedGradients,
        Method::GradCam,
        Method::Permutation,
        Method::Shap,
        Method::Occlusion,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Saliency => "saliency",
            Method::SmoothGrad => "smoothgrad",
            Method::IntegratedGradients => "integrated-gradients",
            Method::GradCam => "grad-cam",
            Method::Permutation => "permutation",
            Method::Shap => "shap",
            Method::Occlusion => "occlusion",
        }
    }

    pub fn parse(name: &str) -> Result<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
                Error::invalid(format!(
                    "unknown method '{name}': expected one of {}",
                    names.join(", ")
                ))
            })
    }

    /// Whether the attributions are signed contributions that add up to the change in score
    /// (true), or magnitudes of importance (false).
    pub fn is_additive(self) -> bool {
        matches!(
            self,
            Method::IntegratedGradients | Method::Shap | Method::Occlusion
        )
    }
}

/// One sample's explanation for one target class.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The class explained.
    pub target: usize,
    /// The model's probability of `target` at the input.
    pub score: f32,
    /// The model's probability of `target` at the baseline.
    pub baseline_score: f32,
    /// One number per input value, in the network's input order.
    pub attributions: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_named_as_on_the_command_line() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.name()).unwrap(), m);
        }
        let e = Method::parse("lime").unwrap_err().to_string();
        assert!(e.contains("'lime'") && e.contains("grad-cam"), "{e}");
    }
}
