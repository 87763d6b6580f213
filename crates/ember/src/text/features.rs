//! Document features for text classifiers: frozen sentence embeddings from a pretrained
//! encoder (cached on disk by content and model), or TF-IDF bags of words for when no
//! pretrained model is at hand.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::sentence::SentenceEncoder;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// How a text classifier turns documents into vectors; saved with the classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TextFeatures {
    /// Vectors from a pretrained encoder; `encoder_key` identifies its weights, and is checked
    /// when the classifier is loaded.
    /// With `layers`, the token states after those layers pooled by mean and maximum
    /// ([`SentenceEncoder::encode_pooled_layers`]); without (the first classifiers), the
    /// sentence embedding.
    Pretrained {
        encoder: PathBuf,
        encoder_key: String,
        #[serde(default)]
        layers: Vec<usize>,
    },
    /// TF-IDF over a vocabulary fitted on the training documents.
    Tfidf(TfIdf),
}

/// 64-bit FNV-1a: a stable content hash (the same in every Ember build and platform).
pub fn fnv64(chunks: &[&[u8]]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for chunk in chunks {
        for &b in *chunk {
            hash ^= b as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= chunk.len() as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The identity of an encoder folder's weights and settings: a hash of its config, weights
/// and tokenizer, and of the maximum sequence length used.
pub fn encoder_key(encoder: &SentenceEncoder) -> Result<String> {
    let mut parts = Vec::new();
    for name in ["config.json", "model.safetensors", "tokenizer.json"] {
        let path = encoder.dir.join(name);
        parts.push(std::fs::read(&path).map_err(|e| Error::io(&path, e))?);
    }
    let length = encoder.tokenizer.max_length().to_le_bytes();
    let mut chunks: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    chunks.push(&length);
    Ok(format!("{:016x}", fnv64(&chunks)))
}

/// The embeddings of `texts`: their sentence embeddings (n, dim) when `layers` is empty,
/// else their pooled token states after `layers` (n, layers × 2 × dim). Those already computed are
/// read from the cache file in `cache_dir` for this encoder (`encoder_key`) and layers, and
/// the new ones are added to it.
pub fn embed_cached(
    encoder: &SentenceEncoder,
    key: &str,
    layers: &[usize],
    texts: &[&str],
    cache_dir: Option<&Path>,
) -> Result<Tensor> {
    let dim = encoder.dim() * (2 * layers.len()).max(1);
    let hashes: Vec<u64> = texts.iter().map(|t| fnv64(&[t.as_bytes()])).collect();
    let name = if layers.is_empty() {
        format!("embeddings-{key}.bin")
    } else {
        let list: Vec<String> = layers.iter().map(usize::to_string).collect();
        format!("embeddings-{key}-pooled-{}.bin", list.join("-"))
    };
    let file = cache_dir.map(|d| d.join(name));
    let mut cached: HashMap<u64, Vec<f32>> = match &file {
        Some(f) if f.is_file() => read_cache(f, dim)?,
        _ => HashMap::new(),
    };
    let missing: Vec<usize> = (0..texts.len())
        .filter(|&i| !cached.contains_key(&hashes[i]))
        .collect();
    if !missing.is_empty() {
        let todo: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
        let fresh = if layers.is_empty() {
            encoder.encode(&todo, 32)?
        } else {
            encoder.encode_pooled_layers(&todo, 32, layers)?
        };
        for (&i, row) in missing.iter().zip(fresh.data().chunks(dim)) {
            cached.insert(hashes[i], row.to_vec());
        }
        if let (Some(f), Some(dir)) = (&file, cache_dir) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            write_cache(f, &cached)?;
        }
    }
    let mut data = Vec::with_capacity(texts.len() * dim);
    for h in &hashes {
        data.extend_from_slice(&cached[h]);
    }
    Tensor::new(&[texts.len(), dim], data)
}

/// Cache file: records of (hash u64 LE, dim × f32 LE).
fn read_cache(path: &Path, dim: usize) -> Result<HashMap<u64, Vec<f32>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let record = 8 + 4 * dim;
    if bytes.len() % record != 0 {
        return Err(Error::data(
            path,
            "damaged embedding cache (delete it to rebuild)",
        ));
    }
    Ok(bytes
        .chunks_exact(record)
        .map(|r| {
            let hash = u64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
            let values = r[8..]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (hash, values)
        })
        .collect())
}

fn write_cache(path: &Path, cached: &HashMap<u64, Vec<f32>>) -> Result<()> {
    let mut keys: Vec<&u64> = cached.keys().collect();
    keys.sort();
    let mut bytes = Vec::new();
    for k in keys {
        bytes.extend_from_slice(&k.to_le_bytes());
        for v in &cached[k] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    crate::atomic::write_atomically(path, &bytes)
}

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

impl TfIdf {
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
        let index: HashMap<&str, usize> = self
            .vocabulary
            .iter()
            .enumerate()
            .map(|(i, w)| (w.as_str(), i))
            .collect();
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
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
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

    #[test]
    fn the_content_hash_is_stable() {
        // Fixed values (computed independently in Python): the hash must not change between
        // builds, since it names cache entries.
        assert_eq!(format!("{:016x}", fnv64(&[b""])), "af63bd4c8601b7df");
        assert_eq!(format!("{:016x}", fnv64(&[b"ember"])), "d6e0610179468793");
        // Chunk boundaries count.
        assert_ne!(fnv64(&[b"ab", b"c"]), fnv64(&[b"a", b"bc"]));
    }
}
