"""Pruners: stop a trial early from what it reports (``trial.report``), whatever suggested it.

The algorithm picks configs; a pruner only answers, after each report, "stop this trial now?".
``ASHAPruner`` is asynchronous successive halving (Li et al., 2020) in its stopping form: every
trial trains towards the full budget and is stopped at a rung (steps ``min_step * eta**k``)
unless its value there is among the best ``1/eta`` of the values trials have reported at that
rung so far, itself included. Nothing restarts, so unlike ``algo="hyperband"`` (which asks a
promoted config again with a larger budget) a surviving trial needs no checkpoint; the price is
that an early trial is judged against few rivals. With ``algo="tpe"`` it is close to BOHB.
``MedianPruner`` stops a trial whose best value so far is worse than the median of the other
trials' values at the same step: no schedule, any reporting cadence.

Contract, like the algorithms': ``setup`` once, ``should_prune(trial_number, step, loss)`` for
every report (loss: the value minimised, so negated when maximising), ``tell`` every finished
trial, resumed ones included, so a resumed study judges new trials against the stored ones.
"""

from __future__ import annotations

import math
import statistics
from abc import ABC, abstractmethod

from .._warn import warn_at_user
from ..space import SearchSpace
from ..trial import FrozenTrial, TrialState, target_value

PRUNERS = ("none", "asha", "median")


def _ranked(loss: float) -> float:
    """A loss as pruners compare it: a diverged run (NaN, inf) ranks last."""
    return loss if math.isfinite(loss) else math.inf


class Pruner(ABC):
    """Decides, from reports alone, whether a running trial should stop."""

    name = "pruner"

    def setup(self, space: SearchSpace, *, maximize: bool = False, target: str | None = None) -> None:
        self.space, self.maximize, self.target = space, maximize, target
        self._warned = False

    def set_space(self, space: SearchSpace) -> None:
        """An edited space (the panel's sliders); the reports so far still count."""
        self.space = space

    def tell(self, trial: FrozenTrial) -> None:
        """A finished trial (any state): replay its reports into what later trials are judged by."""
        judged = False
        for report in trial.reports:
            value = target_value(report.metrics, self.target)
            if value is not None:
                judged = True
                self.record(trial.number, report.step, -value if self.maximize else value)
        if trial.reports and not judged:
            self._warn_unjudged(trial)

    def _warn_unjudged(self, trial: FrozenTrial) -> None:
        """Once per pruner: reports without the target can never stop a trial; say so, not silently."""
        if self._warned:
            return
        self._warned = True
        names = sorted({name for report in trial.reports for name in report.metrics})
        wanted = f"the target {self.target!r}" if self.target else "a single metric (or name the target)"
        warn_at_user(f"pruner {self.name!r}: trial {trial.number} reported {names} but not {wanted}, so it "
                     f"could not be judged; report the value being optimised")

    def record(self, trial_number: int, step: int, loss: float) -> None:  # noqa: B027 - optional
        """Remember a report without deciding anything (``tell``'s replay)."""

    @abstractmethod
    def should_prune(self, trial_number: int, step: int, loss: float) -> bool:
        """Record the report, then True to stop the trial."""


class ASHAPruner(Pruner):
    """Stop a trial at a rung unless it is in the best ``1/eta`` there (rounded up).

    ``min_step``: the first rung's step; rungs follow at ``min_step * eta**k``. ``max_step``:
    no rung at or past it (a trial there is done; stopping it would only lose its result). By
    default the space's ``hp.budget`` maximum, else the last step of the first trial to complete
    (the first trial is alone at every rung, so it always completes when run one at a time).
    """

    name = "asha"

    def __init__(self, min_step: int = 1, eta: int = 3, max_step: int | None = None) -> None:
        for label, value, least in (("min_step", min_step, 1), ("eta", eta, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"`{label} >= {least}` must hold (an int), but got {label}={value!r}")
        if max_step is not None and (isinstance(max_step, bool) or not isinstance(max_step, int)):
            raise ValueError(f"`max_step` must be an int or None, but got max_step={max_step!r}")
        self.min_step, self.eta, self.max_step = min_step, eta, max_step
        self._rungs: list[dict[int, float]] = []  # rung -> {trial number: loss on reaching it}
        self._reached: dict[int, int] = {}  # trial number -> rungs it has reached

    def setup(self, space: SearchSpace, *, maximize: bool = False, target: str | None = None) -> None:
        super().setup(space, maximize=maximize, target=target)
        self._last_step = self._budget_top(space)
        self._rungs, self._reached = [], {}

    def set_space(self, space: SearchSpace) -> None:
        super().set_space(space)  # a narrowed budget moves the last rung down with it
        self._last_step = self._budget_top(space) or self._last_step

    def _budget_top(self, space: SearchSpace) -> int | None:
        budget = space.get(space.budget_name or "")
        return self.max_step if self.max_step is not None else getattr(budget, "high", None)

    def tell(self, trial: FrozenTrial) -> None:
        if self._last_step is None and trial.state is TrialState.COMPLETE and trial.reports:
            self._last_step = max(report.step for report in trial.reports)
        super().tell(trial)

    def rung_steps(self) -> list[int]:
        """The rung steps reached so far (plain data for charts and tests)."""
        return [self._rung_step(k) for k in range(self._judged_rungs())]

    def rung_values(self, rung: int) -> dict[int, float]:
        """{trial number: loss} recorded at ``rung``."""
        return dict(self._rungs[rung]) if rung < self._judged_rungs() else {}

    def _judged_rungs(self) -> int:
        """How many recorded rungs lie below the last step. Before any trial completed the first one
        entered rungs up to its end; once that end is known, no later trial is judged there."""
        return sum(1 for k in range(len(self._rungs)) if self._has_rung(k))

    def record(self, trial_number: int, step: int, loss: float) -> None:
        self._record(trial_number, step, loss)

    def should_prune(self, trial_number: int, step: int, loss: float) -> bool:
        rung = self._record(trial_number, step, loss)
        return rung is not None and not self._survives(rung, trial_number)

    def _rung_step(self, k: int) -> int:
        return self.min_step * self.eta ** k

    def _has_rung(self, k: int) -> bool:
        return self._last_step is None or self._rung_step(k) < self._last_step

    def _record(self, trial_number: int, step: int, loss: float) -> int | None:
        """Enter the report at every rung it newly reaches; the highest such rung, or None.

        A trial that skips rungs (reports every 5 epochs) enters the same value at each."""
        loss = _ranked(loss)
        k = self._reached.get(trial_number, 0)
        newest = None
        while self._has_rung(k) and self._rung_step(k) <= step:
            if k == len(self._rungs):
                self._rungs.append({})
            self._rungs[k][trial_number] = loss
            newest, k = k, k + 1
        self._reached[trial_number] = k
        return newest

    def _survives(self, rung: int, trial_number: int) -> bool:
        losses = sorted(self._rungs[rung].values())
        keep = math.ceil(len(losses) / self.eta)  # the first trial at a rung always goes on
        return self._rungs[rung][trial_number] <= losses[keep - 1]


class MedianPruner(Pruner):
    """Stop a trial whose best value so far is worse than the median of what the other trials
    reported at the same step (the rule of Google Vizier's "median stopping" and Optuna's default).
    ``n_startup_trials``: other trials (finished, or running with a report) needed before anything
    is stopped; ``n_warmup_steps``: steps below this are never judged.

    Unlike those two, trials still running count too, as in ASHA's rungs: one at a time nothing
    changes (the only trial running is the one judged), but with 4 workers the finished trials
    alone leave out the survivors still running, so the median drifts to the bad trials, and
    5 finished trials take 8 full runs, not 5, before anything is stopped. In
    ``benchmarks/pruning_synthetic.py``'s simulation (random search, 4 workers, seeds 1500-1599,
    Branin / Hartmann6 / mixed5) median regret was 0.486 / 1.47 / 0.72 with finished trials
    only, 0.346 / 1.44 / 0.662 with running reports in the median, 0.278 / 1.35 / 0.63 with
    running trials in the start-up count too, and 0.267 / 1.38 / 0.602 one at a time."""

    name = "median"

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0) -> None:
        for label, value in (("n_startup_trials", n_startup_trials), ("n_warmup_steps", n_warmup_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{label} >= 0` must hold (an int), but got {label}={value!r}")
        self.n_startup_trials, self.n_warmup_steps = n_startup_trials, n_warmup_steps
        self._by_step: dict[int, dict[int, float]] = {}  # step -> {trial: its loss there}
        self._best: dict[int, float] = {}  # running trial -> its best loss so far (reported, not told)
        self._finished: set[int] = set()

    def setup(self, space: SearchSpace, *, maximize: bool = False, target: str | None = None) -> None:
        super().setup(space, maximize=maximize, target=target)
        self._by_step, self._best, self._finished = {}, {}, set()

    def tell(self, trial: FrozenTrial) -> None:
        self._finished.add(trial.number)
        self._best.pop(trial.number, None)
        super().tell(trial)  # its reports become what later trials are compared with

    def record(self, trial_number: int, step: int, loss: float) -> None:
        self._by_step.setdefault(step, {})[trial_number] = _ranked(loss)

    def should_prune(self, trial_number: int, step: int, loss: float) -> bool:
        self.record(trial_number, step, loss)  # a running trial's report counts for the others (class doc)
        best = self._best[trial_number] = min(self._best.get(trial_number, math.inf), _ranked(loss))
        others = [v for n, v in self._by_step.get(step, {}).items() if n != trial_number]
        rivals = (self._finished | self._best.keys()) - {trial_number}  # running ones too (class doc)
        if step < self.n_warmup_steps or len(rivals) < self.n_startup_trials or not others:
            return False
        return best > statistics.median(others)


def pruner_name(pruner: Pruner | None) -> str:
    """The name a choice of pruner shows under (the panel's dropdown): its own, or "none"."""
    return pruner.name if pruner is not None else "none"


def warn_if_unheard(pruner: Pruner | None, can_report: bool) -> None:
    """A pruner judges reports alone: beside an ``objective(params)``, which has no ``trial`` to
    report with, it can stop nothing. Say so once per run rather than prune silently never."""
    if pruner is not None and not can_report:
        warn_at_user(f"pruner {pruner.name!r} stops trials from what they report, but the objective takes "
                     f"no `trial` argument to call trial.report with, so every trial runs to its end")


def make_pruner(pruner: str | Pruner | None, algorithm_name: str) -> Pruner | None:
    """A pruner from a name (``"asha"``, ``"median"``, ``"none"``) or the object; refused beside Hyperband."""
    if pruner is None or pruner == "none":
        return None
    if isinstance(pruner, str):
        if pruner not in PRUNERS:
            raise ValueError(f"unknown pruner {pruner!r}; expected one of {list(PRUNERS)} or a Pruner object")
        pruner = ASHAPruner() if pruner == "asha" else MedianPruner()
    if not isinstance(pruner, Pruner):
        raise ValueError(f"`pruner` must be a name in {list(PRUNERS)} or a Pruner, but got {pruner!r}")
    if algorithm_name == "hyperband":
        raise ValueError(f"pruner={pruner.name!r} does not combine with algo='hyperband', which already stops "
                         f"configs at its rungs (by budget); use the pruner with random, tpe or gp")
    return pruner
