"""The peer `ember bench serve` times `ember serve` against: the stack a Python team would write
to serve a saved Ember classifier (the MNIST MLP), FastAPI + uvicorn + PyTorch.

It reads Ember's saved model file itself: a safetensors file whose tensors `weight/<layer>/kernel`
(shape [inputs, units], as Keras) and `weight/<layer>/bias` are the Dense layers' weights, layers
named as Keras names them ("dense", "dense_1", ...), and whose metadata `ember.spec` is the model
file (TOML): the layers, and in `[data]` the scale the inputs are divided by (255 for pixels).

    POST /v1/models/{name}:predict  {"instances": [[784 numbers], ...]}
      -> {"predictions": [{"label": "7", "index": 7, "score": 0.997,
                           "top": [{"label": "7", "index": 7, "score": 0.997}, ...]}]}
    GET  /v2/health/ready           200 once the model is loaded

    python bench/serve_fastapi.py --model FILE.safetensors --port N [--host 127.0.0.1]
        [--workers 1] [--threads T] [--name NAME]

It prints `listening on http://HOST:PORT` once every worker is ready. Benchmark-only: it needs
torch, fastapi, uvicorn, safetensors and numpy (see bench/README.md), never a dependency of Ember.
"""

import argparse
import os
import sys
import tempfile
import threading
import time
import tomllib
from contextlib import asynccontextmanager

import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from safetensors import safe_open
from torch import nn

TOP_K = 3
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity}


class PredictRequest(BaseModel):
    instances: list[list[float]]


class Top(BaseModel):
    label: str
    index: int
    score: float


class Prediction(BaseModel):
    label: str
    index: int
    score: float
    top: list[Top]


class PredictResponse(BaseModel):
    predictions: list[Prediction]


def load_ember_mlp(path):
    """The Dense stack of an Ember saved model as a torch module, the scale its inputs are
    divided by, and its class names (empty: the class index is the label)."""
    with safe_open(path, framework="pt") as f:
        spec = tomllib.loads(f.metadata()["ember.spec"])
        tensors = {k: f.get_tensor(k) for k in f.keys() if k.startswith("weight/")}
    layers, counts = [], {}
    for layer in spec["layers"]:
        if layer["type"] != "dense":
            sys.exit(f"{path}: only Dense layers are served here, not {layer['type']}")
        n = counts.get("dense", 0)
        counts["dense"] = n + 1
        name = layer.get("name") or ("dense" if n == 0 else f"dense_{n}")
        kernel = tensors[f"weight/{name}/kernel"]  # [inputs, units]
        linear = nn.Linear(*kernel.shape, bias=layer.get("use_bias", True))
        linear.weight.data = kernel.t().contiguous()  # torch keeps [units, inputs]
        if linear.bias is not None:
            linear.bias.data = tensors[f"weight/{name}/bias"]
        layers.append(linear)
        activation = layer.get("activation", "linear")
        layers.append(nn.Softmax(dim=-1) if activation == "softmax" else ACTIVATIONS[activation]())
    data = spec.get("data", {})
    return nn.Sequential(*layers).eval(), float(data.get("scale", 1.0)), data.get("classes", [])


def create_app():
    """The app, configured by the environment so that each uvicorn worker can build its own."""
    model, scale, classes = load_ember_mlp(os.environ["SERVE_MODEL"])
    width, outputs = model[0].in_features, model[-2].out_features
    served_name = os.environ.get("SERVE_NAME")  # unset: any name is this model
    if os.environ.get("SERVE_THREADS"):
        torch.set_num_threads(int(os.environ["SERVE_THREADS"]))

    def label(i):
        return classes[i] if len(classes) == outputs else str(i)

    @asynccontextmanager
    async def lifespan(app):
        if ready_dir := os.environ.get("SERVE_READY_DIR"):
            open(os.path.join(ready_dir, str(os.getpid())), "w").close()
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/v2/health/ready")
    def ready():
        return {"ready": True}

    @app.post("/v1/models/{name}:predict", response_model=PredictResponse)
    def predict(name: str, request: PredictRequest):
        if served_name is not None and name != served_name:
            raise HTTPException(404, f"no model named {name!r}")
        if not request.instances or any(len(row) != width for row in request.instances):
            raise HTTPException(400, f"each instance must hold {width} numbers")
        with torch.inference_mode():
            x = torch.tensor(request.instances, dtype=torch.float32) * (1.0 / scale)
            scores, indices = torch.topk(model(x), k=min(TOP_K, outputs), dim=1)
        predictions = []
        for row_scores, row_indices in zip(scores.tolist(), indices.tolist()):
            top = [Top(label=label(i), index=i, score=s) for s, i in zip(row_scores, row_indices)]
            best = top[0]
            predictions.append(
                Prediction(label=best.label, index=best.index, score=best.score, top=top))
        return PredictResponse(predictions=predictions)

    return app


def announce_when(is_ready, host, port):
    """Prints the line a benchmark driver waits for, from a thread, once `is_ready()`."""

    def wait():
        while not is_ready():
            time.sleep(0.02)
        print(f"listening on http://{host}:{port}", flush=True)

    threading.Thread(target=wait, daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an Ember saved model (.safetensors)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads in each worker")
    parser.add_argument("--name", help="answer only for this model name (default: any)")
    args = parser.parse_args()
    os.environ["SERVE_MODEL"] = args.model
    if args.threads:
        os.environ["SERVE_THREADS"] = str(args.threads)
    if args.name:
        os.environ["SERVE_NAME"] = args.name
    # Fair for benchmarking: no access log, warnings only; uvloop and httptools when installed.
    options = dict(host=args.host, port=args.port, log_level="warning", access_log=False)
    if args.workers == 1:
        server = uvicorn.Server(uvicorn.Config(create_app(), **options))
        announce_when(lambda: server.started, args.host, args.port)
        server.run()
    else:
        # Each worker process imports this file and builds its own app; each marks a file in
        # the ready folder once started, and the line is printed when all have.
        with tempfile.TemporaryDirectory() as ready_dir:
            os.environ["SERVE_READY_DIR"] = ready_dir
            announce_when(lambda: len(os.listdir(ready_dir)) >= args.workers, args.host, args.port)
            app_dir = os.path.dirname(os.path.abspath(__file__))
            uvicorn.run("serve_fastapi:create_app", factory=True, app_dir=app_dir,
                        workers=args.workers, **options)


if __name__ == "__main__":
    main()
