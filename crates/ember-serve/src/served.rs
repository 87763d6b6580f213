//! One served model: what kind it is, what it takes (its schema), and how its worker runs a
//! batch. Loading files and folders into models is [`crate::registry`]'s.

use std::path::PathBuf;
use std::sync::Arc;

use ember::data::preprocess::Feature;
use ember::saved::NetworkModel;
use ember::tabular::TabularModel;
use ember::tabular::Task;
use ember::text::{FaqIndex, SentenceEncoder, TextClassifier};
use ember::Tensor;
use serde_json::{json, Value};

use crate::batch::{concat_rows, run_together, BatchLimits, Batcher, Rows, Run};
use crate::metrics::Metrics;

/// A model as the server holds it (shared with its worker thread).
pub enum Kind {
    /// A network on tensors (images, IDX samples, rows of numbers).
    Network(Arc<NetworkModel>),
    /// A table model: raw rows in, the saved preprocessing, then its network.
    Table(Arc<TabularModel>),
    /// A text classifier, with its sentence encoder when its features are pretrained.
    Text {
        classifier: Arc<TextClassifier>,
        encoder: Option<Arc<SentenceEncoder>>,
    },
    /// A FAQ index and the encoder that embeds its questions.
    Faq {
        index: Arc<FaqIndex>,
        encoder: Arc<SentenceEncoder>,
    },
    /// A sentence encoder folder: texts in, embeddings out.
    Encoder(Arc<SentenceEncoder>),
    /// A generative language model (a GGUF file), for `/v1/chat/completions`.
    Language(Arc<ember::llm::LanguageModel>),
}

pub struct Served {
    pub name: String,
    /// The file (or encoder folder) it was loaded from.
    pub source: PathBuf,
    pub kind: Kind,
    pub batcher: Batcher,
}

impl Served {
    /// Starts the model's worker.
    pub fn start(
        name: &str,
        source: PathBuf,
        kind: Kind,
        limits: BatchLimits,
        metrics: &Metrics,
    ) -> Served {
        let batcher = Batcher::start(name, limits, metrics.batch(name), runner(&kind));
        Served {
            name: name.to_string(),
            source,
            kind,
            batcher,
        }
    }

    /// "network", "table", "text", "faq" or "encoder".
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Network(_) => "network",
            Kind::Table(_) => "table",
            Kind::Text { .. } => "text",
            Kind::Faq { .. } => "faq",
            Kind::Encoder(_) => "encoder",
            Kind::Language(_) => "language",
        }
    }

    /// The network inside, for the kinds that have one.
    pub fn network(&self) -> Option<&ember::Model> {
        match &self.kind {
            Kind::Network(n) => Some(&n.model),
            Kind::Table(t) => Some(&t.model),
            Kind::Text { classifier, .. } => Some(&classifier.model),
            Kind::Faq { .. } | Kind::Encoder(_) | Kind::Language(_) => None,
        }
    }

    /// A human-readable summary: the network's layers, or what an index or encoder holds.
    pub fn summary(&self) -> String {
        match &self.kind {
            Kind::Faq { index, encoder } => format!(
                "FAQ index of {} questions, embedded by {}",
                index.questions.len(),
                encoder.dir.display()
            ),
            Kind::Encoder(e) => encoder_summary(e),
            Kind::Language(m) => {
                let c = &m.llama.config;
                format!(
                    "{} language model: {} layers, hidden {}, {} attention heads ({} key-value), vocabulary {}, context {}",
                    c.architecture, c.layers, c.hidden, c.heads, c.kv_heads, c.vocab, c.context
                )
            }
            _ => self
                .network()
                .map(ember::Model::summary)
                .unwrap_or_default(),
        }
    }

    /// What `/v1/models/{name}:predict` takes, for clients and the playground.
    pub fn input_schema(&self) -> Value {
        match &self.kind {
            Kind::Network(network) => {
                let data = network.spec.data.as_ref();
                let shape = data.map(|d| d.sample_shape()).unwrap_or_default();
                let image = match shape.as_slice() {
                    [h, w] => json!({"height": h, "width": w, "channels": 1}),
                    [h, w, c] => json!({"height": h, "width": w, "channels": c}),
                    _ => Value::Null,
                };
                json!({
                    "type": "tensor",
                    "shape": shape,
                    "image": image,
                    "classes": data.map(|d| d.classes.clone()).unwrap_or_default(),
                })
            }
            Kind::Table(table) => {
                let pre = &table.preprocessor;
                let columns: Vec<Value> = pre
                    .features
                    .iter()
                    .map(|f| match f {
                        Feature::Numeric { column, .. } => {
                            json!({"name": column, "kind": "numeric"})
                        }
                        Feature::Categorical { column, categories } => {
                            let known: Vec<&String> = categories
                                .iter()
                                .filter(|c| c.as_str() != ember::data::preprocess::MISSING)
                                .collect();
                            json!({"name": column, "kind": "categorical", "categories": known})
                        }
                    })
                    .collect();
                let (target, task) = match &pre.target {
                    ember::data::preprocess::Target::Classes { column, .. } => {
                        (column, table_task(table.task))
                    }
                    ember::data::preprocess::Target::Regression { column, .. } => {
                        (column, "regression")
                    }
                };
                json!({"type": "table", "columns": columns, "target": target, "task": task})
            }
            Kind::Text { classifier, .. } => {
                json!({"type": "text", "classes": classifier.spec.classes})
            }
            Kind::Faq { index, .. } => json!({"type": "faq", "questions": index.questions.len()}),
            Kind::Encoder(e) => json!({"type": "text", "dim": e.dim()}),
            Kind::Language(m) => json!({"type": "chat", "context": m.llama.config.context}),
        }
    }
}

fn table_task(task: Task) -> &'static str {
    match task {
        Task::Binary => "binary",
        Task::Regression => "regression",
        _ => "multiclass",
    }
}

fn encoder_summary(e: &SentenceEncoder) -> String {
    let c = &e.encoder.config;
    format!(
        "sentence encoder: {} layers, {} heads, {}-dimensional embeddings{}, up to {} tokens",
        c.num_hidden_layers,
        c.num_attention_heads,
        c.hidden_size,
        if e.normalize { " (unit length)" } else { "" },
        e.tokenizer.max_length()
    )
}

/// How a kind's worker runs a batch: the requests' rows together through the network (or
/// the encoder), in one pass.
fn runner(kind: &Kind) -> Run {
    match kind {
        Kind::Network(n) => {
            let n = n.clone();
            Box::new(move |inputs| run_network(&n.model, inputs, takes_no_texts))
        }
        Kind::Table(t) => {
            let t = t.clone();
            Box::new(move |inputs| run_network(&t.model, inputs, takes_no_texts))
        }
        Kind::Text {
            classifier,
            encoder,
        } => {
            let (classifier, encoder) = (classifier.clone(), encoder.clone());
            Box::new(move |inputs| {
                run_network(&classifier.model, inputs, |texts| {
                    classifier.features_with(encoder.as_deref(), texts, None)
                })
            })
        }
        Kind::Language(_) => Box::new(|inputs: Vec<Rows>| {
            inputs
                .iter()
                .map(|_| {
                    Err(crate::error::ApiError::invalid(
                        "a language model answers POST /v1/chat/completions",
                    ))
                })
                .collect()
        }),
        Kind::Faq { encoder, .. } | Kind::Encoder(encoder) => {
            let encoder = encoder.clone();
            Box::new(move |inputs| {
                run_together(inputs, |rows| {
                    let texts = all_texts(&rows)?;
                    encoder.encode(&texts, 32)
                })
            })
        }
    }
}

/// The texts of requests that are all texts.
fn all_texts<'a>(rows: &[&'a Rows]) -> ember::Result<Vec<&'a str>> {
    let mut texts = Vec::new();
    for r in rows {
        match r {
            Rows::Texts(t) => texts.extend(t.iter().map(String::as_str)),
            Rows::Tensor(_) => return Err(ember::Error::invalid("this model takes texts")),
        }
    }
    Ok(texts)
}

/// The featurizer of a network that reads no texts.
fn takes_no_texts(_: &[&str]) -> ember::Result<Tensor> {
    Err(ember::Error::invalid("this model takes tensors"))
}

/// Requests' rows through `model` in one pass; texts become features by `featurize`.
fn run_network(
    model: &ember::Model,
    inputs: Vec<Rows>,
    featurize: impl Fn(&[&str]) -> ember::Result<Tensor>,
) -> Vec<crate::error::ApiResult<Tensor>> {
    run_together(inputs, |rows| {
        let x = match all_texts(&rows) {
            // Every request is texts: their features at once.
            Ok(texts) => featurize(&texts)?,
            Err(_) => {
                let tensors = rows
                    .iter()
                    .map(|r| match r {
                        Rows::Tensor(t) => Ok(t.clone()),
                        Rows::Texts(t) => {
                            featurize(&t.iter().map(String::as_str).collect::<Vec<_>>())
                        }
                    })
                    .collect::<ember::Result<Vec<Tensor>>>()?;
                concat_rows(&tensors)?
            }
        };
        predict_any_batch(model, &x)
    })
}

/// `model`'s outputs for `x`, each row the same whatever batch it came in. gemm multiplies a
/// single row by another path (a matrix–vector product summing in another order) than two
/// rows or more, so a batch of one runs as two (the row twice) and keeps the first answer:
/// a request answered alone then equals, bit for bit, its answer in company.
fn predict_any_batch(model: &ember::Model, x: &Tensor) -> ember::Result<Tensor> {
    if x.rows() != 1 {
        return model.predict(x, x.rows().max(1));
    }
    let twice = concat_rows(&[x.clone(), x.clone()])?;
    model.predict(&twice, 2)?.slice_rows(0, 1)
}
