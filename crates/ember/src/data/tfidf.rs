//! TF-IDF bags of words: documents as vectors over a vocabulary fitted on training documents.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::tensor::{stats, Tensor};

/// TF-IDF with a vocabulary of the most frequent words of the training documents
/// (scikit-learn's `TfidfVectorizer(sublinear_tf=True)` in spirit): words are runs of two or
/// more letters or digits, lowercased; each vector is L2-normalized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TfIdf {
    pub vocabulary: Vec<String>,
    pub idf: Vec<f32>,
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2 && w.len() <= 40)
        .map(str::to_lowercase)
}

/// The byte spans of the runs of letters and digits in `text`: the words a document is
/// shown and explained by (the vocabulary keeps those of 2 to 40 bytes, lowercased).
pub fn words_with_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans.into_iter()
}

impl TfIdf {
    /// Each vocabulary term's position.
    fn index(&self) -> HashMap<&str, usize> {
        self.vocabulary
            .iter()
            .enumerate()
            .map(|(i, w)| (w.as_str(), i))
            .collect()
    }

    /// Each word's index in the vocabulary, if it is a term (after lowercasing).
    pub fn term_indices(&self, words: &[&str]) -> Vec<Option<usize>> {
        let index = self.index();
        words
            .iter()
            .map(|w| index.get(w.to_lowercase().as_str()).copied())
            .collect()
    }

    /// Fits the vocabulary (at most `max_features` words found in at least `min_df`
    /// documents, most frequent first) and the inverse document frequencies.
    pub fn fit(texts: &[&str], max_features: usize, min_df: usize) -> Self {
        let mut df: HashMap<String, usize> = HashMap::new();
        for text in texts {
            let mut seen: Vec<String> = words(text).collect();
            seen.sort();
            seen.dedup();
            for w in seen {
                *df.entry(w).or_default() += 1;
            }
        }
        let mut ranked: Vec<(String, usize)> =
            df.into_iter().filter(|(_, n)| *n >= min_df).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(max_features);
        let n = texts.len() as f32;
        TfIdf {
            idf: ranked
                .iter()
                .map(|(_, d)| ((1.0 + n) / (1.0 + *d as f32)).ln() + 1.0)
                .collect(),
            vocabulary: ranked.into_iter().map(|(w, _)| w).collect(),
        }
    }

    pub fn width(&self) -> usize {
        self.vocabulary.len()
    }

    /// The documents as rows of (1 + ln tf) · idf, L2-normalized.
    pub fn transform(&self, texts: &[&str]) -> Result<Tensor> {
        let index = self.index();
        let width = self.width();
        let mut data = vec![0.0f32; texts.len() * width];
        for (row, text) in data.chunks_mut(width.max(1)).zip(texts) {
            for w in words(text) {
                if let Some(&i) = index.get(w.as_str()) {
                    row[i] += 1.0;
                }
            }
            for (v, idf) in row.iter_mut().zip(&self.idf) {
                if *v > 0.0 {
                    *v = (1.0 + v.ln()) * idf;
                }
            }
            stats::l2_normalize(row);
        }
        Tensor::new(&[texts.len(), width], data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tfidf_by_hand() {
        let docs = ["free money now", "money for the meeting", "meeting notes"];
        let tfidf = TfIdf::fit(&docs, 10, 2);
        // Words in at least two documents, most frequent first, ties by name.
        assert_eq!(tfidf.vocabulary, ["meeting", "money"]);
        // idf = ln((1 + 3) / (1 + 2)) + 1 for both.
        assert!((tfidf.idf[0] - ((4.0f32 / 3.0).ln() + 1.0)).abs() < 1e-6);
        let x = tfidf
            .transform(&["Money, money and a MEETING", "nothing known"])
            .unwrap();
        // tf 2 → 1 + ln 2 for money, 1 for meeting; then L2-normalized.
        let (a, b) = (1.0f32, 1.0 + 2.0f32.ln());
        let norm = (a * a + b * b).sqrt();
        assert!((x.data()[0] - a / norm).abs() < 1e-6);
        assert!((x.data()[1] - b / norm).abs() < 1e-6);
        assert_eq!(&x.data()[2..], &[0.0, 0.0]);
    }
}
