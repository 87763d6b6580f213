"""Writes crates/ember/src/privacy/opacus_epsilon.json: Opacus 1.6.0's ε for DP-SGD runs, the
reference Ember's accountants (crates/ember/src/privacy/) are tested against.

Each case is a sampling rate q, a noise multiplier σ, a number of steps and a δ (steps =
int(epochs / q), as Opacus's make_private_with_epsilon plans them), with the ε of Opacus's RDP
accountant (its default orders) and of its PRV accountant (its defaults: eps_error 0.01,
delta_error δ/1000; the upper bound it reports). The first three are the settings of Opacus's MNIST example.
Run with the benchmark venv (bench/README.md; `pip install opacus==1.6.0`):

    /tmp/bench-venv/bin/python bench/privacy_accountant_fixture.py
"""

import json
import pathlib
import warnings

import opacus
from opacus.accountants import PRVAccountant, RDPAccountant

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/ember/src/privacy/opacus_epsilon.json"

# (q, sigma, epochs, delta)
SETTINGS = [
    (0.004, 1.3, 15, 1e-5),
    (0.004, 1.1, 60, 1e-5),
    (0.004, 0.7, 45, 1e-5),
    (0.01, 1.0, 10, 1e-5),
    (0.01, 0.8, 30, 1e-6),
    (0.02, 1.5, 50, 1e-5),
    (0.05, 2.0, 20, 1e-5),
    (0.1, 3.0, 10, 1e-6),
    (0.001, 0.6, 5, 1e-5),
    (0.001, 1.0, 100, 1e-7),
    (0.0025, 0.9, 20, 1e-5),
    (0.005, 0.5, 3, 1e-5),
    (0.005, 4.0, 200, 1e-5),
    (0.008, 1.2, 40, 1e-4),
    (0.016, 1.1, 25, 1e-5),
    (0.03, 0.95, 8, 1e-5),
    (0.2, 5.0, 30, 1e-5),
    (0.5, 8.0, 10, 1e-5),
    (1.0, 10.0, 5, 1e-5),
    (0.004, 2.5, 100, 1e-5),
    (0.0001, 0.8, 50, 1e-8),
    (0.064, 1.7, 12, 1e-5),
]


def main():
    cases = []
    for q, sigma, epochs, delta in SETTINGS:
        steps = int(epochs / q)
        rdp = RDPAccountant()
        rdp.history = [(sigma, q, steps)]
        prv = PRVAccountant()
        prv.history = [(sigma, q, steps)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            epsilon = rdp.get_epsilon(delta)
            prv_epsilon = prv.get_epsilon(delta)
        cases.append(
            {
                "q": q,
                "sigma": sigma,
                "epochs": epochs,
                "steps": steps,
                "delta": delta,
                "rdp": epsilon,
                "prv": prv_epsilon,
            }
        )
        print(cases[-1], flush=True)
    OUT.write_text(json.dumps({"opacus": opacus.__version__, "cases": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
