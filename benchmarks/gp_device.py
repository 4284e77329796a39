"""NativeGP on a CUDA GPU: its torch backend (what ``backend="auto"`` picks there) against numpy.

    python benchmarks/gp_device.py --json gp_device.json      # on the GPU machine (gpu_check.sh runs it)
    python benchmarks/gp_device.py --render gp_device.json --write   # here: the RESULTS.md section

On one machine, per backend and problem: ask+tell ms after 100 and 200 told random trials
(the mean of 10 steps after a warm-up, as ``quality.py`` times), and the regret at 50 trials
on seeds 0-9, sequential. Runs go problem by problem, seed by seed, both backends in turn, so
a time cap (``--budget``) cuts both alike. Both backends run float64; the torch one also fits
on the GPU when there is one, so whether its suggestions equal numpy's there is counted.
"""

from __future__ import annotations

import os

# One BLAS thread, as in quality.py, set before numpy loads: the numpy backend's times then
# compare with the ones RESULTS.md gives for this machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from functions import PROBLEMS, Problem  # noqa: E402
from quality import HwRunner, best_curve, overhead_ms  # noqa: E402
from results_md import table, write_section  # noqa: E402

from hpwidgets.algorithms.gp_native import NativeGP  # noqa: E402

TITLE = "NativeGP on a GPU (issue 7, bar 1)"
NOTES = [
    "- Both backends are the same algorithm in float64; the torch one differs in the last digits of"
    " its sums, which a 50-trial run can amplify, so \"equal\" counts runs whose final regrets agree to"
    " 1e-9. The medians agree to three digits.",
    "- On the GPU the torch backend was 2-3.5x slower than numpy at n=100 and ahead at n=200 on one"
    " problem of three: at these sizes each ask is thousands of small kernel launches. So"
    " `backend=\"auto\"` runs numpy until a study has `GPU_FROM_TRIALS` = 300 finished trials and the"
    " GPU from then on (`gp_native.resolve_backend`); 300 extrapolates the two measured sizes.",
    "- The numpy backend took about twice as long on that machine's CPU as on the 2-core machine of"
    " the quality table (23 / 20 / 21 ms at n=100 there), so compare within one table only.",
    "- Measured with one kernel fit per ask. NativeGP now also starts a second fit from the noisy mode"
    " (`noisy_start`), on both backends alike: on the 2-core machine that took numpy from 20-23 to"
    " 28-30 ms at n=100. This table awaits a GPU session to be measured again.",
]
BACKENDS = ("numpy", "torch")


def make(backend: str) -> Any:
    return lambda space, seed, parallel: HwRunner(lambda: NativeGP(backend=backend), space, seed, parallel)


def machine() -> dict[str, Any]:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"gpu": gpu, "torch": torch.__version__, "cpus": os.cpu_count(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def timings(problems: list[Problem]) -> dict[str, dict[str, list[float]]]:
    """{backend: {problem: [ms at n=100, ms at n=200]}}."""
    out: dict[str, dict[str, list[float]]] = {b: {} for b in BACKENDS}
    for problem in problems:
        for backend in BACKENDS:
            out[backend][problem.name] = [round(overhead_ms(make(backend), problem, n), 2) for n in (100, 200)]
            print(f"  {backend} {problem.name}: {out[backend][problem.name]} ms", flush=True)
    return out


def regrets(problems: list[Problem], seeds: range, trials: int, deadline: float) -> dict[str, Any]:
    """{backend: {problem: [regret at ``trials`` per finished seed]}} and the seconds per run."""
    final: dict[str, dict[str, list[float]]] = {b: {p.name: [] for p in problems} for b in BACKENDS}
    seconds: dict[str, list[float]] = {b: [] for b in BACKENDS}
    for problem in problems:
        for seed in seeds:
            if time.monotonic() > deadline:
                return {"regret": final, "seconds": seconds, "cut": True}
            for backend in BACKENDS:
                start = time.perf_counter()
                curve = best_curve(make(backend)(problem.space, seed, 1), problem, trials, 1)
                seconds[backend].append(time.perf_counter() - start)
                final[backend][problem.name].append(curve[-1])
            print(f"  {problem.name} seed {seed}: " + ", ".join(
                f"{b} {final[b][problem.name][-1]:.4g}" for b in BACKENDS), flush=True)
    return {"regret": final, "seconds": seconds, "cut": False}


def render(report: dict[str, Any]) -> str:
    names = list(report["timing"]["numpy"])
    rows = []
    for backend in BACKENDS:
        for name in names:
            got, ref = report["regret"][backend][name], report["regret"]["numpy"][name]
            same = sum(abs(a - b) <= 1e-9 * max(1.0, abs(b)) for a, b in zip(got, ref, strict=True))
            ms = report["timing"][backend][name]
            rows.append([backend, name, f"{ms[0]:.1f}", f"{ms[1]:.1f}",
                         f"{statistics.median(got):.3g} ({len(got)} seeds)" if got else "–", f"{same}/{len(got)}"])
    m = report["machine"]
    per_run = {b: statistics.median(s) for b, s in report["seconds"].items() if s}
    return "\n".join([
        "Command: `python benchmarks/gp_device.py --json gp_device.json` (on the GPU machine, from "
        "`benchmarks/gpu_check.sh`), then `python benchmarks/gp_device.py --render gp_device.json --write` here  ",
        f"Date: {m['date']}  ",
        f"Machine: {m['gpu'] or 'no GPU'}, {m['cpus']} CPU cores, Python {m['python']}, torch {m['torch']}", "",
        table(["backend", "problem", "ask+tell ms, n=100", "n=200", "median regret at 50 trials",
               "runs equal to numpy's"], rows), "",
        "- Seconds per 50-trial run (median): " + ", ".join(f"{b} {s:.1f} s" for b, s in per_run.items())
        + (" (the regret runs were cut by the time cap; a dash: no seed finished)" if report["cut"] else "") + ".",
        *NOTES,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the measurements here")
    parser.add_argument("--render", help="print (and with --write, store) the section from this JSON")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--budget", type=float, default=150.0, help="seconds for the regret runs")
    args = parser.parse_args()
    if args.render:
        text = render(json.loads(Path(args.render).read_text()))
        print(text)
        if args.write:
            write_section(TITLE, text)
        return
    problems = list(PROBLEMS.values())
    report: dict[str, Any] = {"machine": machine(), "timing": timings(problems)}
    report.update(regrets(problems, range(args.seeds), args.trials, time.monotonic() + args.budget))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    print(render(report))


if __name__ == "__main__":
    main()
