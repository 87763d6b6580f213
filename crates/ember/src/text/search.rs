//! Semantic search over question–answer pairs (a customer-service FAQ): the questions'
//! sentence embeddings, searched exactly by cosine similarity.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use super::features::encoder_key;
use super::sentence::SentenceEncoder;
use crate::data::table::Table;
use crate::error::{Error, Result};
use crate::tensor::matmul::{matmul, MatRef};
use crate::tensor::{stats, Tensor};

/// What an index file records beside its vectors.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct IndexInfo {
    questions: Vec<String>,
    answers: Vec<String>,
    encoder: PathBuf,
    encoder_key: String,
}

/// Question embeddings (L2-normalized) with their answers and the encoder that made them.
#[derive(Clone, Debug)]
pub struct FaqIndex {
    pub questions: Vec<String>,
    pub answers: Vec<String>,
    /// (questions, dim), each row of unit length.
    pub embeddings: Tensor,
    pub encoder: PathBuf,
    pub encoder_key: String,
}

impl FaqIndex {
    /// The question–answer pairs of a CSV file (read by [`Table`], a header naming the two
    /// columns); an empty question or answer is an error naming its line.
    pub fn read_pairs(
        file: &Path,
        question_column: &str,
        answer_column: &str,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let table = Table::read(file, &super::documents::document_csv_options())?;
        let (q, a) = (table.column(question_column)?, table.column(answer_column)?);
        let (mut questions, mut answers) = (Vec::new(), Vec::new());
        for (r, line) in table.lines.iter().enumerate() {
            let (question, answer) = (&table.columns[q][r], &table.columns[a][r]);
            match (question.as_deref(), answer.as_deref()) {
                (Some(question), Some(answer)) if !question.is_empty() && !answer.is_empty() => {
                    questions.push(question.to_string());
                    answers.push(answer.to_string());
                }
                _ => {
                    return Err(Error::data(
                        file,
                        format!("line {line} has an empty question or answer"),
                    ))
                }
            }
        }
        Ok((questions, answers))
    }

    /// Embeds the questions.
    pub fn build(
        encoder: &SentenceEncoder,
        questions: Vec<String>,
        answers: Vec<String>,
    ) -> Result<Self> {
        if questions.is_empty() || questions.len() != answers.len() {
            return Err(Error::invalid(format!(
                "an index needs as many answers as questions, at least one (got {} and {})",
                questions.len(),
                answers.len()
            )));
        }
        let refs: Vec<&str> = questions.iter().map(String::as_str).collect();
        let mut embeddings = encoder.encode(&refs, 32)?;
        Tensor::l2_normalize_rows(&mut embeddings);
        Ok(FaqIndex {
            questions,
            answers,
            embeddings,
            encoder: std::path::absolute(&encoder.dir).unwrap_or_else(|_| encoder.dir.clone()),
            encoder_key: encoder_key(encoder)?,
        })
    }

    /// The `k` best answers to `question`, embedded by `encoder` (the one that built the
    /// index: check [`encoder_key`] first when it may not be): (entry, cosine similarity),
    /// best first. An empty question, or an encoder of another width, is an error.
    pub fn ask(
        &self,
        encoder: &SentenceEncoder,
        question: &str,
        k: usize,
    ) -> Result<Vec<(usize, f32)>> {
        self.search(&self.embed_question(encoder, question)?, k)
    }

    /// The query embedding of `question` by `encoder`, for [`FaqIndex::search`]; an empty
    /// question, or an encoder of another width than the index's vectors, is an error.
    pub fn embed_question(&self, encoder: &SentenceEncoder, question: &str) -> Result<Vec<f32>> {
        if question.trim().is_empty() {
            return Err(Error::invalid("the question is empty"));
        }
        let dim = self.embeddings.row_len();
        if encoder.dim() != dim {
            return Err(Error::data(
                &self.encoder,
                format!(
                    "the encoder gives vectors of {}, the index holds vectors of {dim}",
                    encoder.dim()
                ),
            ));
        }
        Ok(encoder.encode(&[question], 1)?.data().to_vec())
    }

    /// The `k` best entries for a query embedding: (entry, cosine similarity), best first; a
    /// query of another width than the index's vectors, or not finite, is an error.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<(usize, f32)>> {
        let (rows, dim) = (self.embeddings.rows(), self.embeddings.row_len());
        if query.len() != dim {
            return Err(Error::shape(
                "FAQ search",
                format!(
                    "the query has {} values, the index's vectors {dim}",
                    query.len()
                ),
            ));
        }
        if query.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite("the query holds NaN or infinity".into()));
        }
        let norm = stats::l2_norm(query).max(1e-12);
        // Every similarity at once: one matrix–vector product through gemm.
        let mut scores = vec![0.0f32; rows];
        matmul(
            &mut scores,
            MatRef::new(self.embeddings.data(), rows, dim),
            MatRef::new(query, dim, 1),
            false,
        );
        let mut scored: Vec<(usize, f32)> =
            scores.into_iter().map(|s| s / norm).enumerate().collect();
        let k = k.min(scored.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        let by_score = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        scored.select_nth_unstable_by(k - 1, by_score);
        scored.truncate(k);
        scored.sort_by(by_score);
        Ok(scored)
    }

    /// Writes the index as one safetensors file (vectors, and the texts in its metadata),
    /// atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let info = IndexInfo {
            questions: self.questions.clone(),
            answers: self.answers.clone(),
            encoder: self.encoder.clone(),
            encoder_key: self.encoder_key.clone(),
        };
        let info = serde_json::to_string(&info)
            .map_err(|e| Error::invalid(format!("cannot serialise the index: {e}")))?;
        let raw: Vec<u8> = self
            .embeddings
            .data()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let view = TensorView::new(Dtype::F32, self.embeddings.shape().to_vec(), &raw)
            .map_err(|e| Error::invalid(format!("cannot store the index: {e}")))?;
        let metadata = HashMap::from([("ember.faq".to_string(), info)]);
        let bytes = safetensors::serialize([("embeddings", view)], Some(metadata))
            .map_err(|e| Error::invalid(format!("cannot serialise the index: {e}")))?;
        crate::atomic::write_atomically(path, &bytes)
    }

    /// Whether `path` is an index written by [`FaqIndex::save`] (a safetensors file whose
    /// metadata has `ember.faq`), read from its header alone.
    pub fn is_index(path: &Path) -> Result<bool> {
        crate::io::has_metadata(path, "ember.faq")
    }

    /// Reads an index written by [`FaqIndex::save`]; anything else is an error naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |m: String| Error::data(path, m);
        let bytes = crate::read::file(path, crate::read::Limit::MODEL)?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not an index file: {e}")))?;
        let info = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("ember.faq"))
            .ok_or_else(|| bad("not an Ember FAQ index".into()))?;
        let info: IndexInfo =
            serde_json::from_str(info).map_err(|e| bad(format!("damaged index: {e}")))?;
        let tensors =
            SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not an index file: {e}")))?;
        let view = tensors
            .tensor("embeddings")
            .map_err(|_| bad("the index has no embeddings".into()))?;
        let shape = view.shape().to_vec();
        if view.dtype() != Dtype::F32
            || shape.len() != 2
            || shape[0] != info.questions.len()
            || info.answers.len() != info.questions.len()
        {
            return Err(bad(format!(
                "damaged index: {} questions, {} answers, vectors {shape:?}",
                info.questions.len(),
                info.answers.len()
            )));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        // Every vector was normalized when the index was built: anything else is damage
        // (a NaN would otherwise rank first).
        for (i, row) in data.chunks(shape[1].max(1)).enumerate() {
            let norm = stats::l2_norm(row);
            if !(norm - 1.0).abs().lt(&1e-3) {
                return Err(bad(format!(
                    "damaged index: the vector of question {} ({:?}) is not of unit length \
                     (norm {norm})",
                    i + 1,
                    info.questions[i]
                )));
            }
        }
        Ok(FaqIndex {
            questions: info.questions,
            answers: info.answers,
            embeddings: Tensor::new(&shape, data)?,
            encoder: info.encoder,
            encoder_key: info.encoder_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_top_k_by_cosine() {
        let index = FaqIndex {
            questions: vec!["a".into(), "b".into(), "c".into()],
            answers: vec!["A".into(), "B".into(), "C".into()],
            embeddings: Tensor::new(&[3, 2], vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8]).unwrap(),
            encoder: PathBuf::from("m"),
            encoder_key: "k".into(),
        };
        let hits = index.search(&[2.0, 0.0], 2).unwrap();
        assert_eq!(hits[0].0, 0);
        assert!((hits[0].1 - 1.0).abs() < 1e-6);
        assert_eq!(hits[1].0, 2);
        assert!((hits[1].1 - 0.6).abs() < 1e-6);
        assert_eq!(index.search(&[0.0, 1.0], 10).unwrap().len(), 3);
        // A query of another width, or with a NaN, is an error, not an empty answer.
        let err = index.search(&[1.0; 3], 2).unwrap_err().to_string();
        assert!(err.contains("3 values, the index's vectors 2"), "{err}");
        assert!(index.search(&[f32::NAN, 0.0], 2).is_err());

        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("faq.index");
        index.save(&path).unwrap();
        let loaded = FaqIndex::load(&path).unwrap();
        assert_eq!(loaded.answers, index.answers);
        assert_eq!(loaded.embeddings, index.embeddings);
        std::fs::write(&path, b"junk").unwrap();
        assert!(FaqIndex::load(&path)
            .unwrap_err()
            .to_string()
            .contains("index"));
        // Vectors that are not of unit length (a NaN, a zero, a hand-edited file) are damage.
        for bad in [f32::NAN, 0.0, 3.0] {
            let mut damaged = index.clone();
            let mut values = index.embeddings.data().to_vec();
            values[2] = bad;
            values[3] = 0.0;
            damaged.embeddings = Tensor::new(index.embeddings.shape(), values).unwrap();
            damaged.save(&path).unwrap();
            let err = FaqIndex::load(&path).unwrap_err().to_string();
            assert!(
                err.contains("question 2 (\"b\") is not of unit length"),
                "{err}"
            );
        }
    }
}
