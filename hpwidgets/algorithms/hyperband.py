"""Hyperband (Li et al., JMLR 2018) and its asynchronous form ASHA (Li et al., MLSys 2020).

The resource is the space's Budget dimension (e.g. epochs). Each rung evaluation is a trial of
its own: a promoted config is asked again with the same searched params and a larger budget.
``brackets.bracket_table`` is the pure arithmetic; ``Hyperband`` runs it through ask/tell, as classic
brackets (sync) or as ASHA promotions (async).

With parallel trials the sync schedule starts the next bracket whenever every open one waits on
running trials, so no worker idles (BOHB's own parallel scheme, in HpBandSter). "auto" runs
plain Hyperband as ASHA in parallel (the design's choice: no rung waits for its slowest trial)
but a model sampler (BOHB-style) in sync brackets: ASHA promotes the best third of whatever has
finished, early on against little competition, so the model's budget is fitted on configs a full
rung would have dropped, and with 4 workers its regret was 1.6-2.4x one-at-a-time BOHB's against
0.8-1.4x in sync brackets (benchmarks/hyperband_parallel.py, at equal work).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..space import Budget, SearchSpace, _plain
from ..trial import FrozenTrial, TrialState
from . import ALGORITHMS
from ._spec import spec_of
from .base import Algorithm
from .brackets import BracketSpec, RungSpec, as_eta, bracket_table, check_budget_space
from .config_sampler import ConfigSampler

__all__ = ["BracketSpec", "Hyperband", "RungSpec", "bracket_table"]

MODES = ("auto", "sync", "async")


@dataclass
class _Entry:  # one evaluation of one config at one rung; pending until its trial is told
    config: int
    trial: int | None = None
    pending: bool = True
    loss: float = math.inf  # +inf ranks last (FAIL, or nothing to rank by)
    promoted: bool = False


@dataclass
class _Rung:
    budget: int
    size: int | None  # sync: n_i from the table; async: unbounded
    entries: list[_Entry] = field(default_factory=list)
    queue: list[_Entry] = field(default_factory=list)  # sync: promoted from below, not asked yet
    closed: bool = False  # sync: promotions out of this rung are decided


@dataclass
class _Run:  # one pass through a bracket (sync), or a bracket's ever-growing rungs (async)
    bracket: int  # s
    rungs: list[_Rung]
    done: bool = False


Slot = tuple[_Run, int, _Entry]


def _norm(value: Any) -> tuple[str, Any]:
    """Hashable, and tolerant of 16 vs 16.0 after a JSON round-trip through storage."""
    value = _plain(value)
    if isinstance(value, bool):
        return ("b", value)
    return ("n", float(value)) if isinstance(value, (int, float)) else ("o", repr(value))


class Hyperband(Algorithm):
    """Hyperband over the Budget dimension; ASHA when trials run in parallel, unless BOHB-style.

    ``eta``: keep the best 1/eta of each rung. ``sampler``: what draws new configs: "random",
    or "tpe" (or another algorithm's name, or an Algorithm object as a template) for BOHB-style
    draws from a model of the largest budget with enough results, a third of them random
    (``config_sampler.py``). ``mode``: "sync" for classic brackets (parallel trials start the
    next bracket rather than wait), "async" for ASHA; "auto" picks sync for parallel=1 or a
    model sampler, else async (see the module's note).
    """

    name = "hyperband"

    def __init__(self, eta: float = 3, sampler: str | Algorithm = "random", mode: str = "auto") -> None:
        super().__init__()
        self._eta = as_eta(eta)
        if isinstance(sampler, Hyperband) or sampler == "hyperband":
            raise ValueError("hyperband's `sampler` draws configs without a budget, so it cannot be hyperband")
        if not isinstance(sampler, Algorithm) and sampler not in ALGORITHMS:
            raise ValueError(f"unknown sampler {sampler!r}; expected \"random\", \"tpe\" or an Algorithm object")
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {list(MODES)}, but got mode={mode!r}")
        self.eta, self.sampler, self.mode = eta, sampler, mode
        self._ran_async = False  # "auto" has run ASHA: its history does not fit sync brackets

    # --- setup and space edits -------------------------------------------------------------
    def _on_setup(self) -> None:
        """Fresh bracket table, schedule and sampler for the current space."""
        assert self.space is not None
        self._budget_name = check_budget_space(self.space)
        dim = self.space[self._budget_name]
        assert isinstance(dim, Budget)
        self._top_budget = dim.high
        self.brackets = bracket_table(dim.low, dim.high, self.eta)
        # Snap onto the dimension's grid so every asked budget passes `dim.contains`.
        self._budgets = [[dim.snap(r.budget) for r in b.rungs] for b in self.brackets]
        self._build_schedule()
        self._sampler = ConfigSampler(self.sampler, SearchSpace(self.space.searched()), seed=self.next_seed(),
                                      maximize=self.maximize, target=self.target)

    @property
    def resolved_mode(self) -> str:
        """The mode the next ask runs in; "auto" follows ``parallel`` and the sampler."""
        if self.mode != "auto":
            return self.mode
        return "async" if self._ran_async or (self.parallel > 1 and self.sampler == "random") else "sync"

    def continue_from(self, stored_spec: str) -> None:
        """``algo="hyperband"`` named again on a study whose auto mode ran ASHA: it stays ASHA."""
        if self.mode == "auto" and not self._ran_async:
            self._ran_async = True
            self._ran_async = self.spec() == stored_spec  # the same options, stored with mode='async'

    def spec(self) -> str:
        """As ``Algorithm.spec``; "auto" that runs ASHA is written ``mode='async'``: a reloaded study,
        whose ``parallel`` nobody knows, must place its history in the schedule that made it."""
        if self.mode == "auto" and self.resolved_mode == "async":
            ours = type(self).__module__.startswith("hpwidgets.")
            return spec_of(self.name, {**self._options, "mode": "async"}, ours)
        return super().spec()

    def _build_schedule(self) -> None:
        self._async = self.resolved_mode == "async"
        self._configs: list[dict[str, Any]] = []
        self._config_ids: dict[tuple, int] = {}  # searched-params key -> first config with them
        self._pending: dict[tuple, list[Slot]] = {}
        self._runs: list[_Run] = []
        self._next_bracket = 0
        if self._async:
            self._runs = [self._new_run(b) for b in range(len(self.brackets))]

    def set_space(self, space: SearchSpace) -> None:
        check_budget_space(space)
        before = None if self.space is None else _budget_dim(self.space)
        super().set_space(space)
        if before == _budget_dim(space):
            self._sampler.set_space(SearchSpace(space.searched()))
            return
        self._replay(full=True)  # a new resource range is a new bracket table

    def _replay(self, full: bool) -> None:
        """Rebuild the schedule (with ``full``, also the table and the sampler) from the told history."""
        if full:
            self._on_setup()
        else:
            self._build_schedule()
        for trial in self.history:
            self._absorb(trial, feed_sampler=full)

    # --- ask -------------------------------------------------------------------------------
    def ask(self) -> dict[str, Any]:
        assert self.space is not None, "setup() must be called before ask()"
        if self._async != (self.resolved_mode == "async"):
            # The study sets `parallel` after setup, when optimize starts: switch schedules
            # (the sampler has seen the history already).
            self._replay(full=False)
        self._ran_async |= self._async
        slot = self._append(*(self._next_async() if self._async else self._next_sync()))
        params = {**self._configs[slot[2].config], self._budget_name: slot[0].rungs[slot[1]].budget}
        params = {name: params[name] for name in self.space}
        self._pending.setdefault(self._key(params), []).append(slot)
        return params

    def _next_sync(self) -> tuple[_Run, int, int]:
        # The oldest unfinished run goes first, so with one trial at a time brackets run in
        # order. When every open run waits on outstanding trials (parallel asks), the next
        # bracket starts instead of blocking.
        for run in self._runs:
            job = None if run.done else self._sync_job(run)
            if job is not None:
                return run, job[0], job[1]
        return self._open_run(), 0, self._sample()

    def _sync_job(self, run: _Run) -> tuple[int, int] | None:
        for i, rung in enumerate(run.rungs):
            while rung.queue:
                source = rung.queue.pop(0)
                if self._config_in_space(source.config):
                    return i, source.config
                source.promoted = False  # the space was narrowed past it: it will not run
                self._advance(run)
        bottom = run.rungs[0]
        if bottom.size is not None and len(bottom.entries) < bottom.size:
            return 0, self._sample()
        return None

    def _next_async(self) -> tuple[_Run, int, int]:
        # ASHA: promote from the highest rung that has a promotable config, else grow the bottom.
        pairs = [(run, i) for run in self._runs for i in range(len(run.rungs) - 1)]
        pairs.sort(key=lambda p: -p[0].rungs[p[1] + 1].budget)  # stable: ties keep bracket order
        for run, i in pairs:
            source = self._asha_candidate(run.rungs[i])
            if source is not None:
                source.promoted = True  # at ask time, so a config is never promoted twice
                return run, i + 1, source.config
        # Weighted round-robin over brackets, in proportion to each one's rung-0 size in the
        # sync table: budget then splits across brackets as in synchronous Hyperband, keeping
        # its hedge against a minimum budget too small to rank configs by.
        b = min(range(len(self._runs)),
                key=lambda k: Fraction(len(self._runs[k].rungs[0].entries), self.brackets[k].rungs[0].n))
        return self._runs[b], 0, self._sample()

    def _asha_candidate(self, rung: _Rung) -> _Entry | None:
        """The best not-yet-promoted config in the top 1/eta of the rung's finished results."""
        told = [e for e in rung.entries if not e.pending]
        top = sorted(told, key=lambda e: e.loss)[: math.floor(len(told) / self._eta)]
        for entry in top:
            if not entry.promoted and math.isfinite(entry.loss) and self._config_in_space(entry.config):
                return entry
        return None

    def _sample(self) -> int:
        assert self.space is not None
        params = self._sampler.ask()
        return self._add_config({name: _plain(params[name]) for name in self.space.searched()})

    def withdraw(self, params: dict[str, Any]) -> None:
        """Undo the newest ask of ``params``: its slot goes and a promotion can be made again."""
        slots = self._pending.get(self._key(params))
        if not slots:
            return
        run, i, entry = slots.pop()  # an emptied list is harmless: `_claim` finds nothing in it
        run.rungs[i].entries.remove(entry)
        if i == 0:
            self._sampler.withdraw(self._configs[entry.config])
            return
        source = next(e for e in run.rungs[i - 1].entries if e.config == entry.config and e.promoted)
        source.promoted = not self._async  # ASHA: promotable again; sync: queued again, first
        if not self._async:
            run.rungs[i].queue.insert(0, source)

    # --- tell ------------------------------------------------------------------------------
    def tell(self, trial: FrozenTrial) -> None:
        super().tell(trial)
        self._absorb(trial, feed_sampler=True)

    def _absorb(self, trial: FrozenTrial, feed_sampler: bool) -> None:
        if feed_sampler:
            self._feed_sampler(trial)
        slot = self._claim(trial)
        if slot is None:  # never asked by us (resume, or asked before a rebuild)
            budget = self._budget_of(trial)
            slot = self._place_async(trial, budget) if self._async else self._place_sync(trial, budget)
        if slot is None:
            return  # fits no schedule slot: it stays in the history and the sampler's results
        run, _, entry = slot
        entry.trial, entry.loss, entry.pending = trial.number, self._rank_loss(trial), False
        if not self._async:
            self._advance(run)

    def _feed_sampler(self, trial: FrozenTrial) -> None:
        # Filed by budget: a model only compares results of one budget (config_sampler.py).
        searched = {n: v for n, v in trial.params.items() if n != self._budget_name}
        self._sampler.tell(trial.evolve(params=searched), budget=self._budget_of(trial))

    def _rank_loss(self, trial: FrozenTrial) -> float:
        if trial.state is TrialState.FAIL:
            return math.inf
        loss = self.loss(trial)  # PRUNED: its value or last report
        return math.inf if loss is None else float(loss)

    def _claim(self, trial: FrozenTrial) -> Slot | None:
        key = self._key(trial.params)
        slots = self._pending.get(key, [])
        slot = slots.pop(0) if slots else None  # identical configs (small choice spaces): first in, first out
        if not slots:
            self._pending.pop(key, None)
        return slot

    def _advance(self, run: _Run) -> None:
        """Sync: close each rung whose evaluations are all in, promoting its best upward."""
        for i, rung in enumerate(run.rungs):
            if rung.closed:
                continue
            bottom_full = i > 0 or (rung.size is not None and len(rung.entries) >= rung.size)
            if not bottom_full or rung.queue or any(e.pending for e in rung.entries):
                return
            rung.closed = True
            if i + 1 < len(run.rungs):
                nxt = run.rungs[i + 1]
                ranked = sorted((e for e in rung.entries if math.isfinite(e.loss) and self._config_in_space(e.config)),
                                key=lambda e: e.loss)
                for source in ranked[: nxt.size]:  # stable sort: earlier trials win ties
                    source.promoted = True
                    nxt.queue.append(source)
        run.done = True

    # --- placing trials we never asked (resume) ------------------------------------------------
    def _place_sync(self, trial: FrozenTrial, budget: Any) -> Slot | None:
        """Replay the sync schedule: a promoted config's next run, a fresh bottom-rung config,
        or the first config of the next bracket, in the order ``ask`` would have produced them."""
        key = self._searched_key(trial.params)
        open_runs = [run for run in self._runs if not run.done]
        for run, i in [(r, i) for r in open_runs for i in range(len(r.rungs))]:
            rung = run.rungs[i]
            match = next((e for e in rung.queue if self._searched_key(self._configs[e.config]) == key), None)
            if rung.budget == budget and match is not None:
                rung.queue.remove(match)
                return self._append(run, i, match.config)
        for run in open_runs:
            bottom = run.rungs[0]
            if bottom.budget == budget and bottom.size is not None and len(bottom.entries) < bottom.size:
                return self._append(run, 0, self._config_from(trial))
        if self._budgets[self._next_bracket][0] == budget:
            return self._append(self._open_run(), 0, self._config_from(trial))
        return None

    def _place_async(self, trial: FrozenTrial, budget: Any) -> Slot | None:
        """A known config climbs its bracket; a new one joins the rung with the largest budget it
        covers (a bottom rung first, where new configs start)."""
        config = self._config_ids.get(self._searched_key(trial.params))
        slot = None if config is None else self._climb(config, budget)
        if slot is not None:
            return slot
        options = [(rung.budget, -i, -k) for k, run in enumerate(self._runs)
                   for i, rung in enumerate(run.rungs) if rung.budget <= budget]
        if not options:
            return None  # below every rung's budget: nothing here is comparable with it
        _, neg_rung, neg_run = max(options)
        return self._append(self._runs[-neg_run], -neg_rung, self._config_from(trial))

    def _climb(self, config: int, budget: Any) -> Slot | None:
        """Place a known config's result above its highest rung, marking that rung's entry promoted."""
        for run in self._runs:
            held = [i for i, rung in enumerate(run.rungs) if any(e.config == config for e in rung.entries)]
            if not held:
                continue
            above = [i for i in range(max(held) + 1, len(run.rungs)) if run.rungs[i].budget <= budget]
            if above:
                for entry in run.rungs[max(held)].entries:
                    entry.promoted = entry.promoted or entry.config == config
                return self._append(run, max(above), config)
        return None

    # --- small helpers ---------------------------------------------------------------------------
    def _new_run(self, b: int) -> _Run:
        sizes = [None if self._async else r.n for r in self.brackets[b].rungs]
        return _Run(self.brackets[b].s, [_Rung(budget, n) for budget, n in zip(self._budgets[b], sizes, strict=True)])

    def _open_run(self) -> _Run:
        run = self._new_run(self._next_bracket)
        self._next_bracket = (self._next_bracket + 1) % len(self.brackets)  # cycle s_max..0 forever
        self._runs.append(run)
        return run

    def _append(self, run: _Run, i: int, config: int) -> Slot:
        entry = _Entry(config)
        run.rungs[i].entries.append(entry)
        return run, i, entry

    def _add_config(self, params: dict[str, Any]) -> int:
        self._configs.append(params)
        self._config_ids.setdefault(self._searched_key(params), len(self._configs) - 1)
        return len(self._configs) - 1

    def _config_from(self, trial: FrozenTrial) -> int:
        return self._add_config({n: v for n, v in trial.params.items() if n != self._budget_name})

    def _config_in_space(self, config: int) -> bool:
        assert self.space is not None
        params = self._configs[config]
        return all(n in params and dim.contains(params[n]) for n, dim in self.space.searched().items())

    def _budget_of(self, trial: FrozenTrial) -> Any:  # none: it ran before the budget existed, at full
        return trial.params.get(self._budget_name, self._top_budget)

    def _searched_key(self, params: Any) -> tuple:
        assert self.space is not None
        return tuple(_norm(params.get(n)) for n in self.space.searched())

    def _key(self, params: Any) -> tuple:
        return (*self._searched_key(params), _norm(params.get(self._budget_name)))

    # --- reading -----------------------------------------------------------------------------------
    def should_prune(self, trial_number: int, step: int, value: float) -> bool:
        # Never: promoted configs restart at the larger budget, so nothing is stopped mid-run.
        # Reports are still stored and still feed the learning-curve charts.
        return False

    def rungs(self) -> list[dict[str, Any]]:
        """Per bracket run and rung: the budget, the evaluations there and which were promoted.

        Plain data for the explainer chart. ``trial`` is None while pending; ``loss`` (the value
        minimised, so negated when maximising) is None while pending and for failed trials.
        """
        return [{"bracket": run.bracket, "done": run.done, "rungs": [
            {"rung": i, "budget": rung.budget, "size": rung.size, "entries": [
                {"trial": e.trial, "config": e.config, "params": dict(self._configs[e.config]),
                 "loss": e.loss if math.isfinite(e.loss) else None,
                 "promoted": e.promoted} for e in rung.entries]}
            for i, rung in enumerate(run.rungs)]} for run in self._runs]


def _budget_dim(space: SearchSpace) -> tuple[str | None, Any]:
    return space.budget_name, space.get(space.budget_name or "")
