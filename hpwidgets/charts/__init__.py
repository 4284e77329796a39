"""Chart data (pure NamedTuples) and plotly figure dicts, shared by the live panel and the report.

Nothing here imports plotly or ipywidgets: figures are plain JSON-ready dicts.
"""

from .data import (
    Axis,
    BestPoint,
    ChartData,
    ChartTracker,
    Contribution,
    Curve,
    History,
    Parallel,
    ParallelRow,
    Point,
    RungPoint,
    Slice,
    chart_data,
    history,
    learning_curves,
    parallel,
    rungs,
    slices,
    trial_value,
)
from .figures import FigureSet, build_figures
from .svg import history_svg

__all__ = [
    "Axis", "BestPoint", "ChartData", "ChartTracker", "Contribution", "Curve", "FigureSet", "History", "Parallel",
    "ParallelRow", "Point", "RungPoint", "Slice", "build_figures", "chart_data", "history", "history_svg",
    "learning_curves", "parallel", "rungs", "slices", "trial_value",
]
