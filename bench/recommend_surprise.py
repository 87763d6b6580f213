"""Surprise's SVD (Funk's biased matrix factorization, trained by SGD), timed: the peer side
of `ember bench recommend` (see bench/README.md). `ember bench recommend` writes or is given a
train and a test file in MovieLens u.data layout (tab-separated `user item rating timestamp`,
no header), trains its own factorization on them, then runs

    python bench/recommend_surprise.py --train TRAIN.tsv --test TEST.tsv \
        --factors 100 --epochs 20 --lr 0.005 --reg 0.02 --seed 0 [--repeat N]

with the same hyperparameters and reads the one JSON line this prints on stdout:

    {"library": "surprise", "version": ..., "fit_seconds": ..., "seconds_per_epoch": ...,
     "ratings_per_second": ..., "rmse": ..., "mae": ..., "train_ratings": ...,
     "test_ratings": ..., "trainset_seconds": ..., "rss_before_mib": ...,
     "rss_after_mib": ..., "peak_rss_mib": ..., ...}

Only `algo.fit(trainset)` is inside `fit_seconds` (time.perf_counter); reading the train file
and `build_full_trainset` are `trainset_seconds`. With `--repeat N` the model is fitted N times
from the same seed and `fit_seconds` is the fastest fit (`fit_seconds_all` lists them all);
RMSE and MAE are those of the last fit's predictions of the test set (`algo.test`, which clips
estimates to the rating scale [1, 5]; a test user or item unseen in training gets the global
mean plus whichever bias is known, and `unknown_test` counts those ratings).
`ratings_per_second` is train_ratings * epochs / fit_seconds. `rss_before_mib` is the resident
set (VmRSS) just before the first fit, `rss_after_mib` just after the last, and `peak_rss_mib`
the process's peak (ru_maxrss) at the end.

The defaults are Surprise's own SVD defaults (100 factors, 20 epochs, lr_all 0.005,
reg_all 0.02, init_mean 0, init_std_dev 0.1, biased). Surprise's SGD visits the ratings in
`trainset.all_ratings()` order (by user, in file order within a user) every epoch, unshuffled.

Surprise lives in a virtual environment made for benchmarking only (never in CI, never a
dependency of Ember); scikit-surprise 1.1.5 ships a manylinux wheel for CPython 3.11, so
nothing is compiled:

    python3 -m venv /tmp/surprise-venv
    /tmp/surprise-venv/bin/pip install scikit-surprise
    # (tested: scikit-surprise 1.1.5, numpy 2.4.6, scipy 1.17.1, joblib 1.6.0)
    # If pip ever has to build it from source and that fails:
    #   /tmp/surprise-venv/bin/pip install numpy cython && \
    #   /tmp/surprise-venv/bin/pip install --no-build-isolation scikit-surprise
    # or fall back to /tmp/surprise-venv/bin/pip install "numpy<2" "scikit-surprise==1.1.4"
"""

import argparse
import json
import time

from peer import existing_file, peak_rss_mib, positive_int, rss_mib


def main():
    parser = argparse.ArgumentParser(
        description="Train Surprise's SVD on a train file, score it on a test file, and "
                    "print one JSON line (the peer side of `ember bench recommend`).")
    parser.add_argument("--train", required=True, type=existing_file,
                        help="tab-separated user, item, rating, timestamp; no header")
    parser.add_argument("--test", required=True, type=existing_file,
                        help="same layout as --train")
    parser.add_argument("--factors", type=positive_int, default=100)
    parser.add_argument("--epochs", type=positive_int, default=20)
    parser.add_argument("--lr", type=float, default=0.005, help="lr_all")
    parser.add_argument("--reg", type=float, default=0.02, help="reg_all")
    parser.add_argument("--seed", type=int, default=0, help="random_state")
    parser.add_argument("--algorithm", choices=["svd", "svdpp"], default="svd",
                        help="SVD (Funk's biased MF) or SVDpp (SVD++)")
    parser.add_argument("--repeat", type=positive_int, default=1,
                        help="fit this many times from the same seed; report the fastest")
    args = parser.parse_args()

    try:
        import surprise
        from surprise import SVD, SVDpp, Dataset, Reader, accuracy
    except ImportError as e:
        parser.error(f"cannot import surprise ({e}); install it with "
                     "`python3 -m venv /tmp/surprise-venv && "
                     "/tmp/surprise-venv/bin/pip install scikit-surprise`")

    reader = Reader(line_format="user item rating timestamp", sep="\t", rating_scale=(1, 5))

    start = time.perf_counter()
    try:
        trainset = Dataset.load_from_file(args.train, reader=reader).build_full_trainset()
    except ValueError as e:
        parser.error(f"cannot read {args.train}: {e}")
    trainset_seconds = time.perf_counter() - start
    if trainset.n_ratings == 0:
        parser.error(f"{args.train} holds no ratings")

    try:
        raw = Dataset.load_from_file(args.test, reader=reader).raw_ratings
    except ValueError as e:
        parser.error(f"cannot read {args.test}: {e}")
    testset = [(u, i, r) for (u, i, r, _) in raw]
    if not testset:
        parser.error(f"{args.test} holds no ratings")

    rss_before = rss_mib()
    fit_times = []
    algo = None
    for _ in range(args.repeat):
        model = SVD if args.algorithm == "svd" else SVDpp
        algo = model(n_factors=args.factors, n_epochs=args.epochs, lr_all=args.lr,
                   reg_all=args.reg, random_state=args.seed)
        start = time.perf_counter()
        algo.fit(trainset)
        fit_times.append(time.perf_counter() - start)
    rss_after = rss_mib()

    start = time.perf_counter()
    predictions = algo.test(testset)
    predict_seconds = time.perf_counter() - start
    rmse = accuracy.rmse(predictions, verbose=False)
    mae = accuracy.mae(predictions, verbose=False)
    train_users = {trainset.to_raw_uid(u) for u in trainset.all_users()}
    train_items = {trainset.to_raw_iid(i) for i in trainset.all_items()}
    unknown = sum(1 for (u, i, _) in testset if u not in train_users or i not in train_items)

    fit_seconds = min(fit_times)
    print(json.dumps({
        "library": "surprise",
        "algorithm": args.algorithm,
        "version": surprise.__version__,
        "fit_seconds": fit_seconds,
        "seconds_per_epoch": fit_seconds / args.epochs,
        "ratings_per_second": trainset.n_ratings * args.epochs / fit_seconds,
        "rmse": rmse,
        "mae": mae,
        "train_ratings": trainset.n_ratings,
        "test_ratings": len(testset),
        "trainset_seconds": trainset_seconds,
        "rss_before_mib": rss_before,
        "rss_after_mib": rss_after,
        "peak_rss_mib": peak_rss_mib(),
        "predict_seconds": predict_seconds,
        "unknown_test": unknown,
        "fit_seconds_all": fit_times,
        "factors": args.factors,
        "epochs": args.epochs,
        "lr": args.lr,
        "reg": args.reg,
        "seed": args.seed,
        "repeat": args.repeat,
        "train_users": trainset.n_users,
        "train_items": trainset.n_items,
    }))


if __name__ == "__main__":
    main()
