"""The Keras "simple MNIST convnet" trained data-parallel by PyTorch DistributedDataParallel
on the CPU (gloo), timed per epoch: the side-by-side baseline for `ember bench distributed`
(see bench/README.md). The network, data, optimizer, random shifts and validation split are
mnist_cnn.py's; the global batch (128) is shared as Ember shares it — each of the
`--processes` ranks takes its contiguous share of every batch of one shuffled order — and
DDP all-reduces the gradients in buckets while backward runs. Each rank runs
`--threads` torch threads. Validation is sharded and its counts all-reduced.

Prints one JSON object: {"epoch_seconds": [...], "val_accuracy": ..., "processes": ...,
"threads": ..., "torch": ...}.
"""

import argparse
import json
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mnist_cnn import keras_convnet, load_split, translate  # noqa: E402

BATCH = 128


def share(length, rank, size):
    """Rank `rank`'s contiguous share of `length` items (Ember's distributed::share)."""
    base, extra = divmod(length, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def worker(rank, args, port, results):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=args.processes)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x_train, y_train, x_val, y_val = load_split(args.data)
    split = len(x_train)

    # Every rank builds the same initial weights (same seed); DDP broadcasts rank 0's anyway.
    model = nn.parallel.DistributedDataParallel(keras_convnet())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(args.seed)
    epoch_seconds = []
    for _ in range(args.epochs):
        dist.barrier()
        started = time.perf_counter()
        model.train()
        order = torch.randperm(split, generator=shuffle)
        for i in range(0, split, BATCH):
            batch = order[i : i + BATCH]
            lo, hi = share(len(batch), rank, args.processes)
            mine = batch[lo:hi]
            optimizer.zero_grad(set_to_none=True)
            inputs = x_train[mine]
            if args.translate:
                inputs = translate(inputs, args.translate)
            # DDP averages the ranks' gradients; with equal shares that is the global
            # batch's mean gradient.
            loss = loss_fn(model(inputs), y_train[mine])
            loss.backward()
            optimizer.step()
        model.eval()
        lo, hi = share(len(x_val), rank, args.processes)
        with torch.no_grad():
            correct = sum(
                (model(x_val[i : min(i + 1024, hi)]).argmax(1) == y_val[i : min(i + 1024, hi)])
                .sum()
                .item()
                for i in range(lo, hi, 1024)
            )
        counts = torch.tensor([float(correct)])
        dist.all_reduce(counts)
        epoch_seconds.append(time.perf_counter() - started)
    if rank == 0:
        results.put({
            "epoch_seconds": epoch_seconds,
            "val_accuracy": counts.item() / len(x_val),
            "processes": args.processes,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        })
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--translate", type=lambda s: [float(v) for v in s.split(",")],
                        default=None, metavar="H,W")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.get_context("spawn").SimpleQueue()
    mp.spawn(worker, args=(args, port, results), nprocs=args.processes, join=True)
    print(json.dumps(results.get()))


if __name__ == "__main__":
    main()
