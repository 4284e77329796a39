"""Scenarios 10 and 12: the panel goes away mid-run, and a slider is edited to an invalid range mid-run.

The panel runs for real (ipywidgets + the anywidget chart) against a comm that records what it
would send to a browser; the shell pretends to be a kernel so ``%%hptune`` shows the panel and
searches in the background, as it does in Jupyter.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import anywidget  # noqa: F401 - a dev dependency: missing means a broken install
import comm
import ipywidgets
import pytest
from comm.base_comm import BaseComm
from faultkit import assert_saved, wait_until
from IPython.core.interactiveshell import InteractiveShell
from traitlets import TraitError

import hpwidgets as hw
from hpwidgets import magic
from hpwidgets.ui import Dashboard


class CaptureComm(BaseComm):
    """A comm that keeps its messages instead of sending them to a frontend."""

    sent: ClassVar[list[str]] = []

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                    **keys: Any) -> None:
        CaptureComm.sent.append(msg_type)


@pytest.fixture
def widgets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(comm, "create_comm", lambda *a, **k: CaptureComm(*a, **k))
    monkeypatch.setenv("HPWIDGETS_DASHBOARD", "widget")
    yield


@pytest.fixture
def kernel_shell(shell: InteractiveShell, widgets: None, monkeypatch: pytest.MonkeyPatch) -> InteractiveShell:
    """The shell as a kernel looks to the magic: it shows the panel and searches in the background."""
    monkeypatch.setattr(shell, "kernel", object(), raising=False)
    return shell


CELL = "x = hp.uniform(0, 1)\nimport time\ntime.sleep(0.03)\nx\n"


def panel_of(name: str) -> Dashboard:
    return magic._STUDIES[name].dashboard


def close_from_the_frontend(widget: Any) -> None:
    """What a browser's comm_close does kernel-side: the comm is marked closed; ipywidgets is not told."""
    for child in getattr(widget, "children", ()):
        close_from_the_frontend(child)
    if widget.comm is not None:
        widget.comm._closed = True
        widget.comm.handle_close({"content": {"data": {}}})


@pytest.mark.parametrize("how", ["close_all", "frontend_closed"])
def test_the_search_outlives_its_panel_and_show_reattaches(kernel_shell: InteractiveShell, db: Path,
                                                           how: str) -> None:
    kernel_shell.run_cell_magic("hptune", f"--algo random --seed 0 --trials 30 --name dash --storage {db} -o st",
                                CELL)
    study, first = kernel_shell.user_ns["st"], panel_of("dash")
    assert study.running and first is not None and first.widget is not None
    wait_until(lambda: len(study.trials) >= 3, 20, "3 trials")
    if how == "close_all":
        ipywidgets.Widget.close_all()  # what "Clear outputs" + a widget cleanup does in the kernel
    else:
        close_from_the_frontend(first.widget)
    closed_at = len(study.trials)
    wait_until(lambda: len(study.trials) >= closed_at + 3, 20, "the search to go on without its panel")
    kernel_shell.run_line_magic("hptune", "show dash")
    second = panel_of("dash")
    assert second is not first and second.widget is not None
    seen = second._view.chart.n_trials
    assert seen >= closed_at + 3  # the new panel starts from every trial so far
    assert study.wait(30) and len(study.trials) == 30 and study.finish_reason == "complete"
    second.flush()
    assert second._stats.done == 30 and second._view.chart.n_trials == 30  # and followed the rest live
    assert "30/30 trials" in second._view.controls.line.value
    assert_saved(study, db)


# --- 12. a slider edited to an invalid range ----------------------------------------------------
SPACE = hw.SearchSpace({"x": hw.uniform(0, 10), "n": hw.int(1, 9), "c": hw.choice("a", "b", "c")})


def stored_space(db: Path, name: str) -> hw.SearchSpace:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (text,) = conn.execute("SELECT space_json FROM studies WHERE name = ?", (name,)).fetchone()
    return hw.SearchSpace.from_dict(json.loads(text))


@pytest.fixture
def running_panel(widgets: None, db: Path) -> Iterator[tuple[hw.Study, Dashboard]]:
    """A background search (one trial at a time, 20 ms each) with its panel."""
    study = hw.Study("sliders", SPACE, algo="random", seed=0, storage=db)
    panel = Dashboard(study, mode="widget")
    panel._interval = 0  # apply events at once: no pump timing in the assertions
    study.optimize(lambda p: time.sleep(0.02) or p["x"], trials=60, background=True, progress=False)
    yield study, panel
    study.stop()
    study.wait(10)
    panel.close()


def edit(panel: Dashboard) -> Any:
    return panel._view.editor


def test_invalid_slider_edits_are_refused_and_the_search_keeps_the_last_valid_space(
        running_panel: tuple[hw.Study, Dashboard], db: Path) -> None:
    study, panel = running_panel
    editor = edit(panel)
    editor.controls["x"].slider.value = (2.0, 3.0)  # valid: the next suggestions move there
    valid = study.space
    assert valid["x"] == hw.uniform(2.0, 3.0) and editor.error is None
    edited_at = max(t.number for t in study.trials) + 2 if study.trials else 1  # + the one running
    editor.controls["x"].slider.value = (5.0, 5.0)  # low == high
    assert "`low < high` must hold" in editor.error and "keeping the last valid space" in editor.message.value
    editor.controls["n"].slider.value = (4, 4)
    for button in editor.controls["c"].buttons:  # no choice left
        button.value = False
    assert "at least one value" in editor.error and study.space == valid
    assert study.running and not study.paused  # refusing an edit never stops the search
    assert study.wait(30) and len(study.trials) == 60 and study.finish_reason == "complete"
    later = [t for t in study.trials if t.number >= edited_at]
    assert later and all(valid.contains(t.params) for t in later)
    assert stored_space(db, "sliders") == valid  # what a resumed study would search
    assert_saved(study, db)


def test_a_frontend_message_with_low_above_high_is_rejected_without_touching_the_search(
        running_panel: tuple[hw.Study, Dashboard]) -> None:
    study, panel = running_panel
    slider = edit(panel).controls["x"].slider
    before, space = slider.value, study.space
    message = {"content": {"data": {"method": "update", "state": {"value": [8.0, 2.0]}, "buffer_paths": []}},
               "buffers": []}
    with contextlib.suppress(TraitError):  # ipywidgets shows "setting lower > upper" (or raises it)
        slider._handle_msg(message)
    assert slider.value == before and study.space == space and study.running
    assert study.wait(30) and len(study.trials) == 60
