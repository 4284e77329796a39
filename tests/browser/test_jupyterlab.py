"""The %%hptune panel live in JupyterLab 4: points stream in, a dragged slider reaches Python, Stop stops.

Also, in a blank page of the same Chromium (no Jupyter): the chart and explainer modules share plotly.js
and fit their boxes (frontend-neutral, so run once, here).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser_notebook import OpenNotebook
from browser_scenario import check_live_panel, check_widgets_in_blank_page

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

pytestmark = pytest.mark.browser


def test_live_panel_in_jupyterlab(open_notebook: OpenNotebook, artifacts: Path) -> None:
    nb = open_notebook("lab/tree", "browser_lab.ipynb")
    assert nb.page.evaluate("window.jupyterapp.name") == "JupyterLab"
    check_live_panel(nb, artifacts / "jupyterlab-panel.png")


@pytest.mark.parametrize("kernel", [True, False], ids=["kernel", "no-kernel"])
def test_explainer_shares_plotly_and_charts_fit_in_a_blank_page(chromium: BrowserContext, kernel: bool) -> None:
    page = chromium.new_page()
    try:
        check_widgets_in_blank_page(page, kernel)
    finally:
        page.close()
