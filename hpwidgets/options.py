"""The run options that ``%%hptune`` and ``hptune run`` share: their checks, conversions and help.

One rule set for both front ends, so a value one refuses the other refuses with the same words;
each turns a refusal into its own error (``UsageError`` in the magic, one line and exit status 2
on the command line).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

GPUS_HELP = "auto (GPUs if torch is imported) | none | indices like 0,1"
PER_GPU_HELP = "trials sharing one GPU: a number or auto (from memory)"
EXECUTOR_HELP = "thread | process | dask://host:port"
MAX_FAILURES_HELP = "stop once this many trials of this run have failed (default: never)"

_GPUS = re.compile(r"^(auto|none|\d+(,\d+)*)$")
_DASK_SCHEMES = ("dask://", "tcp://", "tls://")


def storage_path(text: str) -> str | None:
    """``--storage``: None (a study in memory) for none or :memory:, in any case, else the file."""
    return None if text.strip().lower() in ("none", ":memory:") else text


def positive(kind: type) -> Callable[[str], Any]:
    """An argparse ``type`` that takes a positive int or float and refuses 0, NaN and infinity."""
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or value == float("inf"):  # `not > 0` also refuses NaN
            raise argparse.ArgumentTypeError(f"must be a positive {kind.__name__}, but got {text!r}")
        return value
    convert.__name__ = f"positive {kind.__name__}"
    return convert


def placement_problem(gpus: str, per_gpu: str, executor: str) -> str | None:
    """What is wrong with --gpus / --per-gpu / --executor, in one line; None when nothing is."""
    if not _GPUS.match(gpus):
        return f"--gpus must be auto, none or GPU indices like 0,1, but got {gpus!r}"
    indices = gpus.split(",") if gpus not in ("auto", "none") else []
    if len({int(i) for i in indices}) < len(indices):
        return f"--gpus must name each GPU once, but got {gpus!r}"
    if per_gpu != "auto" and not (per_gpu.isdigit() and int(per_gpu) >= 1):
        return f"--per-gpu must be a positive int or auto, but got {per_gpu!r}"
    if not (executor in ("thread", "process", "threads", "processes") or executor.startswith(_DASK_SCHEMES)):
        return f"--executor must be thread, process or dask://host:port, but got {executor!r}"
    return None


def missing_gpu_problem(gpus: str) -> str | None:
    """Explicit --gpus indices that no visible GPU has, in one line; checked before a study is made.

    Only asked where indices are given (torch loads then); with no GPU at all the run falls back
    to the CPU with a warning, as ``devices.select_gpus`` does, so one notebook runs anywhere.
    """
    if gpus in ("auto", "none"):
        return None
    from . import devices
    available = devices.discover_gpus()
    if not available:
        return None
    try:
        devices.select_gpus([int(i) for i in gpus.split(",")], available)
    except ValueError as error:
        return f"--gpus {gpus}: {error}"
    return None


def placement(gpus: str, per_gpu: str, executor: str) -> dict[str, Any]:
    """Runner keywords (``Study.optimize``'s) from options that ``placement_problem`` passed.

    ``--gpus auto`` (the default) uses GPUs only when the user's code has imported torch: a
    scikit-learn objective should not pay for importing torch just to learn there is no GPU.
    """
    chosen: Any = None
    if gpus == "auto":
        chosen = "auto" if "torch" in sys.modules else None
    elif gpus != "none":
        chosen = [int(i) for i in gpus.split(",")]
    slots: Any = per_gpu if per_gpu == "auto" else int(per_gpu)
    return {"gpus": chosen, "per_gpu": slots, "executor": runner_of(executor)}


def runner_of(executor: str) -> str | None:
    """``Study.optimize``'s ``executor`` for an --executor value (None: threads)."""
    return {"thread": None, "threads": None, "process": "processes"}.get(executor, executor)
