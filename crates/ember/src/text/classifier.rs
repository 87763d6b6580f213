//! Text classifiers: documents become features (a frozen encoder's pooled states, or TF-IDF),
//! then classes through an exact softmax regression or a small MLP; trained, saved, and used
//! on new documents.

use std::path::{Path, PathBuf};

use super::documents::{email_text, Documents};
use super::features::{embed_cached, encoder_key};
use super::sentence::SentenceEncoder;
use crate::callbacks::EarlyStopping;
use crate::data::split::train_test_split;
use crate::data::tfidf::TfIdf;
use crate::data::StandardScaler;
use crate::error::{Error, Result};
use crate::model::{Assessment, FitOptions, Model, Sequential, SoftmaxRegression, Verbosity};
use crate::prediction::{classify, Classification, Prediction};
use crate::spec::{FitSpec, ModelSpec, TextFeatures, TextSpec};
use crate::{Activation, Adam, Dense, Dropout, Loss, Metric, Tensor};

/// How to train a text classifier. Defaults: TF-IDF of 5,000 words and an MLP of 64 units
/// (Adam 0.001, early stopping) without an encoder; with one, every layer's pooled states
/// and an exact softmax regression (scikit-learn's C = 1); a 20% stratified test split.
#[derive(Clone, Debug)]
pub struct TextTraining {
    /// A pretrained sentence encoder folder (all-MiniLM-L6-v2); None: TF-IDF features.
    pub encoder: Option<PathBuf>,
    /// The encoder layers whose token states, pooled by mean and maximum, make the features
    /// (empty: every layer, 0 = the embeddings to the last block).
    pub encoder_layers: Vec<usize>,
    /// Where embeddings are cached, by document content and encoder.
    pub cache: PathBuf,
    /// TF-IDF vocabulary size (default 5,000).
    pub max_features: usize,
    /// Units of the hidden layer, or 0 for a softmax regression fitted exactly (default: 0 on
    /// pretrained features, 64 on TF-IDF).
    pub hidden: Option<usize>,
    /// L2 penalty on the kernels (default: 1 / training documents for a softmax regression,
    /// none for an MLP).
    pub l2: Option<f32>,
    /// Adam's learning rate for the MLP (default 0.001); a softmax regression, fitted
    /// exactly, has none.
    pub learning_rate: Option<f32>,
    /// The documents are e-mails: their first line is the subject.
    pub email: bool,
    /// Fraction of the documents held out for the test (default 0.2).
    pub test_size: f32,
    pub seed: u64,
    /// Epochs of the MLP (default 40, with early stopping; at most 100000).
    pub epochs: Option<usize>,
}

impl Default for TextTraining {
    fn default() -> Self {
        TextTraining {
            encoder: None,
            encoder_layers: Vec::new(),
            cache: PathBuf::from(".ember-cache"),
            max_features: 5000,
            hidden: None,
            l2: None,
            learning_rate: None,
            email: false,
            test_size: 0.2,
            seed: 1,
            epochs: None,
        }
    }
}

impl TextTraining {
    /// Units of the hidden layer, defaults resolved: 0 is a softmax regression fitted
    /// exactly.
    pub fn hidden_units(&self) -> usize {
        self.hidden
            .unwrap_or(if self.encoder.is_some() { 0 } else { 64 })
    }
}

/// How the classifier's last layers were fitted.
#[derive(Clone, Debug, PartialEq)]
pub enum Head {
    SoftmaxRegression {
        l2: f32,
        iterations: usize,
        converged: bool,
    },
    Mlp {
        epochs: usize,
    },
}

/// A trained classifier with what training did, for the caller to report.
pub struct TrainedText {
    pub classifier: TextClassifier,
    /// Seconds spent making the features (encoding, or fitting TF-IDF).
    pub feature_seconds: f64,
    pub train_documents: usize,
    pub test_documents: usize,
    pub head: Head,
    /// The fit settings, recorded when the classifier is saved.
    pub fit: FitSpec,
    /// The classifier on the held-out documents.
    pub assessment: Assessment,
}

/// A text classifier: the network and how documents become its inputs.
pub struct TextClassifier {
    pub model: Model,
    pub spec: TextSpec,
}

/// Characters from the end of a document that make its tail view.
const TAIL_CHARS: usize = 1500;

/// A document's pretrained features ([`embed_cached`]: pooled `layers`, or the sentence
/// embedding): of its beginning (the encoder reads the first 256 tokens) and of its last
/// characters, side by side; for an e-mail, its subject's first. Long documents keep cues at
/// both ends (a signature, a mailing list's footer, an unsubscribe line) that one 256-token
/// view misses, and a subject is a strong cue a long body dilutes.
pub fn document_embeddings(
    encoder: &SentenceEncoder,
    key: &str,
    layers: &[usize],
    texts: &[&str],
    email: bool,
    cache: Option<&Path>,
) -> Result<Tensor> {
    let tails: Vec<&str> = texts
        .iter()
        .map(|t| {
            let start = t.char_indices().rev().nth(TAIL_CHARS).map_or(0, |(i, _)| i);
            &t[start..]
        })
        .collect();
    let mut views = Vec::new();
    if email {
        let subjects: Vec<&str> = texts
            .iter()
            .map(|t| t.lines().next().unwrap_or(""))
            .collect();
        views.push(embed_cached(encoder, key, layers, &subjects, cache)?);
    }
    views.push(embed_cached(encoder, key, layers, texts, cache)?);
    views.push(embed_cached(encoder, key, layers, &tails, cache)?);
    let dim = views[0].row_len();
    let mut data = Vec::with_capacity(views.len() * texts.len() * dim);
    for row in 0..texts.len() {
        for view in &views {
            data.extend_from_slice(&view.data()[row * dim..(row + 1) * dim]);
        }
    }
    Tensor::new(&[texts.len(), views.len() * dim], data)
}

/// The encoder layers whose pooled states make a classifier's features: those asked for, or
/// every one, from the embeddings (0) to the last block.
fn encoder_layers(asked: &[usize], encoder: &SentenceEncoder) -> Result<Vec<usize>> {
    let depth = encoder.encoder.config.num_hidden_layers;
    if let Some(&l) = asked.iter().find(|&&l| l > depth) {
        return Err(Error::invalid(format!(
            "--encoder-layers {l}: the encoder has layers 0 (embeddings) to {depth}"
        )));
    }
    if !asked.is_empty() {
        return Ok(asked.to_vec());
    }
    Ok((0..=depth).collect())
}

impl TextClassifier {
    /// Trains a classifier on `docs`: features, a stratified test split, then the head.
    pub fn train(docs: &Documents, options: &TextTraining) -> Result<TrainedText> {
        // A classifier of one class is always right and learns nothing.
        if docs.classes.len() < 2 {
            return Err(Error::invalid(format!(
                "a classifier needs documents of at least two classes, got {}",
                docs.classes
                    .first()
                    .map_or("none".to_string(), |one| format!("only '{one}'"))
            )));
        }
        let (train_rows, test_rows) = train_test_split(
            docs.texts.len(),
            Some(&docs.labels),
            options.test_size,
            options.seed,
        )?;
        let texts: Vec<&str> = docs.texts.iter().map(String::as_str).collect();
        let pick = |rows: &[usize]| -> Vec<&str> { rows.iter().map(|&r| texts[r]).collect() };
        let labels = |rows: &[usize]| {
            Tensor::new(
                &[rows.len()],
                rows.iter().map(|&r| docs.labels[r] as f32).collect(),
            )
        };

        let started = std::time::Instant::now();
        let (features, scaler, x_train, x_test) = match &options.encoder {
            Some(dir) => {
                let encoder = SentenceEncoder::load(dir)?;
                let key = encoder_key(&encoder)?;
                let layers = encoder_layers(&options.encoder_layers, &encoder)?;
                let all = document_embeddings(
                    &encoder,
                    &key,
                    &layers,
                    &texts,
                    options.email,
                    Some(&options.cache),
                )?;
                let features = TextFeatures::Pretrained {
                    encoder: std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
                    encoder_key: key,
                    layers,
                };
                let x_train = all.gather_rows(&train_rows)?;
                // Pooled states differ in scale from layer to layer: standardize them.
                let scaler = StandardScaler::fit(&x_train)?;
                (
                    features,
                    Some(scaler.clone()),
                    scaler.transform(&x_train)?,
                    scaler.transform(&all.gather_rows(&test_rows)?)?,
                )
            }
            None => {
                let tfidf = TfIdf::fit(&pick(&train_rows), options.max_features, 2);
                let (a, b) = (
                    tfidf.transform(&pick(&train_rows))?,
                    tfidf.transform(&pick(&test_rows))?,
                );
                (TextFeatures::Tfidf(tfidf), None, a, b)
            }
        };
        let feature_seconds = started.elapsed().as_secs_f64();
        let (y_train, y_test) = (labels(&train_rows)?, labels(&test_rows)?);
        let fit = FitSpec {
            epochs: options.epochs.unwrap_or(40),
            batch_size: 32,
            validation_split: 0.1,
            seed: options.seed,
            ..FitSpec::default()
        };
        let classes = docs.classes.len();
        let (model, head) = match options.hidden_units() {
            0 => {
                // scikit-learn's LogisticRegression(C=1) for two classes.
                let l2 = options.l2.unwrap_or(1.0 / train_rows.len() as f32);
                let labels: Vec<usize> = train_rows.iter().map(|&r| docs.labels[r]).collect();
                let (model, minimum) =
                    SoftmaxRegression::new(l2).fit(&x_train, &labels, classes)?;
                let head = Head::SoftmaxRegression {
                    l2,
                    iterations: minimum.iterations,
                    converged: minimum.converged,
                };
                (model.into_model(), head)
            }
            hidden => {
                let l2 = options.l2.unwrap_or(0.0);
                let mut model = Sequential::with_seed(&[x_train.row_len()], options.seed);
                model.add(
                    Dense::new(hidden)
                        .activation(Activation::Relu)
                        .kernel_l2(l2),
                )?;
                model.add(Dropout::new(0.3))?;
                model.add(
                    Dense::new(classes)
                        .activation(Activation::Softmax)
                        .kernel_l2(l2),
                )?;
                model.compile(
                    Adam::new(options.learning_rate.unwrap_or(0.001)),
                    Loss::SparseCategoricalCrossentropy,
                    &[Metric::Accuracy],
                )?;
                let mut stop = EarlyStopping::new("val_loss", 4).restore_best_weights(true);
                let fit_options = FitOptions {
                    verbose: Verbosity::Silent,
                    ..fit.options()
                };
                let history =
                    model.fit_with_callbacks(&x_train, &y_train, &fit_options, &mut [&mut stop])?;
                let head = Head::Mlp {
                    epochs: history.epochs.len(),
                };
                (model.into_model(), head)
            }
        };
        let assessment = model.assess(&x_test, &y_test, 256, 1)?.named(&docs.classes);
        Ok(TrainedText {
            classifier: TextClassifier {
                model,
                spec: TextSpec {
                    classes: docs.classes.clone(),
                    email: options.email,
                    features,
                    scaler,
                },
            },
            feature_seconds,
            train_documents: train_rows.len(),
            test_documents: test_rows.len(),
            head,
            fit,
            assessment,
        })
    }

    /// Saves the classifier (network and features) with the fit settings it was trained
    /// with and the epochs done.
    pub fn save(&self, path: &Path, fit: FitSpec, epochs_done: usize) -> Result<()> {
        let mut spec = ModelSpec::from_model(&self.model, fit, None)?;
        spec.text = Some(self.spec.clone());
        crate::io::save(path, &self.model, &spec, epochs_done)
    }

    /// The pretrained encoder the classifier's features come from, loaded and checked to be
    /// the one it was trained with; `None` for TF-IDF features.
    pub fn load_encoder(&self) -> Result<Option<SentenceEncoder>> {
        let TextFeatures::Pretrained {
            encoder,
            encoder_key: key,
            ..
        } = &self.spec.features
        else {
            return Ok(None);
        };
        let model = SentenceEncoder::load(encoder)?;
        let actual = encoder_key(&model)?;
        if &actual != key {
            return Err(Error::data(
                encoder,
                format!("this is not the encoder the classifier was trained with (weights {actual}, expected {key})"),
            ));
        }
        Ok(Some(model))
    }

    /// The features of `texts` (loading the encoder when the classifier uses one, which must
    /// be the one it was trained with), standardized when it has a scaler.
    pub fn features(&self, texts: &[&str], cache: &Path) -> Result<Tensor> {
        let encoder = self.load_encoder()?;
        self.features_with(encoder.as_ref(), texts, Some(cache))
    }

    /// [`TextClassifier::features`] with the encoder already loaded by
    /// [`TextClassifier::load_encoder`] (a server loads it once), caching embeddings in
    /// `cache` when given.
    pub fn features_with(
        &self,
        encoder: Option<&SentenceEncoder>,
        texts: &[&str],
        cache: Option<&Path>,
    ) -> Result<Tensor> {
        let x = match (&self.spec.features, encoder) {
            (TextFeatures::Tfidf(tfidf), _) => tfidf.transform(texts)?,
            (
                TextFeatures::Pretrained {
                    encoder_key: key,
                    layers,
                    ..
                },
                Some(model),
            ) => document_embeddings(model, key, layers, texts, self.spec.email, cache)?,
            (TextFeatures::Pretrained { encoder, .. }, None) => {
                return Err(Error::data(
                    encoder,
                    "this classifier needs its sentence encoder loaded",
                ))
            }
        };
        match &self.spec.scaler {
            Some(scaler) => scaler.transform(&x),
            None => Ok(x),
        }
    }

    /// Reads documents as the classifier was trained on them: each file (or every file in a
    /// folder, by name) is one document; e-mails are their subject and body text.
    pub fn read_documents(&self, inputs: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<String>)> {
        let mut files = Vec::new();
        for input in inputs {
            if input.is_dir() {
                let mut inside: Vec<PathBuf> = std::fs::read_dir(input)
                    .map_err(|e| Error::io(input, e))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file())
                    .collect();
                inside.sort();
                files.extend(inside);
            } else {
                files.push(input.clone());
            }
        }
        let mut texts = Vec::with_capacity(files.len());
        for file in &files {
            let bytes = crate::read::file(file, crate::read::Limit::DOCUMENT)?;
            texts.push(self.document_text(&bytes));
        }
        Ok((files, texts))
    }

    /// One document's text from its bytes (a file's, or standard input's), as the classifier
    /// was trained on documents: an e-mail's subject and body, or the text itself.
    pub fn document_text(&self, bytes: &[u8]) -> String {
        match self.spec.email {
            true => {
                email_text(bytes).unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned())
            }
            false => String::from_utf8_lossy(bytes).into_owned(),
        }
    }

    /// Each document's `top_k` most likely classes, best first.
    pub fn classify(
        &self,
        texts: &[&str],
        cache: &Path,
        top_k: usize,
    ) -> Result<Vec<Classification>> {
        let x = self.features(texts, cache)?;
        let outputs = self.model.predict(&x, 256)?;
        Ok(outputs
            .data()
            .chunks(outputs.row_len().max(1))
            .map(|row| classify(row, top_k, &self.spec.classes))
            .collect())
    }

    /// [`TextClassifier::classify`] on the documents of `inputs` (see
    /// [`TextClassifier::read_documents`]).
    pub fn classify_files(
        &self,
        inputs: &[PathBuf],
        cache: &Path,
        top_k: usize,
    ) -> Result<Vec<Prediction<Classification>>> {
        let (files, texts) = self.read_documents(inputs)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(files
            .iter()
            .zip(self.classify(&refs, cache, top_k)?)
            .map(|(file, class)| Prediction::of_input(file, class))
            .collect())
    }
}
