//! The pretrained all-MiniLM-L6-v2 encoder against the reference outputs that
//! sentence-transformers produced (../shared/data/all-minilm-l6-v2/reference): identical token
//! ids, last hidden states within 1e-4, sentence embeddings within 1e-5 per component, and
//! the pooled layer states text classifiers use.
//! The model folder is `$EMBER_MINILM_DIR`, else `$EMBER_DATA_DIR/all-minilm-l6-v2`, else
//! ../shared/data/all-minilm-l6-v2; the tests skip with a message when it is absent.

use std::path::PathBuf;

use ember::text::SentenceEncoder;
use serde_json::Value;

fn model_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("EMBER_MINILM_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("EMBER_DATA_DIR").map(|d| PathBuf::from(d).join("all-minilm-l6-v2"))
        })
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/all-minilm-l6-v2")
        });
    if dir.join("model.safetensors").is_file() {
        Some(dir)
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no all-MiniLM-L6-v2 model at {} under CI=true",
            dir.display()
        );
        eprintln!(
            "skipping: no all-MiniLM-L6-v2 model at {} (set EMBER_MINILM_DIR)",
            dir.display()
        );
        None
    }
}

fn reference(dir: &std::path::Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join("reference").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The 40 reference sentences and their records (text, embedding).
fn reference_embeddings(dir: &std::path::Path) -> (Vec<String>, Vec<Value>) {
    let embeddings = reference(dir, "embeddings.json");
    let records = embeddings["embeddings"].as_array().unwrap().clone();
    let texts = records
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect();
    (texts, records)
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn token_ids_match_sentence_transformers() {
    let Some(dir) = model_dir() else { return };
    let encoder = SentenceEncoder::load(&dir).unwrap();
    let tokens = reference(&dir, "tokens.json");
    for sentence in tokens["sentences"].as_array().unwrap() {
        let text = sentence["text"].as_str().unwrap();
        let expected: Vec<u32> = sentence["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = encoder.tokenizer.encode(text).unwrap();
        assert_eq!(got, expected, "sentence {}: {text:?}", sentence["index"]);
    }
}

#[test]
fn long_texts_are_tokenized_by_prefixes_to_the_same_ids() {
    let Some(dir) = model_dir() else { return };
    let encoder = SentenceEncoder::load(&dir).unwrap();
    let tokenizer = &encoder.tokenizer;
    let words = [
        "Spam", "filters", "don't", "café", "naïve", "中文", "x1y2", "--", "URL:",
    ];
    let long: String = (0..60_000)
        .map(|i| words[i % words.len()])
        .collect::<Vec<_>>()
        .join(" ");
    // No whitespace for a long stretch where the first prefix would be cut, and runs of
    // punctuation and newlines.
    let unbroken = format!("{}{} tail", "ab".repeat(5000), long);
    let lines = long.replace(' ', "\n\t");
    let short = "a short text, whole";
    for text in [long.as_str(), unbroken.as_str(), lines.as_str(), short] {
        let ids = tokenizer.encode(text).unwrap();
        assert_eq!(
            ids,
            tokenizer.encode_whole(text).unwrap(),
            "{}",
            &text[..40.min(text.len())]
        );
        assert!(ids.len() <= tokenizer.max_length());
    }
    assert_eq!(
        tokenizer.encode(&long).unwrap().len(),
        tokenizer.max_length()
    );
}

#[test]
fn hidden_states_and_embeddings_match_sentence_transformers() {
    let Some(dir) = model_dir() else { return };
    let encoder = SentenceEncoder::load(&dir).unwrap();

    // Last hidden states of sentences 0–2, one sentence per batch (no padding).
    let hidden = reference(&dir, "hidden_states_first3.json");
    let mut worst_hidden = 0.0f32;
    for sentence in hidden["sentences"].as_array().unwrap() {
        let ids: Vec<u32> = sentence["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let (states, _) = encoder.encoder.hidden_states(&[ids], 0).unwrap();
        let expected: Vec<f32> = sentence["last_hidden_state"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        assert_eq!(states.len(), expected.len());
        for (a, b) in states.data().iter().zip(&expected) {
            worst_hidden = worst_hidden.max((a - b).abs());
        }
    }
    assert!(
        worst_hidden < 1e-4,
        "hidden states differ by up to {worst_hidden}"
    );

    // Sentence embeddings of all 40, encoded in batches of 32 with dynamic padding.
    let (owned, records) = reference_embeddings(&dir);
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let got = encoder.encode(&texts, 32).unwrap();
    assert_eq!(got.shape(), &[40, 384]);
    let mut worst = 0.0f32;
    for (i, record) in records.iter().enumerate() {
        let expected = floats(&record["embedding"]);
        let row = &got.data()[i * 384..(i + 1) * 384];
        let cosine: f32 = row.iter().zip(&expected).map(|(a, b)| a * b).sum();
        assert!(cosine >= 0.99999, "sentence {i}: cosine {cosine}");
        for (a, b) in row.iter().zip(&expected) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst < 1e-5, "embeddings differ by up to {worst}");
    eprintln!("max |difference|: hidden states {worst_hidden:.2e}, embeddings {worst:.2e}");
}

#[test]
fn pooled_layer_states_agree_with_the_reference() {
    // The classifier features: per layer, the mean and the maximum of the token states.
    // The last layer's mean, normalized, is the sentence embedding, and its maximum is the
    // reference last hidden state's maximum over the tokens.
    let Some(dir) = model_dir() else { return };
    let encoder = SentenceEncoder::load(&dir).unwrap();
    let depth = encoder.encoder.config.num_hidden_layers;
    let (owned, records) = reference_embeddings(&dir);
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let pooled = encoder
        .encode_pooled_layers(&texts, 32, &[0, depth])
        .unwrap();
    assert_eq!(pooled.shape(), &[40, 4 * 384]);
    for (i, record) in records.iter().enumerate() {
        let row = &pooled.data()[i * 4 * 384..(i + 1) * 4 * 384];
        let (first, last) = row.split_at(2 * 384);
        let (mean, max) = last.split_at(384);
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
        for (a, b) in mean.iter().zip(floats(&record["embedding"])) {
            assert!(
                (a / norm - b).abs() < 1e-5,
                "sentence {i}: {a} / {norm} vs {b}"
            );
        }
        for (means, maxima) in [first.split_at(384), (mean, max)] {
            for (m, x) in means.iter().zip(maxima) {
                assert!(x >= m, "sentence {i}: a maximum below the mean");
            }
        }
    }
    let hidden = reference(&dir, "hidden_states_first3.json");
    for (i, sentence) in hidden["sentences"].as_array().unwrap().iter().enumerate() {
        let tokens = sentence["last_hidden_state"].as_array().unwrap();
        let text = sentence["text"].as_str().unwrap();
        let got = encoder.encode_pooled_layers(&[text], 1, &[depth]).unwrap();
        for d in 0..384 {
            let expected = tokens
                .iter()
                .map(|t| t[d].as_f64().unwrap() as f32)
                .fold(f32::NEG_INFINITY, f32::max);
            let value = got.data()[384 + d];
            assert!((value - expected).abs() < 1e-4, "sentence {i}, feature {d}");
        }
    }
    let err = encoder
        .encode_pooled_layers(&texts[..1], 1, &[depth + 1])
        .unwrap_err();
    assert!(err.to_string().contains("layer 7"), "{err}");
}

#[test]
fn a_damaged_model_folder_is_a_clear_error() {
    let Some(dir) = model_dir() else { return };
    let temporary = tempfile::tempdir().unwrap();
    let scratch = temporary.path();
    for name in [
        "config.json",
        "tokenizer.json",
        "modules.json",
        "sentence_bert_config.json",
    ] {
        std::fs::copy(dir.join(name), scratch.join(name)).unwrap();
    }
    std::fs::create_dir_all(scratch.join("1_Pooling")).unwrap();
    std::fs::copy(
        dir.join("1_Pooling/config.json"),
        scratch.join("1_Pooling/config.json"),
    )
    .unwrap();
    // A truncated weights file.
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    std::fs::write(scratch.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let err = SentenceEncoder::load(scratch).err().unwrap().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    // A config the encoder cannot run.
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        scratch.join("config.json"),
        config.replace("\"gelu\"", "\"relu6\""),
    )
    .unwrap();
    let err = SentenceEncoder::load(scratch).err().unwrap().to_string();
    assert!(
        err.contains("hidden_act") && err.contains("config.json"),
        "{err}"
    );
}
