"""Algorithm specs: a built-in algorithm's name and constructor options as one string that a
study stores, so a resume (``algo=None``) rebuilds the same algorithm, not its defaults."""

from __future__ import annotations

import numpy as np
import pytest

import hpwidgets as hw
from hpwidgets.algorithms import RandomSearch, make_algorithm
from hpwidgets.algorithms._gp_model import Priors
from hpwidgets.algorithms.gp_native import NativeGP
from hpwidgets.algorithms.hyperband import Hyperband
from hpwidgets.algorithms.tpe_native import NativeTPE
from hpwidgets.store import Store

SPACE = {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}


@pytest.mark.parametrize(("algorithm", "spec"), [
    (RandomSearch(), "random"),
    (Hyperband(), "hyperband"),
    (Hyperband(2, sampler="tpe"), "hyperband(eta=2, sampler='tpe')"),  # positional options get their names
    (NativeTPE(width_step=0.1), "tpe(width_step=0.1)"),
    (NativeGP(fidelity=True, noisy_start=None), "gp(fidelity=True, noisy_start=None)"),
])
def test_a_spec_names_the_options_and_rebuilds_the_same_algorithm(algorithm, spec):
    assert algorithm.spec() == spec
    rebuilt = make_algorithm(spec)
    assert type(rebuilt) is type(algorithm) and rebuilt.spec() == spec


def test_numpy_options_are_written_as_python_literals():
    tpe = NativeTPE(width_step=np.float64(0.1), n_startup_trials=np.int64(8), pending_best_only=np.bool_(True))
    assert tpe.spec() == "tpe(n_startup_trials=8, pending_best_only=True, width_step=0.1)"  # not np.float64(0.1)
    assert make_algorithm(tpe.spec()).spec() == tpe.spec()
    assert Hyperband(eta=np.int64(2)).spec() == "hyperband(eta=2)"
    for bad in (1, "3", True, float("inf")):
        with pytest.raises(ValueError, match="`eta` must be a number > 1"):
            Hyperband(eta=bad)


def test_options_that_are_objects_cannot_be_written_down():
    assert Hyperband(sampler=NativeTPE()).spec() == "hyperband(...)"
    assert NativeGP(priors=Priors()).spec() == "gp(...)"

    class Mine(RandomSearch):  # the user's class under a built-in name: not ours to rebuild
        name = "random"

    assert Mine().spec() == "random(...)"
    with pytest.raises(ValueError, match=r"'gp\(\.\.\.\)' was built from options that cannot be written down"):
        make_algorithm("gp(...)")


@pytest.mark.parametrize(("spec", "problem"), [
    ("hyperband(eta=2", "is not name(option=value, ...)"),
    ("hyperband(2)", "only keyword options"),
    ("hyperband(eta=len)", "is not name(option=value, ...)"),  # names are never evaluated
    ("tpe(nope=1)", "unexpected keyword argument 'nope'"),
    ("annealing(t=1)", "unknown algorithm 'annealing(t=1)'"),
])
def test_a_bad_spec_is_refused_with_its_text(spec, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        make_algorithm(spec)


def test_a_resumed_study_keeps_its_algorithms_options(tmp_path):
    db = tmp_path / "s.db"
    hw.tune(lambda p: p["x"], SPACE, algo=Hyperband(eta=2), trials=4, seed=0, name="h", storage=db, progress=False)
    assert Store(db).get_study("h").algo == "hyperband(eta=2)"
    resumed = hw.load_study("h", db)
    assert resumed.algorithm.spec() == "hyperband(eta=2)" and resumed.algorithm._eta == 2  # not eta=3
    again = hw.tune(lambda p: p["x"], SPACE, trials=6, seed=0, name="h", storage=db, progress=False)
    assert again.algorithm.spec() == "hyperband(eta=2)" and len(again.trials) == 6


def test_a_study_whose_options_could_not_be_stored_asks_for_the_object(tmp_path):
    db = tmp_path / "s.db"
    hw.tune(lambda p: p["x"], SPACE, algo=NativeGP(priors=Priors()), trials=2, seed=0, name="g", storage=db,
            progress=False)
    with pytest.raises(ValueError, match=r"last ran algorithm 'gp\(\.\.\.\)'.*pass algo="):
        hw.load_study("g", db)
    assert len(hw.load_study("g", db, algo=NativeGP(priors=Priors())).trials) == 2
