"""llama.cpp's prompt processing and greedy generation on a GGUF model, timed through
llama-cpp-python: the peer side of `ember bench generate` (crates/ember-cli/src/bench/generate.rs),
measured as llama-bench measures pp512 and tg128. For each thread count `ember bench generate
--python PYTHON` runs, from the repository root,

    python bench/generate_llamacpp.py --model target/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --threads N --prompt-tokens 512 --new-tokens 128 --repeat R

in a process of its own and reads the one JSON line this prints on stdout (nothing else is
printed there; llama.cpp's own output, if any, goes to stderr):

    {"engine": "llama.cpp", "version": ..., "threads": N, "prompt_tokens": 512,
     "new_tokens": 128, "repeats": R, "load_seconds": ..., "prompt_seconds": ...,
     "prompt_tokens_per_second": ..., "generate_seconds": ...,
     "generate_tokens_per_second": ..., "generated_ids": [...], "peak_rss_mib": ...,
     "rss_after_load_mib": ..., "flash_attn": "disabled", ...}

The model is loaded once (`load_seconds`: the `Llama(...)` constructor) with n_ctx 1024,
n_batch = n_ubatch = 512, N threads for both single-token and batch decoding, logits of the
last position only, and flash attention at llama-cpp-python's default (`flash_attn` records
what the context was given: llama-cpp-python 0.3.x passes LLAMA_FLASH_ATTN_TYPE_DISABLED unless
asked otherwise, as llama-bench's `-fa 0`).

The prompt is the same token ids Ember uses: README.md tokenized as plain text (special tokens
not parsed, no BOS), the ids repeated as often as needed and cut to `--prompt-tokens`.

- Prompt processing: the KV cache is cleared (`llm.reset()` and `llama_memory_clear`), then
  `llm.eval(ids)` (one llama_decode of the whole prompt, as one batch of 512 is one ubatch) is
  timed with time.perf_counter. One untimed run first, then `--repeat` timed runs;
  `prompt_seconds` is their median (`prompt_seconds_all` lists them) and
  `prompt_tokens_per_second` is prompt_tokens / prompt_seconds.
- Generation: the cache is cleared, the first 16 prompt ids are evaluated (untimed), then the
  timed loop runs `--new-tokens` times: argmax of the last position's logits (read with
  `llama_get_logits_ith(ctx, -1)`, since with logits_all=False `llm.eval` keeps no scores),
  then `llm.eval([that id])`, exactly Ember's loop. One untimed run first, then `--repeat`
  timed ones; `generate_seconds` is their median and `generate_tokens_per_second` is
  new_tokens / generate_seconds. `generated_ids` are the ids fed in the first timed run (the
  runs are deterministic; `generated_ids_agree` says whether every run gave the same ids).
- `rss_after_load_mib` is VmRSS just after loading (the weights are mmapped, so only the pages
  touched so far count), `peak_rss_mib` the process's ru_maxrss at the end.

llama-cpp-python lives in a virtual environment made for benchmarking only (never in CI,
never a dependency of Ember):

    python3 -m venv /tmp/llama-venv
    /tmp/llama-venv/bin/pip install llama-cpp-python numpy   # tested: 0.3.36 (builds llama.cpp)
"""

import argparse
import ctypes
import json
import os
import pathlib
import statistics
import sys
import time

from peer import existing_file, peak_rss_mib, positive_int, rss_mib

ROOT = pathlib.Path(__file__).resolve().parent.parent
N_CTX, N_BATCH, N_UBATCH = 1024, 512, 512
# The generation prompt: the first this many ids of the text.
GENERATE_PROMPT = 16


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=existing_file, required=True, help="a GGUF model file")
    p.add_argument("--threads", type=positive_int, required=True)
    p.add_argument("--prompt-tokens", type=positive_int, default=512)
    p.add_argument("--new-tokens", type=positive_int, default=128)
    p.add_argument("--repeat", type=positive_int, default=3, help="timed runs of each part")
    p.add_argument(
        "--text",
        type=existing_file,
        default=str(ROOT / "README.md"),
        help="where the prompt's ids come from (README.md, as Ember's side)",
    )
    args = p.parse_args()
    if args.prompt_tokens > N_BATCH:
        p.error(f"--prompt-tokens is at most the batch, {N_BATCH}")
    if GENERATE_PROMPT + args.new_tokens > N_CTX:
        p.error(f"--new-tokens is at most {N_CTX - GENERATE_PROMPT}")
    return args


def clear(llm):
    """Forget every evaluated token: the wrapper's count and llama.cpp's KV cache."""
    llm.reset()
    llm._ctx.kv_cache_clear()  # llama_memory_clear(llama_get_memory(ctx), true)


def measure(args):
    import llama_cpp
    import numpy as np

    started = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=args.model,
        n_ctx=N_CTX,
        n_batch=N_BATCH,
        n_ubatch=N_UBATCH,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        logits_all=False,
        verbose=False,
    )
    load_seconds = time.perf_counter() - started
    rss_after_load = rss_mib()

    text = pathlib.Path(args.text).read_text(encoding="utf-8")
    text_ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    if not text_ids:
        raise SystemExit(f"{args.text} gives no tokens")
    ids = [text_ids[i % len(text_ids)] for i in range(args.prompt_tokens)]

    ctx = llm._ctx.ctx
    n_vocab = llm.n_vocab()
    logits_type = ctypes.c_float * n_vocab

    def last_argmax():
        ptr = llama_cpp.llama_get_logits_ith(ctx, -1)
        if not ptr:
            raise RuntimeError("llama_get_logits_ith(-1) gave no logits")
        logits = np.frombuffer(ctypes.cast(ptr, ctypes.POINTER(logits_type)).contents, np.float32)
        return int(np.argmax(logits))

    prompt_seconds = []
    for r in range(args.repeat + 1):  # run 0 is the untimed warm-up
        clear(llm)
        started = time.perf_counter()
        llm.eval(ids)
        seconds = time.perf_counter() - started
        if r > 0:
            prompt_seconds.append(seconds)
    prompt_check = last_argmax()  # the prompt's greedy next id, as a check it ran

    generate_seconds = []
    runs = []
    for r in range(args.repeat + 1):
        clear(llm)
        llm.eval(ids[:GENERATE_PROMPT])
        out = []
        started = time.perf_counter()
        for _ in range(args.new_tokens):
            nxt = last_argmax()
            out.append(nxt)
            llm.eval([nxt])
        seconds = time.perf_counter() - started
        if r > 0:
            generate_seconds.append(seconds)
            runs.append(out)

    fa = llm.context_params.flash_attn_type
    flash_attn = {
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO: "auto",
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED: "disabled",
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED: "enabled",
    }.get(fa, str(fa))
    prompt_median = statistics.median(prompt_seconds)
    generate_median = statistics.median(generate_seconds)
    return {
        "engine": "llama.cpp",
        "version": llama_cpp.__version__,
        "threads": args.threads,
        "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens,
        "repeats": args.repeat,
        "load_seconds": load_seconds,
        "prompt_seconds": prompt_median,
        "prompt_seconds_all": prompt_seconds,
        "prompt_tokens_per_second": args.prompt_tokens / prompt_median,
        "prompt_next_id": prompt_check,
        "generate_seconds": generate_median,
        "generate_seconds_all": generate_seconds,
        "generate_tokens_per_second": args.new_tokens / generate_median,
        "generated_ids": runs[0],
        "generated_ids_agree": all(run == runs[0] for run in runs),
        "peak_rss_mib": peak_rss_mib(),
        "rss_after_load_mib": rss_after_load,
        "flash_attn": flash_attn,
        "n_ctx": llm.n_ctx(),
        "n_batch": llm.context_params.n_batch,
        "n_ubatch": llm.context_params.n_ubatch,
        "text": os.path.relpath(args.text, ROOT) if str(args.text).startswith(str(ROOT)) else args.text,
        "text_tokens": len(text_ids),
        "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
    }


def main():
    args = parse_args()
    # Whatever llama.cpp or the wrapper might write to stdout goes to stderr instead, so that
    # stdout carries the one JSON line only.
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        figures = measure(args)
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
