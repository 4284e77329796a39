"""Random search: each dimension drawn independently through its unit-interval mapping."""

from __future__ import annotations

from typing import Any

from .base import Algorithm


class RandomSearch(Algorithm):
    """Uniform in each dimension's scale (log dimensions uniform in log space)."""

    name = "random"

    def ask(self) -> dict[str, Any]:
        assert self.space is not None, "setup() must be called before ask()"
        return {name: dim.from_unit(self._rng.random()) for name, dim in self.space.searched().items()}
