"""Slider widgets for a SearchSpace, and the validated space they describe.

One control per dimension: a FloatRangeSlider (uniform), a range slider over log10 exponents with
a readout in real units (log float, and log int, whose bounds snap to integers), an IntRangeSlider
on the step grid (int), one toggle per value (choice: which values are allowed), and a read-only
slider for the budget. A moved handle's bound is rounded to the slider's resolution there (the real
distance between adjacent positions), never more coarsely, so 100004.2 on a 100000..100010 slider
stays 100004.2; untouched controls give back their original dimension object, so sliders built
from a space return that same space. An invalid edit (low == high, no choice left) is refused with
a visible message and the last valid space is kept.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable
from typing import Any, Protocol

import ipywidgets as w

from ..charts.data import ChoiceLabels
from ..space import Budget, Choice, Dimension, Float, Int, SearchSpace

_WIDTH = "460px"
_STYLE = {"description_width": "120px"}


def css_name(name: str) -> str:
    """A parameter name made safe for a CSS class (``hpw-dim-<name>``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def decimals(resolution: float, exact: bool = False) -> int:
    """Decimal places that tell values ``resolution`` apart (negative: tens, hundreds...); with
    ``exact``, enough to write ``resolution`` itself (a step of 0.25 needs 2, not 1)."""
    places = -math.floor(math.log10(resolution))
    while exact and places < 15 and not math.isclose(round(resolution, places), resolution, rel_tol=1e-9):
        places += 1
    return places


def real_text(x: float, resolution: float, exact: bool = False) -> str:
    """``x`` with the significant digits ``resolution`` needs: 100004.2, 0.9955, 0.001, 1.235e+06."""
    magnitude = math.floor(math.log10(abs(x))) + 1 if x else 1
    return f"{x:.{max(1, magnitude + decimals(resolution, exact))}g}"


class Control(Protocol):
    widget: w.Widget

    def dimension(self) -> Dimension: ...

    def observe(self, callback: Callable[[Any], None]) -> None: ...


class FloatControl:
    """A float range; log dimensions slide over exponents and read out in real units."""

    def __init__(self, name: str, dim: Float | Int) -> None:
        self.original = dim
        lo, hi = (math.log10(dim.low), math.log10(dim.high)) if dim.log else (dim.low, dim.high)
        step = (hi - lo) / 200 if dim.log else (getattr(dim, "q", None) or (hi - lo) / 1000)
        # Our own readout for every float slider: log ones must show real units, and the
        # frontend's d3 format pads zeros ("0.000 - 0.5020"), so linear ones use it too.
        self.slider = w.FloatRangeSlider(min=lo, max=hi, value=(lo, hi), step=step, description=name,
                                         readout=False, continuous_update=False,
                                         style=_STYLE, layout=w.Layout(width=_WIDTH))
        self.slider.add_class("hpw-slider")
        self.initial = self.slider.value
        self.readout = w.Label(self._readout_text())
        self.readout.add_class("hpw-readout")
        if dim.log:
            self.readout.add_class("hpw-log-readout")
        self.slider.observe(lambda _: setattr(self.readout, "value", self._readout_text()), "value")
        self.widget = w.HBox([self.slider, self.readout])

    def bounds(self) -> tuple[float, float]:
        """The slider's range in real units: a handle left where it started keeps the declared bound
        exactly, a moved one is rounded to the slider's resolution (no 0.0031622776601683794), within it."""
        (a, b), (a0, b0) = self.slider.value, self.initial
        low = self.original.low if a == a0 else self._rounded(a)
        high = self.original.high if b == b0 else self._rounded(b)
        return low, high

    def resolution(self, real: float) -> float:
        """The real distance between adjacent slider positions at ``real``."""
        return abs(real) * (10 ** self.slider.step - 1) if self.original.log else self.slider.step

    def _rounded(self, position: float) -> float:
        real = 10 ** position if self.original.log else position
        if getattr(self.original, "q", None):  # a grid: its own points (0.25, not 0.2)
            return self.original.snap(real)
        # A linear step is exact (0.0125 keeps 4 places); a log one is not, and a position is enough.
        rounded = round(real, decimals(self.resolution(real), exact=not self.original.log))
        return min(max(rounded, self.original.low), self.original.high)  # rounding must not widen the range

    def _readout_text(self) -> str:
        lo, hi = self.bounds()
        exact = not self.original.log
        return f"{real_text(lo, self.resolution(lo), exact)} … {real_text(hi, self.resolution(hi), exact)}"

    def dimension(self) -> Dimension:
        if self.slider.value == self.initial:
            return self.original
        lo, hi = self.bounds()
        return Float(lo, hi, log=self.original.log, q=self.original.q)

    def observe(self, callback: Callable[[Any], None]) -> None:
        self.slider.observe(callback, "value")


class LogIntControl(FloatControl):
    """A log-scaled int: the exponent slider of a log float, its bounds snapped to integers."""

    original: Int

    def _rounded(self, position: float) -> int:
        return self.original.snap(10 ** position)

    def _readout_text(self) -> str:
        lo, hi = self.bounds()
        return f"{lo} … {hi}"

    def dimension(self) -> Dimension:
        if self.slider.value == self.initial:
            return self.original
        lo, hi = self.bounds()
        return Int(int(lo), int(hi), log=True, step=self.original.step)


class IntControl:
    """An int range on the step grid; the budget is shown read-only (Hyperband owns it)."""

    def __init__(self, name: str, dim: Int) -> None:
        self.original = dim
        budget = isinstance(dim, Budget)
        self.slider = w.IntRangeSlider(min=dim.low, max=dim.high, step=dim.step, value=(dim.low, dim.high),
                                       description=f"{name} (budget)" if budget else name, disabled=budget,
                                       continuous_update=False, style=_STYLE, layout=w.Layout(width=_WIDTH))
        self.slider.add_class("hpw-slider")
        self.initial = self.slider.value
        self.widget = w.HBox([self.slider])

    def dimension(self) -> Dimension:
        if self.slider.value == self.initial or isinstance(self.original, Budget):
            return self.original
        lo, hi = (self.original.snap(v) for v in self.slider.value)
        return Int(lo, hi, log=self.original.log, step=self.original.step)

    def observe(self, callback: Callable[[Any], None]) -> None:
        self.slider.observe(callback, "value")


class ChoiceControl:
    """One toggle per value: pressed means the search may suggest it."""

    def __init__(self, name: str, dim: Choice) -> None:
        self.original = dim
        categories = ChoiceLabels(dim.values)  # the charts' labels: None and "None" read None and 'None'
        self.buttons = [w.ToggleButton(value=True, description=categories.label(v), tooltip=f"allow {name}={v!r}",
                                       layout=w.Layout(width="auto")) for v in dim.values]
        for button in self.buttons:
            button.add_class("hpw-choice-toggle")
        # Aligned like the sliders' right-aligned descriptions above it.
        label = w.HTML(f'<div style="text-align:right;padding-right:8px">{html.escape(name)}</div>',
                       layout=w.Layout(width=_STYLE["description_width"]))
        self.widget = w.HBox([label, *self.buttons])

    def dimension(self) -> Dimension:
        allowed = tuple(v for v, b in zip(self.original.values, self.buttons, strict=True) if b.value)
        return self.original if len(allowed) == len(self.original.values) else Choice(allowed)

    def observe(self, callback: Callable[[Any], None]) -> None:
        for button in self.buttons:
            button.observe(callback, "value")


def make_control(name: str, dim: Dimension) -> Control:
    if isinstance(dim, Choice):
        return ChoiceControl(name, dim)
    if isinstance(dim, Int) and dim.log and not isinstance(dim, Budget):
        return LogIntControl(name, dim)
    if isinstance(dim, Int):
        return IntControl(name, dim)
    return FloatControl(name, dim)


class SpaceEditor:
    """The sliders for a space; ``space_from_widgets()`` is the edited space (or the last valid one).

    >>> import hpwidgets as hw
    >>> space = hw.SearchSpace({"lr": hw.loguniform(1e-4, 1e-1), "bs": hw.choice(16, 32)})
    >>> SpaceEditor(space).space_from_widgets() == space
    True
    """

    def __init__(self, space: SearchSpace) -> None:
        self.original = space
        self._last_valid = space
        self._error = ""
        self._callbacks: list[Callable[[SearchSpace], None]] = []
        self.controls = {name: make_control(name, dim) for name, dim in space.items()}
        self.message = w.HTML("")
        self.message.add_class("hpw-space-error")
        for name, control in self.controls.items():
            control.widget.add_class("hpw-dim")
            control.widget.add_class(f"hpw-dim-{css_name(name)}")
            control.observe(self._changed)
        self.widget = w.VBox([c.widget for c in self.controls.values()] + [self.message])
        self.widget.add_class("hpw-space")

    @property
    def error(self) -> str | None:
        """The message shown for the last refused edit, or None when the sliders are valid."""
        return self._error if self.message.value else None

    def space_from_widgets(self) -> SearchSpace:
        """The space the widgets describe; on an invalid edit, show why and keep the last valid one."""
        dims, problems = {}, []
        for name, control in self.controls.items():
            try:
                dims[name] = control.dimension()
            except ValueError as error:
                problems.append(f"{name}: {error}")
        if problems:
            self._refuse("; ".join(problems))
            return self._last_valid
        self.message.value = ""
        self._last_valid = SearchSpace(dims)
        return self._last_valid

    def on_change(self, callback: Callable[[SearchSpace], None]) -> None:
        """Call ``callback(space)`` after each valid edit that changes the space."""
        self._callbacks.append(callback)

    def _refuse(self, reason: str) -> None:
        self._error = reason
        self.message.value = (f'<span style="color:#c62828">{html.escape(reason)}; '
                              f"keeping the last valid space.</span>")

    def _changed(self, _change: Any) -> None:
        before = self._last_valid
        space = self.space_from_widgets()
        if self.error is not None or space == before:
            return
        for callback in self._callbacks:
            try:
                callback(space)
            except ValueError as error:  # e.g. the study refused it: keep what it still uses
                self._last_valid = before
                self._refuse(str(error))
                return


def space_from_widgets(editor: SpaceEditor) -> SearchSpace:
    """The edited space of ``editor`` (the last valid one while an edit is refused)."""
    return editor.space_from_widgets()
