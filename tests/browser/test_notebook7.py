"""The %%hptune panel live in Notebook 7: points stream in, a dragged slider reaches Python, Stop stops."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_notebook import OpenNotebook
from browser_scenario import check_live_panel

pytestmark = pytest.mark.browser


def test_live_panel_in_notebook7(open_notebook: OpenNotebook, artifacts: Path) -> None:
    nb = open_notebook("notebooks", "browser_nb7.ipynb")
    assert nb.page.evaluate("window.jupyterapp.name") == "Jupyter Notebook"
    check_live_panel(nb, artifacts / "notebook7-panel.png")
