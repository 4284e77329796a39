"""Fixtures for the browser tests: one Jupyter server and one headless Chromium per session.

Chromium is Debian's (``apt-get install chromium``), driven by Playwright's Python package;
browsers are never downloaded (no ``playwright install``). ``HPWIDGETS_CHROMIUM`` points at
another binary. Screenshots, the server log and the browser console go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser_notebook import NotebookPage, OpenNotebook, write_notebook
from browser_server import REPO, JupyterServer, start_server

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

CHROMIUM = os.environ.get("HPWIDGETS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 1200}  # tall enough for the controls, slider and first charts
ACTION_TIMEOUT_MS = 60_000  # a shared 2-core machine can be slow; failures still say what is missing


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """Keep each phase's report on the item, so fixtures know whether the test failed."""
    report = yield
    setattr(item, f"hpw_report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[JupyterServer]:
    server = start_server(tmp_path_factory.mktemp("jupyter"))
    try:
        yield server
    finally:
        server.stop()
        shutil.copyfile(server.log_path, artifacts / "jupyter-server.log")


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """A persistent context on a fresh profile directory (Playwright's own browsers are not used)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: `apt-get install chromium`, or set "
                    f"HPWIDGETS_CHROMIUM to a Chromium binary (never `playwright install`)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport=VIEWPORT)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def open_notebook(request: pytest.FixtureRequest, jupyter_server: JupyterServer, chromium: BrowserContext,
                  artifacts: Path) -> Iterator[OpenNotebook]:
    """``open_notebook("lab/tree", "x.ipynb")``: write the tuning notebook and open it in a new tab.

    On teardown: a screenshot if the test failed, the page's console in a log, the kernels stopped.
    """
    pages: list[NotebookPage] = []
    console: list[str] = []

    def open_(app_path: str, name: str) -> NotebookPage:
        page = chromium.new_page()
        page.on("console", lambda msg: console.append(f"[{msg.type}] {msg.text}"))
        page.on("pageerror", lambda error: console.append(f"[pageerror] {error.stack or error}"))
        notebook = NotebookPage(page, write_notebook(jupyter_server.root, name))
        pages.append(notebook)
        notebook.open(jupyter_server.url(f"{app_path}/{name}"))
        return notebook

    yield open_
    report = getattr(request.node, "hpw_report_call", None)
    for i, notebook in enumerate(pages):
        if report is None or report.failed:
            try:
                notebook.screenshot(artifacts / f"{request.node.name}-failure-{i}.png")
            except Exception as error:  # a crashed page must not hide the test's own failure
                console.append(f"[teardown] no failure screenshot: {error}")
        notebook.page.close()
    (artifacts / f"{request.node.name}-console.log").write_text("\n".join(console) + "\n")
    jupyter_server.shutdown_kernels()  # a failed test may leave a search running
