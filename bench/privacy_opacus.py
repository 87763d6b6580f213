"""DP-SGD on MNIST with Opacus, timed per epoch: the side-by-side baseline for
`ember bench privacy` (see bench/README.md). The network, data, batch size, optimizer,
clipping norm and noise multiplier are those of models/mnist-dp.toml as the bench passes them:
the tanh convnet of Papernot et al. (2021) — Conv2d(16, 8×8, stride 2, padding 3) → tanh →
MaxPool(2, stride 1) → Conv2d(32, 4×4, stride 2) → tanh → MaxPool(2, stride 1) → Linear(32)
→ tanh → Linear(10) — trained with Opacus's PrivacyEngine (Poisson sampling, per-example
gradients by its hooks, RDP accountant) on all 60,000 training images, tested on the 10,000.

Prints one JSON object: {"epoch_seconds": [...], "test_accuracy": ..., "epsilon": ...,
"threads": ..., "torch": ..., "opacus": ...}.
"""

import argparse
import json
import time
import warnings

import numpy as np
import opacus
import torch
from opacus import PrivacyEngine
from torch import nn

from mnist_cnn import find, read_idx


def load(folder, split):
    images = read_idx(find(folder, f"{split}-images-idx3-ubyte"))
    labels = read_idx(find(folder, f"{split}-labels-idx1-ubyte"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def tanh_convnet():
    return nn.Sequential(
        nn.Conv2d(1, 16, 8, stride=2, padding=3), nn.Tanh(), nn.MaxPool2d(2, 1),
        nn.Conv2d(16, 32, 4, stride=2), nn.Tanh(), nn.MaxPool2d(2, 1),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 32), nn.Tanh(), nn.Linear(32, 10),
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="data/mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--max-grad-norm", type=float, default=0.1)
    parser.add_argument("--noise-multiplier", type=float, required=True)
    parser.add_argument("--delta", type=float, default=1e-5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x_train, y_train = load(args.data, "train")
    x_test, y_test = load(args.data, "t10k")
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x_train, y_train), batch_size=args.batch_size)
    model = tanh_convnet()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    engine = PrivacyEngine(accountant="rdp")
    model, optimizer, loader = engine.make_private(
        module=model, optimizer=optimizer, data_loader=loader,
        noise_multiplier=args.noise_multiplier, max_grad_norm=args.max_grad_norm,
        poisson_sampling=True)
    loss_fn = nn.CrossEntropyLoss()
    epoch_seconds = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        model.train()
        for inputs, labels in loader:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(inputs), labels).backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - started)
    model.eval()
    with torch.no_grad():
        correct = sum(
            (model(x_test[i : i + 1000]).argmax(1) == y_test[i : i + 1000]).sum().item()
            for i in range(0, len(x_test), 1000)
        )
    print(json.dumps({
        "epoch_seconds": epoch_seconds,
        "test_accuracy": correct / len(x_test),
        "epsilon": engine.get_epsilon(args.delta),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "opacus": opacus.__version__,
    }))


if __name__ == "__main__":
    main()
