"""The notebook panel: ``Dashboard`` (sliders, controls, progress, live charts, trial table).

Imported lazily: ``import hpwidgets.ui`` loads neither ipywidgets nor anywidget until a
``Dashboard`` is made (the static face needs neither).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Dashboard"]


def __getattr__(name: str) -> Any:
    if name == "Dashboard":
        from .panel import Dashboard
        return Dashboard
    raise AttributeError(f"module 'hpwidgets.ui' has no attribute {name!r}")
