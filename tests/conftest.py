"""Fixtures shared across test modules: the widget tests' capturing comm and panel list, the magic's shell."""

from magic_harness import ip  # noqa: F401 - registered here so test modules get them by name
from ui_harness import panels, sent  # noqa: F401
