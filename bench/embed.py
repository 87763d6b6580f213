"""Sentence-embedding throughput of sentence-transformers on PyTorch (CPU): the side-by-side
baseline for `ember bench embed` (see bench/README.md).

Reads the sentences Ember timed (one per line), encodes a few to warm up, then times
`model.encode(sentences, batch_size=32)` --repeats times. Prints one JSON object:
{"seconds": median seconds per pass, "sentences": ..., "threads": ..., "torch": ...}.
"""

import argparse
import json
import os
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--sentences", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.sentences, encoding="utf-8") as f:
        sentences = [line.rstrip("\n") for line in f if line.strip()]
    model = SentenceTransformer(args.model, device="cpu")
    model.encode(sentences[: args.batch_size * 2], batch_size=args.batch_size)
    passes = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        model.encode(sentences, batch_size=args.batch_size)
        passes.append(time.perf_counter() - started)
    seconds = sorted(passes)[len(passes) // 2]
    print(json.dumps({
        "seconds": seconds,
        "sentences": len(sentences),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
