"""``Dashboard``: the notebook panel for a study (sliders, controls, progress, live charts, trial table).

Study events arrive on the study's worker threads. The subscriber only queues them; a small pump
thread applies them at most ``UPDATE_EVERY_S`` apart (batching fast trials into one message),
and ``StudyFinished`` is applied synchronously, so when ``study.wait()`` returns the panel, and a
saved notebook's widget state, are final.

Which face: inside an IPython *kernel* (Jupyter, VS Code, Colab: ``get_ipython().kernel`` exists)
the live widgets; anywhere else (terminal IPython, a script) the static view. The environment
variable ``HPWIDGETS_DASHBOARD=static|widget`` or ``Dashboard(mode=...)`` overrides the guess,
e.g. for a kernel whose frontend cannot show widgets (``jupyter console``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..algorithms.pruners import pruner_name
from ..events import Event, StudyFinished, TrialFinished, TrialReported, TrialStarted, log
from ..trial import FrozenTrial
from .summary import RunStats, progress_text

if TYPE_CHECKING:
    from ..space import SearchSpace
    from ..study import Study
    from .controls import ControlState

UPDATE_EVERY_S = 0.1  # ≤ 10 panel updates a second, whatever the trial rate
MODES = ("auto", "widget", "static")


def frontend_mode(mode: str = "auto") -> str:
    """'widget' or 'static': ``mode``, else $HPWIDGETS_DASHBOARD, else whether an IPython kernel runs us."""
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}, but got mode={mode!r}")
    mode = mode if mode != "auto" else os.environ.get("HPWIDGETS_DASHBOARD", "auto")
    if mode in ("widget", "static"):
        return mode
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return "widget" if getattr(shell, "kernel", None) is not None else "static"


class Dashboard:
    """The live panel for a study.

    ``on_start()`` is called by the Start button (and by "+10 trials" once a search has ended):
    it must start a *background* search to at least ``study.n_target`` trials and return.
    ``edit=True`` adds a hint to set the space and press Start (the sliders are always shown).
    ``.widget`` is the root ipywidgets Box (None in the static face); ``.rendered`` is set once a
    frontend has drawn the charts (the kernel sees that message between cells, not during one).

    >>> import hpwidgets as hw
    >>> study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="random", storage=None)
    >>> panel = Dashboard(study, mode="static")
    >>> study.optimize(lambda p: p["x"], trials=3, progress=False)
    >>> panel.close()
    """

    def __init__(self, study: Study, on_start: Callable[[], Any] | None = None, edit: bool = False, *,
                 mode: str = "auto") -> None:
        self.study = study
        self.mode = frontend_mode(mode)
        self._on_start = on_start
        self._events: deque[Event] = deque()
        self._wake = threading.Event()
        self._flush_lock = threading.RLock()
        self._closed = False
        self._ready = False  # events queue up (and are not applied) until the view exists
        self._last_flush = 0.0
        self._interval = UPDATE_EVERY_S  # 0: apply every event in the publishing thread (tests, benchmarks)
        # Subscribe before reading the trials, so a trial finishing in between is queued, not lost;
        # trials already read are skipped when their event comes through (``_known``).
        self._unsubscribe = study.subscribe(self._on_event)
        trials = study.trials
        self._known = {t.number for t in trials}
        self._stats = RunStats(maximize=study.maximize, running=set(study.running_trials))
        for trial in trials:
            self._stats.finished(trial, live=False)
        self._live = self._started = study.running
        self._ended: str | None = None
        self.widget: Any = None
        self._view: Any = self._make_view(edit, trials)
        self._render_text(table=True)
        self._ready = True
        self._pump = threading.Thread(target=self._pump_loop, name=f"hpwidgets-panel-{study.name}", daemon=True)
        self._pump.start()
        self._wake.set()

    def _make_view(self, edit: bool, trials: list[FrozenTrial]) -> Any:
        if self.mode == "widget":
            from .views import WidgetView
            view = WidgetView(self, edit, trials)
            self.widget, self.rendered = view.root, view.chart.rendered
            return view
        from .views import StaticView
        self.rendered = threading.Event()  # no frontend will ever draw the charts
        return StaticView(self)

    # --- public -------------------------------------------------------------------------------
    def show(self) -> None:
        """Display the panel in the current output (IPython ``display``)."""
        if self.mode == "widget":
            from IPython.display import display
            display(self)  # through _repr_mimebundle_: the widget, plus Colab's metadata there
        else:
            self._view.show()

    def flush(self) -> None:
        """Apply every queued study event now (the pump does this at most 10 times a second)."""
        with self._flush_lock:
            if not self._ready:
                return
            events = []
            while self._events:
                events.append(self._events.popleft())
            if not events:
                return
            finished = self._account(events)
            ended = any(isinstance(e, StudyFinished) for e in events)
            self._render_text(table=bool(finished))
            self._view.update(finished, ended)
            self._last_flush = time.monotonic()

    def close(self) -> None:
        """Stop listening to the study and close every widget of the panel."""
        self._closed = True
        self._unsubscribe()
        self._wake.set()
        self._view.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if self.mode == "widget":
            from .views import widget_bundle
            return widget_bundle(self.widget, **kwargs)
        return self._view.bundle()

    # --- events -------------------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        """Runs on the study's threads: queue, and wake the pump (or apply now at the end)."""
        if self._closed:
            return
        self._events.append(event)
        if isinstance(event, StudyFinished) or self._interval <= 0:
            self.flush()
        else:
            self._wake.set()

    def _pump_loop(self) -> None:
        while not self._closed:
            self._wake.wait()
            delay = self._interval - (time.monotonic() - self._last_flush)
            if delay > 0:
                time.sleep(delay)  # let fast trials pile up into one update
            self._wake.clear()
            if self._closed:
                break
            try:
                self.flush()
            except Exception:  # a broken update must not end the updates that follow
                log.exception("hpwidgets: the panel failed to update")

    def _account(self, events: list[Event]) -> list[FrozenTrial]:
        finished = []
        for event in events:
            if isinstance(event, TrialStarted):
                self._live = self._started = True
                self._ended = None
                self._stats.started(event.number, paused=self.study.paused_seconds)
            elif isinstance(event, TrialReported):
                metrics = ", ".join(f"{k}={v:.4g}" for k, v in event.metrics.items())
                self._stats.last_report = f"#{event.number} step {event.step}: {metrics}"
            elif isinstance(event, TrialFinished):
                if event.trial.number in self._known:  # read with study.trials at construction
                    continue
                self._stats.finished(event.trial)
                finished.append(event.trial)
            elif isinstance(event, StudyFinished):
                self._live, self._ended = False, event.reason
                self._stats.end_run()
                if event.error:  # a background search's error reaches no cell: show it here
                    self._view.show_message(f"the search stopped: {event.error}")
        return finished

    # --- what the panel shows -------------------------------------------------------------------
    def _status(self) -> str:
        if self._live:
            return "paused" if self.study.paused else "running"
        if self._ended:
            return self._ended
        return "ready" if self._on_start is not None else "idle"

    def _control_state(self) -> ControlState:
        from .controls import ControlState
        return ControlState(running=self._live, paused=self.study.paused, started=self._started,
                            can_start=self._on_start is not None, complete=self._ended == "complete")

    def _render_text(self, table: bool = False) -> None:
        with self._flush_lock:  # clicks (main thread) and the pump both redraw the text
            line = progress_text(self._stats, self.study.n_target, self._status(), paused=self.study.paused_seconds)
            self._view.show_progress(self._stats.done, self.study.n_target, line, self._control_state())
            if table:
                self._view.show_table(self)

    def _show_error(self, what: str, error: BaseException) -> None:
        self._view.show_message(f"{what}: {type(error).__name__}: {error}")

    # --- button and slider actions (run on the kernel's main thread) ----------------------------
    def _start(self) -> None:
        if self._on_start is None or self._live:
            return
        was_started = self._started
        self._live = self._started = True  # the study's first event confirms; disables Start at once
        self._view.show_message("")
        self._render_text()
        try:
            self._on_start()
        except Exception as error:  # shown in the panel, not lost in a log
            self._live, self._started = False, was_started
            self._show_error("Start failed", error)
        self._render_text()

    def _toggle_pause(self) -> None:
        if self.study.paused:
            self.study.resume()
        else:
            self.study.pause()
            self._view.checkpoint()  # a paused study is when people save the notebook
        self._render_text()

    def _stop(self) -> None:
        self.study.stop()
        self._render_text()

    def _more(self) -> None:
        from .controls import MORE_TRIALS
        self.study.add_trials(MORE_TRIALS)
        if not self._live and self._on_start is not None:
            self._start()
        self._render_text()

    def _swap(self, name: str) -> None:
        if name == self.study.algorithm.name:
            return
        try:
            self.study.set_algorithm(name)  # tells it every finished trial
        except Exception as error:  # e.g. hyperopt missing, or hyperband beside a pruner: say so
            self._show_error(f"cannot use {name!r}", error)
        self._view.show_choices(self.study)  # the dropdowns show what the study really uses

    def _set_pruner(self, name: str) -> None:
        if name == pruner_name(self.study.pruner):
            return
        try:
            self.study.set_pruner(name)  # told every finished trial's reports
        except Exception as error:  # e.g. a pruner beside hyperband
            self._show_error(f"cannot use pruner {name!r}", error)
        self._view.show_choices(self.study)

    def _space_edited(self, space: SearchSpace) -> None:
        """A valid slider edit: the study suggests from ``space`` next; charts regrey past trials."""
        self.study.set_space(space)  # ValueError -> the editor shows it and keeps the old space
        self._view.space_changed(space)
