"""Hyperband's config sampler: which results and which running draws each fresh model sees."""

from __future__ import annotations

from typing import Any, ClassVar

from helpers import budgeted_space, finished, run_one_at_a_time

from hpwidgets.algorithms.config_sampler import ConfigSampler
from hpwidgets.algorithms.hyperband import Hyperband
from hpwidgets.algorithms.random import RandomSearch
from hpwidgets.space import SearchSpace, budget, choice, uniform
from hpwidgets.trial import FrozenTrial, TrialState


def searched() -> SearchSpace:
    return SearchSpace({"x": uniform(0, 1), "act": choice("relu", "tanh")})


def trial(number: int, params: dict[str, Any], state: TrialState = TrialState.COMPLETE) -> FrozenTrial:
    value = (params["x"] - 0.3) ** 2 if state is TrialState.COMPLETE else None
    return FrozenTrial(number, state, params, value)


def sampler_with_results(n: int = 12) -> ConfigSampler:
    sampler = ConfigSampler("tpe", searched(), seed=0, maximize=False, target=None)
    for number in range(n):
        sampler.tell(trial(number, {"x": number / n, "act": "relu"}), budget=1)
    return sampler


def test_draws_still_running_are_pending_in_the_next_fresh_model():
    sampler = sampler_with_results()
    running = [sampler.ask() for _ in range(3)]  # three workers busy, nothing told back yet
    assert sampler.drawn == running
    model = sampler._fresh_model(sampler.told[1])
    assert model._pending == running and model.parallel == 4
    assert len(model.history) == 12  # the results are told, the running draws are not


def test_a_withdrawn_draw_is_no_longer_pending_in_hyperband_or_its_sampler():
    hb = Hyperband(sampler="tpe", mode="sync")
    hb.setup(budgeted_space(9), seed=0)
    run_one_at_a_time(hb, 5)
    dropped = hb.ask()  # a new bottom-rung config
    hb.withdraw(dropped)
    assert {k: v for k, v in dropped.items() if k != "epochs"} not in hb._sampler.drawn
    assert [p["epochs"] for p in run_one_at_a_time(hb, 8, start=5)] == [1] * 4 + [3] * 3 + [9]


def test_a_told_draw_stops_being_pending_and_pruned_ones_are_not_filed():
    sampler = sampler_with_results()
    first, second, third = (sampler.ask() for _ in range(3))
    sampler.tell(trial(12, first), budget=1)
    sampler.tell(trial(13, second, TrialState.PRUNED), budget=1)  # stopped by the user: no result filed
    sampler.tell(trial(14, {"x": 0.5, "act": "tanh"}), budget=1)  # never drawn here (resume): nothing to drop
    assert sampler.drawn == [third]
    assert len(sampler.told[1]) == 14 and all(t.state is TrialState.COMPLETE for t in sampler.told[1])


def test_draws_outside_a_narrowed_space_are_left_out_of_the_model():
    sampler = sampler_with_results()
    draws = [sampler.ask() for _ in range(6)]
    narrowed = SearchSpace({"x": uniform(0, 0.5), "act": choice("relu", "tanh")})
    sampler.set_space(narrowed)
    model = sampler._fresh_model(sampler.told[1])
    assert model._pending == [p for p in draws if p["x"] <= 0.5]


def test_asha_with_the_tpe_sampler_hands_pending_draws_to_its_models():
    hb = Hyperband(sampler="tpe", mode="async")
    hb.setup(SearchSpace({**searched().searched(), "epochs": budget(1, 27)}), seed=0, parallel=4)
    running = [hb.ask() for _ in range(4)]
    for number in range(60):  # four workers: tell the oldest, ask again
        params = running.pop(0)
        hb.tell(trial(number, params))
        running.append(hb.ask())
        assert len(hb._sampler.drawn) <= 4
    new = [{k: v for k, v in p.items() if k != "epochs"} for p in running if p["epochs"] == 1]
    assert all(p in hb._sampler.drawn for p in new)  # configs on workers for their first rung


# --- inside Hyperband ---------------------------------------------------------------------------
class Spy(RandomSearch):
    """A real random sampler that records, at each ask, the trials its copy was told."""

    seen: ClassVar[list[list[int]]] = []

    def ask(self) -> dict[str, Any]:
        assert self.space is not None and "epochs" not in self.space
        Spy.seen.append([t.number for t in self.history])
        return super().ask()


def test_model_draws_fit_the_largest_budget_with_enough_results():
    Spy.seen = []
    hb = Hyperband(sampler=Spy())
    hb.setup(budgeted_space(), seed=0)
    numbers_by_budget: dict[int, list[int]] = {}
    for number in range(69 + 27):  # one full iteration, then the next bracket s=3's first rung
        p = hb.ask()
        numbers_by_budget.setdefault(p["epochs"], []).append(number)
        hb.tell(finished(number, p, state=TrialState.FAIL if number % 10 == 0 else TrialState.COMPLETE))
    assert 0 < len(Spy.seen) < 27 + 12 + 6 + 4 + 27  # of 76 new configs, some stay random draws
    for told in Spy.seen:  # each fresh model saw exactly one budget's results, FAILs included
        budgets = {b for b, numbers in numbers_by_budget.items() if set(told) <= set(numbers)}
        assert len(told) >= 4 and len(budgets) >= 1  # 2 searched dimensions + 2
    assert any(set(told) <= set(numbers_by_budget[27]) and len(told) >= 8 for told in Spy.seen)


def test_sampler_draws_are_random_until_a_budget_has_enough_results():
    Spy.seen = []
    hb = Hyperband(sampler=Spy())
    hb.setup(budgeted_space(), seed=0)
    firsts = [hb.ask() for _ in range(27)]  # bracket s=3's first rung: nothing told yet
    assert Spy.seen == [] and len({(p["x"], p["act"]) for p in firsts}) == 27


def test_tpe_sampler_bohb_style():
    hb = Hyperband(sampler="tpe")
    sp = budgeted_space()
    hb.setup(sp, seed=0)
    for p in run_one_at_a_time(hb, 140):
        assert sp.contains(p)
    assert hb._sampler.model_based and hb._sampler.model_budget() is not None
    assert type(hb._sampler._fresh_model([])).__name__ == "NativeTPE"  # "tpe" is our own TPE
