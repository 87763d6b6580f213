"""Ember's TPE against Optuna's TPE on one search: the same space, trial budget and objective.

Both sides score a trial with the same Ember training: `ember tune` trains its trials itself;
for Optuna, each trial's parameters are written into a copy of the model file, which
`ember train --verbose 2` trains, and the objective is its last epoch's val_accuracy. So only
the sampler differs. Per seed it prints both sides' best val_accuracy and their time outside
training (Ember: from its `Search:` line; Optuna: study wall time minus the trainings' wall
time), then the mean ± standard deviation over seeds, and one JSON line with every figure.

Run it with a venv made for benchmarking only (see bench/README.md):

    /tmp/optuna-venv/bin/python bench/tune_optuna.py --seeds 1,2,3,4,5
    /tmp/optuna-venv/bin/python bench/tune_optuna.py --seeds 1 --trials 3   # a quick check
"""

import argparse
import copy
import json
import math
import os
import re
import statistics
import subprocess
import tempfile
import time
import tomllib

import optuna
import tomli_w

SEGMENT = re.compile(r"^(\w+)(?:\[(\d+)\])?$")


def read_model(path):
    """The model file as a dict, its data folder made absolute (it is relative to the file)."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    if "dir" in doc.get("data", {}):
        folder = os.path.dirname(os.path.abspath(path))
        doc["data"]["dir"] = os.path.normpath(os.path.join(folder, doc["data"]["dir"]))
    return doc


def write_toml(doc, path):
    with open(path, "wb") as f:
        tomli_w.dump(doc, f)


def set_path(doc, name, value):
    """Sets a field named as in [tune.space]: `layers[0].units`, `compile.optimizer.learning_rate`."""
    parts = name.split(".")
    node = doc
    for i, part in enumerate(parts):
        key, index = SEGMENT.match(part).groups()
        last = i + 1 == len(parts)
        if index is None:
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        elif last:
            node[key][int(index)] = value
        else:
            node = node[key][int(index)]


def suggest(trial, name, dist):
    """Optuna's draw for one [tune.space] entry."""
    if "choice" in dist:
        choices = dist["choice"]
        if all(isinstance(c, (bool, int, float, str)) for c in choices):
            return trial.suggest_categorical(name, choices)
        return choices[trial.suggest_categorical(name, list(range(len(choices))))]
    if "uniform" in dist:
        return trial.suggest_float(name, *map(float, dist["uniform"]))
    if "log_uniform" in dist:
        return trial.suggest_float(name, *map(float, dist["log_uniform"]), log=True)
    if "int" in dist:
        low, high = dist["int"]
        step = dist.get("step", 1)
        return trial.suggest_int(name, low, low + (high - low) // step * step, step=step)
    if dist.get("optional"):
        return trial.suggest_categorical(name, [True, False])
    raise ValueError(f"{name}: unknown distribution {dist}")


def suggest_all(trial, space):
    """Every entry's draw, define-by-run: the fields of an optional layer (`layers[i].x` beside
    `"layers[i]" = { optional = true }`) only when the trial keeps the layer, as Ember's TPE
    leaves them out of its observations when it does not."""
    optional = [name for name, dist in space.items() if dist.get("optional")]
    params = {name: suggest(trial, name, space[name]) for name in optional}
    for name, dist in space.items():
        if name in params:
            continue
        layer = name.split("].", 1)[0] + "]" if "]." in name else None
        if layer in params and not params[layer]:
            continue
        params[name] = suggest(trial, name, dist)
    return params


def trial_model(base, space, params):
    """The model file of one trial: the values set, then the absent optional layers removed."""
    doc = copy.deepcopy(base)
    doc.pop("tune", None)
    absent = []
    for name, value in params.items():
        if space[name].get("optional"):  # "layers[i]" = { optional = true }
            if not value:
                absent.append(int(SEGMENT.match(name).group(2)))
        else:
            set_path(doc, name, value)
    for index in sorted(absent, reverse=True):
        del doc["layers"][index]
    return doc


def optuna_side(args, base, seed, trials, folder):
    """Optuna's study: best value, study wall time and the trainings' wall time."""
    space = base["tune"]["space"]
    training = []

    def objective(trial):
        params = suggest_all(trial, space)
        path = os.path.join(folder, f"trial-{trial.number}.toml")
        write_toml(trial_model(base, space, params), path)
        start = time.perf_counter()
        run = subprocess.run([args.ember, "train", path, "--verbose", "2", "--threads", str(args.threads)],
                             capture_output=True, text=True)
        training.append(time.perf_counter() - start)
        found = re.findall(r"val_accuracy: ([0-9.]+)", run.stdout + run.stderr)
        if run.returncode != 0 or not found:
            raise RuntimeError(f"ember train {path} failed:\n{run.stdout}{run.stderr}")
        return float(found[-1])

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    seconds = time.perf_counter() - start
    return {"best": study.best_value, "seconds": seconds, "training": sum(training),
            "outside": seconds - sum(training)}


def ember_side(args, base, seed, trials, folder):
    """`ember tune` on a copy of the model file with this seed and budget."""
    doc = copy.deepcopy(base)
    doc["tune"].update(seed=seed, max_trials=trials)
    path, output = os.path.join(folder, "model.toml"), os.path.join(folder, "study")
    write_toml(doc, path)
    start = time.perf_counter()
    run = subprocess.run([args.ember, "tune", path, "--output", output, "--jobs", "1",
                          "--threads", str(args.threads)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"ember tune {path} failed:\n{run.stdout}{run.stderr}")
    records = {}  # trial number -> its latest record
    with open(os.path.join(output, "study.jsonl")) as f:
        for line in f:
            if line.strip() and "trial" in (entry := json.loads(line)):
                records[entry["trial"]["number"]] = entry["trial"]
    values = [t["values"][-1] for t in records.values() if t.get("values")]
    test = re.search(r"Test accuracy: ([0-9.]+)", run.stdout)
    search = re.search(r"Search: \d+ trials in ([0-9.]+) s, ([0-9.]+) s of (?:it training|training on \d+ workers), ([0-9.]+) s outside",
                       run.stdout)
    if search:
        seconds, training, outside = map(float, search.groups())
    else:  # an older binary: our wall time (data loading, test and charts included) less training
        seconds, training = wall, sum(t["seconds"] for t in records.values())
        outside = seconds - training
    return {"best": max(values), "test": float(test.group(1)) if test else None, "seconds": seconds,
            "training": training, "outside": outside, "from_search_line": bool(search)}


def mean_sd(xs):
    return statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ember", default="/tmp/ember-bench")
    parser.add_argument("--model", default="bench/tune/mnist-tpe.toml")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--trials", type=int, help="trials per study (default: the file's max_trials)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = read_model(args.model)
    trials = args.trials or base["tune"]["max_trials"]
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as e_dir, tempfile.TemporaryDirectory() as o_dir:
            ember, opt = ember_side(args, base, seed, trials, e_dir), optuna_side(args, base, seed, trials, o_dir)
        runs.append({"seed": seed, "ember": ember, "optuna": opt})
        note = "" if ember["from_search_line"] else ", wall − training: no Search line"
        print(f"seed {seed}: Ember best {ember['best']:.4f} ({ember['outside']:.3f} s outside training"
              f" of {ember['seconds']:.1f} s{note}), Optuna best {opt['best']:.4f} ({opt['outside']:.3f} s"
              f" outside training of {opt['seconds']:.1f} s)", flush=True)
    n, summary = len(seeds), {}
    for side in ("ember", "optuna"):
        mean, sd = mean_sd([r[side]["best"] for r in runs])
        outside = sum(r[side]["outside"] for r in runs)
        summary[side] = {"mean": mean, "sd": sd, "outside": outside, "outside_per_trial": outside / (n * trials)}
        print(f"{side:>6}: best {mean:.4f} ± {sd:.4f} over {n} seeds; outside training {outside:.3f} s"
              f" ({summary[side]['outside_per_trial'] * 1000:.1f} ms per trial)")
    diff = summary["ember"]["mean"] - summary["optuna"]["mean"]
    se = math.sqrt(  # unpaired: a seed gives the two samplers unrelated draws
        (summary["ember"]["sd"] ** 2 + summary["optuna"]["sd"] ** 2) / n)
    print(f"Ember − Optuna: {diff:+.4f} ± {se:.4f} (standard error), {trials} trials per study")
    clean = lambda x: None if isinstance(x, float) and math.isnan(x) else x
    print(json.dumps({"model": args.model, "trials": trials, "threads": args.threads, "runs": runs,
                      "summary": {s: {k: clean(v) for k, v in d.items()} for s, d in summary.items()},
                      "difference": diff, "difference_se": clean(se)}))


if __name__ == "__main__":
    main()
