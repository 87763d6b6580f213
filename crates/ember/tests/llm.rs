//! SmolLM2-135M-Instruct (Q4_1 GGUF) against llama.cpp on the same file: the reference
//! outputs of llama-cpp-python stored by bench/llm_reference.py in
//! src/llm/llamacpp_reference.json — token ids, the logits of every position of a 128-token
//! text, greedy generations and a perplexity.
//! The model is `$EMBER_LLM_MODEL`, else target/models/SmolLM2-135M-Instruct.Q4_1.gguf (put
//! there by scripts/fetch-smollm2.sh, which CI runs); the tests skip with a message when it
//! is absent, and fail under CI=true.

use std::path::PathBuf;
use std::sync::OnceLock;

use ember::llm::{generate, GenerateOptions, LanguageModel, Logits, Sampling};
use serde_json::Value;

fn model() -> Option<&'static LanguageModel> {
    static MODEL: OnceLock<Option<LanguageModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = std::env::var_os("EMBER_LLM_MODEL")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("../../target/models/SmolLM2-135M-Instruct.Q4_1.gguf")
                });
            if !path.is_file() {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "no SmolLM2 model at {} under CI=true (scripts/fetch-smollm2.sh fetches it)",
                    path.display()
                );
                eprintln!(
                    "skipping: no SmolLM2 model at {} (run scripts/fetch-smollm2.sh)",
                    path.display()
                );
                return None;
            }
            Some(LanguageModel::load(&path).unwrap())
        })
        .as_ref()
}

fn reference() -> &'static Value {
    static REFERENCE: OnceLock<Value> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        serde_json::from_str(include_str!("../src/llm/llamacpp_reference.json")).unwrap()
    })
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn the_model_is_the_one_the_reference_was_made_with() {
    let Some(m) = model() else { return };
    let c = &m.llama.config;
    assert_eq!(
        (
            c.layers,
            c.hidden,
            c.heads,
            c.kv_heads,
            c.head_dim,
            c.feed_forward,
            c.vocab,
            c.context
        ),
        (30, 576, 9, 3, 64, 1536, 49152, 8192)
    );
    assert_eq!((c.rope_base, c.rms_eps), (100000.0, 1e-5));
    assert_eq!(m.vocab.eos, Some(2));
    assert!(!m.vocab.add_bos);
    assert_eq!(reference()["model"]["size"], 98362432);
}

/// Token ids equal llama.cpp's on English, Chinese, code, emoji, whitespace runs, digits and
/// text with ChatML tokens written in it (parsed as special tokens, and as plain text).
#[test]
fn tokenization_matches_llama_cpp() {
    let Some(m) = model() else { return };
    let r = reference();
    for (key, special) in [("tokenize", true), ("tokenize_plain", false)] {
        for case in r[key].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let got = m.vocab.encode(text, special).unwrap();
            assert_eq!(got, ids(&case["ids"]), "{key} {text:?}");
            if !special || !text.contains("<|") {
                assert_eq!(m.vocab.decode(&got), text, "decoding gives the text back");
            }
        }
    }
}

/// Logits computed in a different order (a batch, or token by token) differ after the 8-bit
/// quantisation of activations amplifies the last bits: llama.cpp run token by token differs
/// from itself run in one batch by up to 1.14 from position 11 on, and changes 6 of 128 most
/// likely tokens (`incremental_max_abs_diff` in the reference). Ember differs from llama.cpp
/// by as much, so a choice between tokens whose logits are closer than this may go either way.
const NEAR_TIE: f32 = 0.5;

/// See `greedy_generation_matches_llama_cpp`.
const FREE_RUN_TIE: f32 = 0.2;

/// The logits of all 128 positions of a text agree with llama.cpp's: bit for bit (to the
/// fixture's 5 decimals) on the first positions, the same most likely token at every
/// position but near ties (121 of 128; llama.cpp agrees with itself at 122), and every stored logit (the top 20
/// and 64 fixed probes per position, logits spanning about ±30) within llama.cpp's own
/// batch-versus-incremental spread.
#[test]
fn logits_of_every_position_match_llama_cpp() {
    let Some(m) = model() else { return };
    let r = &reference()["logits"];
    let tokens = ids(&r["ids"]);
    assert_eq!(tokens.len(), 128);
    let mut cache = m.llama.cache();
    let logits = m.llama.forward(&tokens, &mut cache, Logits::All).unwrap();
    let vocab = m.llama.config.vocab;
    let probes = ids(&reference()["probe_ids"]);
    let own_spread = r["incremental_max_abs_diff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .fold(0f32, f32::max);
    let (mut worst, mut sum, mut count, mut ties) = (0f32, 0f64, 0usize, 0);
    for (p, want) in r["positions"].as_array().unwrap().iter().enumerate() {
        let row = &logits[p * vocab..(p + 1) * vocab];
        let top = want["top"].as_array().unwrap();
        let argmax = row
            .iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > row[b] { i } else { b });
        let (first, second) = (
            top[0][1].as_f64().unwrap() as f32,
            top[1][1].as_f64().unwrap() as f32,
        );
        if argmax as u64 != top[0][0].as_u64().unwrap() {
            assert!(
                first - second < NEAR_TIE,
                "position {p}: Ember {argmax}, llama.cpp {}",
                top[0][0]
            );
            assert!(
                top[..5]
                    .iter()
                    .any(|t| t[0].as_u64() == Some(argmax as u64)),
                "position {p}"
            );
            ties += 1;
        }
        let pairs = top
            .iter()
            .map(|t| {
                (
                    t[0].as_u64().unwrap() as usize,
                    t[1].as_f64().unwrap() as f32,
                )
            })
            .chain(
                probes
                    .iter()
                    .zip(want["probe"].as_array().unwrap())
                    .map(|(&i, v)| (i as usize, v.as_f64().unwrap() as f32)),
            );
        for (i, l) in pairs {
            let d = (row[i] - l).abs();
            if p < 8 {
                assert!(d <= 1e-4, "position {p}, token {i}: {} vs {l}", row[i]);
            }
            worst = worst.max(d);
            sum += d as f64;
            count += 1;
        }
    }
    eprintln!(
        "logits against llama.cpp: largest difference {worst:.4}, mean {:.4}; llama.cpp's own spread {own_spread:.4}; {ties} of 128 most likely tokens differ, all near ties",
        sum / count as f64
    );
    assert!(worst < own_spread, "largest logit difference {worst}");
    assert!(
        sum / (count as f64) < 0.2,
        "mean logit difference {}",
        sum / count as f64
    );
    assert!(ties <= 8, "{ties} different choices");
}

/// Running a text in one batch, in uneven batches or token by token gives the same logits
/// up to the rounding amplification llama.cpp shows too, and the same most likely token; a
/// rewound cache gives bit-identical logits again.
#[test]
fn batches_and_single_tokens_agree() {
    let Some(m) = model() else { return };
    let tokens = ids(&reference()["logits"]["ids"]);
    let tokens = &tokens[..40];
    let mut cache = m.llama.cache();
    let whole = m.llama.forward(tokens, &mut cache, Logits::Last).unwrap();
    let argmax = |l: &[f32]| {
        l.iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > l[b] { i } else { b })
    };
    for sizes in [vec![20, 20], vec![11, 11, 11, 7], vec![1; 40]] {
        let mut cache = m.llama.cache();
        let mut last = Vec::new();
        let mut at = 0;
        let n_last = *sizes.last().unwrap();
        for n in sizes {
            last = m
                .llama
                .forward(&tokens[at..at + n], &mut cache, Logits::Last)
                .unwrap();
            at += n;
        }
        assert_eq!(cache.len(), 40);
        let diff = whole
            .iter()
            .zip(&last)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < NEAR_TIE * 2.0, "{diff}");
        assert_eq!(argmax(&last), argmax(&whole));
        // Rewound to before the last batch, the same batch again gives the same bits.
        let start = 40 - n_last;
        cache.truncate(start);
        let again = m
            .llama
            .forward(&tokens[start..], &mut cache, Logits::Last)
            .unwrap();
        assert_eq!(again, last);
    }
}

/// Greedy generation against llama.cpp's, for 5 prompts (3 chat, 2 raw), 64 tokens each
/// (one stops at its end token): Ember's own generation is identical token for token up to
/// llama.cpp's first step whose two best logits are within 0.2 (2 of the 5 are identical to
/// the end), and fed llama.cpp's tokens it picks the same token at every step but at most 3
/// near ties per prompt.
#[test]
fn greedy_generation_matches_llama_cpp() {
    let Some(m) = model() else { return };
    let runs = reference()["greedy"]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 5);
    let mut identical = 0;
    for run in runs {
        let prompt_text = run["prompt"].as_str().unwrap();
        let prompt = m.vocab.prompt(prompt_text).unwrap();
        assert_eq!(prompt, ids(&run["prompt_ids"]));
        let want = ids(&run["generated_ids"]);
        let margins: Vec<f32> = run["top1_top2_margin"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        // A free-running generation may part from llama.cpp's at a step whose two best
        // logits are closer than the mean logit difference the logits test allows (0.2):
        // rounding there is not an error (kernels for AVX2 and AVX-512 round differently).
        let first_tie = margins
            .iter()
            .position(|&g| g < FREE_RUN_TIE)
            .unwrap_or(want.len());
        let options = GenerateOptions {
            max_tokens: 64,
            sampling: Sampling::greedy(),
            stop: vec![],
        };
        let mut cache = m.llama.cache();
        let mut streamed = String::new();
        let g = generate(m, &mut cache, &prompt, &options, |t| {
            streamed.push_str(t);
            Ok(())
        })
        .unwrap();
        assert_eq!(streamed, g.text);
        assert_eq!(g.text, m.vocab.decode(&g.tokens));
        let same = g
            .tokens
            .iter()
            .zip(&want)
            .take_while(|(a, b)| a == b)
            .count();
        assert!(
            same >= first_tie.min(want.len()),
            "{prompt_text:?}: {same} equal tokens, first near tie at {first_tie}"
        );
        if g.tokens == want {
            identical += 1;
        }
        // Teacher forcing: llama.cpp's tokens fed one at a time, as it generated them.
        let mut cache = m.llama.cache();
        let mut logits = m.llama.forward(&prompt, &mut cache, Logits::Last).unwrap();
        let mut ties = 0;
        for (step, &token) in want.iter().enumerate() {
            let argmax = logits
                .iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > logits[b] { i } else { b });
            if argmax as u32 != token {
                assert!(
                    margins[step] < NEAR_TIE,
                    "{prompt_text:?} step {step}: Ember {argmax}, llama.cpp {token}"
                );
                ties += 1;
            }
            if step + 1 < want.len() {
                logits = m.llama.forward(&[token], &mut cache, Logits::Last).unwrap();
            }
        }
        assert!(ties <= 3, "{prompt_text:?}: {ties} different choices");
    }
    eprintln!("{identical} of 5 greedy generations identical to llama.cpp's");
    // Whole generations stay identical past near ties only where the f32 kernels round as
    // they did when the fixture was checked (AVX-512); with AVX2 they part at a near tie,
    // which the per-prompt check above allows.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        assert!(identical >= 2, "{identical} identical generations");
    }
}

/// Perplexity on a fixed text is within 1% of llama.cpp's.
#[test]
fn perplexity_matches_llama_cpp() {
    let Some(m) = model() else { return };
    let r = &reference()["perplexity"];
    let tokens = ids(&r["ids"]);
    assert_eq!(
        m.vocab.encode(r["text"].as_str().unwrap(), false).unwrap(),
        tokens
    );
    let ours = m.perplexity(&tokens).unwrap();
    let theirs = r["perplexity"].as_f64().unwrap();
    eprintln!("perplexity: Ember {ours:.4}, llama.cpp {theirs:.4}");
    assert!((ours / theirs - 1.0).abs() < 0.01, "{ours} vs {theirs}");
}

/// The same seed gives the same text; another seed, another text.
#[test]
fn sampling_is_reproducible() {
    let Some(m) = model() else { return };
    let prompt = m.vocab.prompt("Once upon a time").unwrap();
    let run = |seed| {
        let options = GenerateOptions {
            max_tokens: 24,
            sampling: Sampling {
                seed,
                temperature: 1.0,
                ..Sampling::default()
            },
            stop: vec![],
        };
        generate(m, &mut m.llama.cache(), &prompt, &options, |_| Ok(()))
            .unwrap()
            .text
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

/// The chat template gives llama.cpp's ChatML prompt, default system prompt included; a
/// conversation's second turn, run after the first from the kept cache, gives what the whole
/// conversation run from an empty cache gives.
#[test]
fn chat_turns_reuse_the_cache_and_match_a_fresh_run() {
    use ember::llm::{Chat, Message, Role, Template};
    let Some(m) = model() else { return };
    let template = Template::of(m).unwrap();
    assert_eq!(
        template,
        Template::ChatMl {
            default_system: Some(
                "You are a helpful AI assistant named SmolLM, trained by Hugging Face".into()
            )
        }
    );
    let run = &reference()["greedy"]["runs"][0];
    let question = "What is the capital of France?";
    assert!(run["prompt"].as_str().unwrap().contains(question));
    let ids_of = |messages: &[Message]| template.prompt(m, messages).unwrap();
    assert_eq!(
        ids_of(&[Message::new(Role::User, question)]),
        ids(&run["prompt_ids"])
    );

    let options = GenerateOptions {
        max_tokens: 16,
        sampling: Sampling {
            repeat_penalty: 1.3,
            ..Sampling::greedy()
        },
        stop: vec![],
    };
    let mut chat = Chat::new(m, None).unwrap();
    let first = chat.say(question, &options, |_| Ok(())).unwrap();
    let second = chat.say("And of Italy?", &options, |_| Ok(())).unwrap();
    assert!(
        second.prompt_tokens < ids_of(&chat.messages[..3]).len(),
        "the second turn runs only its new tokens"
    );
    let fresh = generate(
        m,
        &mut m.llama.cache(),
        &ids_of(&chat.messages[..3]),
        &options,
        |_| Ok(()),
    )
    .unwrap();
    assert_eq!(second.tokens, fresh.tokens);
    assert_eq!(chat.messages.len(), 4);
    assert_eq!(chat.messages[1].content, first.text.trim());
}
