"""The run options the magic and the command line share (hpwidgets/options.py)."""

from __future__ import annotations

import argparse
import re
import sys

import pytest

from hpwidgets.options import missing_gpu_problem, placement, placement_problem, positive, runner_of


@pytest.mark.parametrize("gpus, torch_imported, expected", [
    ("auto", False, None), ("auto", True, "auto"), ("none", True, None), ("0,1", False, [0, 1]),
])
def test_placement_reads_the_options(monkeypatch: pytest.MonkeyPatch, gpus: str, torch_imported: bool,
                                     expected: object) -> None:
    if torch_imported:
        monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch", object()))
    else:
        monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert placement(gpus, "auto", "dask://127.0.0.1:8786") == {
        "gpus": expected, "per_gpu": "auto", "executor": "dask://127.0.0.1:8786"}


def test_placement_names_the_thread_and_process_executors_as_the_runner_does() -> None:
    assert placement("none", "3", "thread") == {"gpus": None, "per_gpu": 3, "executor": None}
    assert placement("none", "1", "process")["executor"] == "processes"
    assert [runner_of(e) for e in ("thread", "threads", "process", "processes", "dask://h:1")] == [
        None, None, "processes", "processes", "dask://h:1"]


def test_missing_gpu_problem_names_the_index_only_where_gpus_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    import hpwidgets.devices as devices
    monkeypatch.setattr(devices, "discover_gpus", lambda: [devices.GpuInfo(0, "Stand-in GPU", 2**34, 2**34)])
    assert missing_gpu_problem("0") is None and missing_gpu_problem("auto") is None
    assert missing_gpu_problem("0,2") == "--gpus 0,2: gpus=[0, 2] asks for ['cuda:2'], but only ['cuda:0'] are visible"
    monkeypatch.setattr(devices, "discover_gpus", lambda: [])
    assert missing_gpu_problem("3") is None  # no GPU at all: the run falls back to the CPU with a warning


@pytest.mark.parametrize("gpus, per_gpu, executor, problem", [
    ("auto", "1", "thread", None),
    ("0,1", "auto", "tls://10.0.0.1:8786", None),
    ("0,", "1", "thread", "--gpus must be auto, none or GPU indices like 0,1, but got '0,'"),
    ("all", "1", "thread", "--gpus must be auto, none or GPU indices like 0,1, but got 'all'"),
    ("auto", "-1", "thread", "--per-gpu must be a positive int or auto, but got '-1'"),
    ("auto", "1", "threads", None),  # the API's word, accepted too
    ("auto", "1", "pool", "--executor must be thread, process or dask://host:port, but got 'pool'"),
    ("1,0,1", "1", "thread", "--gpus must name each GPU once, but got '1,0,1'"),
])
def test_placement_problem_is_one_line_naming_the_value(gpus: str, per_gpu: str, executor: str,
                                                        problem: str | None) -> None:
    assert placement_problem(gpus, per_gpu, executor) == problem


@pytest.mark.parametrize("text", ["0", "-3", "nan", "inf", "two", ""])
def test_positive_refuses_what_is_not_a_positive_number(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(f"must be a positive float, but got {text!r}")):
        positive(float)(text)


def test_positive_converts_to_its_kind() -> None:
    assert positive(int)("4") == 4 and positive(float)("0.5") == 0.5
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape("positive int, but got '2.5'")):
        positive(int)("2.5")
