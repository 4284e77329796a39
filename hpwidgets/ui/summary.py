"""What the panel says in words: run statistics, the progress line and the trial table (pure; no widgets).

Everything here is bounded in size: the table holds the 5 best, the 10 most recent and the 5 most
recent failed trials, so re-sending it costs the same at trial 10 and at trial 10,000.
"""

from __future__ import annotations

import html
import time
from collections import deque
from dataclasses import dataclass, field

from ..charts.data import format_value, summary_params
from ..trial import FrozenTrial, TrialState

N_RECENT, N_BEST, N_FAILED = 10, 5, 5
TRACEBACK_CHARS = 4000


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


@dataclass
class RunStats:
    """Counts and the few trials the panel shows, updated one finished trial at a time."""

    maximize: bool = False
    done: int = 0
    failed: int = 0
    pruned: int = 0  # stopped early: by a pruner, or a reporting trial when Stop was clicked
    running: set[int] = field(default_factory=set)
    best: FrozenTrial | None = None
    top: list[FrozenTrial] = field(default_factory=list)
    recent: deque[FrozenTrial] = field(default_factory=lambda: deque(maxlen=N_RECENT))
    failures: deque[FrozenTrial] = field(default_factory=lambda: deque(maxlen=N_FAILED))
    session_start: float | None = None  # monotonic time the first trial of this run started
    session_done: int = 0
    paused_at_start: float = 0.0  # the study's ``paused_seconds`` then: pauses since are not pace
    last_report: str = ""

    def started(self, number: int, now: float | None = None, paused: float = 0.0) -> None:
        self.running.add(number)
        if self.session_start is None:
            self.session_start = time.monotonic() if now is None else now
            self.paused_at_start = paused

    def finished(self, trial: FrozenTrial, live: bool = True) -> None:
        """Count a finished trial; ``live=False`` for trials loaded from storage (no ETA effect)."""
        self.running.discard(trial.number)
        self.done += 1
        self.session_done += live
        self.recent.append(trial)
        self.pruned += trial.state is TrialState.PRUNED
        if trial.state is TrialState.FAIL:
            self.failed += 1
            self.failures.append(trial)
        if trial.state is TrialState.COMPLETE and trial.value is not None:
            self._rank(trial)

    def _rank(self, trial: FrozenTrial) -> None:
        self.top.append(trial)
        self.top.sort(key=lambda t: -t.value if self.maximize else t.value)  # type: ignore[operator]
        del self.top[N_BEST:]
        self.best = self.top[0]

    def end_run(self) -> None:
        """The search ended: the next Start (or +10 trials) measures its own pace, from its own start."""
        self.running.clear()
        self.session_start, self.session_done = None, 0

    def eta(self, total: int, now: float | None = None, paused: float = 0.0) -> float | None:
        """Seconds left at this run's pace, or None before the run's first trial ends. ``paused``:
        the study's ``paused_seconds``; time paused is not pace (an hour's pause adds no hours)."""
        if self.session_start is None or self.session_done == 0 or total <= self.done:
            return None
        now = time.monotonic() if now is None else now
        working = now - self.session_start - (paused - self.paused_at_start)
        return working / self.session_done * (total - self.done)


def progress_text(stats: RunStats, total: int, status: str, now: float | None = None, paused: float = 0.0) -> str:
    """One line: ``running · 37/100 trials · 2 running · ETA 1m 12s · best 0.91 (#12: lr=0.001)``."""
    parts = [status, f"{stats.done}/{max(total, stats.done)} trials"]
    if stats.running:
        parts.append(f"{len(stats.running)} running")
    if stats.pruned:
        parts.append(f"{stats.pruned} pruned")
    if stats.failed:
        parts.append(f"{stats.failed} failed")
    eta = stats.eta(total, now, paused) if status == "running" else None
    if eta is not None:
        parts.append(f"ETA {format_duration(eta)}")
    if stats.best is not None:
        parts.append(f"best {stats.best.value:.6g} (#{stats.best.number}: {summary_params(stats.best.params)})")
    if stats.running and stats.last_report:
        parts.append(f"last report {stats.last_report}")  # long trials: shows they are alive
    return " · ".join(parts)


def _row(trial: FrozenTrial, names: list[str]) -> str:
    value = "" if trial.value is None else f"{trial.value:.6g}"
    duration = "" if trial.duration is None else format_duration(trial.duration)
    cells = [str(trial.number), trial.state.value, value]
    cells += [format_value(trial.params.get(n, "")) for n in names] + [duration]
    state = trial.state.value.lower()
    return f'<tr class="hpw-row hpw-{state}">' + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


_TABLE_STYLE = "border-collapse:collapse;line-height:1.3"
_CELL_STYLE = "<style>.hpw-trials td,.hpw-trials th{padding:0 8px;text-align:right}</style>"


def _table(title: str, trials: list[FrozenTrial], names: list[str]) -> str:
    if not trials:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["#", "state", "value", *names, "time"])
    rows = "".join(_row(t, names) for t in trials)
    return (f'<div class="hpw-table-title"><b>{html.escape(title)}</b></div>'
            f'<table class="hpw-trials" style="{_TABLE_STYLE}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _failure(trial: FrozenTrial) -> str:
    error = trial.error or "failed"
    first = error.strip().splitlines()[-1] if error.strip() else "failed"  # the exception line
    tail = error[-TRACEBACK_CHARS:]
    return (f'<div class="hpw-failure"><b>#{trial.number}</b> {html.escape(first)}'
            f"<details><summary>traceback</summary><pre>{html.escape(tail)}</pre></details></div>")


def table_html(stats: RunStats, names: list[str]) -> str:
    """The best, the most recent and the failed trials; every user string is escaped."""
    # Widget HTML inherits a 28px line height from ipywidgets' CSS: reset it for a compact table.
    parts = ['<div class="hpw-table" style="font-size:12px;line-height:1.3">', _CELL_STYLE,
             _table(f"Best {N_BEST}", stats.top, names),
             _table(f"Last {N_RECENT}", list(reversed(stats.recent)), names)]
    if stats.failures:
        parts.append(f'<div class="hpw-table-title"><b>Failed ({stats.failed})</b></div>')
        parts += [_failure(t) for t in reversed(stats.failures)]
    if stats.done == 0:
        parts.append("<i>no finished trials yet</i>")
    return "".join(parts) + "</div>"
