//! Any bytes given to the GGUF loader give a language model or an error, never a panic or an
//! allocation beyond a small multiple of the input's size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = ember::llm::LanguageModel::from_bytes(data, std::path::Path::new("fuzz.gguf")) {
        // A model that loads runs: one token through it.
        let mut cache = model.llama.cache();
        let _ = model.llama.forward(&[0], &mut cache, ember::llm::Logits::Last);
    }
});
