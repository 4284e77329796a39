"""The README's demo: tune a small MLP on scikit-learn's bundled digits, headless.

    python -m hpwidgets.quickstart [--trials 20] [--algo tpe] [--storage hptune.db]
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import hpwidgets as hw

SPACE = {
    "lr": hw.loguniform(1e-4, 1e-1),
    "hidden": hw.int(16, 256, log=True),
    "alpha": hw.loguniform(1e-6, 1e-1),
    "batch_size": hw.choice(16, 32, 64, 128),
}


def make_objective(seed: int = 0) -> Any:
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)  # ships with scikit-learn: no download
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


def main(argv: list[str] | None = None) -> hw.Study:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--algo", default="tpe", choices=hw.ALGORITHMS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", default="hptune.db")
    parser.add_argument("--name", default="quickstart-digits-mlp")
    args = parser.parse_args(argv)
    study = hw.tune(make_objective(args.seed), SPACE, algo=args.algo, trials=args.trials, maximize="accuracy",
                    seed=args.seed, name=args.name, storage=args.storage)
    print(f"best accuracy {study.best_value:.4f} with {study.best_params}")
    print(f"{len(study.trials)} trials stored in {args.storage} as study {args.name!r}")
    return study


if __name__ == "__main__":
    main()
