"""What every Plotly face shares: plotly.js from the plotly package, and label escaping.

The live panel, the explainers and the HTML report all embed the same plotly.min.js (no CDN)
and must all show user-named things (parameters, metrics, choice values) as text.
"""

from __future__ import annotations

import functools
import html
import importlib.util
from pathlib import Path
from typing import Any

_RAW_KEYS = frozenset({"text"})  # per-point hover texts: the charts escape them where they are made


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.min.js as shipped inside the plotly Python package (read once per process)."""
    spec = importlib.util.find_spec("plotly")  # finds the package without importing it
    for root in list(spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise ImportError("hpwidgets' charts embed plotly.js from the plotly package: pip install plotly")


def widget_esm(own_js: str) -> str:
    """An anywidget's ESM: ui/plotly_loader.js (one plotly.js evaluation shared by every widget on
    a page), then the widget's own module text."""
    loader = Path(__file__).resolve().parent.parent / "ui" / "plotly_loader.js"
    return loader.read_text(encoding="utf-8") + "\n" + own_js


def plotly_safe(value: Any, key: str | None = None, raw: frozenset[str] = _RAW_KEYS) -> Any:
    """Escape the strings plotly would read as HTML (labels, titles, categories), except per-point hover
    texts (escaped where they are made), our own hover templates, and parcoords tick labels (plain text)."""
    if isinstance(value, str):  # a title's "text" is a label; a trace's "text" (a list) is hover text
        return value if key == "hovertemplate" else html.escape(value, quote=False)
    if isinstance(value, dict):
        if value.get("type") == "parcoords":
            raw = raw | {"ticktext"}
        return {k: plotly_safe(v, k, raw) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return list(value) if key in raw else [plotly_safe(v, key, raw) for v in value]
    return value
