//! Text from a GGUF language model: the model loaded and timed, and a raw prompt's
//! continuation.

use std::path::Path;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::llm::{generate, GenerateOptions, Generation, LanguageModel};

/// Loads a language model; `on_loaded` hears of it and of the seconds loading took.
pub fn load(path: &Path, on_loaded: impl FnOnce(&LanguageModel, f64)) -> Result<LanguageModel> {
    let started = Instant::now();
    let model = LanguageModel::load(path)?;
    on_loaded(&model, started.elapsed().as_secs_f64());
    Ok(model)
}

/// Refuses the sampling flags `given` (`--top-k`, `--seed`, …) at a `temperature` of 0:
/// greedy decoding takes the most likely token, and draws nothing.
pub fn refuse_greedy_settings(temperature: f32, given: &[(&'static str, bool)]) -> Result<()> {
    match temperature == 0.0 {
        true => super::checks::refuse_given(
            given,
            "does nothing at --temperature 0: greedy decoding takes the most likely token every time",
        ),
        false => Ok(()),
    }
}

/// Continues `prompt`, used as written (special tokens in it are read as those tokens, and
/// no chat template is applied), with the model in `model`: `load` loads it once the prompt
/// is known not to be empty, and `on_text` hears the text as it is generated.
pub fn complete(
    model: &Path,
    prompt: &str,
    options: &GenerateOptions,
    load: impl FnOnce(&Path) -> Result<LanguageModel>,
    on_text: impl FnMut(&str) -> Result<()>,
) -> Result<Generation> {
    if prompt.is_empty() {
        return Err(Error::invalid("the prompt is empty"));
    }
    let model = load(model)?;
    let ids = model.vocab.prompt(prompt)?;
    let mut cache = model.llama.cache();
    generate(&model, &mut cache, &ids, options, on_text)
}
