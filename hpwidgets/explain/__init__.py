"""Explainers: how GP, TPE and Hyperband decide, as pure data, plotly figure dicts and a live view.

* GP: posterior mean ± 2σ and expected improvement along one parameter (the others at the best
  trial), and a heatmap over two; the EI peak marked (``gp_slice``, ``gp_map``).
* TPE: the good/bad split, l(x) and g(x) per parameter and the ratio that picks the next point
  (``tpe_split``, ``tpe_densities``).
* Hyperband: brackets × rungs (plan and outcome), and the budget vs a random search
  (``hyperband_view``, ``plan``, ``trials_within``).

* Pruning: learning curves, the rungs where an ASHA pruner judged them (or the median pruner's
  line to beat), how many were stopped where, and the steps saved (``pruning_view``).
* The race: several studies on one problem, best value vs budget spent (``race``, ``Race``).

``show(study)`` displays the one matching the study's algorithm and redraws it after each trial.
Nothing here imports plotly, ipywidgets or anywidget until a live view is shown.
"""

from .figures import gp_map_figure, gp_slice_figure, hyperband_figure, message_figure, pruning_figure, tpe_figure
from .gp import GPMap, GPSlice, expected_improvement, fit_lengthscale, gp_map, gp_slice, matern52, posterior
from .hyperband import Cell, HyperbandView, bracket_cost, budget_spent, hyperband_view, plan, tally, trials_within
from .live import Explainer, LiveFigures, show
from .pruning import Curve, PruningView, RungCount, pruning_text, pruning_view
from .race import Lane, Race, race, race_figure
from .study import explain_figures, explain_text, resolve_kind
from .tpe import (
    TPEDensity,
    TPESplit,
    adaptive_parzen,
    categorical_pmf,
    n_good,
    parzen_pdf,
    split,
    tpe_densities,
    tpe_split,
)

__all__ = [
    "Cell", "Curve", "Explainer", "GPMap", "GPSlice", "HyperbandView", "Lane", "LiveFigures", "PruningView", "Race",
    "RungCount", "TPEDensity", "TPESplit", "adaptive_parzen",
    "bracket_cost", "budget_spent", "categorical_pmf", "expected_improvement", "explain_figures", "explain_text",
    "fit_lengthscale", "gp_map", "gp_map_figure", "gp_slice", "gp_slice_figure", "hyperband_figure",
    "hyperband_view", "matern52", "message_figure", "n_good", "parzen_pdf", "plan", "posterior", "pruning_figure",
    "pruning_text", "pruning_view", "race", "race_figure",
    "resolve_kind", "show", "split", "tally", "tpe_densities", "tpe_figure", "tpe_split", "trials_within",
]
