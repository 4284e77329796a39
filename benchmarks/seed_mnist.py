"""The seed article's MNIST random search, run twice in one process on the same configurations.

1. the seed's own loop: torchvision MNIST + DataLoader + ToTensor/Normalize, one trial after another;
2. hpwidgets: the data put on the device once (``hw.data``), trials in parallel slots.

Both train SimpleNN (784-128-10) with Adam for ``--epochs`` epochs per configuration
(lr ~ U[0.001, 0.01], batch size in {16, 32, 64, 128}), and report test accuracy.

    python benchmarks/seed_mnist.py --data ../shared/data                      # everything
    python benchmarks/seed_mnist.py --data ../shared/data --seed-trials 2      # seed loop on trials 0-1 only
    python benchmarks/seed_mnist.py --data ../shared/data --gpus auto --per-gpu 2 --json out.json
    python benchmarks/seed_mnist.py --data ../shared/data --gpus auto --steps plain graphed  # + TrainStep

With ``--seed-trials K < --trials`` the seed loop is *measured* on the first K configurations only;
hpwidgets is then measured on those same K (like for like) and on all of them. The seed's time
for all configurations is then an *estimate* (printed as such): each measured seed epoch gives
seconds per batch at its batch size, fitted as ``a + b * batch_size``; the estimate sums the
fitted time of every configuration's epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from typing import Any

import numpy as np
import torch
from torch import nn, optim
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

import hpwidgets as hw
from hpwidgets.algorithms.base import Algorithm
from hpwidgets.algorithms.random import RandomSearch

SPACE = {"lr": hw.uniform(0.001, 0.01), "batch_size": hw.choice(16, 32, 64, 128)}
TRAIN_SAMPLES = 60000
_INIT_LOCK = threading.Lock()  # torch's global RNG is shared by the trial threads


class SimpleNN(nn.Module):
    """The seed's model."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 28 * 28)
        return self.fc2(torch.relu(self.fc1(x)))


class Replay(Algorithm):
    """Asks the given configurations in order, so both runs train exactly the same ones."""

    name = "replay"

    def __init__(self, configs: list[dict[str, Any]]) -> None:
        super().__init__()
        self._configs, self._next = configs, 0

    def ask(self) -> dict[str, Any]:
        config = self._configs[self._next % len(self._configs)]
        self._next += 1
        return dict(config)


def sample_configs(n: int, seed: int) -> list[dict[str, Any]]:
    search = RandomSearch()
    search.setup(hw.SearchSpace(SPACE), seed=seed)
    return [search.ask() for _ in range(n)]


def mnist_sets(root: str) -> tuple[Any, Any]:
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    return (datasets.MNIST(root=root, train=True, download=False, transform=transform),
            datasets.MNIST(root=root, train=False, download=False, transform=transform))


# --- 1. the seed's loop, as the article wrote it ---------------------------------------------------
def seed_trial(config: dict[str, Any], train_set: Any, test_set: Any, epochs: int, device: str) -> dict[str, Any]:
    train_loader = DataLoader(train_set, batch_size=config["batch_size"], shuffle=True)
    test_loader = DataLoader(test_set, batch_size=config["batch_size"], shuffle=False)
    model = SimpleNN().to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=config["lr"])
    epoch_seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - start)
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in test_loader:
            images, labels = images.to(device), labels.to(device)
            _, predicted = torch.max(model(images).data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    return {"accuracy": correct / total, "epoch_seconds": epoch_seconds}


def run_seed(configs: list[dict[str, Any]], train_set: Any, test_set: Any, epochs: int, device: str) -> dict:
    start, results = time.perf_counter(), []
    for i, config in enumerate(configs):
        result = seed_trial(config, train_set, test_set, epochs, device)
        results.append({**config, **result})
        print(f"  seed trial {i}: lr={config['lr']:.5f} batch={config['batch_size']:>3} "
              f"acc={result['accuracy']:.4f} epochs={[round(s, 1) for s in result['epoch_seconds']]} s", flush=True)
    return {"seconds": time.perf_counter() - start, "trials": results,
            "best_accuracy": max(r["accuracy"] for r in results)}


# --- 2. the same search through hpwidgets ----------------------------------------------------------
def make_objective(train_set: Any, test_set: Any, epochs: int, graphed: bool = False) -> Any:
    """The seed's trial through hpwidgets; ``graphed`` steps with ``hw.data.TrainStep`` (one CUDA
    graph replay per step on a GPU, the plain step elsewhere)."""
    def objective(params: dict[str, Any], trial: hw.Trial) -> dict[str, float]:
        device = trial.device
        X, y = hw.data.from_torchvision(train_set, device)  # once per device, shared by trials
        X_test, y_test = hw.data.from_torchvision(test_set, device)
        with _INIT_LOCK:  # the same initial weights for a trial however threads interleave
            torch.manual_seed(trial.number)
            model = SimpleNN().to(device)
        criterion = nn.CrossEntropyLoss()
        optimizer = optim.Adam(model.parameters(), lr=params["lr"])
        step = hw.data.TrainStep(model, optimizer, criterion, graph="auto" if graphed else False)
        loader = hw.data.DeviceLoader(X, y, batch_size=params["batch_size"], shuffle=True, seed=trial.number)
        for _ in range(epochs):
            model.train()
            for images, labels in loader:
                step(images, labels)
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in
                          hw.data.DeviceLoader(X_test, y_test, batch_size=2000, shuffle=False))
        return {"accuracy": correct / len(y_test)}
    return objective


def run_hpwidgets(configs: list[dict[str, Any]], objective: Any, args: argparse.Namespace) -> dict:
    study = hw.Study(space=SPACE, algo=Replay(configs), maximize="accuracy", storage=None)
    start = time.perf_counter()
    study.optimize(objective, trials=len(configs), parallel=args.parallel, gpus=args.gpus,
                   per_gpu=args.per_gpu, progress=False)
    seconds = time.perf_counter() - start
    trials = [{**t.params, "accuracy": t.value, "device": t.device, "started_at": t.started_at,
               "finished_at": t.finished_at, "error": t.error} for t in study.trials]
    for i, t in enumerate(trials):
        print(f"  hpwidgets trial {i}: lr={t['lr']:.5f} batch={t['batch_size']:>3} acc={t['accuracy']} "
              f"on {t['device']} {t['finished_at'] - t['started_at']:.1f} s", flush=True)
    return {"seconds": seconds, "trials": trials, "best_accuracy": study.best_value,
            "max_overlap": max_overlap(trials)}


def max_overlap(trials: list[dict[str, Any]]) -> dict[str, int]:
    """Most trials running at once per device (2 per GPU is what --per-gpu 2 should show)."""
    most: dict[str, int] = {}
    for t in trials:
        live = sum(1 for o in trials if o["device"] == t["device"]
                   and o["started_at"] <= t["started_at"] < o["finished_at"])
        most[t["device"]] = max(most.get(t["device"], 0), live)
    return most


# --- the estimate for unmeasured seed trials --------------------------------------------------------
def estimate_seed_seconds(measured: list[dict[str, Any]], configs: list[dict[str, Any]], epochs: int) -> float:
    """Seed training time for all configs from measured epochs: s/batch fitted as a + b * batch_size."""
    sizes = np.array([r["batch_size"] for r in measured for _ in r["epoch_seconds"]], float)
    per_batch = np.array([s / np.ceil(TRAIN_SAMPLES / r["batch_size"]) for r in measured
                          for s in r["epoch_seconds"]])
    if len(set(sizes)) > 1:
        b, a = np.polyfit(sizes, per_batch, 1)
    else:  # one batch size measured: assume time per sample is constant
        a, b = 0.0, float(np.mean(per_batch / sizes))
    return float(sum((a + b * c["batch_size"]) * np.ceil(TRAIN_SAMPLES / c["batch_size"]) * epochs
                     for c in configs))


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    args = parse_args()
    configs = sample_configs(args.trials, args.sample_seed)
    train_set, test_set = mnist_sets(args.data)
    device = "cuda" if args.gpus not in (None, "none") and torch.cuda.is_available() else "cpu"
    args.gpus = None if args.gpus == "none" else args.gpus
    measured = configs[:args.seed_trials]
    report: dict[str, Any] = {"configs": configs, "epochs": args.epochs, "cpu_count": os.cpu_count(),
                              "torch": torch.__version__, "device": device, "per_gpu": args.per_gpu,
                              "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None}
    run_seed_loop = measured and not args.no_seed_loop
    print(f"seed loop on {len(measured) if run_seed_loop else 0} of {len(configs)} configs, {args.epochs} epochs, "
          f"{device} (load {load_average()})", flush=True)
    report["seed"] = run_seed(measured, train_set, test_set, args.epochs, device) if run_seed_loop else None
    save(report, args.json)
    for mode in args.steps:
        objective = make_objective(train_set, test_set, args.epochs, graphed=mode == "graphed")
        prefix = "hpwidgets" if mode == "plain" else f"hpwidgets_{mode}"
        if measured and len(measured) < len(configs):
            print(f"hpwidgets ({mode} steps) on the same {len(measured)} configs (load {load_average()})", flush=True)
            report[f"{prefix}_same"] = run_hpwidgets(measured, objective, args)
        print(f"hpwidgets ({mode} steps) on all {len(configs)} configs (load {load_average()})", flush=True)
        report[prefix] = run_hpwidgets(configs, objective, args)
        summarise(report, prefix, configs, args)
        save(report, args.json)  # after each mode: a run cut short keeps what it measured


def save(report: dict[str, Any], path: str | None) -> None:
    if path:
        with open(path, "w") as stream:
            json.dump(report, stream, indent=1, default=str)


def summarise(report: dict[str, Any], prefix: str, configs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    seed, mine = report["seed"], report[prefix]
    print(f"\n{prefix}, all {len(configs)} trials: {mine['seconds']:.1f} s measured, "
          f"best accuracy {mine['best_accuracy']:.4f}, overlap per device {mine['max_overlap']}")
    same = report.get(f"{prefix}_same", mine)
    if seed is None:
        if same is not mine:
            print(f"{prefix}, the first {len(same['trials'])} trials: {same['seconds']:.1f} s")
        return
    report[f"{prefix}_ratio_measured"] = seed["seconds"] / same["seconds"]
    print(f"seed loop, {len(seed['trials'])} trials: {seed['seconds']:.1f} s measured, best accuracy "
          f"{seed['best_accuracy']:.4f}; {prefix} on the same trials: {same['seconds']:.1f} s, best accuracy "
          f"{same['best_accuracy']:.4f}; ratio {report[f'{prefix}_ratio_measured']:.1f}x (measured)")
    if len(seed["trials"]) < len(configs):
        training = estimate_seed_seconds(seed["trials"], configs, args.epochs)
        report["seed_all_estimated_training_seconds"] = training
        report[f"{prefix}_ratio_estimated_all"] = training / mine["seconds"]
        print(f"seed loop, all {len(configs)} trials: ~{training:.0f} s ESTIMATED (training only, from the "
              f"measured epochs), i.e. ~{report[f'{prefix}_ratio_estimated_all']:.0f}x {prefix}'s measured time")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"),
                        help="torchvision MNIST root (holding MNIST/raw)")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed-trials", type=int, default=None, help="seed loop on the first K configs only")
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1, help="CPU slots for hpwidgets")
    parser.add_argument("--gpus", default=None, help="'auto', an index, or 'none' (default: CPU)")
    parser.add_argument("--per-gpu", default=1, type=lambda v: v if v == "auto" else int(v))
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of the sampled configurations")
    parser.add_argument("--json", default=None, help="write every number to this file")
    parser.add_argument("--steps", nargs="+", default=["plain"], choices=["plain", "graphed"],
                        help="hpwidgets' training step: plain, and/or hw.data.TrainStep (CUDA graphs on GPUs)")
    parser.add_argument("--no-seed-loop", action="store_true",
                        help="skip the seed loop but still time hpwidgets on the first --seed-trials configs")
    args = parser.parse_args()
    args.seed_trials = args.trials if args.seed_trials is None else args.seed_trials
    if args.gpus not in (None, "auto", "none"):
        args.gpus = [int(g) for g in args.gpus.split(",")]
    return args


if __name__ == "__main__":
    main()
