"""hptune: the command line.

    hptune demo [--trials 20] [-o quickstart-report.html]   the quickstart, headless, then its HTML report
    hptune run script.py:objective [--space SPACE] ...       tune a function from a script
        [--parallel N] [--gpus auto|none|0,1] [--per-gpu N|auto] [--executor thread|process|dask://host:port]
    hptune report NAME [--storage hptune.db] [-o NAME.html]  a stored study's HTML report
    hptune list [hptune.db]                                   the stored studies (or --storage FILE)
    hptune clean NAME [--storage hptune.db] [--all]           remove its checkpoint folders but the best's
    hptune lab [DIR]                                          the demo notebooks in JupyterLab

Errors print one line (the rule and the values) and exit with status 2; no traceback. `run` names
the first failed trial's error on stderr, and exits with status 1 when every trial failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import reprlib
import shlex
import shutil
import sys
import threading
import time
import types
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import ALGORITHMS, PRUNERS, __version__
from .checkpoints import CleanError, cleaned_line
from .dask_runner import ClusterError
from .options import (
    EXECUTOR_HELP,
    GPUS_HELP,
    MAX_FAILURES_HELP,
    PER_GPU_HELP,
    missing_gpu_problem,
    placement,
    placement_problem,
    positive,
    storage_path,
)
from .report import ReportError, report_file_name
from .results import best_or_none, failure_summary, outside_space_note
from .store import StorageError
from .study import default_name
from .trial import TrialState, resolve_direction


class CommandError(Exception):
    """A user error: printed as one line, exit status 2."""


SCRIPT_MODULE = "__hptune__"  # what `hptune run` names the user's script: its main guard stays shut

def _study_table(storage: str) -> str:
    from .store import Store
    if not os.path.exists(storage):
        raise CommandError(f"no storage file {storage!r} here (run `hptune demo` to make one, or pass --storage)")
    store = Store(storage)
    try:
        studies = store.list_studies()
    finally:
        store.close()
    if not studies:
        return f"no studies in {storage}"
    rows = [["name", "trials", "complete", "best", "algo", "direction"]]
    for s in studies:
        best = "-" if s.best_value is None else f"{s.best_value:.6g}"
        direction = s.direction + (f" {s.target}" if s.target else "")
        rows.append([s.name, str(s.n_trials), str(s.n_complete), best, s.algo, direction])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def cmd_list(args: argparse.Namespace) -> None:
    print(_study_table(args.file or args.storage))


def _stored_study(args: argparse.Namespace) -> Any:
    """The study ``args.name`` from ``args.storage``, or a one-line error naming what is missing."""
    from . import load_study
    if not os.path.exists(args.storage):
        raise CommandError(f"no storage file {args.storage!r}; pass --storage PATH to the study's SQLite file")
    try:
        return load_study(args.name, args.storage, read_only=True)  # a user's own algorithm need not be rebuilt
    except ValueError as error:
        raise CommandError(str(error)) from None


def cmd_report(args: argparse.Namespace) -> None:
    from .report import write_report
    print(write_report(_stored_study(args), args.output or report_file_name(args.name)))  # as `-o .` names it


def cmd_clean(args: argparse.Namespace) -> None:
    study = _stored_study(args)
    try:
        removed, freed = study.clean_checkpoints(keep_best=not args.all)
    except RuntimeError as error:  # trials running elsewhere: one may be writing its checkpoint
        raise CommandError(str(error)) from None
    except CleanError as error:  # it says what could not go and what did
        raise CommandError(str(error)) from None
    print(cleaned_line(removed, freed, study.checkpoints.root, not args.all, best_or_none(study) is not None))


def cmd_demo(args: argparse.Namespace) -> None:
    from .quickstart import run
    run(args)


def demos_dir() -> Path:
    """The demos of a source checkout (next to the package), else ./demos."""
    beside = Path(__file__).resolve().parents[1] / "demos"
    return beside if beside.is_dir() else Path.cwd() / "demos"


def cmd_lab(args: argparse.Namespace) -> None:
    folder = Path(args.dir) if args.dir else demos_dir()
    if not folder.is_dir():
        raise CommandError(f"no demos folder at {folder}; pass the folder holding the notebooks: hptune lab DIR")
    jupyter = Path(sys.executable).with_name("jupyter")
    exe = str(jupyter) if jupyter.exists() else shutil.which("jupyter")
    if exe is None:
        raise CommandError("JupyterLab is not installed: pip install 'hpwidgets[dev]' (or jupyterlab)")
    command = [exe, "lab", str(folder)]
    if args.dry_run:
        print(" ".join(command))
        return
    os.execv(exe, command)  # JupyterLab takes over this process (Ctrl-C stops it)


@contextlib.contextmanager
def _script_folder_first(spec: str) -> Iterator[None]:
    """The script's folder first on sys.path while it loads and its trials run, as under
    ``python script.py``, so it imports the modules beside it; spawned workers inherit sys.path."""
    path = spec.rpartition(":")[0]
    folder = os.path.dirname(os.path.realpath(path)) if path else os.getcwd()  # realpath: as python does
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # the script may have removed it itself
            sys.path.remove(folder)


def _load_target(spec: str) -> tuple[dict[str, Any], Any]:
    """``script.py:function`` -> (the script's globals, the function)."""
    path, _, name = spec.rpartition(":")
    if not path or not name:
        raise CommandError(f"name the objective as script.py:function, but got {spec!r}")
    if not os.path.isfile(path):
        raise CommandError(f"no script {path!r}")
    namespace = _run_script(path)
    if name not in namespace:
        raise CommandError(f"{path} defines no function {name!r}")
    if not callable(namespace[name]):
        raise CommandError(f"{name!r} in {path} is not a function: it is {reprlib.repr(namespace[name])}")
    return namespace, namespace[name]


def _run_script(path: str) -> dict[str, Any]:
    """Run the user's script as ``python script.py`` would, but as module ``__hptune__`` (its main
    guard stays shut): registered in ``sys.modules``, so ``pickle`` finds its classes and functions
    (``torch.save(model)``, a Pool), and with ``sys.argv == [path]``, so its own argparse sees none
    of hptune's arguments. Pickled for worker processes by value: they cannot import it."""
    module = types.ModuleType(SCRIPT_MODULE)
    module.__file__ = os.path.abspath(path)
    sys.modules[SCRIPT_MODULE] = module
    argv, sys.argv = sys.argv, [path]
    try:
        exec(compile(Path(path).read_bytes(), path, "exec"), module.__dict__)  # the user's own script
    finally:
        sys.argv = argv
    with contextlib.suppress(ImportError):  # cloudpickle comes with the process and Dask executors
        import cloudpickle
        cloudpickle.register_pickle_by_value(module)
    return module.__dict__


def _space(namespace: dict[str, Any], text: str) -> Any:
    """``--space``: a JSON space (``SearchSpace.to_json``) or the name of one in the script."""
    from .space import SearchSpace
    if text.lstrip().startswith("{"):
        try:
            return SearchSpace.from_json(text)
        except (ValueError, KeyError, TypeError) as error:
            raise CommandError(f"--space is not a valid JSON space: {error}") from None
    if text not in namespace:
        raise CommandError(f"the script defines no {text!r}; pass --space NAME or a JSON space")
    return namespace[text]


def _direction(args: argparse.Namespace) -> dict[str, Any]:
    """tune's direction keyword from --maximize / --minimize, refused as the API refuses it
    (``--maximize ""`` is no metric), before the script runs."""
    direction = {"maximize": args.maximize} if args.maximize is not None else \
        {"minimize": True if args.minimize is None else args.minimize}
    try:
        resolve_direction(direction.get("maximize"), direction.get("minimize"))
    except ValueError as error:
        raise CommandError(str(error)) from None
    return direction


def _tune(args: argparse.Namespace, namespace: dict[str, Any], objective: Any, direction: dict[str, Any]) -> Any:
    """The study ``hptune run`` asked for, run to its end."""
    from . import tune
    name, storage = args.name or default_name(), storage_path(args.storage)
    try:
        return tune(objective, _space(namespace, args.space), algo=args.algo, trials=args.trials, seed=args.seed,
                    name=name, storage=storage,
                    parallel=args.parallel, timeout=args.timeout, progress=not args.no_progress,
                    max_failures=args.max_failures, pruner=args.prune, **direction,
                    **placement(args.gpus, args.per_gpu, args.executor))
    except ValueError as error:
        raise CommandError(str(error)) from None
    except KeyboardInterrupt:  # say where the finished trials are and how to go on
        raise KeyboardInterrupt("nothing was saved (--storage none)" if storage is None else
                                f"study {name!r} keeps its finished trials in {storage}; "
                                f"the same command with --name {shlex.quote(name)} resumes it") from None


def cmd_run(args: argparse.Namespace) -> int:
    from .report import write_report
    problem = placement_problem(args.gpus, args.per_gpu, args.executor) or missing_gpu_problem(args.gpus)
    if problem:
        raise CommandError(problem)
    direction = _direction(args)
    with _script_folder_first(args.target):
        namespace, objective = _load_target(args.target)  # first: `--gpus auto` means GPUs if the script imported torch
        started = time.time()
        study = _tune(args, namespace, objective, direction)
    try:
        best = study.best_trial
        print(f"best {study.target or 'value'} {best.value:.6g} with {dict(best.params)}"
              f"{outside_space_note(study, best)}")
    except ValueError:
        print(f"no trial completed ({len(study.trials)} ran)")
    failures = failure_summary(study)
    if failures:
        print(f"hptune run: {failures}", file=sys.stderr)
    if args.output:
        print(write_report(study, args.output))
    return 1 if every_trial_failed(study, since=started) else 0  # the script's caller should know


def every_trial_failed(study: Any, since: float) -> bool:
    """Whether this run's trials (started from ``since`` on: a resume's earlier ones do not count,
    as for --max-failures) all failed, or ended without a value, with at least one FAIL."""
    ran = [t for t in study.trials if t.started_at is not None and t.started_at >= since]
    return any(t.state is TrialState.FAIL for t in ran) and not any(t.state is TrialState.COMPLETE for t in ran)


def _run_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="tune a function from a script")
    run.add_argument("target", help="script.py:function; the function takes params (and optionally trial)")
    run.add_argument("--space", default="SPACE", help="a dict of dimensions in the script (default SPACE) or JSON")
    run.add_argument("--algo", choices=ALGORITHMS,
                     help="search algorithm (default: tpe, or what a resumed study last ran)")
    run.add_argument("--trials", type=positive(int), default=20,
                     help="trials in total, resumed ones included (default 20)")
    run.add_argument("--prune", default="none", choices=PRUNERS, help="stop trials early from trial.report")
    group = run.add_mutually_exclusive_group()
    group.add_argument("--maximize", metavar="METRIC", nargs="?", const=True, help="maximise (a metric)")
    group.add_argument("--minimize", metavar="METRIC", nargs="?", const=True, help="minimise (the default)")
    run.add_argument("--seed", type=int, help="random seed, for reproducible suggestions")
    run.add_argument("--name", help="study name; the same name resumes it (default: a new dated name)")
    run.add_argument("--storage", default="hptune.db", help="SQLite file (default hptune.db), or none for memory")
    run.add_argument("--parallel", type=positive(int), default=1, help="trials at once (default 1)")
    run.add_argument("--timeout", type=positive(float), help="stop starting trials after this many seconds")
    run.add_argument("--max-failures", type=positive(int), help=MAX_FAILURES_HELP)
    run.add_argument("--gpus", default="auto", help=GPUS_HELP)
    run.add_argument("--per-gpu", default="1", help=PER_GPU_HELP)
    run.add_argument("--executor", default="thread", help=EXECUTOR_HELP)
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("-o", "--output", help="also write the HTML report here")
    run.set_defaults(func=cmd_run)


def build_parser() -> argparse.ArgumentParser:
    from .quickstart import add_arguments
    parser = argparse.ArgumentParser(
        prog="hptune", description="Tune hyperparameters from a terminal; the studies are the notebook's.",
        epilog="e.g. hptune run train.py:objective --algo tpe --trials 50 --maximize accuracy --name mnist\n"
               "     hptune list; hptune report mnist -o mnist.html; `hptune COMMAND -h` for a command's options",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hpwidgets {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = add_arguments(sub.add_parser("demo", help="the quickstart study, headless, then its HTML report"))
    demo.set_defaults(func=cmd_demo)
    _run_parser(sub)
    report = sub.add_parser("report", help="write a stored study's HTML report")
    report.add_argument("name")
    report.add_argument("--storage", default="hptune.db")
    report.add_argument("-o", "--output", help="the HTML file (default NAME.html)")
    report.set_defaults(func=cmd_report)
    clean = sub.add_parser("clean", help="remove a stored study's checkpoint folders but the best trial's")
    clean.add_argument("name")
    clean.add_argument("--storage", default="hptune.db")
    clean.add_argument("--all", action="store_true", help="the best trial's folder too")
    clean.set_defaults(func=cmd_clean)
    listing = sub.add_parser("list", help="the studies in a storage file")
    listing.add_argument("file", nargs="?", help="the SQLite file (default hptune.db), like --storage")
    listing.add_argument("--storage", default="hptune.db")
    listing.set_defaults(func=cmd_list)
    lab = sub.add_parser("lab", help="open the demo notebooks in JupyterLab")
    lab.add_argument("dir", nargs="?", help="the notebooks' folder (default: the checkout's demos/)")
    lab.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    lab.set_defaults(func=cmd_lab)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(f"hptune {args.command}", args.func, args)


def run_command(prog: str, command: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """``command(args)``'s exit status; a user error prints one line after ``prog`` and gives 2, Ctrl-C 130.
    (``python -m hpwidgets.quickstart`` runs the demo through here too, so it fails as ``hptune demo`` does.)"""
    shown = warnings.formatwarning
    warnings.formatwarning = _one_line_warning(prog)  # not Python's file:line plus source
    try:
        status = command(args)
    except (CommandError, StorageError, ReportError, ClusterError, ImportError) as error:  # ImportError: a hint
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        print(f"{prog}: interrupted" + (f"; {error}" if str(error) else ""), file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = shown
    return status or 0


def _one_line_warning(prog: str) -> Callable[..., str]:
    def one_line(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
        return f"{prog}: {category.__name__}: {message}\n"
    return one_line


def entry() -> None:
    """The ``hptune`` command: ``main()``, then, after a Ctrl-C that left trial threads running
    (trials that never report), exit at once: Python would wait for each thread to end. Their
    finished trials are stored; the rows still running are failed "interrupted" at the next open."""
    status = main()
    main_thread = threading.main_thread()
    if status == 130 and any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not main_thread):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(status)


if __name__ == "__main__":
    entry()
