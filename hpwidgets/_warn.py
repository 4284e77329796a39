"""Warnings that point at the user's line, not at whichever hpwidgets frame noticed the problem."""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_at_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` at the first frame outside this package: the same problem reached through
    ``tune()``, ``Study.optimize`` or a trial's ``report`` then names the line that caused it, and
    the default once-per-location filter shows it once per such line (``skip_file_prefixes`` is 3.12+)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
