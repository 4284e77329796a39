"""The panel's buttons, algorithm and pruner dropdowns and progress bar (widgets only; the Dashboard wires them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as w

from ..algorithms import ALGORITHMS
from ..algorithms.pruners import PRUNERS

MORE_TRIALS = 10


@dataclass(frozen=True)
class ControlState:
    """What the buttons may do right now; computed by the Dashboard from the study and its events."""

    running: bool  # a search is live (trials may still be starting)
    paused: bool
    started: bool  # Start was pressed, or the panel attached to a live or finished search
    can_start: bool  # an on_start callback exists
    complete: bool = False  # the last run reached its target: Start would run nothing, +10 trials runs more


def _button(description: str, css: str, tooltip: str, **kwargs: object) -> w.Button:
    button = w.Button(description=description, tooltip=tooltip, layout=w.Layout(width="auto"), **kwargs)
    button.add_class(css)
    return button


def _dropdown(names: tuple[str, ...], value: str, description: str, css: str) -> w.Dropdown:
    """A dropdown of registry names; a custom object's own name is added so it shows as chosen."""
    options = list(names) + ([value] if value not in names else [])
    dropdown = w.Dropdown(options=options, value=value, description=description,
                          layout=w.Layout(width="220px"), style={"description_width": "70px"})
    dropdown.add_class(css)
    return dropdown


class Controls:
    """Start, Pause/Resume, Stop, +10 trials, the algorithm and pruner dropdowns, and the progress bar."""

    def __init__(self, algo_name: str, pruner_name: str = "none") -> None:
        self.start = _button("Start", "hpw-start", "start the search", button_style="success", icon="play")
        self.pause = _button("Pause", "hpw-pause", "start no new trial until Resume", icon="pause")
        self.stop = _button("Stop", "hpw-stop", "start no new trial; running ones stop at their next report",
                            button_style="danger", icon="stop")
        self.more = _button(f"+{MORE_TRIALS} trials", "hpw-more", f"raise the target by {MORE_TRIALS}", icon="plus")
        self.algo = _dropdown(ALGORITHMS, algo_name, "algorithm", "hpw-algo")
        self.prune = _dropdown(PRUNERS, pruner_name, "pruner", "hpw-prune")
        self.prune.tooltip = "stop unpromising trials at their reports (not with hyperband, which has its own rungs)"
        self.progress = w.IntProgress(min=0, max=1, value=0, layout=w.Layout(width="240px"))
        self.progress.add_class("hpw-progress")
        self.line = w.HTML("")
        self.line.add_class("hpw-progress-line")
        buttons = w.HBox([self.start, self.pause, self.stop, self.more, self.algo, self.prune])
        buttons.add_class("hpw-controls")
        self.widget = w.VBox([w.HBox([self.progress, self.line]), buttons])

    def wire(self, start: Callable[[], None], pause: Callable[[], None], stop: Callable[[], None],
             more: Callable[[], None], algo: Callable[[str], None], prune: Callable[[str], None]) -> None:
        for button, action in ((self.start, start), (self.pause, pause), (self.stop, stop), (self.more, more)):
            button.on_click(lambda _b, action=action: action())
        self.algo.observe(lambda change: algo(change["new"]), "value")
        self.prune.observe(lambda change: prune(change["new"]), "value")

    def refresh(self, state: ControlState) -> None:
        self.start.layout.display = "" if state.can_start else "none"
        self.start.disabled = state.running or not state.can_start or state.complete
        self.pause.disabled = not state.running
        self.pause.description = "Resume" if state.paused else "Pause"
        self.pause.icon = "play" if state.paused else "pause"
        self.stop.disabled = not state.running
        self.more.disabled = not (state.running or (state.started and state.can_start))
        self.algo.disabled = self.prune.disabled = state.running or state.started  # only before Start

    def choose(self, algo_name: str, pruner_name: str) -> None:
        """Show these choices (a custom object's name joins the options)."""
        for dropdown, value in ((self.algo, algo_name), (self.prune, pruner_name)):
            if value not in dropdown.options:
                dropdown.options = (*dropdown.options, value)
            dropdown.value = value

    def set_progress(self, done: int, total: int, text_html: str) -> None:
        self.progress.max = max(total, done, 1)
        self.progress.value = done
        self.line.value = text_html
