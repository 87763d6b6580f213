"""scikit-learn's `permutation_importance` on an Ember table model, against
`ember explain MODEL --method permutation`: the cross-check of issue 18.

    /tmp/serve-venv/bin/python bench/permutation_sklearn.py --ember target/release/ember \
        --model titanic.safetensors --csv held-out.csv --target Survived [--repeats 5] [--seed 0]

scikit-learn sees the Ember model as an estimator whose `predict` writes the rows it is given to
a CSV file and reads `ember predict MODEL FILE --json`'s predictions back, so both sides score
the very same predictions; accuracy is the score. The cells are read and written as the text
they are (missing cells stay empty). The script prints both sides' importances, column by
column, and exits 1 if any mean or standard deviation differs by more than 1e-12.
(scikit-learn, pandas and numpy; see bench/README.md.)
"""

import argparse
import json
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.inspection import permutation_importance


class EmberModel(ClassifierMixin, BaseEstimator):
    def __init__(self, ember="target/release/ember", model=""):
        self.ember = ember
        self.model = model

    def fit(self, X, y):  # already trained by `ember train`
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        with tempfile.NamedTemporaryFile("w", suffix=".csv") as f:
            X.to_csv(f.name, index=False)
            out = subprocess.run([self.ember, "predict", self.model, f.name, "--json"],
                                 check=True, capture_output=True, text=True).stdout
        return np.array([r["label"] for r in json.loads(out)])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ember", default="target/release/ember")
    p.add_argument("--model", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    table = pd.read_csv(args.csv, dtype=str, keep_default_na=False)
    table = table[table[args.target] != ""]
    X, y = table.drop(columns=[args.target]), table[args.target].to_numpy()
    estimator = EmberModel(args.ember, args.model).fit(X, y)
    theirs = permutation_importance(estimator, X, y, n_repeats=args.repeats,
                                    random_state=args.seed)
    ours = json.loads(subprocess.run(
        [args.ember, "explain", args.model, "--method", "permutation", "--csv", args.csv,
         "--repeats", str(args.repeats), "--seed", str(args.seed), "--json"],
        check=True, capture_output=True, text=True).stdout)["importances"]
    worst = 0.0
    print(f"{'column':<12} {'scikit-learn':>22} {'ember':>22}")
    for column, mean, std, o in zip(X.columns, theirs.importances_mean, theirs.importances_std, ours):
        if o["column"] != column:
            sys.exit(f"column order differs: {o['column']} vs {column}")
        worst = max(worst, abs(o["mean"] - mean), abs(o["std"] - std))
        print(f"{column:<12} {mean:+.6f} ± {std:.6f}     {o['mean']:+.6f} ± {o['std']:.6f}")
    print(f"largest difference: {worst:.3g}")
    sys.exit(0 if worst <= 1e-12 else 1)


if __name__ == "__main__":
    main()
