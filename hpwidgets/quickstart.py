"""The README's demo: tune a small MLP on scikit-learn's bundled digits, headless, then write a report.

    python -m hpwidgets.quickstart [--trials 20] [--algo tpe] [--storage hptune.db] [-o quickstart-report.html]

(``hptune demo`` runs the same.) A terminal progress bar shows trials, ETA and the best accuracy;
at the end the self-contained HTML report is written and its path printed on the last line.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

import hpwidgets as hw
from hpwidgets.options import positive, storage_path

SPACE = {
    "lr": hw.loguniform(1e-4, 1e-1),
    "hidden": hw.int(16, 256, log=True),
    "alpha": hw.loguniform(1e-6, 1e-1),
    "batch_size": hw.choice(16, 32, 64, 128),
}


def make_objective(seed: int = 0) -> Any:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    X, y = hw.datasets.digits()  # ships with scikit-learn: no download
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.3, random_state=seed)

    def objective(params: dict[str, Any]) -> dict[str, float]:
        model = MLPClassifier(hidden_layer_sizes=(params["hidden"],), learning_rate_init=params["lr"],
                              alpha=params["alpha"], batch_size=params["batch_size"], max_iter=30,
                              random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        return {"accuracy": model.score(X_test, y_test)}

    return objective


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The demo's options (shared by ``python -m hpwidgets.quickstart`` and ``hptune demo``)."""
    parser.add_argument("--trials", type=positive(int), default=20,
                        help="trials in total, resumed ones included (default 20)")
    parser.add_argument("--algo", default="tpe", choices=hw.ALGORITHMS, help="search algorithm (default tpe)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", default="hptune.db", help="SQLite file (default hptune.db), or none for memory")
    parser.add_argument("--name", default="quickstart-digits-mlp", help="study name; the same name resumes")
    parser.add_argument("-o", "--report", default="quickstart-report.html", help="where the HTML report goes")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> tuple[hw.Study, Path]:
    """Tune, print the best result, write the report; returns the study and the report's path."""
    from .report import write_report

    storage = storage_path(args.storage)
    study = hw.tune(make_objective(args.seed), SPACE, algo=args.algo, trials=args.trials, maximize="accuracy",
                    seed=args.seed, name=args.name, storage=storage, progress=args.progress)
    print(f"best accuracy {study.best_value:.4f} with {study.best_params}")
    kept = "kept in memory only (--storage none)" if storage is None else f"stored in {storage}"
    print(f"{len(study.trials)} trials {kept} as study {args.name!r}")
    path = write_report(study, args.report)
    print(f"report: {path}")
    return study, path


def main(argv: list[str] | None = None) -> int:
    """``python -m hpwidgets.quickstart``: the exit status; an error is one line, as ``hptune demo``'s."""
    from .cli import cmd_demo, run_command

    parser = add_arguments(argparse.ArgumentParser(prog="python -m hpwidgets.quickstart",
                                                   description=__doc__.splitlines()[0]))
    return run_command(parser.prog, cmd_demo, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
