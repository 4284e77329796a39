"""``write_report(study, path)``: one self-contained HTML file describing a study.

It holds the optimisation history, parallel coordinates, slices, learning curves (and Hyperband's
rungs), the algorithm's explainer, where trials were stopped early (with a pruner, or after Stop),
the best configuration and a table of every trial. plotly.js
is read from the plotly Python package and embedded once; nothing is fetched when it opens.

Everything the user named (study, parameters, metrics, choice values, errors) is escaped: HTML
text through ``html.escape``; the figures travel as JSON in a ``<script type="application/json">``
whose ``<``, ``>`` and ``&`` are ``\\u`` escapes (so ``</script>`` and ``<!--`` cannot end it);
strings plotly draws are HTML-escaped too, because plotly renders a little HTML in labels.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import html
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .charts import build_figures
from .charts.assets import plotly_js, plotly_safe
from .charts.data import ChoiceLabels, format_value
from .charts.figures import PLOT_CONFIG
from .space import Choice, SearchSpace
from .trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from .study import Study

CHART_TITLES = {"history": "Optimization history", "parallel": "Parallel coordinates", "slices": "Slices",
                "curves": "Learning curves", "rungs": "Hyperband rungs"}
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1200px;
color:#222;padding:0 16px}h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;
border-bottom:1px solid #ddd;padding-bottom:4px}.hpw-meta{color:#555;font-size:14px}
.hpw-chart{width:100%;min-height:300px;margin-bottom:8px}table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f5f5f5}
tr.hpw-PRUNED td{color:#b26a00}tr.hpw-FAIL td{color:#c62828}.hpw-scroll{overflow-x:auto}
.hpw-best td:first-child{font-weight:600}
"""
_DRAW = """
(function () {
  var PLOT_CONFIG = @PLOT_CONFIG@;
  var figures = JSON.parse(document.getElementById("hpw-figures").textContent);
  Object.keys(figures).forEach(function (id) {  // one chart plotly cannot draw must not blank the rest
    var div = document.getElementById(id);
    var failed = function (err) {
      div.textContent = "This chart could not be drawn: " + err;
      div.setAttribute("data-rendered", "failed");
    };
    try {
      Plotly.newPlot(div, figures[id].data, figures[id].layout, PLOT_CONFIG)
        .then(function () { div.setAttribute("data-rendered", "1"); }, failed);
    } catch (err) {
      failed(err);
    }
  });
})();
""".replace("@PLOT_CONFIG@", json.dumps(PLOT_CONFIG))


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no ``<``, ``>`` or ``&`` appear as such."""
    text = json.dumps(_finite(value), separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return "".join(_JSON_ESCAPES.get(ch, ch) for ch in text)


def _finite(value: Any) -> Any:
    """NaN and infinities become null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _e(value: Any) -> str:
    return html.escape(format_value(value) if value is not None else "")


def _best(study: Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


def _summary(study: Study, trials: list[FrozenTrial]) -> str:
    counts = {s: sum(t.state is s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    target = f" {study.target}" if study.target else ""
    parts = [f"algorithm {study.algorithm.spec()}", f"{study.direction}{target}",  # with its options
             f"{len(trials)} trials ({counts[TrialState.COMPLETE]} complete, {counts[TrialState.PRUNED]} pruned, "
             f"{counts[TrialState.FAIL]} failed)"]
    durations = [t.duration for t in trials if t.duration is not None]
    if durations:
        parts.append(f"{sum(durations):.1f} s of trial time")
    return html.escape(" · ".join(parts))


def _best_section(study: Study) -> str:
    best = _best(study)
    if best is None:
        return "<h2>Best configuration</h2><p>No trial has completed yet.</p>"
    text = _ParamText(study.space)
    rows = [f"<tr><td>{html.escape(str(k))}</td><td>{text(best.params, k)}</td></tr>" for k in best.params]
    label = html.escape(study.target or "value")
    others = [f"<tr><td>{html.escape(str(k))}</td><td>{_e(v)}</td></tr>" for k, v in best.metrics.items()
              if k != study.target]
    metrics = "<tr><th>other metric</th><th>value</th></tr>" + "".join(others) if others else ""
    return (f"<h2>Best configuration</h2><p>Trial #{best.number}: {label} = {_e(best.value)}</p>"
            f'<table class="hpw-best"><tr><th>parameter</th><th>value</th></tr>{"".join(rows)}{metrics}</table>')


def _error_line(error: str | None) -> str:
    """The error's ``Type: message`` line (the rest is its traceback), and the note that a trial
    was not saved, which ends the text, if it was not."""
    lines = error.strip().splitlines() if error and error.strip() else []
    if not lines:
        return ""
    unsaved = lines[-1] if lines[-1].startswith("not saved: ") and len(lines) > 1 else ""
    return f"{lines[0]} ({unsaved})" if unsaved else lines[0]


class _ParamText:
    """A parameter's cell text: a choice by the charts' label, so None and "None" or 1 and "1" are
    told apart as the charts tell them; empty only when the trial has no such parameter."""

    def __init__(self, space: SearchSpace) -> None:
        self._choices = {name: ChoiceLabels(dim.values) for name, dim in space.items() if isinstance(dim, Choice)}

    def __call__(self, params: Mapping[str, Any], name: str) -> str:
        if name not in params:
            return ""
        value, labels = params[name], self._choices.get(name)
        if labels is not None:  # a value outside the space (a slider edit) gets a label of its own
            return html.escape(labels.label(value))
        return html.escape(repr(value) if value is None or isinstance(value, str) else format_value(value))


def _trial_table(trials: list[FrozenTrial], text: _ParamText) -> str:
    params = list(dict.fromkeys(k for t in trials for k in t.params))
    metrics = list(dict.fromkeys(k for t in trials for k in t.metrics))
    head = ["#", "state", "value", *params, *metrics, "duration (s)", "error"]
    lines = ["<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in head) + "</tr>"]
    for t in trials:
        cells = [str(t.number), t.state.value, _e(t.value), *(text(t.params, p) for p in params),
                 *(_e(t.metrics.get(m)) for m in metrics), _e(t.duration), html.escape(_error_line(t.error))]
        lines.append(f'<tr class="hpw-{t.state.value}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<h2>Trials</h2><div class="hpw-scroll"><table class="hpw-trials">{"".join(lines)}</table></div>'


def _explainer_figures(study: Study, kind: str = "auto") -> list[dict[str, Any]]:
    """An explainer's figures; a report is still written when they cannot be drawn."""
    try:
        from .explain import explain_figures
        return explain_figures(study, kind)
    except Exception:
        return []


def _stopped_early(study: Study) -> bool:
    """A pruner ran, or some trial was stopped (Stop): the pruning view has something to say."""
    return getattr(study, "pruner", None) is not None or any(t.state is TrialState.PRUNED for t in study.trials)


def report_figures(study: Study) -> dict[str, dict[str, Any]]:
    """Every figure of the report by its element id (charts escaped here, explainers escape their own)."""
    charts = build_figures(study.trials, study.space, study.maximize, study.target)
    figures = {f"hpw-chart-{name}": plotly_safe(_untitled(fig)) for name, fig in charts.items() if _has_points(fig)}
    for i, fig in enumerate(_explainer_figures(study)):
        figures[f"hpw-explain-{i}"] = fig
    for i, fig in enumerate(_explainer_figures(study, "pruner") if _stopped_early(study) else []):
        figures[f"hpw-pruning-{i}"] = fig
    return figures


def _has_points(figure: dict[str, Any]) -> bool:
    """Empty axes say nothing: no learning curves without reports, no charts before a first value."""
    def points(trace: dict[str, Any]) -> bool:
        columns = [trace.get("x"), trace.get("z"), *(d.get("values") for d in trace.get("dimensions") or ())]
        return any(column is not None and len(column) > 0 for column in columns)
    return any(points(trace) for trace in figure["data"])


def _untitled(figure: dict[str, Any]) -> dict[str, Any]:
    """The chart without its own title: the report's section heading above it already names it."""
    layout = {k: v for k, v in figure["layout"].items() if k != "title"}
    return {**figure, "layout": layout}


def render_report(study: Study, title: str | None = None) -> str:
    """The report as one HTML string (see ``write_report``)."""
    trials = study.trials
    figures = report_figures(study)
    name = html.escape(title or f"hpwidgets report: {study.name}")
    charts = "".join(f'<h2>{html.escape(CHART_TITLES[i.removeprefix("hpw-chart-")])}</h2><div class="hpw-chart" '
                     f'id="{i}"></div>' for i in figures if i.startswith("hpw-chart-"))
    if not charts:
        charts = "<h2>Charts</h2><p>None yet: no trial has a value to draw.</p>"
    explain = "".join(f'<div class="hpw-chart" id="{i}"></div>' for i in figures if i.startswith("hpw-explain-"))
    if explain:
        explain = f"<h2>How {html.escape(study.algorithm.name)} decided</h2>{explain}"
    pruning = "".join(f'<div class="hpw-chart" id="{i}"></div>' for i in figures if i.startswith("hpw-pruning-"))
    if pruning:
        explain += f"<h2>Where trials were stopped early</h2>{pruning}"
    stamp = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{name}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f'<body><h1>{name}</h1><p class="hpw-meta">{_summary(study, trials)} · written {html.escape(stamp)}</p>'
            f"{_best_section(study)}{charts}{explain}{_trial_table(trials, _ParamText(study.space))}"
            f'<script type="application/json" id="hpw-figures">{script_json(figures)}</script>'
            f"<script>{plotly_js()}</script><script>{_DRAW}</script></body></html>\n")


def report_file_name(study_name: str) -> str:
    """``NAME.html`` with the name's path separators as ``_``: one file, never a folder to create."""
    return study_name.replace("/", "_").replace(os.sep, "_") + ".html"


class ReportError(OSError):
    """The report could not be written where asked (the message names the path and the reason)."""


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(16) == b"SQLite format 3\x00"
    except OSError:  # missing, a folder, unreadable: not a database we could harm
        return False


def refuse_to_replace_a_database(target: Path) -> None:
    """``-o hptune.db`` is a slip of the keyboard that would replace every study in the file
    (or its journal) with one HTML page: refuse any SQLite file, and any database's side file."""
    if _is_sqlite(target):
        raise ReportError(f"{target} is a SQLite database (a study store?); not replacing it with a report")
    for suffix in ("-wal", "-shm", "-journal"):
        database = target.with_name(target.name.removesuffix(suffix))
        if target.name.endswith(suffix) and _is_sqlite(database):
            raise ReportError(f"{target} belongs to the SQLite database {database}; not replacing it with a report")


def _reason(error: OSError, target: Path) -> str:
    """mkdir says "File exists" when a file sits where a folder of the path should be: name it."""
    if isinstance(error, (FileExistsError, NotADirectoryError)):
        blocker = next((parent for parent in reversed(target.parents) if parent.is_file()), None)
        if blocker is not None:
            return f"{blocker} is a file, not a folder"
    return error.strerror or str(error)


def write_report(study: Study, path: str | os.PathLike[str] = "report.html", *, title: str | None = None) -> Path:
    """Write the study's self-contained HTML report to ``path`` (a folder: ``NAME.html`` in it)
    and return the absolute path; ``ReportError`` names the path when it cannot be written.

    >>> import hpwidgets as hw, tempfile, os
    >>> study = hw.tune(lambda p: p["x"] ** 2, {"x": hw.uniform(-1, 1)}, algo="random", trials=3,
    ...                 seed=0, storage=None, progress=False)
    >>> path = write_report(study, os.path.join(tempfile.mkdtemp(), "r.html"))
    >>> path.read_text().count("window.Plotly = Plotly")
    1
    """
    target = Path(path).expanduser().resolve()
    # As `cp` does with a folder: the study's name, safe as a file name, inside it. A trailing
    # separator names a folder even before it exists (resolve() drops it).
    if target.is_dir() or os.fspath(path).endswith(("/", os.sep)):
        target = target / report_file_name(study.name)
    refuse_to_replace_a_database(target)
    text = render_report(study, title)
    tmp = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)  # a reader never sees half a report
    except OSError as error:
        with contextlib.suppress(OSError):  # no half file left behind, if there is one
            tmp.unlink()
        raise ReportError(f"cannot write the report to {target}: {_reason(error, target)}") from None
    return target
