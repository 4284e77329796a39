"""The pruners' rules on their own, then inside studies (threads, processes, resume)."""

from __future__ import annotations

import linecache
import math
import threading
import time
from pathlib import Path

import pytest

import hpwidgets as hw
from hpwidgets.algorithms.pruners import ASHAPruner, MedianPruner, make_pruner
from hpwidgets.trial import Report

EPOCHS = 27


def asha(space: dict | None = None, **options: int) -> ASHAPruner:
    pruner = ASHAPruner(**options)
    pruner.setup(hw.SearchSpace.coerce(space or {"x": hw.uniform(0, 1)}))
    return pruner


def curve(params: dict, trial: hw.Trial) -> float:
    """A learning curve whose level is set by x (best at x = 0.3) and which improves per epoch,
    so a config's rank is the same at every step: pruning must keep the better configs."""
    gap = (params["x"] - 0.3) ** 2
    for epoch in range(1, EPOCHS + 1):
        trial.report(epoch, loss=gap + 1.0 / epoch)
    return gap + 1.0 / EPOCHS


def test_a_trial_goes_on_only_in_the_best_third_of_its_rung() -> None:
    pruner = asha()
    assert not pruner.should_prune(0, 1, 0.5)  # alone at the rung: nothing to compare with
    assert pruner.should_prune(1, 1, 0.6)  # 2 at the rung, keep ceil(2/3) = 1: the better one only
    assert not pruner.should_prune(2, 1, 0.4)  # the new best goes on
    assert not pruner.should_prune(3, 1, 0.45)  # 4 at the rung, keep ceil(4/3) = 2: 0.4 and 0.45
    assert pruner.rung_values(0) == {0: 0.5, 1: 0.6, 2: 0.4, 3: 0.45}


def test_reports_between_rungs_are_never_judged() -> None:
    pruner = asha()
    pruner.should_prune(0, 1, 0.1)
    assert pruner.should_prune(1, 1, 0.9)
    pruner = asha()
    pruner.should_prune(0, 1, 0.1)
    assert not pruner.should_prune(1, 0, 0.9)  # step 0: before the first rung
    assert not pruner.should_prune(0, 2, 0.1) and not pruner.should_prune(0, 2, 0.1)  # no rung at 2
    assert pruner.should_prune(1, 1, 0.9)  # only now does trial 1 reach rung 0
    assert pruner.rung_steps() == [1]


def test_a_trial_that_skips_rungs_enters_each_and_is_judged_at_the_highest() -> None:
    pruner = asha()
    for step in (1, 3, 9):
        pruner.should_prune(0, step, 0.2)
    assert not pruner.should_prune(1, 10, 0.1)  # from rung 0 straight past 1 and 2, best at each
    assert pruner.rung_steps() == [1, 3, 9]
    assert [pruner.rung_values(k)[1] for k in range(3)] == [0.1, 0.1, 0.1]


def test_rungs_stop_below_the_budget_maximum_or_max_step() -> None:
    pruner = asha({"x": hw.uniform(0, 1), "epochs": hw.budget(1, 27)})
    for step in range(1, 28):
        pruner.should_prune(0, step, 1.0)
    assert pruner.rung_steps() == [1, 3, 9]  # a trial at step 27 has finished: no rung there
    pruner = asha(min_step=2, eta=2, max_step=16)
    for step in range(1, 40):
        pruner.should_prune(0, step, 1.0)
    assert pruner.rung_steps() == [2, 4, 8]


def test_a_narrowed_budget_moves_the_last_rung_down() -> None:
    study = hw.Study(space={"x": hw.uniform(0, 1), "epochs": hw.budget(1, 27)}, algo="random", pruner="asha")
    study.set_space({"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)})  # a slider edit
    for step in range(1, 10):
        study.pruner.should_prune(0, step, 0.1)
    assert study.pruner.rung_steps() == [1, 3]  # no rung at 9: a trial there has finished


def test_the_first_trial_to_complete_leaves_no_rung_at_its_last_step() -> None:
    """Before any trial completed, the first one entered rungs up to its end (9): once its end is
    known, no trial is judged there, so no rung is shown there (the pruning explainer's rungs)."""
    pruner = asha()
    reports = tuple(Report(step, {"loss": 1.0 / step}) for step in range(1, 10))
    for report in reports:
        assert not pruner.should_prune(0, report.step, report.metrics["loss"])
    pruner.tell(hw.FrozenTrial(0, hw.TrialState.COMPLETE, {"x": 0.5}, value=1 / 9, reports=reports))
    assert pruner.rung_steps() == [1, 3] and pruner.rung_values(2) == {}
    assert pruner.rung_values(1) == {0: 1 / 3}
    for step in range(1, 10):  # judged at 1 and 3 only: the worst value at 9 still goes on
        assert not pruner.should_prune(1, step, 5.0 if step == 9 else 0.5 / step)
    assert pruner.rung_steps() == [1, 3] and pruner.rung_values(1) == {0: 1 / 3, 1: 0.5 / 3}


def test_a_diverged_report_ranks_last() -> None:
    pruner = asha()
    pruner.should_prune(0, 1, 5.0)
    assert pruner.should_prune(1, 1, math.nan)
    assert pruner.rung_values(0)[1] == math.inf


def test_told_trials_are_replayed_in_the_study_direction_and_target() -> None:
    pruner = ASHAPruner()
    pruner.setup(hw.SearchSpace.coerce({"x": hw.uniform(0, 1)}), maximize=True, target="accuracy")
    reports = (Report(1, {"loss": 0.1, "accuracy": 0.9}), Report(3, {"loss": 0.05, "accuracy": 0.95}))
    pruner.tell(hw.FrozenTrial(0, hw.TrialState.PRUNED, {"x": 0.5}, reports=reports))
    assert pruner.rung_values(0) == {0: -0.9} and pruner.rung_values(1) == {0: -0.95}
    assert pruner.should_prune(1, 1, -0.5)  # accuracy 0.5 against 0.9
    assert not pruner.should_prune(2, 1, -0.99)


def test_reports_without_the_target_are_named_once_not_ignored_silently() -> None:
    def wrong_metric(params: dict, trial: hw.Trial) -> dict:
        for step in range(1, 4):
            trial.report(step, accuracy=params["x"])
        return {"loss": params["x"]}
    with pytest.warns(UserWarning, match=r"pruner 'asha': trial 0 reported \['accuracy'\] but not the target "
                                         r"'loss'") as caught:
        hw.tune(wrong_metric, {"x": hw.uniform(0, 1)}, algo="random", trials=3, seed=0, storage=None,
                progress=False, pruner="asha", minimize="loss")
    assert len([w for w in caught if "pruner" in str(w.message)]) == 1
    assert warned_at(caught, "pruner").startswith("hw.tune(wrong_metric,")  # judged as trials finish


def test_an_objective_that_cannot_report_is_named_once_per_run() -> None:
    with pytest.warns(UserWarning, match="pruner 'median' stops trials from what they report, but the objective "
                                         "takes no `trial` argument") as caught:
        hw.tune(lambda p: p["x"], {"x": hw.uniform(0, 1)}, algo="random", trials=4, seed=0, storage=None,
                progress=False, pruner="median")
    assert len([w for w in caught if "pruner" in str(w.message)]) == 1
    assert warned_at(caught, "pruner").startswith("hw.tune(lambda p: p[\"x\"]")  # not hpwidgets/__init__.py


def warned_at(caught: pytest.WarningsRecorder, text: str) -> str:
    """The source line a warning points at, asserting it is in this file."""
    [warning] = [w for w in caught if text in str(w.message)]
    assert warning.filename == __file__
    return linecache.getline(warning.filename, warning.lineno).strip()


def test_an_objective_that_can_report_gets_no_such_warning(recwarn: pytest.WarningsRecorder) -> None:
    hw.tune(lambda p, trial: p["x"], {"x": hw.uniform(0, 1)}, algo="random", trials=4, seed=0, storage=None,
            progress=False, pruner="median")
    assert not [w for w in recwarn if "pruner" in str(w.message)]


@pytest.mark.parametrize(("options", "message"), [
    ({"eta": 1}, r"`eta >= 2` must hold \(an int\), but got eta=1"),
    ({"min_step": 0}, "but got min_step=0"),
    ({"min_step": 1.5}, "but got min_step=1.5"),
    ({"max_step": "27"}, "but got max_step='27'"),
])
def test_bad_options_are_named(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ASHAPruner(**options)
    with pytest.raises(ValueError, match=r"`n_warmup_steps >= 0` must hold \(an int\), but got n_warmup_steps=-1"):
        MedianPruner(n_warmup_steps=-1)


def finished(number: int, losses: dict[int, float]) -> hw.FrozenTrial:
    reports = tuple(Report(step, {"loss": loss}) for step, loss in losses.items())
    return hw.FrozenTrial(number, hw.TrialState.COMPLETE, {"x": 0.5}, value=reports[-1].metrics["loss"],
                          reports=reports)


def test_median_stops_a_trial_whose_best_so_far_is_worse_than_the_median() -> None:
    pruner = MedianPruner(n_startup_trials=3)
    pruner.setup(hw.SearchSpace.coerce({"x": hw.uniform(0, 1)}))
    for number, loss in enumerate((0.2, 0.4, 0.6)):
        assert not pruner.should_prune(number, 1, 9.0)  # too few rivals yet
        pruner.tell(finished(number, {1: loss, 2: loss / 2}))  # the told reports replace the running ones
    assert pruner.should_prune(10, 1, 0.5)  # median at step 1: 0.4
    assert not pruner.should_prune(11, 1, 0.3)
    assert not pruner.should_prune(10, 3, 9.0)  # nobody else reported step 3
    assert pruner.should_prune(13, 2, 0.21)  # median at step 2: 0.2
    assert not pruner.should_prune(12, 1, 0.15) and not pruner.should_prune(12, 2, 0.9)  # its best so far: 0.15


def test_median_waits_for_the_warm_up_steps() -> None:
    pruner = MedianPruner(n_startup_trials=1, n_warmup_steps=2)
    pruner.setup(hw.SearchSpace.coerce({"x": hw.uniform(0, 1)}))
    pruner.tell(finished(0, {1: 0.1, 2: 0.1}))
    assert not pruner.should_prune(1, 1, 0.9)  # step 1 < n_warmup_steps
    assert pruner.should_prune(1, 2, 0.9)


def test_median_counts_the_reports_of_trials_still_running() -> None:
    pruner = MedianPruner(n_startup_trials=1)
    pruner.setup(hw.SearchSpace.coerce({"x": hw.uniform(0, 1)}))
    pruner.tell(finished(0, {1: 0.5}))
    assert not pruner.should_prune(1, 1, 0.4)  # the finished trial alone: median 0.5
    for number in (2, 3):  # two survivors still running, both better at step 1
        assert not pruner.should_prune(number, 1, 0.1)
    assert pruner.should_prune(4, 1, 0.3)  # others at step 1: 0.5, 0.4, 0.1, 0.1 -> median 0.25
    assert not pruner.should_prune(2, 1, 0.1)  # a trial is never its own rival


def test_median_start_up_counts_running_trials_with_a_report() -> None:
    pruner = MedianPruner(n_startup_trials=2)
    pruner.setup(hw.SearchSpace.coerce({"x": hw.uniform(0, 1)}))
    assert not pruner.should_prune(0, 1, 0.1)
    assert not pruner.should_prune(1, 1, 0.2)  # one rival so far: too few
    assert pruner.should_prune(2, 1, 0.9)  # two rivals still running, none finished: judged
    pruner.tell(finished(0, {1: 0.1}))
    pruner.tell(finished(1, {1: 0.2}))
    assert not pruner.should_prune(3, 2, 0.5)  # nobody reported step 2


def test_make_pruner_names_a_bad_choice_and_refuses_hyperband() -> None:
    assert make_pruner(None, "tpe") is None and make_pruner("none", "tpe") is None
    assert isinstance(make_pruner("asha", "gp"), ASHAPruner)
    assert isinstance(make_pruner("median", "random"), MedianPruner)
    with pytest.raises(ValueError, match="unknown pruner 'percentile'"):
        make_pruner("percentile", "tpe")
    with pytest.raises(ValueError, match="but got 3"):
        make_pruner(3, "tpe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not combine with algo='hyperband'"):
        hw.Study(space={"x": hw.uniform(0, 1)}, algo="hyperband", pruner="asha")
    study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="random", pruner="asha")
    with pytest.raises(ValueError, match="does not combine"):
        study.set_algorithm("hyperband")
    study.set_algorithm("tpe")
    assert study.algorithm.name == "tpe" and study.pruner is not None


@pytest.mark.parametrize("pruner", ["asha", "median"])
@pytest.mark.parametrize("algo", ["random", "tpe", "gp"])
def test_a_pruned_study_keeps_the_best_config_and_trains_less(algo: str, pruner: str) -> None:
    study = hw.tune(curve, {"x": hw.uniform(0, 1)}, algo=algo, trials=30, seed=3, storage=None,
                    progress=False, pruner=pruner)
    trials = study.trials
    pruned = [t for t in trials if t.state is hw.TrialState.PRUNED]
    assert len(pruned) >= 5 and sum(len(t.reports) for t in trials) < 0.8 * 30 * EPOCHS
    gap = {t.number: (t.params["x"] - 0.3) ** 2 for t in trials}
    assert study.best_trial.number == min(gap, key=gap.get)  # the best config trained to the end
    plain = hw.tune(curve, {"x": hw.uniform(0, 1)}, algo=algo, trials=30, seed=3, storage=None, progress=False)
    assert all(t.state is hw.TrialState.COMPLETE for t in plain.trials)


def test_asha_stops_at_rungs_only_and_trains_under_half_the_epochs() -> None:
    study = hw.tune(curve, {"x": hw.uniform(0, 1)}, algo="random", trials=30, seed=3, storage=None,
                    progress=False, pruner="asha")
    pruned = [t for t in study.trials if t.state is hw.TrialState.PRUNED]
    assert {t.reports[-1].step for t in pruned} <= {1, 3, 9} and len(pruned) >= 15
    assert sum(len(t.reports) for t in study.trials) < 0.5 * 30 * EPOCHS


@pytest.mark.parametrize("pruner", ["asha", "median"])
def test_maximize_prunes_the_low_values(pruner: str) -> None:
    def accuracy(params: dict, trial: hw.Trial) -> dict:
        for epoch in range(1, 10):
            trial.report(epoch, accuracy=params["x"] * (1 - 1 / (epoch + 1)))
        return {"accuracy": params["x"]}
    study = hw.tune(accuracy, {"x": hw.uniform(0, 1)}, algo="random", trials=20, seed=0, storage=None,
                    progress=False, pruner=pruner, maximize="accuracy")
    by_state = {state: [t.params["x"] for t in study.trials if t.state is state] for state in hw.TrialState}
    assert study.best_params["x"] == max(t.params["x"] for t in study.trials)  # minimising would stop it
    assert len(by_state[hw.TrialState.PRUNED]) >= 5
    assert min(by_state[hw.TrialState.PRUNED]) < min(by_state[hw.TrialState.COMPLETE])


@pytest.mark.parametrize("pruner", ["asha", "median"])
def test_a_resumed_study_judges_new_trials_against_the_stored_ones(tmp_path: Path, pruner: str) -> None:
    db = tmp_path / "s.db"
    hw.tune(curve, {"x": hw.uniform(0, 1)}, algo="random", trials=12, seed=0, name="s", storage=db,
            progress=False, pruner=pruner)
    study = hw.load_study("s", db, pruner=pruner)  # a fresh pruner would let the first new trials run
    study.set_space({"x": hw.uniform(0.99, 1.0)})  # every new config is worse than all stored ones
    study.optimize(curve, trials=14, progress=False)
    new = [t for t in study.trials if t.number >= 12]
    assert [t.state for t in new] == [hw.TrialState.PRUNED] * 2
    assert all(t.reports[-1].step == 1 for t in new)


@pytest.mark.parametrize("pruner", ["asha", "median"])
def test_a_pruner_set_between_runs_judges_against_the_earlier_trials(pruner: str) -> None:
    study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="random", seed=0, storage=None)
    study.optimize(curve, trials=12, progress=False)
    study.set_pruner(pruner)  # told the 12 trials' reports: the first new ones are judged at once
    study.set_space({"x": hw.uniform(0.99, 1.0)})
    study.optimize(curve, trials=14, progress=False)
    assert [t.state for t in study.trials[12:]] == [hw.TrialState.PRUNED] * 2
    study.set_pruner(None)  # and taken away again: every new trial trains to the end
    study.optimize(curve, trials=16, progress=False)
    assert [t.state for t in study.trials[14:]] == [hw.TrialState.COMPLETE] * 2


def test_set_pruner_refuses_hyperband_a_bad_name_and_a_running_study() -> None:
    study = hw.Study(space={"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}, algo="hyperband", storage=None)
    with pytest.raises(ValueError, match="does not combine with algo='hyperband'"):
        study.set_pruner("asha")
    with pytest.raises(ValueError, match="unknown pruner 'fast'"):
        study.set_pruner("fast")
    assert study.pruner is None
    release = threading.Event()
    study.optimize(lambda p: release.wait(5) and 0.0, trials=1, background=True, progress=False)
    try:
        with pytest.raises(RuntimeError, match="stop it before changing the pruner"):
            study.set_pruner("none")
    finally:
        release.set()
        study.wait()


def slow_curve(params: dict, trial: hw.Trial) -> float:
    """``curve`` at 20 ms an epoch, so reports reach the study while the trial still runs."""
    gap = (params["x"] - 0.3) ** 2
    for epoch in range(1, EPOCHS + 1):
        time.sleep(0.02)
        trial.report(epoch, loss=gap + 1.0 / epoch)
    return gap + 1.0 / EPOCHS


def test_processes_prune_from_live_reports() -> None:
    study = hw.tune(slow_curve, {"x": hw.uniform(0, 1)}, algo="random", trials=12, seed=1, storage=None,
                    progress=False, pruner="asha", parallel=2, executor="processes")
    pruned = [t for t in study.trials if t.state is hw.TrialState.PRUNED]
    assert pruned and all(len(t.reports) < EPOCHS for t in pruned)
