//! `ember generate`, `ember chat` and the customer-service bot (`ember ask --llm`) on
//! SmolLM2-135M-Instruct.

mod common;
use common::*;

#[test]
fn generate_writes_only_the_continuation() {
    let Some(model) = llm_model() else { return };
    let o = ember(&[
        "generate",
        "--model",
        &model,
        "--temperature",
        "0",
        "--max-tokens",
        "8",
        "The capital of France is",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Greedy: the same text every run, and the first words are the answer.
    assert!(stdout(&o).starts_with(" Paris."), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("prompt: 5 tokens in") && err.contains("generated: 8 tokens in"),
        "{err}"
    );
    assert!(err.contains("finished by --max-tokens"), "{err}");
    assert_eq!(
        ok(&[
            "generate",
            "--model",
            &model,
            "--temperature",
            "0",
            "--max-tokens",
            "8",
            "The capital of France is"
        ]),
        stdout(&o)
    );
    // Special tokens written in the prompt are tokens: a ChatML prompt gets an answer that
    // ends with the end-of-turn token, which is not written.
    let chat = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
    let o = ember(&[
        "generate",
        "--model",
        &model,
        "--temperature",
        "0",
        "--max-tokens",
        "60",
        chat,
    ]);
    assert!(
        stderr(&o).contains("finished by the end token"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains('4') && !stdout(&o).contains("<|im_end|>"),
        "{}",
        stdout(&o)
    );
    // A stop string ends the text before it; the prompt may come from standard input.
    let out = ok_with_stdin(
        &[
            "generate",
            "--model",
            &model,
            "--temperature",
            "0",
            "--max-tokens",
            "40",
            "--stop",
            ".",
            "-",
        ],
        b"The capital of France is",
    );
    assert_eq!(out, " Paris\n");
    // Sampling with a seed is reproducible.
    let sampled = |seed: &str| {
        ok(&[
            "generate",
            "--model",
            &model,
            "--seed",
            seed,
            "--max-tokens",
            "12",
            "Once upon a time",
        ])
    };
    assert_eq!(sampled("3"), sampled("3"));
}

#[test]
fn bad_models_and_settings_are_one_line_errors() {
    fails_with(
        &["generate", "--model", "absent.gguf", "hi"],
        &["absent.gguf"],
    );
    fails_with(
        &["generate", "--model", "README.md", "hi"],
        &["README.md", "not a GGUF file"],
    );
    let Some(model) = llm_model() else { return };
    fails_with(
        &["generate", "--model", &model, "--temperature=-1", "hi"],
        &["temperature must be a number ≥ 0"],
    );
    fails_with(
        &["generate", "--model", &model, "--top-p", "0", "hi"],
        &["top-p must be in (0, 1]"],
    );
    fails_with(
        &["generate", "--model", &model, ""],
        &["the prompt is empty"],
    );
}

#[test]
fn chat_answers_each_line_in_one_conversation() {
    let Some(model) = llm_model() else { return };
    let out = ok_with_stdin(
        &[
            "chat",
            "--model",
            &model,
            "--temperature",
            "0",
            "--max-tokens",
            "24",
        ],
        b"What is 2+2?\nAnd what is 3+3?\n\n/reset\nWhat is 3+3?\n",
    );
    let replies: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        replies.len(),
        3,
        "one reply per question, none for the blank line: {out}"
    );
    assert!(replies[0].contains('4'), "{out}");
    // The second question only makes sense in the conversation.
    assert!(replies[1].contains('6'), "{out}");
    // After /reset the same question starts a new conversation.
    assert!(replies[2].contains('6'), "{out}");
}

/// The customer-service bot: the README's questions get the right FAQ entries shown, then
/// a generated reply; an off-topic question gets "I don't know" and no generated text.
#[test]
fn the_bot_shows_its_sources_and_knows_what_it_does_not_know() {
    let (Some(model), Some(encoder)) = (llm_model(), encoder_dir()) else {
        return;
    };
    let scratch = Scratch::new("bot");
    let index = scratch.0.join("faq.index").display().to_string();
    ok(&[
        "index",
        "--encoder",
        &encoder.display().to_string(),
        "data/faq/ember-faq.csv",
        "--output",
        &index,
    ]);
    for (question, entry) in [
        (
            "can I use my own pictures to train?",
            "How do I train on my own folder of images?",
        ),
        (
            "is it faster than pytorch?",
            "How fast is Ember compared with PyTorch?",
        ),
        (
            "continue training after my laptop crashed",
            "How do I resume training after a crash?",
        ),
    ] {
        let out = ok(&[
            "ask",
            &index,
            question,
            "--llm",
            &model,
            "--top-k",
            "2",
            "--max-tokens",
            "32",
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "From the FAQ:", "{out}");
        assert!(
            lines[1].starts_with("1. [") && lines[1].ends_with(entry),
            "{question}: {out}"
        );
        let reply = lines
            .iter()
            .position(|l| l.starts_with("Reply (generated by"))
            .expect("a reply");
        assert!(
            lines[reply + 1..].iter().any(|l| !l.trim().is_empty()),
            "{out}"
        );
    }
    let out = ok(&[
        "ask",
        &index,
        "who won the football world cup in 2018?",
        "--llm",
        &model,
    ]);
    assert!(
        out.starts_with("I don't know: no FAQ entry answers this question"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1);
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "ask",
        &index,
        "what is the best pizza topping?",
        "--llm",
        &model,
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["known"], false);
    fails_with(
        &["ask", &index, "hi", "--llm", &model, "--min-score", "2"],
        &["--min-score must be a cosine similarity"],
    );
    // The reply's settings without a model to write the reply: refused, not ignored.
    for flag in [
        ["--min-score", "0.7"],
        ["--max-tokens", "9"],
        ["--temperature", "0.5"],
    ] {
        let mut args = vec!["ask", index.as_str(), "hi"];
        args.extend(flag);
        fails_with(&args, &[flag[0], "does nothing without --llm"]);
    }
}
