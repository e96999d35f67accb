#!/usr/bin/env python3
"""The reference forest of the ML benchmark: scikit-learn's RandomForestRegressor with
the hyper-parameters given, trained on the same CSV as ours (tests/bench/ml_bench fit)
and on the same target: the next 30 s's p95 minus the row's historical p95, added back
to predict. Single-threaded (n_jobs=1), as ours is.

    ml_sklearn.py --train CSV --test CSV[,CSV...] --pred FILE[,FILE...] [--trees N]
                  [--depth N] [--min-split N] [--min-leaf N] [--max-features N (0: all)]
                  [--seed S] [--repeat N]

Prints "train_s=MEDIAN sklearn=VERSION"; writes one prediction per line for each test
set. Used only by the benchmark (tests/bench/ml_run), never by the product.
"""
import argparse
import statistics
import time

import numpy as np
import sklearn
from sklearn.ensemble import RandomForestRegressor

BASE = 2      # historical_p95_ms, the column the forest's output adds to
TARGET = 11   # p95_next_30s_ms
NFEAT = 11


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--pred", required=True)
    ap.add_argument("--trees", type=int, default=10)
    ap.add_argument("--depth", type=int, default=12)
    ap.add_argument("--min-split", type=int, default=10)
    ap.add_argument("--min-leaf", type=int, default=1)
    ap.add_argument("--max-features", type=int, default=0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    tr = np.loadtxt(a.train, delimiter=",", skiprows=1, ndmin=2)
    x, y = tr[:, :NFEAT], tr[:, TARGET] - tr[:, BASE]
    times, rf = [], None
    for _ in range(a.repeat):
        rf = RandomForestRegressor(n_estimators=a.trees, max_depth=a.depth,
                                   min_samples_split=a.min_split, min_samples_leaf=a.min_leaf,
                                   max_features=a.max_features or None, bootstrap=True,
                                   random_state=a.seed, n_jobs=1)
        t0 = time.perf_counter()
        rf.fit(x, y)
        times.append(time.perf_counter() - t0)
    for test, pred in zip(a.test.split(","), a.pred.split(",")):
        te = np.loadtxt(test, delimiter=",", skiprows=1, ndmin=2)
        np.savetxt(pred, rf.predict(te[:, :NFEAT]) + te[:, BASE], fmt="%.17g")
    print("train_s=%.4f sklearn=%s" % (statistics.median(times), sklearn.__version__))


if __name__ == "__main__":
    main()
