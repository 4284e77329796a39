"""Explainers: pure data checked against hand-computed cases, figures as JSON, the live view."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import hpwidgets as hw
from hpwidgets import explain
from hpwidgets.explain import gp as gpx
from hpwidgets.trial import FrozenTrial, TrialState


def done(number: int, value: float | None, state: TrialState = TrialState.COMPLETE, **params: object) -> FrozenTrial:
    return FrozenTrial(number, state, params, value=value)


# --- GP -------------------------------------------------------------------------------------------

def test_matern52_is_one_at_zero_and_the_closed_form_at_one_lengthscale() -> None:
    a, b = np.array([[0.2]]), np.array([[0.7]])
    assert explain.matern52(a, a, 0.5)[0, 0] == pytest.approx(1.0)
    r5 = math.sqrt(5)
    assert explain.matern52(a, b, 0.5)[0, 0] == pytest.approx((1 + r5 + 5 / 3) * math.exp(-r5))


def test_posterior_of_one_point_by_hand() -> None:
    X, y, x = np.array([[0.4]]), np.array([2.0]), np.array([[0.7]])
    mean, std = explain.posterior(X, y, x, lengthscale=0.5, noise=0.0)
    k = (1 + math.sqrt(5) * 0.6 + 5 / 3 * 0.36) * math.exp(-math.sqrt(5) * 0.6)  # r = 0.3 / 0.5
    variance = 4.0  # y'C⁻¹y / n with C = [1]
    assert mean[0] == pytest.approx(k * 2.0)
    assert std[0] == pytest.approx(math.sqrt(variance * (1 - k**2)))


def test_posterior_on_three_points_interpolates_them_with_no_uncertainty() -> None:
    X = np.array([[0.1], [0.5], [0.9]])
    y = np.array([1.0, -2.0, 0.5])
    mean, std = explain.posterior(X, y, X, lengthscale=0.3, noise=1e-10)
    assert mean == pytest.approx(y, abs=1e-6)
    assert np.all(std < 1e-4)
    _, between = explain.posterior(X, y, np.array([[0.3], [0.7]]), lengthscale=0.3, noise=1e-10)
    assert np.all(between > 0.05)


def test_expected_improvement_by_hand() -> None:
    ei = explain.expected_improvement(np.array([0.0, 1.0, 3.0]), np.array([1.0, 0.0, 0.0]), best=2.0)
    # N(0, 1) with best 2: 2 Φ(2) + φ(2); no uncertainty: max(best - mean, 0).
    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)
    assert ei[0] == pytest.approx(2 * 0.9772498680518208 + phi2)
    assert list(ei[1:]) == [1.0, 0.0]


def test_fit_lengthscale_picks_a_grid_value_longer_for_smooth_data() -> None:
    X = np.linspace(0, 1, 8)[:, None]
    smooth = explain.fit_lengthscale(X, X[:, 0] - X[:, 0].mean())
    wiggly = explain.fit_lengthscale(X, np.sign(np.sin(np.arange(8) * 2.5)))
    assert smooth in gpx.LENGTHSCALES and wiggly in gpx.LENGTHSCALES and smooth > wiggly


def test_gp_slice_goes_through_the_trials_of_a_one_parameter_space() -> None:
    space = hw.SearchSpace({"n": hw.int(0, 10)})
    trials = [done(0, 0.2, n=2), done(1, 0.9, n=5), done(2, 0.4, n=8), done(3, None, TrialState.FAIL, n=1)]
    cut = explain.gp_slice(trials, space, "n", maximize=True)
    assert cut.xs == tuple(range(11)) and cut.scale == "linear"
    for n, value in ((2, 0.2), (5, 0.9), (8, 0.4)):
        assert cut.mean[n] == pytest.approx(value, abs=1e-3)  # values as the user sees them, not negated
        assert cut.std[n] < 1e-2
    assert cut.incumbent == {"n": 5} and len(cut.observed) == 3  # the failed trial has no value
    assert cut.next_x == cut.xs[int(np.argmax(cut.acquisition))]


def test_gp_slice_holds_other_parameters_at_the_incumbent() -> None:
    space = hw.SearchSpace({"x": hw.uniform(0, 1), "c": hw.choice("a", "b"), "ep": hw.budget(1, 9)})
    trials = [done(0, 3.0, x=0.1, c="a", ep=9), done(1, 1.0, x=0.6, c="b", ep=9), done(2, 2.0, x=0.9, c="a", ep=9)]
    cut = explain.gp_slice(trials, space, "c")
    assert cut.scale == "category" and cut.xs == ("a", "b") and cut.incumbent["x"] == 0.6


def test_gp_map_is_a_grid_with_the_ei_peak_on_it() -> None:
    space = hw.SearchSpace({"x": hw.uniform(0, 1), "lr": hw.loguniform(1e-3, 1e-1)})
    trials = [done(i, (x - 0.3) ** 2 + math.log10(lr) ** 2, x=x, lr=lr)
              for i, (x, lr) in enumerate([(0.1, 1e-3), (0.5, 1e-2), (0.9, 0.05), (0.3, 0.02)])]
    grid = explain.gp_map(trials, space, ("x", "lr"), n=12)
    assert len(grid.mean) == len(grid.ys) == 12 and all(len(row) == len(grid.xs) == 12 for row in grid.mean)
    assert grid.scales == ("linear", "log") and grid.next_xy[0] in grid.xs and grid.next_xy[1] in grid.ys
    ei = np.array(grid.acquisition)
    i, j = np.unravel_index(np.argmax(ei), ei.shape)
    assert grid.next_xy == (grid.xs[j], grid.ys[i])


def test_gp_needs_a_scored_trial() -> None:
    space = hw.SearchSpace({"x": hw.uniform(0, 1)})
    with pytest.raises(ValueError, match="no trial with a value"):
        explain.gp_slice([done(0, None, TrialState.FAIL, x=0.5)], space, "x")


def test_a_diverged_loss_leaves_every_gp_number_finite_and_the_rest_readable() -> None:
    space = hw.SearchSpace({"x": hw.uniform(0, 1), "y": hw.uniform(0, 1)})
    losses = [0.5, 0.3, 1e200, 0.2, 0.4, 0.25]
    trials = [done(i, v, x=i / 6, y=(i * 0.37) % 1) for i, v in enumerate(losses)]
    cut, grid = explain.gp_slice(trials, space, "x"), explain.gp_map(trials, space, ("x", "y"), n=6)
    numbers = [*cut.mean, *cut.std, *cut.acquisition, *np.ravel(grid.mean), *np.ravel(grid.std),
               *np.ravel(grid.acquisition)]
    assert all(math.isfinite(v) for v in numbers)  # was: NaN everywhere (the losses' std overflowed)
    json.dumps([explain.gp_slice_figure(cut), explain.gp_map_figure(grid)], allow_nan=False)
    line = explain.gp_slice([done(i, v, n=i) for i, v in enumerate(losses)], hw.SearchSpace({"n": hw.int(0, 5)}), "n")
    for n in (0, 1, 3, 4, 5):  # the ordinary losses stay apart, not squeezed flat by the outlier
        assert line.mean[n] == pytest.approx(losses[n], abs=1e-3)
    y, mu, sd = gpx.standardised(np.array([1e300, -1e300, 0.0]))  # no fence can help: the scale must
    assert np.all(np.isfinite(y)) and math.isfinite(mu) and math.isfinite(sd)


def test_the_gp_is_fitted_on_the_best_and_the_latest_trials_beyond_its_limit() -> None:
    scored = [explain.common.Scored(i, {"x": i / 999}, float((i * 7919) % 1000), 0.0) for i in range(1000)]
    fit = gpx.fit_subset(scored, limit=10)
    best = sorted(scored, key=lambda s: s.loss)[:5]
    assert [s.number for s in fit] == sorted({s.number for s in best} | {995, 996, 997, 998, 999})
    assert gpx.fit_subset(scored[:10], limit=10) == scored[:10]
    space = hw.SearchSpace({"x": hw.uniform(0, 1)})
    trials = [done(i, (x - 0.3) ** 2, x=x) for i, x in enumerate(np.linspace(0, 1, gpx.FIT_LIMIT + 50))]
    cut = explain.gp_slice(trials, space, "x")
    assert cut.total == len(trials) and len(cut.observed) == gpx.FIT_LIMIT  # only the trials fitted are drawn
    title = explain.figures.gp_slice_figure(cut)["layout"]["title"]["text"]
    assert title.endswith(f" · fitted on {gpx.FIT_LIMIT} of {len(trials)} trials (best and latest)")


# --- TPE ------------------------------------------------------------------------------------------

def test_n_good_follows_hyperopt_sqrt_rule_and_the_linear_rule() -> None:
    assert explain.n_good(16, 0.25) == 1 and explain.n_good(17, 0.25) == 2  # ceil(0.25 * 4.12)
    assert explain.n_good(10, 0.25, "linear") == 3 and explain.n_good(1000, 0.25, "linear", cap=25) == 25
    with pytest.raises(ValueError, match="rule"):
        explain.n_good(10, 0.25, "cubic")


def test_split_on_a_fixed_history() -> None:
    losses = [0.5, 0.1, 0.4, 0.2, 0.3]
    assert explain.split(losses, 0.25, "linear") == ([1, 3], [0, 2, 4])  # ceil(1.25) = 2 good
    assert explain.split(losses, 0.25, "sqrt") == ([1], [0, 2, 3, 4])  # ceil(0.25 * √5) = 1 good
    space = hw.SearchSpace({"x": hw.uniform(0, 1)})
    trials = [done(i, -loss, x=0.1 * i) for i, loss in enumerate(losses)]  # maximised values
    the_split = explain.tpe_split(trials, space, maximize=True, gamma=0.25, rule="linear")
    assert (the_split.good, the_split.bad, the_split.threshold) == ((1, 3), (0, 2, 4), -0.2)


def test_adaptive_parzen_widths_by_hand() -> None:
    weights, centres, widths = explain.adaptive_parzen([0.9, 0.2])
    # Sorted with the prior: 0.2, 0.5, 0.9; gaps 0.3 and 0.4; the prior keeps width 1.
    assert list(centres) == [0.2, 0.5, 0.9]
    assert list(widths) == pytest.approx([0.3, 1.0, 0.4])
    assert list(weights) == pytest.approx([1 / 3] * 3)
    _, centres, widths = explain.adaptive_parzen([0.7], prior_weight=2.0)
    assert list(centres) == [0.5, 0.7] and list(widths) == [1.0, 0.5]


def test_parzen_density_integrates_to_one_on_the_unit_interval() -> None:
    xs = np.linspace(0, 1, 20001)
    pdf = explain.parzen_pdf(xs, [0.05, 0.1, 0.8])
    assert float(np.sum((pdf[1:] + pdf[:-1]) / 2 * np.diff(xs))) == pytest.approx(1.0, abs=1e-4)


def test_categorical_pmf_adds_the_prior_weight_to_each_count() -> None:
    assert list(explain.categorical_pmf([0, 0, 2], 3)) == pytest.approx([3 / 6, 1 / 6, 2 / 6])


def test_tpe_densities_favour_where_the_good_trials_are() -> None:
    space = hw.SearchSpace({"x": hw.uniform(0, 1), "c": hw.choice("a", "b")})
    xs = [0.05, 0.1, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    trials = [done(i, x, x=x, c="a" if i < 2 else "b") for i, x in enumerate(xs)]  # minimised: small x is good
    the_split, (dx, dc) = explain.tpe_densities(trials, space, gamma=0.5, rule="linear")
    assert the_split.good == (0, 1, 2, 3)
    assert dx.next_x < 0.3 and dx.good_x == (0.05, 0.1, 0.5, 0.6)
    assert dx.next_x == dx.xs[int(np.argmax(dx.ratio))]
    assert dc.xs == ("a", "b") and dc.next_x == "a" and sum(dc.good_pdf) == pytest.approx(1.0)


def test_tpe_settings_read_the_algorithm() -> None:
    from hpwidgets.algorithms.tpe_native import NativeTPE
    native = explain.tpe.tpe_settings(NativeTPE(gamma=0.1, gamma_cap=7))
    assert native["rule"] == "linear" and native["worst_good_weight"] == 0.01 and native["bad_density_power"] == 0.8
    assert explain.tpe.tpe_settings(object()) == {"gamma": 0.25, "rule": "sqrt", "cap": 25, "prior_weight": 1.0,
                                                  "worst_good_weight": 1.0, "bad_density_power": 1.0}


def test_the_ratio_drawn_is_the_one_the_native_tpe_maximises() -> None:
    """With g damped (l / g ** 0.8) the curve is l / g ** 0.8 point by point, and the figure and the
    one-line text name it; hyperopt's TPE keeps the plain l(x) / g(x)."""
    space = hw.SearchSpace({"x": hw.uniform(0, 1)})
    trials = [done(i, loss, x=x) for i, (x, loss) in enumerate([(0.2, 0.0), (0.25, 0.1), (0.6, 1.0), (0.9, 2.0)])]
    _, (plain,) = explain.tpe_densities(trials, space, gamma=0.5, rule="linear")
    _, (damped,) = explain.tpe_densities(trials, space, gamma=0.5, rule="linear", bad_density_power=0.8)
    assert np.allclose(damped.ratio, np.array(plain.good_pdf) / np.array(plain.bad_pdf) ** 0.8)
    assert explain.tpe.ratio_label(damped.power) == "l(x) / g(x)^0.8"
    assert explain.tpe.ratio_label(plain.power) == "l(x) / g(x)"
    figure = explain.tpe_figure(*explain.tpe_densities(trials, space, bad_density_power=0.8))
    assert "l(x) / g(x)^0.8" in {trace["name"] for trace in figure["data"]}


def test_rank_weights_pull_l_towards_the_best_good_trial() -> None:
    """The best trial at x = 0.9, three slightly worse ones near 0.1: weighed alike, l(x) peaks
    near 0.1; weighed by rank as the native TPE does, near 0.9."""
    space = hw.SearchSpace({"x": hw.uniform(0, 1)})
    points = [(0.9, 0.0), (0.1, 0.1), (0.12, 0.2), (0.08, 0.3)] + [(x, 5.0) for x in (0.3, 0.4, 0.5, 0.6)]
    trials = [done(i, loss, x=x) for i, (x, loss) in enumerate(points)]
    peaks = []
    for worst in (1.0, 0.01):
        _, (dx,) = explain.tpe_densities(trials, space, gamma=0.5, rule="linear", worst_good_weight=worst)
        peaks.append(dx.xs[int(np.argmax(dx.good_pdf))])
    assert peaks[0] < 0.2 and peaks[1] > 0.8, peaks


def test_weighted_parzen_by_hand() -> None:
    weights, centres, _ = explain.adaptive_parzen([0.9, 0.2], prior_weight=1.0, weights=[3.0, 1.0])
    assert list(centres) == [0.2, 0.5, 0.9] and list(weights) == pytest.approx([1 / 5, 1 / 5, 3 / 5])
    pmf = explain.categorical_pmf([0, 2], 3, 1.0, weights=[2.0, 0.5])
    assert list(pmf) == pytest.approx([3 / 5.5, 1 / 5.5, 1.5 / 5.5])


# --- Hyperband ------------------------------------------------------------------------------------

def test_bracket_table_for_eta_3_and_r_27() -> None:
    cells = [(c.bracket, c.rung, c.n, c.budget) for c in explain.plan(1, 27, 3)]
    assert cells == [(3, 0, 27, 1), (3, 1, 9, 3), (3, 2, 3, 9), (3, 3, 1, 27),
                     (2, 0, 12, 3), (2, 1, 4, 9), (2, 2, 1, 27),
                     (1, 0, 6, 9), (1, 1, 2, 27),
                     (0, 0, 4, 27)]
    assert explain.bracket_cost(1, 27, 3) == {3: 108, 2: 99, 1: 108, 0: 108}


def test_trials_within_a_budget_follow_the_brackets_in_order() -> None:
    assert explain.trials_within(27, 1, 9, 3) == 9 + 3 + 1  # bracket s=2: 9 × 1, 3 × 3, 1 × 9
    assert explain.trials_within(108, 1, 27, 3) == 27 + 9 + 3 + 1
    assert explain.trials_within(26, 1, 9, 3) == 12


def test_tally_counts_promoted_and_stopped_only_in_closed_rungs() -> None:
    def entry(trial: int | None, promoted: bool) -> dict:
        return {"trial": trial, "promoted": promoted}

    runs = [{"bracket": 1, "done": False, "rungs": [
        {"rung": 0, "entries": [entry(0, True), entry(1, False), entry(2, False)]},
        {"rung": 1, "entries": [entry(None, False)]}]}]
    cells = explain.tally(explain.plan(1, 3, 3), runs)
    rung0, rung1 = cells[0], cells[1]
    assert (rung0.evaluated, rung0.promoted, rung0.stopped) == (3, 1, 2)
    assert (rung1.evaluated, rung1.running, rung1.stopped) == (0, 1, 0)


def test_hyperband_view_of_a_real_search() -> None:
    space = {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}
    study = hw.tune(lambda p: (p["x"] - 0.3) ** 2 / p["epochs"], space, algo="hyperband", trials=13, seed=0,
                    storage=None, progress=False)
    view = explain.hyperband_view(study.trials, study.space, study.algorithm.rungs())
    first = [c for c in view.cells if c.bracket == 2]
    assert [(c.evaluated, c.promoted, c.stopped) for c in first] == [(9, 3, 6), (3, 1, 2), (1, 0, 0)]
    assert view.spent == 9 * 1 + 3 * 3 + 1 * 9 and view.random_configs == pytest.approx(27 / 9)
    assert view.configs == 9


# --- figures, the study-level entry points and the live view --------------------------------------

def test_figures_are_json_and_escape_user_names() -> None:
    name = "<script>alert(1)</script>"
    space = hw.SearchSpace({name: hw.uniform(0, 1), "c": hw.choice("<b>", "ok")})
    trials = [done(i, x, **{name: x, "c": "<b>" if i % 2 else "ok"}) for i, x in enumerate([0.1, 0.5, 0.9])]
    figures = [explain.gp_slice_figure(explain.gp_slice(trials, space, name)),
               explain.gp_map_figure(explain.gp_map(trials, space, (name, "c"), n=5)),
               explain.tpe_figure(*explain.tpe_densities(trials, space))]
    text = json.dumps(figures, allow_nan=False)
    assert "<script>" not in text and "<b>" not in text and "&lt;script&gt;" in text


def test_study_explainers_pick_the_algorithm_and_wait_for_trials() -> None:
    study = hw.Study(space={"x": hw.uniform(0, 1), "y": hw.uniform(0, 1)}, algo="tpe", seed=0, storage=None)
    assert explain.resolve_kind(study) == "tpe"
    [empty] = explain.explain_figures(study)
    assert empty["data"] == [] and "no trial" in empty["layout"]["annotations"][0]["text"]
    study.optimize(lambda p: p["x"] + p["y"], trials=6, progress=False)
    text = explain.explain_text(study)
    assert text.startswith("TPE explainer: 1 good and 5 bad") and "l(x) / g(x)^0.8 peaks at x=" in text
    assert len(explain.explain_figures(study, "gp")) == 2  # the cut and the map
    with pytest.raises(ValueError, match="kind"):
        explain.resolve_kind(study, "cma")


def test_live_explainer_redraws_after_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    import anywidget  # noqa: F401 - a dev dependency: missing means a broken install
    study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="gp", seed=0, storage=None)
    live = explain.Explainer(study, mode="widget", every_s=0.0)
    assert json.loads(live.widget.figures)[0]["data"] == []
    study.optimize(lambda p: (p["x"] - 0.3) ** 2, trials=4, progress=False)
    figures = json.loads(live.widget.figures)
    assert len(figures) == 1 and len(figures[0]["data"][3]["x"]) == 4  # the trials trace of the cut
    assert live.widget.plotly_js == ""  # sent only when a page has no plotly yet
    live.widget._on_frontend_msg(live.widget, {"type": "need_plotly"}, [])
    assert "Plotly" in live.widget.plotly_js[:5000]
    live.close()
    study.optimize(lambda p: 0.0, trials=5, progress=False)
    assert len(json.loads(live.widget.figures)[0]["data"][3]["x"]) == 4  # closed: no longer follows


def test_static_explainer_has_text_and_a_plotly_bundle() -> None:
    study = hw.Study(space={"x": hw.uniform(0, 1), "ep": hw.budget(1, 3)}, algo="hyperband", seed=0, storage=None)
    live = explain.Explainer(study, mode="static")
    study.optimize(lambda p: p["x"], trials=4, progress=False)
    bundle = live._repr_mimebundle_()
    assert bundle["text/plain"].startswith("Hyperband explainer: 6 ep spent on 3 configs")
    assert bundle[explain.live.PLOTLY_MIME]["data"][0]["type"] == "heatmap"


def test_show_in_a_plain_script_prints_the_summary_line_not_the_plotly_bundle() -> None:
    script = ("import hpwidgets as hw\n"
              "s = hw.tune(lambda p: p['x'] ** 2, {'x': hw.uniform(-2, 2)}, algo='gp', trials=6, seed=0,\n"
              "            storage=None, progress=False)\n"
              "hw.explain.show(s)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("GP explainer (6 trials") and done.stdout.count("\n") == 1, done.stdout[:300]


def test_choice_values_that_print_alike_get_a_category_each() -> None:
    from hpwidgets.explain.common import choice_label
    assert [choice_label(v) for v in (None, "None", True, "True", 1, "1", "relu", "<b>")] == [
        "None", "'None'", "True", "'True'", "1", "'1'", "relu", "&lt;b&gt;"]
    space = hw.SearchSpace({"act": hw.choice(None, "None", "relu"), "x": hw.uniform(0, 1)})
    values = [None, "None", "relu"]
    trials = [hw.FrozenTrial(i, hw.TrialState.COMPLETE, {"act": values[i % 3], "x": i / 20}, value=i % 3 + i / 100)
              for i in range(20)]
    bars = [t for t in explain.tpe_figure(*explain.tpe_densities(trials, space))["data"] if t["type"] == "bar"]
    assert bars[0]["x"] == ["None", "'None'", "relu"]  # was ["None", "None", "relu"]: one category for two values
