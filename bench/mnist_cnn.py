"""The Keras "simple MNIST convnet" in PyTorch, timed per epoch: the side-by-side baseline
for `ember bench cnn` (see bench/README.md). Same data, shapes, optimizer (Adam with Keras's
epsilon), batch 128 and validation split 0.1 as models/mnist-cnn.toml, and the same random
shifts in training when `--translate H,W` gives the model file's RandomTranslation factors.

Prints one JSON object: {"epoch_seconds": [...], "val_accuracy": ..., "threads": ...}.
"""

import argparse
import gzip
import json
import os
import struct
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(folder, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise SystemExit(f"{stem} not found in {folder}")


def translate(images, factors):
    """Shifts each NCHW image by up to factors * (height, width) pixels either way, bilinear,
    zeros outside: Keras's RandomTranslation with fill_mode="constant"."""
    n, _, h, w = images.shape
    shift = (torch.rand(n, 2) * 2 - 1) * torch.tensor(factors)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    # affine_grid's coordinates run over [-1, 1], so a pixel is 2 / size of them.
    theta[:, 0, 2] = shift[:, 1] * 2
    theta[:, 1, 2] = shift[:, 0] * 2
    grid = nn.functional.affine_grid(theta, images.shape, align_corners=False)
    return nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                                     align_corners=False)


def load_split(folder):
    """MNIST's training images (NCHW, scaled to [0, 1]) and labels, cut as Keras's
    validation_split = 0.1 cuts them: (x_train, y_train, x_val, y_val), the last 10% held out."""
    images = read_idx(find(folder, "train-images-idx3-ubyte"))
    labels = read_idx(find(folder, "train-labels-idx1-ubyte"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    split = int(len(x) * 0.9)
    return x[:split], y[:split], x[split:], y[split:]


def keras_convnet():
    """models/mnist-cnn.toml's network (its RandomTranslation is `translate`)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10),
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--translate", type=lambda s: [float(v) for v in s.split(",")],
                        default=None, metavar="H,W",
                        help="RandomTranslation height and width factors (zeros outside)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x_train, y_train, x_val, y_val = load_split(args.data)
    split = len(x_train)

    model = keras_convnet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    epoch_seconds = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(split)
        for i in range(0, split, 128):
            batch = order[i : i + 128]
            optimizer.zero_grad(set_to_none=True)
            inputs = x_train[batch]
            if args.translate:
                inputs = translate(inputs, args.translate)
            loss = loss_fn(model(inputs), y_train[batch])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            correct = sum(
                (model(x_val[i : i + 1024]).argmax(1) == y_val[i : i + 1024]).sum().item()
                for i in range(0, len(x_val), 1024)
            )
        epoch_seconds.append(time.perf_counter() - started)
    print(json.dumps({
        "epoch_seconds": epoch_seconds,
        "val_accuracy": correct / len(x_val),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
