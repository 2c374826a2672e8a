"""Autologging cost against a local tracking server (not a test: numbers for the issue's targets).

    .venv/bin/python bench/autolog.py [--repeats 7] [--candidates 100] [--profile] [--only regressor]

Starts modelyard's tracking service (gunicorn, 2 workers, SQLite, local artifacts) and measures, as
medians over `--repeats`, what autologging adds to a small `fit`: the fit with autologging on minus the
same fit with it off (wall time to `fit`'s return, and this process's CPU time, which a loaded machine
distorts less; plus the requests sent), for a regressor (params, metrics, dataset, model, estimator.html),
a classifier and `log_models=False`; and how long a GridSearchCV of `--candidates` candidates takes to
log (parent, model and every child run, `max_tuning_runs=None`). A classifier's plots (the confusion
matrix, and curves for binary problems: matplotlib's drawing) are drawn and stored on a background
thread after `fit` returns: after each repeat the bench waits for them (`flush_async_logging`, so one
repeat's drawing does not slow the next) and reports how long after `fit` returned they were stored
("stored +ms") and the client's CPU including them ("CPU w/ plots"). The server's CPU (the gunicorn tree, psutil) is reported beside the client's:
on an idle 2-core machine the wall time is about the larger of the client's CPU and half their sum.
`--profile` prints, per case, where the client's CPU goes with autologging on (cProfile, top functions).
Targets (issue #18): < 50 ms per small fit, < 2 s for 100 candidates.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

# One BLAS/OpenMP thread: idle pool threads spinning on a busy machine add tens of ms of CPU to a fit at
# random, which the CPU columns would read as autologging's.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# Run as a script, this folder is sys.path[0], where bench/profile.py would shadow the standard library's
# `profile` (which cProfile imports); the repository root goes there instead.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelyard.devstack.process import free_port  # noqa: E402
from modelyard.devstack.services import TRACKING, GunicornService  # noqa: E402

_REQUESTS = [0]
#: The tracking service's master pid (its workers are its children), for the server's CPU.
_SERVER: list[int] = []
#: Wall ms spent in autologging's `log_fit` (everything a fit logs after training), summed.
_LOGGING = [0.0]


def _count_requests() -> None:
    """Count HTTP requests the client sends (every modelyard request goes through requests.Session)."""
    import requests

    original = requests.Session.request

    def request(self: requests.Session, *args: object, **kwargs: object) -> object:
        _REQUESTS[0] += 1
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    requests.Session.request = request  # type: ignore[method-assign]


def _time_logging() -> None:
    """Sum the wall time of `log_fit`: for a search, the logging alone, apart from seconds of fitting
    whose noise on a busy machine is larger than the logging itself."""
    import modelyard.sklearn.autologging as sklearn_autolog

    original = sklearn_autolog.log_fit

    def log_fit(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            _LOGGING[0] += (time.perf_counter() - started) * 1000

    sklearn_autolog.log_fit = log_fit  # type: ignore[assignment]


def _server_cpu() -> float:
    from bench.measure import tree_cpu_seconds

    return tree_cpu_seconds(_SERVER) * 1000


def _median(repeats: int, action: Callable[[], object]) -> tuple[float, ...]:
    """Medians of wall ms to the action's return, this process's CPU ms by then (steadier on a loaded
    machine), requests sent, the server's CPU ms (its requests are answered by then: the client waits
    for each), wall ms in log_fit, wall ms from the return until the background logging (plots) is
    stored, and this process's CPU ms including that."""
    from modelyard import flush_async_logging

    wall, cpu, sent, server, logging_ms, stored, cpu_all = [], [], [], [], [], [], []
    for _ in range(repeats):
        before, server_before, logging_before = _REQUESTS[0], _server_cpu(), _LOGGING[0]
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        returned, returned_cpu = time.perf_counter(), time.process_time()
        flush_async_logging()
        stored.append((time.perf_counter() - returned) * 1000)
        cpu_all.append((time.process_time() - started_cpu) * 1000)
        wall.append((returned - started) * 1000)
        cpu.append((returned_cpu - started_cpu) * 1000)
        sent.append(_REQUESTS[0] - before)
        server.append(_server_cpu() - server_before)
        logging_ms.append(_LOGGING[0] - logging_before)
    return tuple(statistics.median(v) for v in (wall, cpu, sent, server, logging_ms, stored, cpu_all))


def _profile(label: str, action: Callable[[], object], repeats: int) -> None:
    import cProfile
    import pstats

    from modelyard import flush_async_logging

    profiler = cProfile.Profile()  # this thread's calls: the background plots are not in it
    profiler.enable()
    for _ in range(repeats):
        action()
        flush_async_logging()
    profiler.disable()
    print(f"\n--- client CPU of {label}, {repeats} runs (cProfile, by own time) ---")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="print where the client's CPU goes")
    parser.add_argument("--only", help="only the fits whose label contains this (e.g. regressor), no search")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import numpy as np
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    import modelyard
    from modelyard.store.sql.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="modelyard-bench-autolog-") as tmp:
        uri = f"sqlite:///{tmp}/bench.db"
        upgrade(uri)
        service = GunicornService(
            spec=TRACKING,
            port=free_port(),
            log_path=Path(tmp) / "tracking.log",
            env={"MODELYARD_BACKEND_STORE_URI": uri, "MODELYARD_ARTIFACTS_DESTINATION": f"{tmp}/artifacts"},
            workers=2,
            tied_to_parent=True,
            cwd=Path(tmp),
        )
        service.start(timeout=120)
        _SERVER.append(service.pid)
        try:
            modelyard.set_tracking_uri(service.url)
            modelyard.set_experiment("bench-autolog")
            Xr, yr = load_diabetes(return_X_y=True)
            Xc, yc = load_iris(return_X_y=True, as_frame=True)
            fits = {
                "regressor (LinearRegression, diabetes)": lambda: LinearRegression().fit(Xr, yr),
                "classifier (LogisticRegression, iris)": lambda: LogisticRegression(max_iter=300).fit(Xc, yc),
            }
            if args.only:
                fits = {label: fit for label, fit in fits.items() if args.only in label}
            _count_requests()
            _time_logging()
            rows = []
            for label, fit in fits.items():
                fit()
                plain = _median(args.repeats, fit)
                for options in ({}, {"log_models": False}):
                    modelyard.sklearn.autolog(**options)
                    fit()  # first fit: imports and patching
                    logged = _median(args.repeats, fit)
                    if args.profile:
                        _profile(f"{label} {options or 'defaults'}", fit, args.repeats)
                    modelyard.sklearn.autolog(disable=True)
                    rows.append((f"{label} {options or 'defaults'}", plain, logged))
            if args.only:
                return _report(rows)
            side = int(np.ceil(np.sqrt(args.candidates)))
            grid = {"max_depth": list(range(1, side + 1)), "min_samples_leaf": list(range(1, side + 1))}
            grid["min_samples_leaf"] = grid["min_samples_leaf"][: max(1, args.candidates // side)]
            count = len(grid["max_depth"]) * len(grid["min_samples_leaf"])

            def search() -> object:
                return GridSearchCV(DecisionTreeClassifier(random_state=0), grid, cv=2).fit(Xc, yc)

            plain = _median(3, search)
            modelyard.sklearn.autolog(max_tuning_runs=None)
            search()
            logged = _median(3, search)
            if args.profile:
                _profile(f"GridSearchCV, {count} candidates", search, 1)
            modelyard.sklearn.autolog(disable=True)
            rows.append((f"GridSearchCV, {count} candidates, every child run", plain, logged))
        finally:
            modelyard.set_tracking_uri(None)
            service.stop()
    _report(rows)


def _report(rows: list[tuple[str, tuple[float, ...], tuple[float, ...]]]) -> None:
    """overhead: on `fit`'s return; stored +ms: the background plots stored that long after it;
    client CPU: to the return; CPU w/ plots: with the background drawing and upload."""
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{'fit':<62} {'plain ms':>8} {'autolog ms':>10} {'overhead ms':>11} {'log_fit ms':>10} "
        f"{'client CPU ms':>13} {'stored +ms':>10} {'CPU w/ plots':>12} {'server CPU ms':>13} {'requests':>8}"
    )
    for label, plain, logged in rows:
        print(
            f"{label:<62} {plain[0]:>8.1f} {logged[0]:>10.1f} {logged[0] - plain[0]:>11.1f} {logged[4]:>10.1f} "
            f"{logged[1] - plain[1]:>13.1f} {logged[5]:>10.1f} {logged[6] - plain[6]:>12.1f} {logged[3]:>13.1f} "
            f"{logged[2]:>8.0f}"
        )


if __name__ == "__main__":
    main()
