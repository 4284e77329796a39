"""The Hyperband explainer: brackets × rungs, what each rung promoted or stopped, and the budget.

The plan is ``algorithms.hyperband.bracket_table`` (the paper's arithmetic, not re-derived here);
what happened is read from the algorithm's ``rungs()`` view. The budget comparison asks: the
resource spent so far (e.g. epochs, summed over trials) would have bought how many full-budget
configurations in a plain random search? Hyperband spends the same budget on many more configs,
most of them cheaply, and keeps training only the promising ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from ..algorithms.brackets import bracket_table
from ..space import Budget, SearchSpace
from ..trial import FrozenTrial


class Cell(NamedTuple):
    """One rung of one bracket: the plan (n configs at ``budget``) and what happened there."""

    bracket: int  # the paper's s
    rung: int  # i = 0, 1, ...
    n: int  # configs the plan evaluates here
    budget: int  # resource each of them gets
    evaluated: int = 0  # finished evaluations
    running: int = 0  # asked, not finished
    promoted: int = 0  # went on to the next rung
    stopped: int = 0  # finished, rung closed, not promoted (the top rung stops no one)


class HyperbandView(NamedTuple):
    eta: float
    min_budget: int
    max_budget: int
    cells: tuple[Cell, ...]  # bracket by bracket (largest s first), rung by rung
    spent: int  # resource used by finished trials
    configs: int  # distinct configurations tried
    random_configs: float  # full-budget configs a random search buys with ``spent``


def plan(min_budget: int, max_budget: int, eta: float = 3) -> tuple[Cell, ...]:
    """The bracket table as cells, from ``bracket_table`` (Li et al. 2018, Table 1 for R=81, eta=3)."""
    return tuple(Cell(b.s, i, r.n, r.budget) for b in bracket_table(min_budget, max_budget, eta)
                 for i, r in enumerate(b.rungs))


def bracket_cost(min_budget: int, max_budget: int, eta: float = 3) -> dict[int, int]:
    """Resource one full pass of each bracket uses: sum of n × budget over its rungs."""
    cost: dict[int, int] = {}
    for cell in plan(min_budget, max_budget, eta):
        cost[cell.bracket] = cost.get(cell.bracket, 0) + cell.n * cell.budget
    return cost


def trials_within(total: float, min_budget: int, max_budget: int, eta: float = 3) -> int:
    """How many trials synchronous Hyperband (one at a time) runs before it has used ``total``.

    Trials come bracket by bracket, rung by rung, cycling through the brackets; each uses its rung's
    budget. This is what "the same budget" means when Hyperband races full-budget searches.
    """
    cells, used, count = plan(min_budget, max_budget, eta), 0, 0
    while True:
        for cell in cells:
            for _ in range(cell.n):
                if used + cell.budget > total:
                    return count
                used += cell.budget
                count += 1


def _tally(cell: Cell, rung: Mapping[str, Any], closed: bool, top: bool) -> Cell:
    entries = rung["entries"]
    told = [e for e in entries if e["trial"] is not None]
    promoted = sum(1 for e in told if e["promoted"])
    stopped = len(told) - promoted if closed and not top else 0
    return cell._replace(evaluated=cell.evaluated + len(told), running=cell.running + len(entries) - len(told),
                         promoted=cell.promoted + promoted, stopped=cell.stopped + stopped)


def tally(cells: Sequence[Cell], runs: Iterable[Mapping[str, Any]]) -> tuple[Cell, ...]:
    """Add the outcomes of ``Hyperband.rungs()`` runs to the planned cells (all passes summed).

    A rung is closed once a higher rung has entries or its run is done; only then are the
    configs it did not promote counted as stopped (before that they may still be promoted).
    """
    index = {(c.bracket, c.rung): i for i, c in enumerate(cells)}
    out = list(cells)
    for run in runs:
        rungs = run["rungs"]
        for i, rung in enumerate(rungs):
            key = (run["bracket"], rung["rung"])
            if key not in index:
                continue
            closed = bool(run["done"]) or any(r["entries"] for r in rungs[i + 1:])
            out[index[key]] = _tally(out[index[key]], rung, closed, top=i == len(rungs) - 1)
    return tuple(out)


def budget_spent(trials: Iterable[FrozenTrial], budget_name: str) -> tuple[int, int]:
    """(resource used, distinct configs) over finished trials that carry the budget parameter."""
    spent, configs = 0, set()
    for trial in trials:
        if trial.state.finished and isinstance(trial.params.get(budget_name), int):
            spent += trial.params[budget_name]
            configs.add(tuple(sorted((k, repr(v)) for k, v in trial.params.items() if k != budget_name)))
    return spent, len(configs)


def hyperband_view(trials: Iterable[FrozenTrial], space: SearchSpace, runs: Iterable[Mapping[str, Any]] = (),
                   eta: float = 3) -> HyperbandView:
    """Plan, outcomes (from ``Hyperband.rungs()``; none for other algorithms) and budget of a study."""
    name = space.budget_name
    if name is None:
        raise ValueError(f"the Hyperband view needs a budget dimension such as hw.budget(1, 27); "
                         f"the space has none among {list(space)!r}")
    dim = space[name]
    assert isinstance(dim, Budget)
    spent, configs = budget_spent(trials, name)
    cells = tally(plan(dim.low, dim.high, eta), runs)
    return HyperbandView(float(eta), dim.low, dim.high, cells, spent, configs, spent / dim.high)
