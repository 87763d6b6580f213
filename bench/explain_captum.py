"""Captum's saliency and Integrated Gradients on the same networks Ember explains, for the
cross-check in crates/ember/tests/explain.rs. Writes crates/ember/tests/captum_reference.json:

    /tmp/serve-venv/bin/python bench/explain_captum.py     (torch, captum, numpy; see bench/README.md)

The two networks are small and their weights need no file: both sides draw them from NumPy's
legacy RandomState(0) (Ember's `ember::tensor::mt19937::RandomState` is the same generator),
layer by layer in Ember's order, each kernel in Keras's layout [inputs, units] or
[height, width, in, out] row-major, Glorot-uniform (limit sqrt(6 / (fan_in + fan_out))), then
its bias uniform in [-0.05, 0.05):

    mlp:     Flatten -> Dense(16, relu) -> Dense(10, softmax)                on 28x28x1
    convnet: Conv2D(4, 3x3, relu) -> MaxPooling2D(2) -> Flatten -> Dense(10, softmax)

The inputs are the first three MNIST test digits (data/mnist, pixels / 255). For each digit and
its predicted class the fixture stores the probabilities, Captum's Saliency (abs=True) and
IntegratedGradients (baseline zeros, n_steps 64, method gausslegendre), and for the convnet
LayerGradCam of the logit on its convolution (after the ReLU, relu_attributions=True) resized bilinearly to
28x28, each as the list of 784 values in Ember's (row, column) order.
"""

import gzip
import json
import pathlib
import sys

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Saliency
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/ember/tests/captum_reference.json"
DIGITS = 3
STEPS = 64


def uniform(rng, shape, limit):
    # random_sample: 53-bit doubles in [0, 1), the same draws Ember's RandomState makes.
    return ((rng.random_sample(int(np.prod(shape))) * 2.0 - 1.0) * limit).reshape(shape)


def glorot(rng, shape, fan_in, fan_out):
    return uniform(rng, shape, np.sqrt(6.0 / (fan_in + fan_out))).astype(np.float32)


def bias(rng, n):
    return uniform(rng, (n,), 0.05).astype(np.float32)


class Mlp(nn.Module):
    def __init__(self, rng):
        super().__init__()
        k1 = glorot(rng, (784, 16), 784, 16)
        b1 = bias(rng, 16)
        k2 = glorot(rng, (16, 10), 16, 10)
        b2 = bias(rng, 10)
        self.l1 = nn.Linear(784, 16)
        self.l2 = nn.Linear(16, 10)
        self.l1.weight.data = torch.from_numpy(k1.T.copy())
        self.l1.bias.data = torch.from_numpy(b1)
        self.l2.weight.data = torch.from_numpy(k2.T.copy())
        self.l2.bias.data = torch.from_numpy(b2)

    def forward(self, x):  # x: (n, 28, 28, 1), channels last as Ember
        h = torch.relu(self.l1(x.reshape(x.shape[0], -1)))
        return torch.softmax(self.l2(h), dim=-1)


class Convnet(nn.Module):
    def __init__(self, rng):
        super().__init__()
        kernel = glorot(rng, (3, 3, 1, 4), 9 * 1, 9 * 4)  # Keras [h, w, in, out]
        b1 = bias(rng, 4)
        k2 = glorot(rng, (13 * 13 * 4, 10), 13 * 13 * 4, 10)
        b2 = bias(rng, 10)
        conv = nn.Conv2d(1, 4, 3)
        conv.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        conv.bias.data = torch.from_numpy(b1)
        # Ember's Conv2D applies its activation: Grad-CAM reads the output after the ReLU.
        self.conv = nn.Sequential(conv, nn.ReLU())
        self.dense = nn.Linear(13 * 13 * 4, 10)
        self.dense.weight.data = torch.from_numpy(k2.T.copy())
        self.dense.bias.data = torch.from_numpy(b2)

    def logits(self, x):
        h = self.conv(x.permute(0, 3, 1, 2))
        h = nn.functional.max_pool2d(h, 2)
        # Ember flattens channels last: (row, column, channel).
        h = h.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return self.dense(h)

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=-1)


def digits():
    with gzip.open(ROOT / "data/mnist/t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return (raw[: DIGITS * 784].reshape(DIGITS, 28, 28, 1).astype(np.float32) / 255.0)


def rounded(values):
    """float32 values to 8 significant digits (a float32 holds about 7)."""
    return [[float(f"{v:.8g}") for v in row] for row in values]


def explain(model, x):
    model.eval()
    x = torch.from_numpy(x)
    with torch.no_grad():
        p = model(x)
    targets = p.argmax(dim=1)
    sal = Saliency(model).attribute(x.clone().requires_grad_(), target=targets, abs=True)
    ig, delta = IntegratedGradients(model).attribute(
        x, baselines=torch.zeros_like(x), target=targets, n_steps=STEPS,
        method="gausslegendre", return_convergence_delta=True)
    out = {
        "targets": targets.tolist(),
        "probabilities": p.tolist(),
        "saliency": rounded(sal.reshape(DIGITS, -1).tolist()),
        "integrated_gradients": rounded(ig.reshape(DIGITS, -1).tolist()),
        "convergence_delta": delta.tolist(),
    }
    if isinstance(model, Convnet):
        # Grad-CAM of the logit (before the softmax) on the convolution (ReLU of the
        # channel-weighted sum), resized bilinearly with align_corners=False to 28x28.
        cam = LayerGradCam(model.logits, model.conv).attribute(
            x, target=targets, relu_attributions=True)
        cam = LayerAttribution.interpolate(cam, (28, 28), interpolate_mode="bilinear")
        out["grad_cam"] = rounded(cam.reshape(DIGITS, -1).tolist())
    return out


def main():
    torch.set_num_threads(1)
    rng = np.random.RandomState(0)
    # Both networks from the one stream, the MLP first.
    mlp = Mlp(rng)
    convnet = Convnet(rng)
    x = digits()
    import captum
    fixture = {
        "source": "bench/explain_captum.py",
        "captum": captum.__version__,
        "torch": torch.__version__,
        "digits": DIGITS,
        "steps": STEPS,
        "mlp": explain(mlp, x),
        "convnet": explain(convnet, x),
    }
    OUT.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
