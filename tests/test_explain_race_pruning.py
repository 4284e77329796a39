"""Explainers of multi-study races and of pruning: pure data by hand, figures as JSON, live views."""

from __future__ import annotations

import json
import re

import pytest

import hpwidgets as hw
from hpwidgets import explain
from hpwidgets.explain.race import Lane
from hpwidgets.explain.race import equal_budget as race_equal_budget
from hpwidgets.explain.race import lane as race_lane
from hpwidgets.explain.race import summary as race_summary
from hpwidgets.explain.race import winner as race_winner
from hpwidgets.trial import FrozenTrial, Report, TrialState


def done(number: int, value: float | None, state: TrialState = TrialState.COMPLETE, **params: object) -> FrozenTrial:
    return FrozenTrial(number, state, params, value=value)


# --- the race -------------------------------------------------------------------------------------

def reported(number: int, value: float | None, state: TrialState, epochs: int, reports: int) -> FrozenTrial:
    """A trial asked for ``epochs`` that reported ``reports`` times (once an epoch) before it ended."""
    trail = tuple(Report(step, {"acc": 0.5}) for step in range(reports))
    return FrozenTrial(number, state, {"x": 0.1, "epochs": epochs}, value=value, reports=trail)


def test_a_lane_counts_budgets_and_a_stopped_trial_only_the_epochs_it_reported() -> None:
    trials = [reported(0, 0.6, TrialState.COMPLETE, 9, 9), reported(1, None, TrialState.PRUNED, 9, 3),
              reported(2, 0.9, TrialState.COMPLETE, 3, 3), reported(3, None, TrialState.FAIL, 9, 0)]
    lane = race_lane("asha", trials, "epochs", maximize=True)
    assert lane.spent == (9, 12, 15, 24)  # the failed trial's unknown cost counts as its budget
    assert lane.best == (0.6, 0.6, 0.9, 0.9) and lane.trials == 4 and lane.budget == 24
    per_batch = [reported(0, None, TrialState.PRUNED, 9, 40)]  # many reports a trial: capped at its budget
    assert race_lane("b", per_batch, "epochs").spent == (9,)
    assert race_lane("c", trials, None).spent == (1, 2, 3, 4)  # no budget dimension: trials


def race_of(name: str, runs: list[tuple[int, float]]) -> Lane:
    """A lane from (epochs, accuracy) of complete trials, in order."""
    trials = [reported(i, value, TrialState.COMPLETE, epochs, epochs) for i, (epochs, value) in enumerate(runs)]
    return race_lane(name, trials, "epochs", maximize=True)


def test_the_race_is_judged_within_the_budget_every_lane_spent() -> None:
    lanes = [race_of("slow", [(9, 0.5), (9, 0.95)]),  # spent 9, 18
             race_of("fast", [(3, 0.6), (3, 0.7), (3, 0.65), (9, 0.9)]),  # 3, 6, 9, 18
             race_of("long", [(9, 0.7), (9, 0.8), (9, 0.99), (9, 0.99)])]  # 9 ... 36: best in all, cut at 18
    assert race_equal_budget(lanes) == 18 and lanes[2].best_within(18) == 0.8
    first = race_winner(lanes, maximize=True)
    assert first is not None and first.name == "slow"
    text = race_summary(lanes, maximize=True, value_label="acc", unit="epochs").splitlines()
    assert text[0] == "slow won with acc 0.95 within 18 epochs, the budget every study spent"
    assert text[3].split() == ["long", "best", "0.8", "within", "18,", "0.99", "in", "all", "4", "trials", "36",
                               "epochs", "0.0", "s"]
    figure = explain.race_figure(lanes, "acc", "epochs")
    assert [trace["x"] for trace in figure["data"][:3]] == [[9, 18], [3, 6, 9, 18], [9, 18, 27, 36]]
    assert figure["layout"]["shapes"][0]["x0"] == 18
    json.dumps(figure)


def test_a_tie_at_equal_budget_goes_to_the_lane_that_got_there_with_less() -> None:
    lanes = [race_of("late", [(9, 0.5), (9, 0.9)]), race_of("early", [(9, 0.9), (9, 0.6)])]
    first = race_winner(lanes, maximize=True)
    assert first is not None and first.name == "early"
    assert race_winner([race_of("none", [])]) is None and race_summary([]) == "no study has a complete trial yet"


def test_a_race_between_a_pruned_and_a_plain_study_counts_the_pruned_epochs() -> None:
    def objective(params: dict, trial: hw.Trial) -> float:
        for epoch in range(1, params["epochs"] + 1):
            trial.report(epoch, loss=(params["x"] - 0.3) ** 2 + 1 / epoch)
        return (params["x"] - 0.3) ** 2 + 1 / params["epochs"]
    space = {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}
    studies = [hw.tune(objective, space, algo="random", trials=12, seed=0, storage=None, name=name,
                       progress=False, pruner=pruner) for name, pruner in (("plain", None), ("asha", "asha"))]
    race = explain.Race(studies, mode="static")
    plain, asha = race.lanes()
    epochs = sum(len(t.reports) for t in studies[1].trials)
    assert plain.budget == 12 * 9 and asha.budget == epochs < plain.budget


# --- pruning --------------------------------------------------------------------------------------

def curve_trial(number: int, state: TrialState, losses: list[float]) -> FrozenTrial:
    """A trial that reported ``losses`` at steps 1, 2, ... before it ended in ``state``."""
    trail = tuple(Report(step, {"loss": loss}) for step, loss in enumerate(losses, start=1))
    return FrozenTrial(number, state, {"x": 0.1}, value=losses[-1] if state is TrialState.COMPLETE else None,
                       reports=trail)


def test_the_pruning_view_counts_rungs_and_the_steps_saved_by_hand() -> None:
    trials = [curve_trial(0, TrialState.COMPLETE, [0.9, 0.5, 0.4, 0.3, 0.2, 0.2, 0.2, 0.2, 0.1]),
              curve_trial(1, TrialState.PRUNED, [1.5]), curve_trial(2, TrialState.PRUNED, [1.2, 1.0, 0.9]),
              curve_trial(3, TrialState.PRUNED, [0.8, 0.6, 0.5, 0.5]), curve_trial(4, TrialState.FAIL, [2.0])]
    view = explain.pruning_view(trials, "loss", "asha", rung_steps=[1, 3])
    assert [c.number for c in view.curves] == [0, 1, 2, 3, 4] and view.curves[2].steps == (1, 2, 3)
    assert view.rungs == (explain.RungCount(1, 5, 1), explain.RungCount(3, 3, 2))  # #1 at 1; #2 and #3 past 3
    assert (view.spent, view.full, view.stopped) == (18, 45, 3)  # 9+1+3+4+1 of 5 x 9
    text = explain.pruning_text(view)
    assert text == ("pruning explainer (asha): 5 trials, 3 stopped early (rung 1: 5 reached, 1 stopped; rung 3: 3 "
                    "reached, 2 stopped); 18 steps trained instead of 45 (40%) had every trial run to the end")


def test_the_steps_saved_count_steps_trained_not_reports_made() -> None:
    """A step is the epochs trained so far (trial.report): reports every 5 epochs are 5 epochs each."""
    def every_fifth(number: int, state: TrialState, last: int) -> FrozenTrial:
        trail = tuple(Report(step, {"loss": 1 / step}) for step in range(5, last + 1, 5))
        return FrozenTrial(number, state, {"x": 0.1}, value=1 / last if state is TrialState.COMPLETE else None,
                           reports=trail)
    trials = [every_fifth(0, TrialState.COMPLETE, 50), every_fifth(1, TrialState.PRUNED, 5),
              every_fifth(2, TrialState.PRUNED, 15)]
    view = explain.pruning_view(trials, "loss", "asha", rung_steps=[5, 15, 45])
    assert (view.spent, view.full) == (70, 150)  # 50 + 5 + 15 epochs of 3 x 50, not 14 reports of 30
    assert explain.pruning_text(view).endswith("; 70 steps trained instead of 150 (47%) had every trial run to "
                                               "the end")
    assert explain.pruning_figure(view)["layout"]["title"]["text"].endswith("70 of 150 steps trained")


def test_the_median_pruners_line_is_the_median_of_what_finished_trials_reported() -> None:
    trials = [curve_trial(0, TrialState.COMPLETE, [1.0, 0.5]), curve_trial(1, TrialState.COMPLETE, [3.0, 0.7]),
              curve_trial(2, TrialState.PRUNED, [2.0])]
    view = explain.pruning_view(trials, "loss", "median")
    assert view.median == ((1, 2.0), (2, 0.6)) and view.rungs == ()
    assert explain.pruning_view(trials, "loss", "asha").median == ()
    with pytest.raises(ValueError, match="no finished trial has reported"):
        explain.pruning_view([done(0, 1.0, x=0.1)], "loss")


def test_a_pruned_study_explained_live_shows_its_rungs_and_stopped_trials() -> None:
    def objective(params: dict, trial: hw.Trial) -> float:
        for epoch in range(1, 10):
            trial.report(epoch, loss=(params["x"] - 0.3) ** 2 + 1 / epoch)
        return (params["x"] - 0.3) ** 2 + 1 / 9
    study = hw.Study(space={"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}, algo="random", seed=0,
                     storage=None, pruner="asha")
    explainer = explain.Explainer(study, "pruner", mode="static")
    assert "no finished trial has reported" in explainer.text()
    study.optimize(objective, trials=15, progress=False)
    explainer.refresh()
    stopped = sum(t.state is TrialState.PRUNED for t in study.trials)
    assert stopped > 0 and explainer.text().startswith(f"pruning explainer (asha): 15 trials, {stopped} stopped early "
                                                       f"(rung 1: 15 reached")
    figure = explainer.figures()[0]
    assert [trace["name"] for trace in figure["data"]] == ["stopped early", "trained to the end", "where it stopped"]
    assert len(figure["data"][2]["x"]) == stopped and [s["x0"] for s in figure["layout"]["shapes"]] == [1, 3]
    json.dumps(figure)


@pytest.mark.parametrize("options", [{"param": "z"}, {"kind": "tpe", "pair": ("x", "q")}, {"pair": "xy"}])
def test_a_parameter_name_the_space_lacks_is_refused_at_once(options: dict) -> None:
    study = hw.Study(space={"x": hw.uniform(0, 1), "y": hw.uniform(0, 1)}, algo="tpe", seed=0, storage=None)
    message = "`pair` needs two parameter names" if options.get("pair") == "xy" else "is not a searched parameter"
    with pytest.raises(ValueError, match=message):
        explain.Explainer(study, mode="static", **options)


def test_a_cell_ending_in_show_draws_the_explainer_once(capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    shell.run_cell("import hpwidgets as hw\n"
                   "s = hw.Study(space={'x': hw.uniform(0, 1)}, algo='gp', seed=0, storage=None)\n"
                   "s.optimize(lambda p: p['x'], trials=4, progress=False)")
    capsys.readouterr()
    shown = [shell.run_cell(code, store_history=True)  # a cell number per cell, as in a notebook
             for code in ("hw.explain.show(s, mode='static')", "e = hw.explain.show(s, mode='static')")]
    assert all(result.success for result in shown)
    assert capsys.readouterr().out.count("GP explainer (4 trials") == 2  # once per cell
    shell.run_cell("e", store_history=True)  # a later cell that asks for it draws it again
    assert capsys.readouterr().out.count("GP explainer (4 trials") == 1


@pytest.mark.parametrize(("other", "what"), [
    ({"maximize": True}, "direction 'maximize' where study 'first' has 'minimize'"),
    ({"minimize": "loss"}, "target 'loss' where study 'first' has None"),
    ({"space": {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 3)}}, "budget dimension 'epochs' where study 'first'"),
])
def test_a_race_refuses_studies_of_another_problem(other: dict, what: str) -> None:
    first = hw.Study("first", {"x": hw.uniform(0, 1)}, "random", storage=None)
    odd = hw.Study("odd", other.pop("space", {"x": hw.uniform(0, 1)}), "random", storage=None, **other)
    refusal = f"a race compares studies of one problem, but study 'odd' has {what}"
    with pytest.raises(ValueError, match=re.escape(refusal)):
        explain.Race([first, odd], mode="static")
