//! Per-word explanations of a text classifier: Integrated Gradients through its TF-IDF
//! features, or occlusion (each word taken out in turn) for any classifier, frozen sentence
//! encoders included; and the page that colours the words.

use std::path::Path;

use crate::data::tfidf::words_with_spans;
use crate::error::{Error, Result};
use crate::spec::TextFeatures;
use crate::text::TextClassifier;

use super::gradients::{integrated_gradients, scores};
use super::{Explanation, Method};

/// A word of a document and where it is (byte offsets in the text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// The words of `text` (runs of letters and digits), each with its attribution to the
/// probability of class `target`, and the explanation (attributions in word order).
/// Integrated Gradients (TF-IDF classifiers) attributes each vocabulary term along the
/// straight path from the empty document's features and shares a term's attribution among
/// its occurrences; words outside the vocabulary get 0. Occlusion gives each word
/// p(text) − p(text without that word); its baseline is the empty text.
pub fn word_attributions(
    classifier: &TextClassifier,
    text: &str,
    target: usize,
    method: Method,
    steps: usize,
    cache: &Path,
) -> Result<(Vec<Word>, Explanation)> {
    let classes = classifier.spec.classes.len();
    if target >= classes {
        return Err(Error::invalid(format!(
            "target {target}: the classifier has {classes} classes"
        )));
    }
    let words: Vec<Word> = words_with_spans(text)
        .map(|(start, end)| Word {
            text: text[start..end].to_string(),
            start,
            end,
        })
        .collect();
    let encoder = classifier.load_encoder()?;
    let features = |texts: &[&str]| classifier.features_with(encoder.as_ref(), texts, Some(cache));
    let model = &classifier.model;
    match method {
        Method::IntegratedGradients => {
            let TextFeatures::Tfidf(tfidf) = &classifier.spec.features else {
                return Err(Error::invalid(
                    "integrated-gradients explains TF-IDF classifiers; for a sentence \
                     encoder's features use --method occlusion",
                ));
            };
            let x = features(&[text])?;
            let baseline = features(&[""])?;
            let e = integrated_gradients(model, &x, &[target], &baseline, steps)?
                .pop()
                .ok_or_else(|| Error::invalid("no explanation"))?;
            // Each term's attribution, shared among its occurrences.
            let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
            let terms = tfidf.term_indices(&texts);
            let mut counts = vec![0usize; tfidf.width()];
            for t in terms.iter().flatten() {
                counts[*t] += 1;
            }
            let attributions = terms
                .iter()
                .map(|t| t.map_or(0.0, |t| e.attributions[t] / counts[t] as f32))
                .collect();
            Ok((words, Explanation { attributions, ..e }))
        }
        Method::Occlusion => {
            let mut texts: Vec<String> = vec![text.to_string(), String::new()];
            for w in &words {
                texts.push(format!("{}{}", &text[..w.start], &text[w.end..]));
            }
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let x = features(&refs)?;
            let p = scores(model, &x, &vec![target; refs.len()])?;
            Ok((
                words,
                Explanation {
                    target,
                    score: p[0],
                    baseline_score: p[1],
                    attributions: p[2..].iter().map(|q| p[0] - q).collect(),
                },
            ))
        }
        other => Err(Error::invalid(format!(
            "--method {} does not explain text; use integrated-gradients (TF-IDF) or occlusion",
            other.name()
        ))),
    }
}

/// A standalone HTML page showing `text` with each word's background red where it raises
/// the probability of `class` and blue where it lowers it, stronger for larger attributions
/// (scaled to the largest); each word's value shows on hover.
pub fn word_page(title: &str, text: &str, words: &[Word], e: &Explanation, class: &str) -> String {
    let top = e
        .attributions
        .iter()
        .fold(0.0f32, |m, a| m.max(a.abs()))
        .max(f32::MIN_POSITIVE);
    let mut body = String::new();
    let mut at = 0;
    for (w, &a) in words.iter().zip(&e.attributions) {
        body.push_str(&escape(&text[at..w.start]));
        let alpha = (a.abs() / top).clamp(0.0, 1.0) * 0.8;
        let colour = if a >= 0.0 { "220,30,30" } else { "30,80,230" };
        body.push_str(&format!(
            "<span style=\"background:rgba({colour},{alpha:.3})\" title=\"{a:+.5}\">{}</span>",
            escape(&w.text)
        ));
        at = w.end;
    }
    body.push_str(&escape(&text[at..]));
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n\
         <style>body{{font-family:sans-serif;max-width:50em;margin:2em auto}} \
         pre{{white-space:pre-wrap;font-family:inherit;line-height:1.6}}</style></head>\n\
         <body><h1>{t}</h1>\n<p>p({c}) = {s:.4}; without the text {b:.4}. \
         <span style=\"background:rgba(220,30,30,0.6)\">red</span> words raise it, \
         <span style=\"background:rgba(30,80,230,0.6)\">blue</span> words lower it.</p>\n\
         <pre>{body}</pre></body></html>\n",
        t = escape(title),
        c = escape(class),
        s = e.score,
        b = e.baseline_score,
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_the_text_and_colours_each_word() {
        let text = "Free <b>money</b> & more";
        let words: Vec<Word> = words_with_spans(text)
            .map(|(s, e)| Word {
                text: text[s..e].into(),
                start: s,
                end: e,
            })
            .collect();
        assert_eq!(
            words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(),
            ["Free", "b", "money", "b", "more"]
        );
        let e = Explanation {
            target: 1,
            score: 0.9,
            baseline_score: 0.5,
            attributions: vec![0.3, 0.0, 0.2, 0.0, -0.1],
        };
        let page = word_page("mail <1>", text, &words, &e, "spam");
        assert!(page.contains("<title>mail &lt;1&gt;</title>"));
        assert!(page.contains("&lt;<span") && page.contains("&amp;"));
        assert!(!page.contains("<b>"));
        assert!(page.contains("rgba(220,30,30,0.800)\" title=\"+0.30000\">Free</span>"));
        assert!(page.contains("rgba(30,80,230,0.267)\" title=\"-0.10000\">more</span>"));
    }
}
