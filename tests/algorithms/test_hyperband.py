"""Hyperband / ASHA: the bracket arithmetic, the sync schedule, ASHA promotions, resume."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from helpers import budgeted_space as space
from helpers import curve_loss as loss_of
from helpers import finished as done
from helpers import run_one_at_a_time as run_sync

import hpwidgets as hw
from hpwidgets.algorithms import make_algorithm
from hpwidgets.algorithms.hyperband import Hyperband, bracket_table
from hpwidgets.space import SearchSpace, budget, choice, uniform
from hpwidgets.trial import Report, TrialState


def cfg(p: Any) -> tuple:
    return (p["x"], p["act"])


# --- the bracket table ------------------------------------------------------------------------
def table(r: int, big_r: int, eta: float = 3) -> list[list[tuple[int, int]]]:
    return [[(rung.n, rung.budget) for rung in b.rungs] for b in bracket_table(r, big_r, eta)]


def test_bracket_table_r27_eta3_is_the_papers():
    assert table(1, 27) == [
        [(27, 1), (9, 3), (3, 9), (1, 27)],
        [(12, 3), (4, 9), (1, 27)],
        [(6, 9), (2, 27)],
        [(4, 27)],
    ]
    assert [b.s for b in bracket_table(1, 27, 3)] == [3, 2, 1, 0]


def test_bracket_table_r81_eta3_is_table_1_of_li_et_al():
    assert table(1, 81) == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)],
    ]


def test_bracket_table_edges_exact_arithmetic_and_validation():
    # log_3(243) is 4.999... in floats; exact arithmetic keeps s_max = 5.
    assert len(bracket_table(1, 243, 3)) == 6
    assert table(5, 5) == [[(1, 5)]]
    assert table(2, 100) == [[(27, 4), (9, 11), (3, 33), (1, 100)], [(12, 11), (4, 33), (1, 100)],
                             [(6, 33), (2, 100)], [(4, 100)]]
    for bad in [dict(min_budget=0, max_budget=9), dict(min_budget=9, max_budget=3),
                dict(min_budget=1, max_budget=9, eta=1), dict(min_budget=1.5, max_budget=9)]:
        with pytest.raises(ValueError):
            bracket_table(**bad)


# --- setup and options ------------------------------------------------------------------------
def test_needs_a_budget_dimension():
    hb = Hyperband()
    with pytest.raises(ValueError, match=r"hyperband needs a budget dimension such as hw\.budget\(1, 27\)"):
        hb.setup(SearchSpace({"x": uniform(0, 1)}))
    with pytest.raises(ValueError, match="searched dimension"):
        hb.setup(SearchSpace({"epochs": budget(1, 27)}))


def test_bad_options_are_refused_and_the_registry_builds_it():
    for kwargs in [dict(eta=1), dict(eta=True), dict(mode="fast"), dict(sampler="nope"),
                   dict(sampler="hyperband"), dict(sampler=Hyperband())]:
        with pytest.raises(ValueError):
            Hyperband(**kwargs)
    assert isinstance(make_algorithm("hyperband"), Hyperband)


def test_mode_auto_follows_parallel_and_the_sampler():
    for parallel, mode, sampler, expected in [
            (1, "auto", "random", "sync"), (4, "auto", "random", "async"), (4, "sync", "random", "sync"),
            (1, "async", "random", "async"), (1, "auto", "tpe", "sync"), (4, "auto", "tpe", "sync"),
            (4, "async", "tpe", "async")]:
        hb = Hyperband(mode=mode, sampler=sampler)
        hb.setup(space(), seed=0, parallel=parallel)
        assert hb.resolved_mode == expected


# --- synchronous Hyperband --------------------------------------------------------------------
def test_sync_runs_brackets_in_order_and_promotes_exactly_the_best():
    hb = Hyperband()
    hb.setup(space(), seed=0)
    asked = run_sync(hb, 69 + 27)
    assert [p["epochs"] for p in asked] == ([1] * 27 + [3] * 9 + [9] * 3 + [27] + [3] * 12 + [9] * 4 + [27]
                                            + [9] * 6 + [27] * 2 + [27] * 4 + [1] * 27)
    pos, seen = 0, set()
    for sizes in [(27, 9, 3, 1), (12, 4, 1), (6, 2), (4,), (27,)]:
        previous = None
        for n in sizes:
            rung, pos = asked[pos:pos + n], pos + n
            if previous is None:  # a bottom rung: configs never seen before
                assert not {cfg(p) for p in rung} & seen
            else:  # the best n of the rung below, best first
                assert [cfg(p) for p in rung] == [cfg(p) for p in sorted(previous, key=loss_of)[:n]]
            seen |= {cfg(p) for p in rung}
            previous = rung


def test_sync_values_are_plain_and_inside_the_space():
    hb = Hyperband()
    sp = space()
    hb.setup(sp, seed=1)
    for p in run_sync(hb, 69):
        assert list(p) == list(sp)
        assert type(p["x"]) is float and type(p["act"]) is str and type(p["epochs"]) is int
        assert sp.contains(p)


def test_same_seed_same_sequence():
    a, b, c = Hyperband(), Hyperband(), Hyperband()
    a.setup(space(), seed=7)
    b.setup(space(), seed=7)
    c.setup(space(), seed=8)
    assert run_sync(a, 80) == run_sync(b, 80) != run_sync(c, 80)


def test_sync_parallel_asks_start_the_next_bracket_instead_of_blocking():
    hb = Hyperband(mode="sync")
    hb.setup(space(9), seed=0, parallel=2)
    bottom = [hb.ask() for _ in range(9)]  # bracket s=2: 9 @ 1, 3 @ 3, 1 @ 9
    assert [p["epochs"] for p in bottom] == [1] * 9
    extra = hb.ask()  # rung 0 of s=2 is all out: bracket s=1 (5 @ 3) starts
    assert extra["epochs"] == 3 and cfg(extra) not in {cfg(p) for p in bottom}
    for number, p in enumerate(bottom):
        hb.tell(done(number, p))
    promoted = hb.ask()  # the oldest bracket goes first again
    assert promoted["epochs"] == 3 and cfg(promoted) == cfg(min(bottom, key=loss_of))


@pytest.mark.parametrize(("sampler", "mode"), [("random", "async"), ("tpe", "sync")])
def test_a_parallel_study_runs_to_its_exact_trial_count(sampler, mode):
    algorithm = Hyperband(sampler=sampler)
    study = hw.tune(lambda p: loss_of(p), space(9), algo=algorithm, trials=30, parallel=4, seed=0,
                    storage=None, progress=False)
    assert algorithm.resolved_mode == mode and len(study.trials) == 30
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    by_config: dict[tuple, list[int]] = {}
    for t in study.trials:
        by_config.setdefault(cfg(t.params), []).append(t.params["epochs"])
    assert any(budgets[:2] == [1, 3] for budgets in by_config.values())  # promotions happened
    assert max(len(b) for b in by_config.values()) <= 3  # at most once per rung: 1, 3, 9


def test_fail_is_never_promoted_and_shrinks_the_next_rung():
    hb = Hyperband()
    hb.setup(space(9), seed=0)
    bottom = [hb.ask() for _ in range(9)]
    for number, p in enumerate(bottom):  # only the last one succeeds
        hb.tell(done(number, p, state=TrialState.FAIL if number < 8 else TrialState.COMPLETE))
    second = hb.ask()
    assert cfg(second) == cfg(bottom[8]) and second["epochs"] == 3
    hb.tell(done(9, second))
    third = hb.ask()  # rung 1 held one config, so it alone goes on to rung 2
    assert cfg(third) == cfg(bottom[8]) and third["epochs"] == 9
    hb.tell(done(10, third))
    assert hb.ask()["epochs"] == 3  # bracket s=1 starts
    view = hb.rungs()[0]["rungs"]
    assert [e["promoted"] for e in view[0]["entries"]] == [False] * 8 + [True]
    assert [e["loss"] for e in view[0]["entries"]][:8] == [None] * 8


def test_pruned_ranks_by_its_last_report_and_maximize_flips_the_order():
    hb = Hyperband()
    hb.setup(space(9), seed=0, maximize=True)
    bottom = [hb.ask() for _ in range(9)]
    for number, p in enumerate(bottom):
        if number == 4:  # stopped early, but its last report is the best accuracy
            hb.tell(done(number, p, state=TrialState.PRUNED, reports=(Report(0, {"acc": 0.99}),)))
        else:
            hb.tell(done(number, p, value=0.5 + 0.01 * number))
    assert [cfg(hb.ask()) for _ in range(3)] == [cfg(bottom[4]), cfg(bottom[8]), cfg(bottom[7])]


# --- asynchronous (ASHA) ----------------------------------------------------------------------
def test_auto_switches_to_asha_when_the_study_sets_parallel_after_setup():
    hb = Hyperband()
    hb.setup(space(), seed=0)  # the study sets up first and assigns `parallel` when optimize starts
    stored = run_sync(hb, 9)
    hb.parallel = 4
    assert hb.resolved_mode == "async"
    p = hb.ask()  # the told history was replayed into ASHA's rungs: 9 results allow 3 promotions
    assert cfg(p) == cfg(min(stored, key=loss_of)) and p["epochs"] == 3
    assert len(hb.rungs()) == 4 and len(hb.rungs()[0]["rungs"][0]["entries"]) == 9


class AshaDriver:
    """Four trials in flight, finished in shuffled order; checks every promotion as it is asked."""

    def __init__(self, hb: Hyperband, seed: int) -> None:
        self.hb, self.rng = hb, random.Random(seed)
        self.told: list[tuple[dict[str, Any], float]] = []  # (params, loss) of finished trials
        self.first: dict[tuple, int] = {}  # config -> its bottom budget, which names its bracket
        self.budgets: dict[tuple, list[int]] = {}
        self.failed: set[tuple] = set()
        self.outstanding: list[dict[str, Any]] = []
        self.promotions = self.number = 0

    def ask(self) -> None:
        p = self.hb.ask()
        assert p["epochs"] not in self.budgets.get(cfg(p), [])  # never promoted twice
        assert cfg(p) not in self.failed
        if cfg(p) in self.budgets:  # a promotion: it must sit in the top third of its rung
            below = self.budgets[cfg(p)][-1]
            rung = [(q, v) for q, v in self.told if q["epochs"] == below and self.first[cfg(q)] == self.first[cfg(p)]]
            top = sorted(rung, key=lambda qv: qv[1])[: len(rung) // 3]
            assert cfg(p) in {cfg(q) for q, v in top if math.isfinite(v)}
            self.promotions += 1
        self.first.setdefault(cfg(p), p["epochs"])
        self.budgets.setdefault(cfg(p), []).append(p["epochs"])
        self.outstanding.append(p)

    def tell_some(self) -> None:
        self.rng.shuffle(self.outstanding)
        for _ in range(self.rng.randint(1, 3)):
            p = self.outstanding.pop()
            fail = p["x"] > 0.8
            self.failed |= {cfg(p)} if fail else set()
            state = TrialState.FAIL if fail else TrialState.COMPLETE
            self.hb.tell(done(self.number, p, state=state))
            self.told.append((p, math.inf if fail else loss_of(p)))
            self.number += 1


def test_asha_promotes_only_the_top_third_once_each_with_trials_outstanding():
    hb = Hyperband(eta=3, mode="async")
    hb.setup(space(), seed=3, parallel=4)
    driver = AshaDriver(hb, seed=1)
    while driver.number < 400:
        while len(driver.outstanding) < 4:
            driver.ask()
        driver.tell_some()
    assert driver.promotions > 20 and driver.failed
    assert {b for bs in driver.budgets.values() for b in bs[1:]} == {3, 9, 27}
    # every bracket got new configs, in proportion to its rung-0 size (27 : 12 : 6 : 4)
    starts = [sum(1 for b in driver.first.values() if b == r) for r in (1, 3, 9, 27)]
    assert starts[0] > starts[1] > starts[2] > starts[3] > 0


def test_asha_values_are_plain_and_budgets_are_ints_in_range():
    hb = Hyperband(mode="async")
    sp = space()
    hb.setup(sp, seed=0)
    for number in range(60):
        p = hb.ask()
        assert sp.contains(p) and type(p["epochs"]) is int and type(p["x"]) is float
        hb.tell(done(number, p))


def test_sync_a_withdrawn_ask_is_asked_again_and_the_bracket_completes():
    hb = Hyperband(mode="sync")
    hb.setup(space(9), seed=0)
    asked = run_sync(hb, 4)
    hb.withdraw(hb.ask())  # a fresh bottom-rung config: the next ask draws another in its place
    asked += run_sync(hb, 6, start=4)
    promotion = hb.ask()
    hb.withdraw(promotion)
    assert hb.ask() == promotion  # the same config, promoted again
    hb.tell(done(10, promotion))
    asked += [promotion, *run_sync(hb, 3, start=11)]
    assert [p["epochs"] for p in asked] == [1] * 9 + [3] * 3 + [9] + [3]  # then the next bracket


def test_asha_a_withdrawn_promotion_can_be_made_again():
    hb = Hyperband(eta=3, mode="async")
    hb.setup(space(9), seed=0, parallel=2)
    seen = {cfg(p) for p in run_sync(hb, 8)}
    promotion = hb.ask()
    while cfg(promotion) not in seen:  # a new config (s=0 starts at the top budget): tell it
        hb.tell(done(len(hb.history), promotion))
        seen.add(cfg(promotion))
        promotion = hb.ask()
    hb.withdraw(promotion)
    assert hb.ask() == promotion


# --- resume: trials told that were never asked ------------------------------------------------
def test_sync_resume_continues_the_interrupted_bracket():
    a = Hyperband()
    a.setup(space(), seed=5)
    history = [done(n, p) for n, p in enumerate(run_sync(a, 30))]  # 27 @ 1 and 3 of the 9 @ 3
    b = Hyperband()
    b.setup(space(), seed=99)
    for trial in history:
        b.tell(trial)
    for number in range(30, 40):  # the other 6 @ 3, then 3 @ 9 and 1 @ 27: same as the original
        pa, pb = a.ask(), b.ask()
        assert pa == pb
        a.tell(done(number, pa))
        b.tell(done(number, pb))
    assert b.ask()["epochs"] == 3  # then bracket s=2, as in the original
    assert [[e["trial"] for e in r["entries"]] for r in b.rungs()[0]["rungs"]] == \
           [[e["trial"] for e in r["entries"]] for r in a.rungs()[0]["rungs"]]


def test_sync_resume_with_foreign_full_budget_trials_keeps_the_schedule():
    hb = Hyperband(sampler="tpe")
    hb.setup(space(), seed=0)
    for n in range(5):  # e.g. from a random-search study that ran everything at the maximum
        hb.tell(done(n, {"x": n / 10, "act": "relu", "epochs": 27}))
    assert [len(t) for t in hb._sampler.told.values()] == [5]
    assert [p["epochs"] for p in run_sync(hb, 40, start=5)] == [1] * 27 + [3] * 9 + [9] * 3 + [27]


def test_async_resume_ranks_stored_results_and_does_not_repeat_promotions():
    hb = Hyperband(mode="async")
    hb.setup(space(), seed=0)
    stored = [{"x": x, "act": "relu", "epochs": 1} for x in (0.9, 0.1, 0.5, 0.2, 0.7, 0.3, 0.6, 0.4, 0.8)]
    for n, p in enumerate(stored):
        hb.tell(done(n, p, value=p["x"]))
    hb.tell(done(9, {**stored[1], "epochs": 3}, value=0.05))  # x=0.1 was promoted before the restart
    first, second = hb.ask(), hb.ask()
    assert (first["x"], first["epochs"]) == (0.2, 3) and (second["x"], second["epochs"]) == (0.3, 3)
    entries = hb.rungs()[0]["rungs"][0]["entries"]
    assert [e["promoted"] for e in entries[:9]] == [False, True, False, True, False, True, False, False, False]


# --- the space and the view ------------------------------------------------------------------
def test_narrowed_space_skips_promotions_outside_it_and_new_budget_rebuilds():
    hb = Hyperband()
    hb.setup(space(9), seed=0)
    bottom = [hb.ask() for _ in range(9)]
    for number, p in enumerate(bottom):
        hb.tell(done(number, p, value=p["x"]))  # the smallest x is the best
    ranked = sorted(bottom, key=lambda p: p["x"])
    narrowed = space(9).replace(x=uniform((ranked[0]["x"] + ranked[1]["x"]) / 2, 1))  # drops the best
    hb.set_space(narrowed)
    second, third = hb.ask(), hb.ask()
    assert [cfg(second), cfg(third)] == [cfg(ranked[1]), cfg(ranked[2])] and second["epochs"] == 3
    hb.tell(done(9, second, value=0.2))
    hb.tell(done(10, third, value=0.1))
    top = hb.ask()  # rung 1 held two, the better one goes on
    assert cfg(top) == cfg(ranked[2]) and top["epochs"] == 9
    assert [e["promoted"] for e in hb.rungs()[0]["rungs"][0]["entries"]].count(True) == 2
    hb.tell(done(11, top))
    for number in range(12, 30):
        p = hb.ask()
        assert narrowed.contains(p)
        hb.tell(done(number, p))
    wider = narrowed.replace(epochs=budget(1, 27))
    hb.set_space(wider)  # a new resource range: a new bracket table, history replayed
    assert len(hb.brackets) == 4 and wider.contains(hb.ask())
    with pytest.raises(ValueError, match="budget dimension"):
        hb.set_space(SearchSpace({"x": uniform(0, 1)}))


def test_identical_configs_in_a_small_choice_space():
    sp = SearchSpace({"act": choice("relu", "tanh"), "epochs": budget(1, 9)})
    for mode in ("sync", "async"):
        hb = Hyperband(mode=mode)
        hb.setup(sp, seed=0)
        asked = []
        for number in range(40):
            p = hb.ask()
            asked.append(p)
            hb.tell(done(number, p, value=0.1 * (p["act"] == "tanh") + 1 / p["epochs"]))
        assert all(sp.contains(p) for p in asked)
        if mode == "sync":  # duplicates do not confuse which pending evaluation a result belongs to
            assert [p["epochs"] for p in asked[:22]] == [1] * 9 + [3] * 3 + [9] + [3] * 5 + [9] + [9] * 3


def test_rungs_view_is_plain_data():
    hb = Hyperband()
    hb.setup(space(), seed=0)
    run_sync(hb, 40)
    hb.ask()  # one pending
    view = hb.rungs()
    json.dumps(view)
    first = view[0]
    assert first["bracket"] == 3 and first["done"] is True
    assert [(r["budget"], r["size"], len(r["entries"])) for r in first["rungs"]] == \
           [(1, 27, 27), (3, 9, 9), (9, 3, 3), (27, 1, 1)]
    assert sum(e["promoted"] for e in first["rungs"][0]["entries"]) == 9
    assert view[1]["rungs"][0]["entries"][0]["trial"] is None


def test_auto_mode_records_the_asha_it_ran_so_a_reload_replays_the_same_schedule(tmp_path):
    from hpwidgets.explain.hyperband import hyperband_view
    from hpwidgets.explain.study import _runs

    def cells(study):
        view = hyperband_view(study.trials, study.space, _runs(study), study.algorithm.eta)
        return [(c.bracket, c.rung, c.evaluated, c.promoted) for c in view.cells]

    space = {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}
    db = tmp_path / "hb.db"
    ran = hw.tune(lambda p: (p["x"] - 0.3) ** 2 + 1 / p["epochs"], space, algo="hyperband", trials=30, seed=0,
                  name="hb", storage=db, parallel=3, progress=False)
    loaded = hw.load_study("hb", db)
    assert ran.algorithm.resolved_mode == loaded.algorithm.resolved_mode == "async"
    assert loaded.algorithm.spec() == "hyperband(mode='async')" and cells(loaded) == cells(ran)
    hw.tune(lambda p: p["x"], space, algo="hyperband", trials=4, seed=0, name="seq", storage=db, progress=False)
    assert hw.load_study("seq", db).algorithm.spec() == "hyperband"  # one at a time: sync, as a reload picks


def test_naming_hyperband_again_keeps_the_asha_its_study_ran(tmp_path):
    space = {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}
    db = tmp_path / "hb.db"
    hw.tune(lambda p: p["x"], space, algo="hyperband", trials=12, seed=0, name="hb", storage=db, parallel=2,
            progress=False)
    again = hw.Study("hb", space, algo="hyperband", seed=0, storage=db)  # the same cell, run again
    assert again.algorithm.resolved_mode == "async" and again.algorithm.spec() == "hyperband(mode='async')"
    other = hw.Study("hb", space, algo=make_algorithm("hyperband(eta=2)"), seed=0, storage=db)  # new options: its own
    assert other.algorithm.resolved_mode == "sync" and other.algorithm.spec() == "hyperband(eta=2)"
