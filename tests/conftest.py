"""Fixtures shared across test modules: the widget tests' capturing comm and panel list."""

from ui_harness import panels, sent  # noqa: F401 - registered here so test modules get them by name
