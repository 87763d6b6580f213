//! Predictions as every command and route writes them (docs/output.md): a class, always
//! under the same keys whatever the model, or a regression's value; the command line says
//! beside each which input, sample or line it is for.

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};

/// A classification: the most likely class and its probability, then the `top` classes,
/// best first, and every class's probability. In JSON `{"label": "7", "index": 7, "score":
/// 0.997, "top": [...], "probabilities": [...]}`, the same from `ember predict --json` and
/// from the server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Classification {
    /// The class as the model names it; the class number, as text, for a model whose
    /// classes have no names (MNIST's digits).
    pub label: String,
    /// The class's number among the model's outputs.
    pub index: usize,
    /// The model's probability of the class.
    pub score: f32,
    /// The most likely classes, best first.
    pub top: Vec<TopClass>,
    /// Every class's probability, in the model's class order (class names sorted, numbers
    /// by value: scikit-learn's `predict_proba` columns); a single sigmoid output gives two.
    pub probabilities: Vec<f32>,
}

/// One of a sample's most likely classes: `{"label": "7", "index": 7, "score": 0.997}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopClass {
    pub label: String,
    pub index: usize,
    pub score: f32,
}

/// What a model predicts for one input: a class, or a regression's `{"value": 12.5}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Class(Classification),
    Value { value: f64 },
}

/// A prediction with the input it is for, as the command line writes it: `"input"` (the
/// path as given, `-` for standard input), then `"sample"` (a network's sample within the
/// input, 0 for an image) or `"line"` (a table row's line in its file, the header being
/// line 1), then the prediction's own keys.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction<T> {
    pub input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(flatten)]
    pub outcome: T,
}

impl<T> Prediction<T> {
    /// The prediction for sample `sample` of `input`.
    pub fn of_sample(input: &Path, sample: usize, outcome: T) -> Self {
        Prediction {
            input: input.display().to_string(),
            sample: Some(sample),
            line: None,
            outcome,
        }
    }

    /// The prediction for the row on line `line` of `input`.
    pub fn of_line(input: &Path, line: u64, outcome: T) -> Self {
        Prediction {
            input: input.display().to_string(),
            sample: None,
            line: Some(line),
            outcome,
        }
    }

    /// The prediction for `input` as a whole (a text document).
    pub fn of_input(input: &Path, outcome: T) -> Self {
        Prediction {
            input: input.display().to_string(),
            sample: None,
            line: None,
            outcome,
        }
    }
}

/// Class `c`'s label: its name in `names` when the model names all its `classes`, else
/// its number.
pub fn class_label(names: &[String], classes: usize, c: usize) -> String {
    match names.get(c) {
        Some(name) if names.len() == classes => name.clone(),
        _ => c.to_string(),
    }
}

/// The `k` most likely classes of one sample's outputs (a single sigmoid output is the
/// probability of class 1), ties broken by the lower class; `classes` names them.
pub fn classify(outputs: &[f32], k: usize, classes: &[String]) -> Classification {
    let probabilities: Vec<f32> = match outputs {
        [p] => vec![1.0 - p, *p],
        many => many.to_vec(),
    };
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        probabilities[b]
            .total_cmp(&probabilities[a])
            .then(a.cmp(&b))
    });
    let label = |c: usize| class_label(classes, probabilities.len(), c);
    let best = order[0];
    Classification {
        label: label(best),
        index: best,
        score: probabilities[best],
        top: order
            .iter()
            .take(k)
            .map(|&c| TopClass {
                label: label(c),
                index: c,
                score: probabilities[c],
            })
            .collect(),
        probabilities,
    }
}

/// Checks a decision threshold: a finite probability in [0, 1].
pub fn check_threshold(threshold: f32) -> Result<f32> {
    if threshold.is_finite() && (0.0..=1.0).contains(&threshold) {
        Ok(threshold)
    } else {
        Err(Error::invalid(format!(
            "--threshold {threshold}: a probability between 0 and 1 is expected"
        )))
    }
}

impl Classification {
    /// A binary classification decided at `threshold`: the second class (the positive one)
    /// when its probability is at least `threshold`, as scikit-learn's
    /// `FixedThresholdClassifier` decides; `top` stays ordered by probability.
    pub fn at_threshold(mut self, threshold: f32, classes: &[String]) -> Classification {
        if let [_, positive] = self.probabilities[..] {
            let class = usize::from(positive >= threshold);
            self.label = class_label(classes, 2, class);
            self.index = class;
            self.score = self.probabilities[class];
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_orders_by_probability_and_names_known_classes() {
        let p = classify(&[0.1, 0.7, 0.2], 2, &[]);
        assert_eq!((p.label.as_str(), p.index, p.score), ("1", 1, 0.7));
        let top: Vec<(&str, usize, f32)> = p
            .top
            .iter()
            .map(|t| (t.label.as_str(), t.index, t.score))
            .collect();
        assert_eq!(top, vec![("1", 1, 0.7), ("2", 2, 0.2)]);
        let names: Vec<String> = ["cat", "dog", "eel"].map(String::from).to_vec();
        let p = classify(&[0.5, 0.5, 0.0], 3, &names);
        assert_eq!(
            (p.label.as_str(), p.index),
            ("cat", 0),
            "ties go to the lower class"
        );
        let sigmoid = classify(&[0.8], 2, &[]);
        assert_eq!(sigmoid.index, 1);
        assert!((sigmoid.top[1].score - 0.2).abs() < 1e-6);
        assert_eq!(sigmoid.probabilities.len(), 2, "a sigmoid is two classes");
        assert_eq!(p.probabilities, vec![0.5, 0.5, 0.0], "in class order");
    }

    #[test]
    fn a_threshold_decides_a_binary_class_by_the_positive_probability() {
        let names: Vec<String> = ["no", "yes"].map(String::from).to_vec();
        let p = classify(&[0.3], 1, &names);
        assert_eq!(p.label, "no");
        let low = p.clone().at_threshold(0.25, &names);
        assert_eq!((low.label.as_str(), low.index), ("yes", 1));
        assert!(
            (low.score - 0.3).abs() < 1e-6,
            "the decided class's probability"
        );
        assert_eq!(low.top, p.top, "top stays ordered by probability");
        let exact = p.clone().at_threshold(0.3, &names);
        assert_eq!(
            exact.index, 1,
            "at the threshold is positive, as scikit-learn"
        );
        assert_eq!(p.clone().at_threshold(0.9, &names).label, "no");
        let three = classify(&[0.2, 0.3, 0.5], 3, &[]);
        assert_eq!(three.clone().at_threshold(0.1, &[]), three, "binary only");
        assert!(check_threshold(f32::NAN).is_err());
        assert!(check_threshold(1.5).is_err());
        assert_eq!(check_threshold(0.0).unwrap(), 0.0);
    }

    #[test]
    fn a_prediction_is_the_same_object_with_its_input_in_front() {
        let class = classify(&[0.25, 0.75], 2, &["no".into(), "yes".into()]);
        let alone = serde_json::to_value(Outcome::Class(class.clone())).unwrap();
        assert_eq!(
            alone,
            serde_json::json!({
                "label": "yes", "index": 1, "score": 0.75,
                "top": [
                    {"label": "yes", "index": 1, "score": 0.75},
                    {"label": "no", "index": 0, "score": 0.25}
                ],
                "probabilities": [0.25, 0.75]
            })
        );
        let located = serde_json::to_value(Prediction::of_line(
            Path::new("rows.csv"),
            2,
            Outcome::Class(class),
        ))
        .unwrap();
        let mut expected = alone.clone();
        expected["input"] = "rows.csv".into();
        expected["line"] = 2.into();
        assert_eq!(located, expected);
        let value = Prediction::of_sample(Path::new("-"), 0, Outcome::Value { value: 1.5 });
        assert_eq!(
            serde_json::to_value(value).unwrap(),
            serde_json::json!({"input": "-", "sample": 0, "value": 1.5})
        );
    }
}
