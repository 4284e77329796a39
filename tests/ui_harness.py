"""The panel's test harness: a dummy comm that records what widgets would send, and panel makers.

ipywidgets 8.1 opens comms through ``comm.create_comm``; the ``sent`` fixture points it at
``CaptureComm``, so no kernel and no browser are needed. ``conftest.py`` registers the fixtures.
"""

from __future__ import annotations

from typing import Any, ClassVar

import comm
import pytest
from comm.base_comm import BaseComm

import hpwidgets as hw
from hpwidgets.ui import Dashboard

SPACE = hw.SearchSpace({"lr": hw.loguniform(1e-4, 1e-1), "x": hw.uniform(0, 10), "units": hw.int(16, 256, step=16),
                        "bs": hw.choice(16, 32, 64), "epochs": hw.budget(1, 27)})


class CaptureComm(BaseComm):
    """A comm whose messages land in a list instead of a kernel's iopub socket."""

    sent: ClassVar[list[tuple[str, dict]]] = []

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                    **keys: Any) -> None:
        CaptureComm.sent.append((msg_type, data or {}))


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    CaptureComm.sent = []
    monkeypatch.setattr(comm, "create_comm", lambda *a, **k: CaptureComm(*a, **k))
    return CaptureComm.sent


def custom(sent: list[tuple[str, dict]]) -> list[dict]:
    return [d["content"] for t, d in sent if t == "comm_msg" and d.get("method") == "custom"]


def frontend_says(widget: Any, content: dict) -> None:
    """Deliver a custom message from the (pretend) browser to a widget."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


@pytest.fixture
def panels():
    made: list[Dashboard] = []
    yield made
    for panel in made:
        panel.close()


def make_panel(panels: list, study: hw.Study, **kwargs: Any) -> Dashboard:
    panel = Dashboard(study, mode="widget", **kwargs)
    panel._interval = 0  # apply each event as it comes: deterministic messages per trial
    panels.append(panel)
    return panel


def random_study(space: Any = SPACE, **kwargs: Any) -> hw.Study:
    return hw.Study(space=space, algo="random", seed=0, storage=None, **kwargs)
