"""NativeTPE: the conformance rules, the good/bad split, the Parzen densities, parallel asks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import test_conformance as conf

import hpwidgets.space as hs
from hpwidgets.algorithms._encode import UnitEncoder
from hpwidgets.algorithms.tpe_native import NativeTPE, Parzen, age_weights, rank_weights, split_below
from hpwidgets.trial import FrozenTrial, TrialState


@pytest.mark.parametrize("check", conf.OBJECT_CHECKS, ids=lambda f: f.__name__)
def test_conformance(check: Callable[[Any], None]) -> None:
    check(NativeTPE())


def test_conformance_on_a_driven_run() -> None:
    driven = ("native-tpe", conf.drive(conf.new(NativeTPE()), 30))
    conf.test_suggestions_respect_bounds_steps_choices_and_types(driven)
    conf.test_suggestions_are_keyed_by_name_and_choices_are_values(driven)


def test_fresh_objects_with_one_seed_agree_and_other_seeds_differ() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        return conf.drive(conf.new(NativeTPE(), seed=seed), 20)

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_split_keeps_the_smallest_losses_stably() -> None:
    losses = np.array([5.0, 1.0, 3.0, 1.0, 4.0] * 4)  # n=20: ceil(0.1 * 20) = 2 good
    assert split_below(losses, 0.1, 25).tolist() == [1, 3]
    assert len(split_below(np.arange(1000.0), 0.1, 25)) == 25  # the cap
    assert split_below(np.array([2.0]), 0.1, 25).tolist() == [0]


def test_old_trials_fade_only_once_there_are_many() -> None:
    assert age_weights(25).tolist() == [1.0] * 25
    w = age_weights(30)
    assert w[0] == pytest.approx(1 / 30) and np.all(np.diff(w[:5]) > 0) and np.all(w[5:] == 1.0)


def _encoder() -> UnitEncoder:
    return UnitEncoder(hs.SearchSpace({"x": hs.uniform(0, 1), "c": hs.choice("a", "b", "c")}))


def test_parzen_is_a_normalised_density() -> None:
    enc = _encoder()
    points = np.array([[0.02, 0], [0.5, 1], [0.97, 1]])
    parzen = Parzen(points, np.ones(3), enc, prior_weight=1.0, bandwidth_factor=0.2, min_bandwidth=0.01)
    grid = np.linspace(0, 1, 20001)
    total = 0.0
    for c in range(3):
        rows = np.column_stack([grid, np.full_like(grid, c)])
        total += np.trapezoid(np.exp(parzen.log_pdf(rows)), grid)
    assert total == pytest.approx(1.0, abs=1e-3)


def test_parzen_samples_stay_in_range_and_follow_the_points() -> None:
    enc = _encoder()
    points = np.array([[0.2, 2.0]] * 9)
    parzen = Parzen(points, np.ones(9), enc, prior_weight=1.0, bandwidth_factor=0.05, min_bandwidth=0.01)
    rows = parzen.sample(np.random.default_rng(0), 4000)
    assert rows[:, 0].min() >= 0 and rows[:, 0].max() <= 1
    assert set(np.unique(rows[:, 1])) <= {0.0, 1.0, 2.0}
    near = np.abs(rows[:, 0] - 0.2) < 0.15
    assert near.mean() > 0.8 and (rows[:, 1] == 2).mean() > 0.8


def _told(algo: NativeTPE, xs: list[float], fn: Callable[[float], float]) -> None:
    for number, x in enumerate(xs):
        algo.tell(FrozenTrial(number, TrialState.COMPLETE, {"x": x}, value=fn(x)))


def test_suggestions_concentrate_where_the_history_was_good() -> None:
    algo = NativeTPE()
    algo.setup(hs.SearchSpace({"x": hs.uniform(0, 10)}), seed=0)
    _told(algo, [i / 3 for i in range(31)], lambda x: (x - 7) ** 2)
    xs = []
    for _ in range(20):
        xs.append(algo.ask()["x"])
        algo.tell(FrozenTrial(100 + len(xs), TrialState.COMPLETE, {"x": xs[-1]}, value=(xs[-1] - 7) ** 2))
    assert np.median(np.abs(np.array(xs) - 7)) < 0.5, xs


def test_maximize_turns_the_split_around() -> None:
    algo = NativeTPE()
    algo.setup(hs.SearchSpace({"x": hs.uniform(0, 10)}), seed=0, maximize=True)
    _told(algo, [i / 3 for i in range(31)], lambda x: -((x - 2) ** 2))
    xs = [algo.ask()["x"] for _ in range(10)]
    assert np.median(np.abs(np.array(xs) - 2)) < 1.0, xs


def test_pending_asks_are_tracked_until_told() -> None:
    space = hs.SearchSpace({"x": hs.uniform(0, 10)})
    algo = NativeTPE()
    algo.setup(space, seed=0, parallel=4)
    _told(algo, [i / 3 for i in range(31)], lambda x: (x - 7) ** 2)
    pending = [algo.ask() for _ in range(4)]
    assert len({p["x"] for p in pending}) == 4
    assert len(algo._pending) == 4
    algo.tell(FrozenTrial(99, TrialState.COMPLETE, pending[0], value=1.0))
    assert len(algo._pending) == 3


def _batch(seed: int, **kwargs: float) -> np.ndarray:
    """Four asks pending at once after 40 random trials of a bowl centred at (7, 3)."""
    algo = NativeTPE(**kwargs)
    algo.setup(hs.SearchSpace({"x": hs.uniform(0, 10), "y": hs.uniform(0, 10)}), seed=seed, parallel=4)
    rng = np.random.default_rng(0)
    for number in range(40):
        x, y = rng.uniform(0, 10, 2)
        algo.tell(FrozenTrial(number, TrialState.COMPLETE, {"x": x, "y": y}, value=(x - 7) ** 2 + (y - 3) ** 2))
    return np.array([[p["x"], p["y"]] for p in (algo.ask() for _ in range(4))])


def _closest_pair(points: np.ndarray) -> float:
    dist = np.sqrt(((points[:, None] - points[None]) ** 2).sum(axis=-1))
    return float(dist[np.triu_indices(len(points), 1)].min())


def test_the_liar_spreads_a_batch_around_the_optimum_deterministically() -> None:
    # The liar alone: with pending_centroid=1 the asks made while others run share the first's centre.
    batches = [_batch(seed, pending_centroid=1) for seed in range(5)]
    assert np.array_equal(batches[0], _batch(0, pending_centroid=1))  # same seed, same batch
    for points in batches:  # spread apart, yet all in the good region
        assert _closest_pair(points) > 0.3, points  # 0.31-0.68 here; 0.04-0.14 without the liar
        assert np.abs(points - [7.0, 3.0]).max() < 2.5, points
    without = [_closest_pair(_batch(seed, liar_weight=0.0)) for seed in range(10)]
    default = [_closest_pair(_batch(seed)) for seed in range(10)]  # 0.17-0.71, mean 0.50
    assert np.mean(default) > 2 * np.mean(without), (default, without)


def test_the_start_up_design_counts_pending_asks() -> None:
    algo = NativeTPE(n_startup_trials=10)
    algo.setup(hs.SearchSpace({"x": hs.uniform(0, 10)}), seed=0, parallel=4)
    asked = [algo.ask() for _ in range(10)]
    assert algo._startup_count() == 7  # only parallel - 1 = 3 pending asks count: stale ones don't
    _told(algo, [p["x"] for p in asked[:7]], lambda x: (x - 7) ** 2)
    assert len(algo._pending) == 3 and algo._startup_count() == 7  # 7 told + 3 running = 10
    prior, bandwidth, _ = algo._shape(bool(algo._unreported()))
    assert prior == algo.pending_prior_weight and bandwidth == pytest.approx(1.2 * algo.bandwidth_factor)
    _told(algo, [p["x"] for p in asked[7:]], lambda x: (x - 7) ** 2)
    assert algo._startup_count() == 10
    assert algo._shape(bool(algo._unreported())) == (algo.prior_weight, algo.bandwidth_factor, algo.min_bandwidth)


def test_converges_on_a_small_mixed_problem() -> None:
    space = hs.SearchSpace({"x": hs.uniform(-3, 3), "n": hs.integer(0, 10), "c": hs.choice("a", "b")})

    def loss(p: dict[str, Any]) -> float:
        return p["x"] ** 2 + 0.1 * (p["n"] - 4) ** 2 + (0 if p["c"] == "b" else 1)

    algo = NativeTPE()
    algo.setup(space, seed=0)
    best = math.inf
    for number in range(60):
        params = algo.ask()
        best = min(best, loss(params))
        algo.tell(FrozenTrial(number, TrialState.COMPLETE, params, value=loss(params)))
    assert best < 0.15, best


def test_under_a_pruner_running_trials_are_not_lied_about() -> None:
    def four_asks(**options: Any) -> list[float]:
        pruning = options.pop("pruning", False)
        algo = NativeTPE(**options)
        algo.setup(hs.SearchSpace({"x": hs.uniform(0, 10)}), seed=0, parallel=4)
        algo.pruning = pruning
        _told(algo, [i / 3 for i in range(31)], lambda x: (x - 7) ** 2)
        return [algo.ask()["x"] for _ in range(4)]  # asks 2-4 made with earlier ones running

    # The survivors of rungs are no liar's "bad", nor is the best alone the good density.
    assert four_asks(pruning=True) == four_asks(liar_weight=0.0, pending_best_only=False)
    assert four_asks(pruning=True) != four_asks()


def test_a_study_tells_its_algorithm_whether_a_pruner_runs() -> None:
    import hpwidgets as hw
    for pruner, expected in ((None, False), ("asha", True), ("median", True)):
        study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="tpe", pruner=pruner)
        study.optimize(lambda p, trial: p["x"], trials=1, progress=False)  # one that can report
        assert study.algorithm.pruning is expected


def test_rank_weights_fall_geometrically_from_the_best_and_average_one() -> None:
    w = rank_weights(5, 0.01)
    assert w.mean() == pytest.approx(1.0)
    assert w[-1] / w[0] == pytest.approx(0.01) and w[1] / w[0] == pytest.approx(0.01 ** 0.25)
    assert rank_weights(1, 0.01).tolist() == [1.0] and rank_weights(0, 0.01).size == 0
    assert rank_weights(4, 1.0).tolist() == [1.0] * 4  # worst_good_weight=1: all alike, as before
    with pytest.raises(ValueError, match="worst_good_weight=0"):
        NativeTPE(worst_good_weight=0)


def _two_dips(x: float) -> float:
    return min((x - 2) ** 2, 0.001 + (x - 8) ** 2)


# The best point at 2, the next five around 8, and 16 spread out: gamma 0.25 makes those six good.
_BEST_AT_2_FIVE_NEAR_8 = [2.0, 7.8, 7.9, 8.0, 8.1, 8.2,
                          *(float(x) for x in np.linspace(0, 10, 24) if min(abs(x - 2), abs(x - 8)) > 0.7)]


def test_rank_weights_draw_the_suggestions_to_the_best_good_point() -> None:
    """The best point at 2, the next five around 8: with equal weights five of six good kernels
    sit at 8 and so do most asks; with rank weights most asks refine the best point."""
    def asks(worst: float) -> np.ndarray:
        out = []
        for seed in range(40):  # one ask per seed, nothing pending
            algo = NativeTPE(worst_good_weight=worst, gamma=0.25)  # 6 of the 22 are good
            algo.setup(hs.SearchSpace({"x": hs.uniform(0, 10)}), seed=seed)
            _told(algo, _BEST_AT_2_FIVE_NEAR_8, _two_dips)
            out.append(algo.ask()["x"])
        return np.array(out)

    near_best = [float(np.mean(np.abs(asks(w) - 2) < 1)) for w in (0.01, 1.0)]
    assert near_best[0] > 0.8 and near_best[0] > near_best[1] + 0.2, near_best


def test_while_asks_run_the_good_density_is_the_best_point_alone() -> None:
    """Equal rank weights put five of six good kernels at 8; while asks run, the asks still
    refine the best point at 2, as the sequential run's next asks would."""
    def asks_while_running(best_only: bool) -> np.ndarray:
        out = []
        for seed in range(30):
            algo = NativeTPE(worst_good_weight=1.0, gamma=0.25, pending_best_only=best_only)
            algo.setup(hs.SearchSpace({"x": hs.uniform(0, 10)}), seed=seed, parallel=4)
            _told(algo, _BEST_AT_2_FIVE_NEAR_8, _two_dips)
            algo.ask()  # nothing running yet: the rule is not in play
            out += [algo.ask()["x"] for _ in range(3)]
        return np.array(out)

    near_best = [float(np.mean(np.abs(asks_while_running(b) - 2) < 1)) for b in (True, False)]
    assert near_best[0] > 0.9 and near_best[1] < 0.5, near_best


def test_good_weights_by_rank_or_all_on_the_best_while_asks_run() -> None:
    algo = NativeTPE()
    assert algo._good_weights(4, asks_running=True).tolist() == [4.0, 0.0, 0.0, 0.0]
    assert np.allclose(algo._good_weights(4, asks_running=False), rank_weights(4, algo.worst_good_weight))
    assert algo._good_weights(1, asks_running=True).tolist() == [1.0]
    assert np.allclose(NativeTPE(pending_best_only=False)._good_weights(4, True), rank_weights(4, 0.01))


def test_while_asks_run_the_best_kernel_sits_at_the_weighted_mean_of_the_best_three() -> None:
    is_cat = np.array([False, False, True])
    rows = np.array([[0.2, 0.5, 1], [0.3, 0.5, 0], [0.5, 0.8, 2], [0.9, 0.1, 0]], dtype=float)  # best first
    out = NativeTPE()._recombined(rows, is_cat)
    assert out[0, :2] == pytest.approx([(3 * 0.2 + 2 * 0.3 + 0.5) / 6, (3 * 0.5 + 2 * 0.5 + 0.8) / 6])
    assert out[0, 2] == 1  # a choice stays the best row's
    assert np.array_equal(out[1:], rows[1:]) and rows[0, 0] == 0.2  # only the best row moves, in a copy
    # Two good rows so far: weights 3 and 2, as the first two of three.
    assert NativeTPE()._recombined(rows[:2], is_cat)[0, 0] == pytest.approx((3 * 0.2 + 2 * 0.3) / 5)
    assert np.array_equal(NativeTPE(pending_centroid=1)._recombined(rows, is_cat), rows)
    assert np.array_equal(NativeTPE(pending_best_only=False)._recombined(rows, is_cat), rows)
    with pytest.raises(ValueError, match="pending_centroid=0"):
        NativeTPE(pending_centroid=0)


def test_good_rows_far_from_the_best_stay_out_of_the_mean() -> None:
    """Branin's three minima: the mean of points in two basins lies in neither."""
    is_cat = np.array([False, False])
    rows = np.array([[0.2, 0.2], [0.25, 0.2], [0.2, 0.75]])  # the third is 0.55 away in y
    assert NativeTPE()._recombined(rows, is_cat)[0] == pytest.approx([(3 * 0.2 + 2 * 0.25) / 5, 0.2])


def test_the_mean_moves_the_asks_made_while_others_run_but_not_the_first() -> None:
    """The good points (3 of 30) at 4.0, 4.6 and 5.2, best first: while asks run they are
    drawn around the weighted mean, 4.4, instead of the best point."""
    good = {4.0: 0.0, 4.6: 1.0, 5.2: 2.0}
    rest = [float(x) for x in np.linspace(0.25, 9.75, 27)]

    def asks(centroid: int) -> tuple[float, np.ndarray]:
        first, running = [], []
        for seed in range(20):
            algo = NativeTPE(pending_centroid=centroid)
            algo.setup(hs.SearchSpace({"x": hs.uniform(0, 10)}), seed=seed, parallel=4)
            _told(algo, [*good, *rest], lambda x: good.get(x, 3.0 + abs(x - 4.6)))
            first.append(algo.ask()["x"])  # nothing running yet
            running += [algo.ask()["x"] for _ in range(3)]
        return float(np.mean(first)), np.array(running)

    first_1, running_1 = asks(1)
    first_3, running_3 = asks(3)
    assert first_1 == first_3  # a sequential ask is unchanged
    assert abs(np.median(running_1) - 4.0) < 0.1, np.median(running_1)  # 3.99 here
    assert abs(np.median(running_3) - 4.4) < 0.1, np.median(running_3)  # 4.45 here


def test_near_misses_around_the_best_point_do_not_drive_the_search_away() -> None:
    """A bowl being refined: the best point, three good ones beside it, 30 near misses around
    it and 7 trials elsewhere. With the plain ratio l/g the near misses make g so large there
    that candidates from the prior, far from every trial, win; the damped g keeps refining."""
    rng = np.random.default_rng(0)
    best = np.array([0.3, 0.6])
    history = [best, *(best + 0.01 * rng.standard_normal((3, 2))), *(best + 0.06 * rng.standard_normal((30, 2))),
               *rng.random((7, 2))]

    def distances(power: float) -> np.ndarray:
        out = []
        for seed in range(40):
            algo = NativeTPE(bad_density_power=power)
            algo.setup(hs.SearchSpace({"x": hs.uniform(0, 1), "y": hs.uniform(0, 1)}), seed=seed)
            for number, row in enumerate(history):
                params = {"x": float(row[0]), "y": float(row[1])}
                algo.tell(FrozenTrial(number, TrialState.COMPLETE, params, value=float(np.sum((row - best) ** 2))))
            ask = algo.ask()
            out.append(math.hypot(ask["x"] - best[0], ask["y"] - best[1]))
        return np.array(out)

    near_default, near_plain = (float(np.mean(distances(p) < 0.1)) for p in (NativeTPE().bad_density_power, 1.0))
    assert near_default > 0.9 and near_plain < 0.3, (near_default, near_plain)
    with pytest.raises(ValueError, match=r"bad_density_power=1\.5"):
        NativeTPE(bad_density_power=1.5)


def _stepping(width_step: float = 0.1, **options: Any) -> NativeTPE:
    algo = NativeTPE(width_step=width_step, n_startup_trials=10, **options)
    algo.setup(hs.SearchSpace({"x": hs.uniform(0, 1), "n": hs.integer(0, 9), "c": hs.choice("a", "b")}), seed=0)
    return algo


def test_the_success_rule_narrows_after_misses_and_widens_after_hits_up_to_one() -> None:
    algo, start = _stepping(), [5.0] * 10  # the start-up trials never count
    misses = np.array([*start, *[6.0] * 20])
    # Continuous x scales; the integer keeps Scott's width (snapping would freeze it).
    assert algo._width_scale(misses, 0) == pytest.approx([math.exp(-0.1 / 4 * 20), 1.0])
    hits_after = np.array([*misses, 4.0, 3.0, 2.0])
    assert algo._width_scale(hits_after, 0)[0] == pytest.approx(math.exp(-0.5 + 0.3))
    hits_first = np.array([*start, 4.0, 3.0, 2.0, 6.0])  # a hit streak cannot widen past Scott's rule
    assert algo._width_scale(hits_first, 0)[0] == pytest.approx(math.exp(-0.025))


def test_a_hit_is_judged_against_the_best_told_before_the_ask() -> None:
    losses = np.array([5.0] * 10 + [3.0, 4.0])  # 4.0 beat all it could know of with one ask running
    assert _stepping()._width_scale(losses, 0)[0] == pytest.approx(math.exp(-0.025))
    assert _stepping()._width_scale(losses, 1)[0] == pytest.approx(1.0)


def test_the_success_rule_is_off_by_default_during_start_up_and_under_a_pruner() -> None:
    losses = np.array([5.0] * 10 + [6.0] * 20)
    assert _stepping(0.0)._width_scale(losses, 0) is None
    assert _stepping()._width_scale(losses[:10], 0) is None
    pruned = _stepping()
    pruned.pruning = True
    assert pruned._width_scale(losses, 0) is None
    with pytest.raises(ValueError, match=r"width_step=-0\.1"):
        NativeTPE(width_step=-0.1)


def test_parzen_width_scale_narrows_the_data_kernels_to_a_floor_not_the_prior() -> None:
    enc = _encoder()
    points = np.array([[0.2, 0.0], [0.4, 1.0]])
    plain = Parzen(points, np.ones(2), enc, prior_weight=1.0, bandwidth_factor=0.05, min_bandwidth=0.01)
    scaled = Parzen(points, np.ones(2), enc, 1.0, 0.05, 0.01, width_scale=np.array([0.5]))
    tiny = Parzen(points, np.ones(2), enc, 1.0, 0.05, 0.01, width_scale=np.array([1e-6]))
    assert scaled.sigma[:2, 0] == pytest.approx(0.5 * plain.sigma[:2, 0])
    assert tiny.sigma[:2, 0] == pytest.approx([1e-3, 1e-3])  # WIDTH_FLOOR
    assert scaled.sigma[2, 0] == tiny.sigma[2, 0] == plain.sigma[2, 0] == 1.0


def test_on_an_exact_bowl_the_success_rule_refines_further() -> None:
    def best_after_80(width_step: float, seed: int) -> float:
        algo = NativeTPE(width_step=width_step)
        algo.setup(hs.SearchSpace({"x": hs.uniform(-5, 5), "y": hs.uniform(-5, 5)}), seed=seed)
        best = math.inf
        for number in range(80):
            p = algo.ask()
            value = (p["x"] - 1.3) ** 2 + (p["y"] + 0.7) ** 2
            best = min(best, value)
            algo.tell(FrozenTrial(number, TrialState.COMPLETE, p, value=value))
        return best

    plain = np.array([best_after_80(0.0, seed) for seed in range(10)])  # median 6e-4 here
    stepped = np.array([best_after_80(0.1, seed) for seed in range(10)])  # median 5e-5, better in 10/10
    assert np.median(stepped) * 5 < np.median(plain), (stepped, plain)
    assert (stepped < plain).sum() >= 8, (stepped, plain)
