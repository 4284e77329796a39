"""A dependency-free SVG of the optimization history: the static figure shown where no widget
frontend (and no JavaScript) exists, e.g. nbconvert's HTML or a notebook viewer.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from .data import History
from .figures import BEST, point_color

_PAD_L, _PAD_R, _PAD_T, _PAD_B = 56, 12, 26, 30


def _scale(lo: float, hi: float, a: float, b: float) -> Callable[[float], float]:
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def history_svg(history: History, title: str = "Optimization history", width: int = 560, height: int = 260,
                value_label: str = "value") -> str:
    """``<svg>`` markup: one dot per trial (greyed outside the space) and the best-so-far step line;
    ``value_label`` names the y axis (the study's target)."""
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="hpw-static-chart" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
            f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>')
    if not history.points:
        return head + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no trials yet</text></svg>'
    xs = [p.number for p in history.points]
    ys = [p.value for p in history.points]
    fx = _scale(min(xs), max(xs), _PAD_L, width - _PAD_R)
    fy = _scale(min(ys), max(ys), height - _PAD_B, _PAD_T)
    parts = [head, _axes(width, height, (min(xs), max(xs)), (min(ys), max(ys))),
             f'<text x="14" y="{(height - _PAD_B + _PAD_T) / 2}" text-anchor="middle" '
             f'transform="rotate(-90 14 {(height - _PAD_B + _PAD_T) / 2})">{html.escape(value_label)}</text>']
    for p in history.points:
        parts.append(f'<circle cx="{fx(p.number):.1f}" cy="{fy(p.value):.1f}" r="3" fill="{point_color(p)}">'
                     f'<title>#{p.number}: {p.value:.6g}</title></circle>')
    if history.best:
        steps = []
        for i, b in enumerate(history.best):
            if i:  # horizontal, then vertical: the best value holds until a better trial
                steps.append(f"{fx(b.x):.1f},{fy(history.best[i - 1].y):.1f}")
            steps.append(f"{fx(b.x):.1f},{fy(b.y):.1f}")
        parts.append(f'<polyline points="{" ".join(steps)}" fill="none" stroke="{BEST}" stroke-width="1.5"/>')
    return "".join(parts) + "</svg>"


def _axes(width: int, height: int, xr: tuple[float, float], yr: tuple[float, float]) -> str:
    x0, y0, x1, y1 = _PAD_L, height - _PAD_B, width - _PAD_R, _PAD_T
    return (f'<path d="M{x0},{y1} V{y0} H{x1}" stroke="#888" fill="none"/>'
            f'<text x="{x0 - 4}" y="{y0}" text-anchor="end">{yr[0]:.4g}</text>'
            f'<text x="{x0 - 4}" y="{y1 + 8}" text-anchor="end">{yr[1]:.4g}</text>'
            f'<text x="{x0}" y="{y0 + 14}" text-anchor="middle">{xr[0]:g}</text>'
            f'<text x="{x1}" y="{y0 + 14}" text-anchor="middle">{xr[1]:g}</text>'
            f'<text x="{(x0 + x1) / 2}" y="{y0 + 24}" text-anchor="middle">trial</text>')
