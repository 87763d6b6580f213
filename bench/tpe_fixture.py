"""Writes crates/ember/src/tune/tpe_optuna.json: Optuna's Parzen estimator densities, the
reference Ember's TPE (crates/ember/src/tune/tpe.rs) is tested against.

For each case (a uniform, a log-uniform, a stepped integer and a categorical parameter, with a
few observations in trial order), the log density of Optuna's univariate estimator — its
default prior weight, magic clip and weights — at a few points. Run with the benchmark venv:

    /tmp/optuna-venv/bin/python bench/tpe_fixture.py
"""

import json
import pathlib

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
from optuna.samplers._tpe.sampler import default_weights

PARAMETERS = _ParzenEstimatorParameters(
    prior_weight=1.0,
    consider_magic_clip=True,
    consider_endpoints=False,
    weights=default_weights,
    multivariate=False,
)

CASES = [
    ("uniform", FloatDistribution(-2.0, 3.0), [0.5, 2.9, -1.0, 0.4], [-2.0, -0.3, 0.45, 1.7, 3.0]),
    ("uniform_one", FloatDistribution(0.0, 1.0), [0.8], [0.0, 0.5, 0.8, 1.0]),
    (
        "log_uniform",
        FloatDistribution(1e-4, 1e-2, log=True),
        [3e-4, 1e-3, 1.2e-3, 8e-3, 2e-4],
        [1e-4, 5e-4, 1.1e-3, 9e-3],
    ),
    ("int_step", IntDistribution(16, 512, step=16), [64, 128, 496, 128], [16, 64, 128, 256, 512]),
    # A range the step does not divide: Optuna's grid ends at 496.
    ("int_uneven", IntDistribution(16, 500, step=16), [64, 496, 480], [16, 240, 496]),
    (
        "categorical",
        CategoricalDistribution([32, 64, 128]),
        [0, 2, 2, 1, 2],
        [0, 1, 2],
    ),
    ("many", FloatDistribution(0.0, 1.0), [((i * 37) % 101) / 101 for i in range(30)], [0.1, 0.5, 0.93]),
]


def main():
    cases = []
    for name, distribution, observations, points in CASES:
        estimator = _ParzenEstimator(
            {"x": np.asarray(observations, dtype=float)}, {"x": distribution}, PARAMETERS
        )
        log_pdf = estimator.log_pdf({"x": np.asarray(points, dtype=float)})
        cases.append(
            {
                "name": name,
                "observations": observations,
                "points": points,
                "log_pdf": [float(v) for v in log_pdf],
            }
        )
    out = pathlib.Path(__file__).resolve().parent.parent / "crates/ember/src/tune/tpe_optuna.json"
    out.write_text(json.dumps({"optuna": optuna.__version__, "cases": cases}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
