//! Document features for text classifiers from a pretrained encoder: frozen sentence
//! embeddings or pooled layer states, cached on disk by content and model. (TF-IDF, for when
//! no pretrained model is at hand, is `data::tfidf`.)

use std::collections::HashMap;
use std::path::Path;

use super::sentence::SentenceEncoder;
use crate::error::{Error, Result};
use crate::read::{self, Limit};
use crate::tensor::Tensor;

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
        parts.push(read::file(&path, Limit::MODEL)?);
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
    let cache = Limit {
        what: "an embedding cache",
        ..Limit::MODEL
    };
    let bytes = read::file(path, cache)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
