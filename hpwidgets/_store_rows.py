"""Rows of the store to and from Python: parameters as typed JSON, trials rebuilt in bulk, and
whether the process that ran a trial is still alive."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from .trial import FrozenTrial, Report, TrialState


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):  # numpy scalars become the Python values they stand for
        return value.item()
    raise TypeError(f"{value!r} ({type(value).__name__}) is not a JSON value")


def encode_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """JSON keeps each value's type: 16 stays int, 16.0 float, "16" str, True bool, None null."""
    encoded = []
    for name, value in params.items():
        try:
            encoded.append((str(name), json.dumps(value, default=json_default)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"parameter {name!r} cannot be stored: {exc}") from None
    return encoded


def json_list(texts: list[str]) -> list[Any]:
    """Decode many JSON texts with one parse: 50,000 separate json.loads calls cost far more."""
    return json.loads("[" + ",".join(texts) + "]")


def build_trials(trials: list[tuple[Any, ...]], params: list[tuple[Any, ...]],
                  reports: list[tuple[Any, ...]]) -> list[FrozenTrial]:
    params_by_trial: dict[int, dict[str, Any]] = {}
    for (trial_id, name, _), value in zip(params, json_list([row[2] for row in params]), strict=True):
        params_by_trial.setdefault(trial_id, {})[name] = value
    reports_by_trial: dict[int, list[Report]] = {}
    current, metrics = None, {}
    for trial_id, seq, step, name, value in reports:
        if (trial_id, seq) != current:  # rows of one Report are adjacent: ordered by trial, seq
            current, metrics = (trial_id, seq), {}
            reports_by_trial.setdefault(trial_id, []).append(Report(step, MappingProxyType(metrics)))
        metrics[name] = value  # the proxy above sees this dict fill up
    all_metrics = json_list([row[4] for row in trials])
    return [FrozenTrial(number=number, state=TrialState(state), params=params_by_trial.get(trial_id, {}),
                        value=score, metrics=trial_metrics, reports=tuple(reports_by_trial.get(trial_id, ())),
                        error=error, started_at=started_at, finished_at=finished_at, device=device)
            for (trial_id, number, state, score, _, error, started_at, finished_at, device), trial_metrics
            in zip(trials, all_metrics, strict=True)]


def check_study_args(name: str, direction: str, target: str | None, algo: str) -> None:
    """A study row's fields, checked before they are written."""
    if not (isinstance(name, str) and name and isinstance(algo, str) and isinstance(target, (str, type(None)))):
        raise TypeError(f"name and algo must be strings and target None or a string, but got name={name!r}, "
                        f"algo={algo!r}, target={target!r}")
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"`direction` must be 'minimize' or 'maximize', but got direction={direction!r}")


_ENDED = "interrupted: the process running this trial ended (pid {pid})"
# A row of this process's pid that it is not running: its final write failed, or the pid is reused.
_NOT_RUNNING = "interrupted: this process (pid {pid}) is not running this trial, and its result was never saved"


def rows_no_process_runs(rows: list[tuple[int, int, int]], ours: set[int]) -> list[tuple[int, str]]:
    """(row id, why) for the RUNNING rows ``(id, number, pid)`` of this host that no process runs:
    another pid that has ended, or this pid for a trial no Store of this process has running (``ours``)."""
    me = os.getpid()
    return [(row, _NOT_RUNNING.format(pid=pid) if pid == me else _ENDED.format(pid=pid)) for row, number, pid in rows
            if (number not in ours if pid == me else not pid_alive(pid))]


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists here; unsure answers say alive, so no live trial is failed."""
    if pid <= 0:  # os.kill(0, ...) would address our own process group
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would *terminate* the process on Windows
        return windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by another user
        pass
    return True


def windows_pid_alive(pid: int) -> bool:
    import ctypes
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists
    try:
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return not ok or code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)
