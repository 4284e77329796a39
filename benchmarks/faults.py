"""Reliability measurements: a 10,000-trial study (time per 1000 trials, peak RSS) and the bad-input fuzz run.

    python benchmarks/faults.py [--trials 10000] [--fuzz 16000] [--quick] [--write]

Scale: a trivial objective (random search, SQLite storage) run in a fresh child process per
configuration, so each peak RSS is that run's own: once bare and once with the notebook panel
attached (real widgets and live chart, a comm that counts bytes instead of sending them).

Fuzz: the property tests of ``tests/fuzz`` with random (not derandomised) examples. A failing
example is recorded and the run goes on, so the count is of cases really checked and the
failures are tallied by kind. ``--write`` replaces the "Reliability" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "fuzz"))

from results_md import provenance, table, write_section  # noqa: E402

SPACE_TEXT = '{"x": hw.uniform(0, 1), "n": hw.int(1, 10), "c": hw.choice("a", "b")}'


# --- scale: one child process per configuration ----------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def attach_counting_panel(study: Any) -> tuple[Any, dict[str, float]]:
    """The widget panel with a comm that counts what it would send; flushes are timed."""
    import comm
    from comm.base_comm import BaseComm

    from hpwidgets.ui import Dashboard
    sent = {"messages": 0, "bytes": 0}

    class CountingComm(BaseComm):
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                        **keys: Any) -> None:
            sent["messages"] += 1
            sent["bytes"] += len(json.dumps(data, default=str)) + sum(len(b) for b in buffers or ())

    comm.create_comm = lambda *a, **k: CountingComm(*a, **k)
    panel = Dashboard(study, mode="widget")
    flushes: list[float] = []
    flush = panel.flush

    def timed() -> None:
        started = time.perf_counter()
        flush()
        flushes.append(time.perf_counter() - started)
    panel.flush = timed  # the pump calls self.flush(): every update is measured
    return panel, {"sent": sent, "flushes": flushes}


def scale_child(trials: int, with_panel: bool) -> dict[str, Any]:
    """Runs in the child: the study, with marks every 1000 trials."""
    import hpwidgets as hw
    from hpwidgets.events import TrialFinished
    db = Path(tempfile.mkdtemp()) / "scale.db"
    study = hw.Study("scale", eval(SPACE_TEXT, {"hw": hw}), algo="random", seed=0, storage=db)
    panel, seen = attach_counting_panel(study) if with_panel else (None, {})
    marks: list[tuple[int, float, float]] = []
    started = time.perf_counter()
    study.subscribe(lambda e: marks.append((e.trial.number + 1, time.perf_counter() - started, rss_mb()))
                    if isinstance(e, TrialFinished) and (e.trial.number + 1) % 1000 == 0 else None)
    before = rss_mb()
    study.optimize(lambda p: p["x"], trials=trials, progress=False)
    if panel is not None:
        panel.flush()
        panel.close()
    study.store.close()
    shutil.rmtree(db.parent)
    return {"trials": len(study.trials), "reason": study.finish_reason, "rss_start": before, "marks": marks,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "flushes": seen.get("flushes", []), "sent": seen.get("sent", {})}


def run_scale(trials: int, with_panel: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--scale-child", str(trials), "--panel" if with_panel else "--bare"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def scale_row(name: str, out: dict[str, Any]) -> list[str]:
    marks = out["marks"]
    per_1000 = [b[1] - a[1] for a, b in zip([(0, 0.0, 0.0), *marks], marks, strict=False)]
    growth = marks[-1][2] - marks[0][2] if len(marks) > 1 else 0.0
    per_trial_kb = 1024 * growth / max(1, marks[-1][0] - marks[0][0])
    flushes = sorted(out["flushes"])
    panel = (f"{len(flushes)} updates, median {1000 * statistics.median(flushes):.1f} ms, "
             f"max {1000 * flushes[-1]:.0f} ms; {out['sent']['messages']} messages, "
             f"{out['sent']['bytes'] / 2**20:.1f} MiB" if flushes else "-")
    return [name, f"{out['trials']:,} ({out['reason']})", f"{statistics.mean(per_1000):.2f} s",
            f"{max(per_1000):.2f} s", f"{out['peak_mb']:.0f} MB",
            f"{growth:.1f} MB ({per_trial_kb:.2f} KB/trial)",
            panel]


# --- fuzz: the CI properties, many more random examples, failures tallied ------------------------
def tally(failures: dict[str, dict[str, Any]], prop: str, example: Any, error: BaseException) -> None:
    if isinstance(example, tuple) and callable(example[-1]):
        example = example[0]  # a space call: its description, not the closure
    frame = traceback.extract_tb(error.__traceback__)[-1]
    key = f"{prop}: {type(error).__name__} at {Path(frame.filename).name}:{frame.lineno}"
    entry = failures.setdefault(key, {"count": 0, "example": repr(example)[:160],
                                      "message": str(error).splitlines()[0][:160] if str(error) else ""})
    entry["count"] += 1


def run_property(prop: str, strategy: Any, check: Callable[[Any], Any], n: int,
                 failures: dict[str, dict[str, Any]], random_seed: int) -> None:
    from hypothesis import HealthCheck, Phase, given, seed, settings

    @seed(random_seed)  # stated in the report, so a run can be repeated exactly
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def prop_test(example: Any) -> None:
        try:
            check(example)
        except Exception as error:  # recorded, and the run goes on: we want the count and the kinds
            tally(failures, prop, example, error)

    prop_test()


def run_fuzz(total: int, random_seed: int) -> tuple[dict[str, int], dict[str, dict[str, Any]], float]:
    import fuzzkit
    from hypothesis import strategies as st
    from IPython.core.interactiveshell import InteractiveShell

    from hpwidgets import magic
    os.chdir(tempfile.mkdtemp())  # a stray file lands here (every case ends with --storage none)
    shell = InteractiveShell.instance()
    magic.load_ipython_extension(shell)
    share = {"parse": 0.3, "text": 0.15, "space": 0.3, "magic": 0.25}
    failures: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    sink = open(os.devnull, "w")  # the magic's progress bars and summaries
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = sink
    try:
        run_property("parse (generated cells)", fuzzkit.cells(), lambda c: fuzzkit.check_parse(c[0]),
                     int(total * share["parse"]), failures, random_seed)
        run_property("parse (arbitrary text)", st.text(max_size=300), fuzzkit.check_parse,
                     int(total * share["text"]), failures, random_seed)
        run_property("space specs", fuzzkit.space_calls(), lambda c: fuzzkit.check_space_call(c[1]),
                     int(total * share["space"]), failures, random_seed)
        run_property("%%hptune", st.tuples(fuzzkit.option_lines(), fuzzkit.cells()),
                     lambda c: fuzzkit.check_magic(shell, c[0], c[1][0]), int(total * share["magic"]), failures,
                     random_seed)
    finally:
        sys.stdout, sys.stderr = saved
        sink.close()
    return dict(fuzzkit.COUNTS), failures, time.perf_counter() - started


# --- report ---------------------------------------------------------------------------------------
def cell(text: str) -> str:
    """Safe inside a markdown table cell and a code span."""
    return "`" + text.replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


def report(scale: dict[str, dict[str, Any]], counts: dict[str, int], failures: dict[str, dict[str, Any]],
           seconds: float, random_seed: int) -> str:
    rows = [scale_row(name, out) for name, out in scale.items()]
    scale_table = table(["run", "trials", "time / 1000 trials (mean)", "slowest 1000", "peak RSS",
                         "RSS growth, trial 1000 to the end", "panel"], rows)
    names = {"parse": "parse()", "space": "space constructors / from_dict / from_json", "magic": "%%hptune magic"}
    count_rows = [[names.get(k, k), f"{v:,}"] for k, v in counts.items()] + [["total", f"{sum(counts.values()):,}"]]
    failure_rows = [[key, str(v["count"]), cell(v["message"]), cell(v["example"])] for key, v in failures.items()]
    failure_text = (table(["property: error", "cases", "message", "an example"], failure_rows)
                    if failure_rows else "No failing case.")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{provenance()}  \nLoad average at the end (1, 5, 15 min): {load} (a shared machine)\n\n"
            f"See `docs/RELIABILITY.md` for the scenarios (`tests/faults/`) and their outcomes.\n\n"
            f"### 10,000-trial study (scenario 11)\n\nTrivial objective, random search, SQLite storage, one "
            f"child process per run (its own peak RSS).\n\n{scale_table}\n\n"
            f"### Bad-input fuzz run\n\n{sum(counts.values()):,} generated cases in {seconds:.0f} s "
            f"(hypothesis, seed {random_seed}: `--seed {random_seed}` repeats it; the CI tests in `tests/fuzz/` run a "
            f"few hundred derandomised ones).\n\n"
            f"{table(['property', 'cases checked'], count_rows)}\n\nFailures (each one breaks the rule "
            f"\"runs, or UsageError/ValueError naming the problem\"):\n\n{failure_text}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--fuzz", type=int, default=16_000, help="generated cases in total (at least 10,000)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: from the clock)")
    parser.add_argument("--quick", action="store_true", help="2,000 trials and 1,000 cases: a smoke run")
    parser.add_argument("--write", action="store_true", help="replace the Reliability section of RESULTS.md")
    parser.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--panel", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_child:
        print(json.dumps(scale_child(args.scale_child, args.panel)))
        return
    trials, cases = (2_000, 1_000) if args.quick else (args.trials, args.fuzz)
    scale = {"bare": run_scale(trials, False), "with the panel": run_scale(trials, True)}
    random_seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    counts, failures, seconds = run_fuzz(cases, random_seed)
    body = report(scale, counts, failures, seconds, random_seed)
    print(body)
    if args.write:
        write_section("Reliability", body)


if __name__ == "__main__":
    main()
