"""The %%hptune panel live in JupyterLab 4: points stream in, a dragged slider reaches Python, Stop stops."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_notebook import OpenNotebook
from browser_scenario import check_live_panel

pytestmark = pytest.mark.browser


def test_live_panel_in_jupyterlab(open_notebook: OpenNotebook, artifacts: Path) -> None:
    nb = open_notebook("lab/tree", "browser_lab.ipynb")
    assert nb.page.evaluate("window.jupyterapp.name") == "JupyterLab"
    check_live_panel(nb, artifacts / "jupyterlab-panel.png")
