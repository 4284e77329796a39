"""The HTML report: self-contained, escaped, and drawn by a real browser without errors."""

from __future__ import annotations

import html
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import hpwidgets as hw
from hpwidgets.charts.assets import plotly_js, plotly_safe
from hpwidgets.report import ReportError, render_report, report_figures, script_json, write_report

EVIL = "<script>window.__pwned = 1</script>"
EVIL_CHOICE = "</script><!--<script>window.__pwned = 2</script>"
EVIL_METRIC = "<img src=x onerror=window.__pwned=3>"
CHROMIUM = os.environ.get("HPWIDGETS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def evil_study(algo: str = "hyperband", trials: int = 13, pruner: str | None = None) -> hw.Study:
    """A study whose every user-chosen string tries to run script; with learning curves and a failure."""
    space = {EVIL: hw.uniform(0, 1), "c": hw.choice(EVIL_CHOICE, "plain"), "epochs": hw.budget(1, 9)}

    def objective(params: dict[str, Any], trial: hw.Trial) -> dict[str, float]:
        if trial.number == 4:
            raise RuntimeError(EVIL)
        for epoch in range(params["epochs"]):
            trial.report(epoch, **{EVIL_METRIC: params[EVIL] * (epoch + 1) / params["epochs"]})
        return {EVIL_METRIC: params[EVIL]}

    return hw.tune(objective, space, algo=algo, trials=trials, seed=0, storage=None, progress=False,
                   maximize=EVIL_METRIC, name=EVIL, pruner=pruner)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(evil_study(), tmp_path_factory.mktemp("report") / "report.html")


def test_script_json_never_closes_its_script_element() -> None:
    value = {"a": "</script><!-- & >", "b": [1.5, float("nan")], "\u2028": "x"}
    text = script_json(value)
    assert not set("<>&") & set(text) and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- & >", "b": [1.5, None], "\u2028": "x"}


def test_plotly_safe_escapes_labels_but_not_hover_text_or_templates() -> None:
    figure = {"data": [{"type": "scatter", "name": "<b>", "x": ["<i>"], "text": ["&lt;ok"],
                        "hovertemplate": "%{text}<extra></extra>"},
                       {"type": "parcoords", "dimensions": [{"label": "<x>", "ticktext": ["<y>"]}]}],
              "layout": {"title": {"text": "a<br>b"}}}
    safe = plotly_safe(figure)
    assert safe["data"][0]["name"] == "&lt;b&gt;" and safe["data"][0]["x"] == ["&lt;i&gt;"]
    assert safe["data"][0]["text"] == ["&lt;ok"] and safe["data"][0]["hovertemplate"].endswith("<extra></extra>")
    assert safe["data"][1]["dimensions"][0] == {"label": "&lt;x&gt;", "ticktext": ["<y>"]}  # parcoords ticks are text
    assert safe["layout"]["title"]["text"] == "a&lt;br&gt;b"


def test_report_is_one_self_contained_file(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert text.count("window.Plotly = Plotly") == 1  # plotly.js embedded once
    ours = text.replace(plotly_js(), "")  # the page around the bundle loads nothing either
    assert len(ours) < len(text) and not re.search(r"<script[^>]*\bsrc=|<link[^>]*href=|https?://", ours)


def test_user_strings_never_appear_raw(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    for evil in (EVIL, EVIL_CHOICE, EVIL_METRIC):
        assert evil not in text
    assert html.escape(EVIL) in text  # the title, the best-config and trial tables show it as text
    payload = text.split('id="hpw-figures">', 1)[1].split("</script>", 1)[0]
    assert "<" not in payload and "<!--" not in payload


def test_report_has_every_section(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    for chart in ("history", "parallel", "slices", "curves", "rungs"):
        assert f'id="hpw-chart-{chart}"' in text
    assert 'id="hpw-explain-0"' in text and "Best configuration" in text
    assert text.count('<tr class="hpw-') == 13 and '<tr class="hpw-FAIL">' in text
    assert text.count("<h2>Optimization history</h2>") == 1
    figures = report_figures(evil_study())  # the section heading names each chart: no second title on it
    assert all("title" not in figures[f"hpw-chart-{c}"]["layout"] for c in ("history", "parallel", "slices"))


def test_a_pruned_study_reports_where_its_trials_were_stopped_and_escapes_it() -> None:
    study = evil_study("random", trials=15, pruner="asha")
    assert any(t.state is hw.TrialState.PRUNED for t in study.trials)
    text = render_report(study)
    assert 'id="hpw-pruning-0"' in text and "Where trials were stopped early" in text
    assert all(raw not in text for raw in (EVIL, EVIL_CHOICE, EVIL_METRIC))
    figure = report_figures(study)["hpw-pruning-0"]
    assert figure["layout"]["title"]["text"].startswith("Pruning (asha): ")
    assert figure["layout"]["yaxis"]["title"]["text"] == html.escape(EVIL_METRIC)
    assert "hpw-pruning-0" not in report_figures(evil_study())  # no pruner, nothing stopped: no section


def test_report_names_the_algorithm_with_its_options() -> None:
    from hpwidgets.algorithms.hyperband import Hyperband
    study = hw.Study(space={"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}, algo=Hyperband(eta=2), storage=None)
    assert "algorithm hyperband(eta=2) · minimize" in render_report(study)


def test_report_of_a_study_without_trials(tmp_path: Path) -> None:
    study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="gp", storage=None)
    text = render_report(study)
    assert "No trial has completed yet" in text and "None yet: no trial has a value to draw." in text
    assert 'id="hpw-chart-' not in text  # empty axes say nothing


def test_a_report_draws_only_charts_with_points() -> None:
    failing = hw.tune(lambda p: 1 / 0, {"x": hw.uniform(0, 1)}, trials=2, storage=None, progress=False)
    assert not any(key.startswith("hpw-chart-") for key in report_figures(failing))
    plain = hw.tune(lambda p: p["x"], {"x": hw.uniform(0, 1)}, trials=3, storage=None, progress=False)
    assert sorted(report_figures(plain)) == ["hpw-chart-history", "hpw-chart-parallel", "hpw-chart-slices",
                                             "hpw-explain-0"]  # no report(): no learning curves


def test_write_report_returns_the_absolute_path_and_makes_folders(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    study = hw.tune(lambda p: p["x"], {"x": hw.uniform(0, 1)}, algo="random", trials=2, storage=None,
                    progress=False)
    monkeypatch.chdir(tmp_path)
    path = write_report(study, "sub/dir/r.html")
    assert path == tmp_path / "sub" / "dir" / "r.html" and path.is_file()
    assert not list(path.parent.glob("*.tmp"))


def test_a_report_asked_into_a_folder_is_named_after_the_study(tmp_path: Path) -> None:
    study = hw.tune(lambda p: p["x"], {"x": hw.uniform(0, 1)}, algo="random", trials=2, storage=None,
                    progress=False, name="runs/2026")
    path = write_report(study, tmp_path)  # not a rename of the report onto the folder
    assert path == tmp_path / "runs_2026.html" and "runs/2026" in path.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs_2026.html"]


def test_a_folder_named_with_a_trailing_slash_is_made_and_holds_the_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    study = hw.tune(lambda p: p["x"], {"x": hw.uniform(0, 1)}, algo="random", trials=2, storage=None,
                    progress=False, name="demo")
    monkeypatch.chdir(tmp_path)
    path = write_report(study, "reports/")  # not yet a folder: still not a file called `reports`
    assert path == tmp_path / "reports" / "demo.html" and path.is_file()


def test_a_report_that_cannot_be_written_names_the_path_and_leaves_nothing(tmp_path: Path) -> None:
    study = hw.tune(lambda p: p["x"], {"x": hw.uniform(0, 1)}, algo="random", trials=2, storage=None,
                    progress=False)
    blocker = tmp_path / "notes.txt"  # a file where the report's folder would be (fails as root too)
    blocker.write_text("mine")
    with pytest.raises(ReportError, match=f"^cannot write the report to {blocker / 'r.html'}: {blocker} is a file, "
                                          f"not a folder$"):
        write_report(study, blocker / "r.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] and blocker.read_text() == "mine"


def open_report_in_chromium(report: Path) -> dict[str, Any]:
    """Load the report in Debian's Chromium and collect what a person would see.

    Runs in a thread of its own: Playwright's sync API refuses a thread where an asyncio loop
    runs, which earlier notebook tests in the same process may leave behind.
    """
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {"problems": [], "requests": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.on("console", lambda msg: seen["problems"].append(f"console {msg.type}: {msg.text}")
                    if msg.type == "error" else None)
            page.on("pageerror", lambda error: seen["problems"].append(f"pageerror: {error}"))
            page.on("request", lambda request: seen["requests"].append(request.url))
            page.goto(report.as_uri())
            page.wait_for_function("[...document.querySelectorAll('.hpw-chart')].every(d => d.dataset.rendered)",
                                   timeout=60_000)
            seen["charts"] = page.evaluate(
                "[...document.querySelectorAll('.hpw-chart')].map(d => [d.id, "
                "d.querySelectorAll('.main-svg').length, d.querySelectorAll('.trace, .parcoords').length])")
            seen["drawn"] = page.evaluate(
                "Object.fromEntries([...document.querySelectorAll('.hpw-chart')].map(d => [d.id, d.dataset.rendered]))")
            seen["pwned"] = page.evaluate("window.__pwned")
            seen["table"] = page.inner_text("table.hpw-trials")
            seen["slices"] = page.text_content("#hpw-chart-slices")
        finally:
            browser.close()
    return seen


@pytest.mark.browser
def test_report_renders_in_chromium_and_runs_no_injected_script(report: Path) -> None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"the report's browser test needs Chromium at {CHROMIUM}: `apt-get install chromium`, or set "
                    f"HPWIDGETS_CHROMIUM (never `playwright install`)", pytrace=False)
    with ThreadPoolExecutor(max_workers=1) as pool:
        seen = pool.submit(open_report_in_chromium, report).result()
    charts = seen["charts"]
    assert len(charts) == 6 and all(svgs > 0 and traces > 0 for _, svgs, traces in charts), charts
    assert seen["pwned"] is None
    assert EVIL in seen["table"] and EVIL_CHOICE in seen["table"]
    assert EVIL in seen["slices"]  # plotly shows the name as text, too
    assert seen["problems"] == [] and [url for url in seen["requests"] if not url.startswith("file:")] == []


@pytest.mark.parametrize("output", ["hptune.db", "hptune.db-wal"])
def test_a_report_never_replaces_a_store_or_its_journal(tmp_path: Path, output: str) -> None:
    study = hw.tune(lambda p: p["x"], {"x": hw.uniform(0, 1)}, algo="random", trials=2,
                    storage=tmp_path / "hptune.db", progress=False, name="keep")
    (tmp_path / "hptune.db-wal").touch()  # as WAL mode leaves one beside the file while it is open
    before = (tmp_path / "hptune.db").read_bytes()
    with pytest.raises(ReportError, match="SQLite database"):
        write_report(study, tmp_path / output)
    assert (tmp_path / "hptune.db").read_bytes() == before
    assert len(hw.load_study("keep", storage=tmp_path / "hptune.db").trials) == 2


@pytest.mark.browser
def test_a_chart_plotly_cannot_draw_leaves_the_others_drawn(tmp_path: Path) -> None:
    values = iter([1e308, -1e308, 1.0])  # the parallel-coordinates range overflows in plotly.js
    study = hw.tune(lambda p: next(values), {"x": hw.uniform(0, 1)}, algo="random", trials=3, seed=0,
                    storage=None, progress=False)
    with ThreadPoolExecutor(max_workers=1) as pool:
        seen = pool.submit(open_report_in_chromium, write_report(study, tmp_path / "r.html")).result()
    assert seen["drawn"].pop("hpw-chart-parallel") == "failed" and set(seen["drawn"].values()) == {"1"}, seen


def test_the_trial_table_shows_each_errors_first_line_and_tells_look_alike_values_apart(tmp_path: Path) -> None:
    def objective(params: dict) -> float:
        if params["c"] is None:
            raise ValueError("Expected 2D array, got 1D array instead:\narray=[1. 2.].\nReshape your data")
        return 1.0 if params["c"] == "None" else 2.0

    study = hw.tune(objective, {"c": hw.choice(None, "None", 1, "1")}, algo="random", trials=12, seed=1,
                    storage=None, progress=False)  # seed 1 draws all four
    table = render_report(study, None).split('class="hpw-trials"', 1)[1]
    assert "ValueError: Expected 2D array, got 1D array instead:</td>" in table and "Reshape" not in table
    cells = set(re.findall(r'<tr class="hpw-\w+"><td>\d+</td><td>\w+</td><td>[^<]*</td><td>([^<]*)</td>', table))
    assert cells == {"None", "&#x27;None&#x27;", "1", "&#x27;1&#x27;"}, cells  # as the charts label them
