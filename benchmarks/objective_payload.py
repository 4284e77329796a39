"""Process trials whose objective carries data: the pickle sent with every trial vs once per worker.

    python benchmarks/objective_payload.py [--sizes 0,250,1000] [--trials 12] [--rounds 2] [--write]

An objective that uses an array of the given size (float64, a closure here, a notebook cell's
namespace in practice) is pickled by value with it. ``every trial``: the pickle travels through
the process pool's pipe with each trial, as hpwidgets did before ``hpwidgets/_payload.py``;
``once per worker`` (now): the study writes it to a file once and each worker process reads it
on its first trial; on Dask (a ``LocalCluster`` of 2 worker processes) the study scatters it to
the workers once instead of putting it in each task. Both unpickle a fresh copy per trial.
Seconds for the whole study (2 workers, random search, no storage), the median of ``--rounds``
runs, before and now each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from results_md import provenance, table, write_section  # noqa: E402

import hpwidgets as hw  # noqa: E402
from hpwidgets import runner, workers  # noqa: E402

TITLE = "Process trials with data in the objective"


class EveryTrial(runner.ProcessRunner):
    """The earlier way: each trial sends the pickled objective's bytes through the pool's pipe."""

    def _payload(self, call: Any) -> Any:
        with self._lock:
            if id(call) not in self._payloads:
                self._payloads[id(call)] = (call, workers.dumps(call))
            return self._payloads[id(call)][1]


def dask_every_trial(client: Any) -> Any:
    """The earlier way on Dask: the pickled objective's bytes inside each task."""
    from hpwidgets.dask_runner import DaskRunner

    class EveryTask(DaskRunner):
        def _payload(self, call: Any) -> Any:
            return workers.dumps(call)
    return EveryTask(client)


def carrying(megabytes: int) -> Any:
    data = np.zeros(megabytes * 1_000_000 // 8)

    def objective(params: dict[str, Any]) -> float:
        return float(data[:1].sum()) + params["x"]
    return objective


def study_seconds(make: Any, megabytes: int, trials: int) -> float:
    objective = carrying(megabytes)
    start = time.perf_counter()
    study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="random", seed=0, storage=None)
    study.optimize(objective, trials, runner=make(), progress=False)
    assert len(study.trials) == trials and all(t.state is hw.TrialState.COMPLETE for t in study.trials)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,250,1000", help="megabytes the objective carries")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", action="store_true", help=f"replace the {TITLE!r} section of RESULTS.md")
    args = parser.parse_args()
    import distributed
    rows = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        kinds = {"processes": (lambda: EveryTrial({"cpu": 2}), lambda: runner.ProcessRunner({"cpu": 2})),
                 "Dask": (lambda: dask_every_trial(client), lambda: runner.make_runner(2, executor=client))}
        for megabytes in (int(s) for s in args.sizes.split(",")):
            for kind, (before, now) in kinds.items():
                every = statistics.median(study_seconds(before, megabytes, args.trials) for _ in range(args.rounds))
                once = statistics.median(study_seconds(now, megabytes, args.trials) for _ in range(args.rounds))
                rows.append([f"{megabytes} MB", kind, f"{every:.2f} s", f"{once:.2f} s", f"{every / once:.1f}x"])
                print(rows[-1], flush=True)
    body = (f"{provenance()}\n\n{__doc__.split(chr(10) + chr(10), 2)[2].strip()}\n\n"
            + table(["data in the objective", "workers", "every trial (before)", "once per worker (now)",
                     "speed-up"], rows))
    print(body)
    if args.write:
        write_section(TITLE, body)


if __name__ == "__main__":
    main()
