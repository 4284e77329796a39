"""From a study to its explainer: which one fits its algorithm, its figures and a summary in words."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..algorithms.pruners import pruner_name
from ..space import Choice
from .figures import (
    Figure,
    fitted_note,
    gp_map_figure,
    gp_slice_figure,
    hyperband_figure,
    message_figure,
    pruning_figure,
    tpe_figure,
)
from .gp import gp_map, gp_slice
from .hyperband import hyperband_view
from .pruning import PruningView, pruning_text, pruning_view
from .tpe import ratio_label, tpe_densities, tpe_settings

if TYPE_CHECKING:
    from ..study import Study

KINDS = ("gp", "tpe", "hyperband", "pruner")
_BY_ALGORITHM = {"gp": "gp", "tpe": "tpe", "hyperband": "hyperband", "random": "gp", "gp-skopt": "gp",
                 "tpe-hyperopt": "tpe"}


def resolve_kind(study: Study, kind: str = "auto") -> str:
    """The explainer for a study: its algorithm's own ("auto"; a random search gets the GP view)."""
    if kind == "auto":
        kind = _BY_ALGORITHM.get(study.algorithm.name, "gp")
    if kind not in KINDS:
        raise ValueError(f"`kind` must be 'auto' or one of {list(KINDS)}, but got kind={kind!r}")
    return kind


def default_params(study: Study, param: str | None = None,
                   pair: Sequence[str] | None = None) -> tuple[str, tuple[str, str] | None]:
    """The parameter for the 1-D cut (the first numeric one) and the pair for the map (the first two)."""
    searched = study.space.searched()
    if not searched:
        raise ValueError("the space has no searched parameter to explain")
    check_params(study, param, pair)
    numeric = [n for n, d in searched.items() if not isinstance(d, Choice)]
    param = param or (numeric or list(searched))[0]
    if pair is not None:
        return param, (pair[0], pair[1])
    names = list(dict.fromkeys([param, *searched]))
    return param, (names[0], names[1]) if len(names) >= 2 else None


def check_params(study: Study, param: str | None, pair: Sequence[str] | None) -> None:
    """``param`` and ``pair`` name searched parameters (a typo must not pass silently)."""
    if pair is not None and (isinstance(pair, str) or len(pair) != 2):
        raise ValueError(f"`pair` needs two parameter names, but got {pair!r}")
    searched = study.space.searched()
    for name in [param, *(pair or ())]:
        if name is not None and name not in searched:
            raise ValueError(f"{name!r} is not a searched parameter; the space searches {list(searched)!r}")


def _args(study: Study) -> dict[str, Any]:
    return {"trials": study.trials, "space": study.space, "maximize": study.maximize, "target": study.target}


def gp_figures(study: Study, param: str | None = None, pair: Sequence[str] | None = None) -> list[Figure]:
    param, the_pair = default_params(study, param, pair)
    label = study.target or "value"
    figures = [gp_slice_figure(gp_slice(**_args(study), param=param), label)]
    if the_pair is not None:
        figures.append(gp_map_figure(gp_map(**_args(study), params=the_pair), label))
    return figures


def tpe_figures(study: Study) -> list[Figure]:
    split, densities = tpe_densities(**_args(study), **tpe_settings(study.algorithm))
    return [tpe_figure(split, densities, study.target or "value")]


def _runs(study: Study) -> list[Any]:
    rungs = getattr(study.algorithm, "rungs", None)
    return rungs() if callable(rungs) else []


def hyperband_figures(study: Study) -> list[Figure]:
    view = hyperband_view(study.trials, study.space, _runs(study), getattr(study.algorithm, "eta", 3))
    return [hyperband_figure(view, study.space.budget_name or "budget")]


def study_pruning(study: Study) -> PruningView:
    """The pruning view of a study: its pruner's name and, for ASHA, the rungs it has judged at."""
    pruner = getattr(study, "pruner", None)
    rungs = getattr(pruner, "rung_steps", None)
    return pruning_view(study.trials, study.target, pruner_name(pruner), rungs() if callable(rungs) else ())


def explain_figures(study: Study, kind: str = "auto", param: str | None = None,
                    pair: Sequence[str] | None = None) -> list[Figure]:
    """The explainer's plotly figure dicts; one message figure while there is nothing to show yet."""
    kind = resolve_kind(study, kind)
    try:
        if kind == "gp":
            return gp_figures(study, param, pair)
        if kind == "pruner":
            return [pruning_figure(study_pruning(study), study.target or "value")]
        return tpe_figures(study) if kind == "tpe" else hyperband_figures(study)
    except ValueError as error:  # no scored trial yet, or no budget dimension
        return [message_figure(str(error), f"{kind} explainer")]


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def explain_text(study: Study, kind: str = "auto", param: str | None = None,
                 pair: Sequence[str] | None = None) -> str:
    """The explainer in one or two sentences (the text/plain face, and what headless runs keep)."""
    kind = resolve_kind(study, kind)
    try:
        if kind == "gp":
            param, _ = default_params(study, param, pair)
            cut = gp_slice(**_args(study), param=param)
            trials = f"{cut.total} trials{fitted_note(len(cut.observed), cut.total)}"
            return (f"GP explainer ({trials}, length scale {cut.lengthscale:.3g}): along {param}, "
                    f"expected improvement peaks at {param}={_fmt(cut.next_x)}")
        if kind == "tpe":
            settings = tpe_settings(study.algorithm)
            split, densities = tpe_densities(**_args(study), **settings)
            peaks = ", ".join(f"{d.param}={_fmt(d.next_x)}" for d in densities)
            return (f"TPE explainer: {len(split.good)} good and {len(split.bad)} bad trials (split at "
                    f"{split.threshold:.4g}); {ratio_label(settings['bad_density_power'])} peaks at {peaks}")
        if kind == "pruner":
            return pruning_text(study_pruning(study))
        view = hyperband_view(study.trials, study.space, _runs(study), getattr(study.algorithm, "eta", 3))
        unit = study.space.budget_name
        return (f"Hyperband explainer: {view.spent} {unit} spent on {view.configs} configs; a random search "
                f"would have trained {view.random_configs:.1f} configs at {unit}={view.max_budget}")
    except ValueError as error:
        return f"{kind} explainer: {error}"
