//! One served model: what kind it is, what it takes (its schema), and how its worker runs a
//! batch. Loading files and folders into models is [`crate::registry`]'s.

use std::path::PathBuf;
use std::sync::Arc;

use ember::data::preprocess::Feature;
use ember::saved::SavedModel;
use ember::tabular::Task;
use ember::text::SentenceEncoder;
use ember::Tensor;
use serde_json::{json, Value};

use crate::batch::{concat_rows, run_together, BatchLimits, Batcher, Rows, Run};
use crate::metrics::Metrics;

pub struct Served {
    pub name: String,
    /// The file (or encoder folder) it was loaded from.
    pub source: PathBuf,
    pub model: SavedModel,
    /// The encoder a FAQ index, or a text classifier on pretrained features, embeds with.
    pub encoder: Option<Arc<SentenceEncoder>>,
    pub batcher: Batcher,
}

impl Served {
    /// Starts the model's worker.
    pub fn start(
        name: &str,
        source: PathBuf,
        model: SavedModel,
        encoder: Option<Arc<SentenceEncoder>>,
        limits: BatchLimits,
        metrics: &Metrics,
    ) -> Served {
        let run = runner(&model, encoder.clone());
        let batcher = Batcher::start(name, limits, metrics.batch(name), run);
        Served {
            name: name.to_string(),
            source,
            model,
            encoder,
            batcher,
        }
    }

    /// "network", "table", "text", "faq", "encoder", "language" or "recommender".
    pub fn kind_name(&self) -> &'static str {
        self.model.kind()
    }

    /// The network inside, for the kinds that have one.
    pub fn network(&self) -> Option<&ember::Model> {
        self.model.network()
    }

    /// A human-readable summary: the network's layers, or what an index, encoder or
    /// recommender holds. It names no file or folder but by its own name: a client learns
    /// nothing of the server's file system.
    pub fn summary(&self) -> String {
        let encoder = self.encoder.as_ref().map(|e| e.dir.as_path());
        ember::report::saved::description(&self.model, encoder).unwrap_or_else(|| {
            self.network()
                .map(ember::Model::summary)
                .unwrap_or_default()
        })
    }

    /// What `/v1/models/{name}:predict` takes, for clients and the playground.
    pub fn input_schema(&self) -> Value {
        match &self.model {
            SavedModel::Network(network) => {
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
            SavedModel::Table(table) => {
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
            SavedModel::Text(classifier) => {
                json!({"type": "text", "classes": classifier.spec.classes})
            }
            SavedModel::Faq(index) => json!({"type": "faq", "questions": index.questions.len()}),
            SavedModel::Encoder(e) => json!({"type": "text", "dim": e.dim()}),
            SavedModel::Language(m) => json!({"type": "chat", "context": m.llama.config.context}),
            SavedModel::Recommender(r) => json!({
                "type": "recommender",
                "users": r.users.len(),
                "items": r.items.len(),
                "similar_items": r.model.factors > 0,
            }),
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

/// A folder's own name (`all-minilm-l6-v2`), never the path to it.
/// How a kind's worker runs a batch: the requests' rows together through the network (or
/// the encoder), in one pass.
fn runner(model: &SavedModel, encoder: Option<Arc<SentenceEncoder>>) -> Run {
    match model {
        SavedModel::Network(n) => {
            let n = n.clone();
            Box::new(move |inputs| run_network(&n.model, inputs, takes_no_texts))
        }
        SavedModel::Table(t) => {
            let t = t.clone();
            Box::new(move |inputs| run_network(&t.model, inputs, takes_no_texts))
        }
        SavedModel::Text(classifier) => {
            let classifier = classifier.clone();
            Box::new(move |inputs| {
                run_network(&classifier.model, inputs, |texts| {
                    classifier.features_with(encoder.as_deref(), texts, None)
                })
            })
        }
        SavedModel::Language(_) => refuse("a language model answers POST /v1/chat/completions"),
        SavedModel::Recommender(_) => {
            refuse("a recommender answers POST /v1/recommend/NAME with {\"user\": …}")
        }
        SavedModel::Faq(_) | SavedModel::Encoder(_) => {
            let encoder = match model {
                SavedModel::Encoder(e) => Some(e.clone()),
                _ => encoder,
            };
            Box::new(move |inputs| {
                run_together(inputs, |rows| {
                    let texts = all_texts(&rows)?;
                    let encoder = encoder
                        .as_deref()
                        .ok_or_else(|| ember::Error::invalid("this model has no encoder"))?;
                    encoder.encode(&texts, 32)
                })
            })
        }
    }
}

/// The worker of a kind that takes no rows: each request refused with `message`.
fn refuse(message: &'static str) -> Run {
    Box::new(move |inputs: Vec<Rows>| {
        inputs
            .iter()
            .map(|_| Err(crate::error::ApiError::invalid(message)))
            .collect()
    })
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
