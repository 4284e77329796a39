"""The checkpoint benchmark on tiny synthetic data: resuming from trial.checkpoint_dir must make
the same decisions, with the same accuracies, as training every trial from scratch."""

from __future__ import annotations

import torch  # noqa: F401 - a dev dependency: missing means a broken install
from benchkit import benchmark_script


def test_resumed_studies_match_restarted_ones_on_fewer_epochs() -> None:
    with benchmark_script("checkpoint_mnist") as bench:
        bench._DATA = bench.synthetic_data(0)
        restart, resumed = (bench.run_study((how, 9, 13)) for how in ("restart", "checkpoint"))
    assert [t["params"] for t in resumed["trials"]] == [t["params"] for t in restart["trials"]]
    assert [t["accuracy"] for t in resumed["trials"]] == [t["accuracy"] for t in restart["trials"]]
    assert sum(t["trained"] for t in restart["trials"]) == 27  # 9 x 1 + 3 x 3 + 1 x 9
    assert sum(t["trained"] for t in resumed["trials"]) == 21  # 9 x 1 + 3 x 2 + 1 x 6
    assert resumed["bytes"] > 0 and restart["bytes"] == 0
