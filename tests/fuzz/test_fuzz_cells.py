"""Property tests over ``%%hptune`` cell text and options: it runs, or it is refused with a message.

``parse`` must answer every text with a ParsedCell or a CellError naming a line of it. The magic,
in a fresh InteractiveShell with tiny --trials and ``--storage none``, must run the cell (trials may
FAIL) or raise UsageError/ValueError naming the problem: never another exception, never a hang.
The explicit examples are inputs that once broke that rule.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from fuzzkit import cells, check_magic, check_parse, option_lines
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from IPython.core.interactiveshell import InteractiveShell

SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
           HealthCheck.function_scoped_fixture]
CI = settings(max_examples=300, deadline=None, database=None, derandomize=True, suppress_health_check=SLOW_OK)
CI_MAGIC = settings(CI, max_examples=120)
REPO = Path(__file__).resolve().parents[2]
BAD_DEDENT = "x = hp.uniform(0, 1)\nif True:\n        y = 1\n    z = 2\nx"  # IPython's tokenizer raises
DEEP_SUM = "x = hp.uniform(0, 1)\ny = 1" + " + 1" * 1200 + "\nx"  # plain Python compiles this


@CI
@given(cells())
@example((DEEP_SUM, ["x"]))
@example(("x = hp.uniform(0, 1)\ny = " + "-" * 100_000 + "1\nx", ["x"]))
@example(("x = hp.uniform(0, " + "9" * 400 + ")\nx", ["x"]))
@example(("x = hp.quniform(0, 1, " + "9" * 400 + ")\nx", ["x"]))
def test_parse_accepts_a_generated_cell_or_names_its_faulty_line(cell: tuple[str, list[str]]) -> None:
    check_parse(cell[0])


@CI
@given(st.text(max_size=300))
@example("x = hp.uniform(0, 1)\n\x00")
def test_parse_answers_arbitrary_text(text: str) -> None:
    check_parse(text)


@CI_MAGIC
@given(line=option_lines(), cell=cells())
@example(line="--trials 2 --storage none", cell=(DEEP_SUM, ["x"]))
@example(line="--trials 1 --storage none", cell=(BAD_DEDENT, ["x"]))
@example(line="--trials 2 --algo random --storage none", cell=("x = hp.int(0, " + "9" * 400 + ")\nx", ["x"]))
@example(line="--trials 2 --algo gp --storage none", cell=("x = hp.int(0, " + "9" * 30 + ")\nx", ["x"]))
@example(line="--trials 2 --algo tpe --storage none", cell=("x = hp.uniform(-1e308, 1e308)\nx", ["x"]))
@example(line="--trials 2 --algo tpe --storage none", cell=("x = hp.quniform(0, 1e300, 1e-300)\nx", ["x"]))
@example(line='--trials 2 --name "a b --storage none', cell=("x = hp.uniform(0, 1)\nx", ["x"]))
@example(line="--trials 2 --timeout nan --storage none", cell=("x = hp.uniform(0, 1)\nx", ["x"]))
def test_hptune_runs_a_cell_or_refuses_it_with_a_usage_error(shell: InteractiveShell, line: str,
                                                            cell: tuple[str, list[str]]) -> None:
    check_magic(shell, line, cell[0])


HUGE_PARALLEL = textwrap.dedent("""
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))  # a runaway allocation fails fast here
    from IPython.core.interactiveshell import InteractiveShell
    from hpwidgets.magic import load_ipython_extension
    shell = InteractiveShell.instance()
    load_ipython_extension(shell)
    try:
        shell.run_cell_magic("hptune", "--trials 2 --parallel 100000000 --storage none", "x = hp.uniform(0, 1)\\nx")
        print("ran")
    except BaseException as error:
        print(f"{type(error).__name__}: {error}")
""")


def test_a_huge_parallel_option_neither_hangs_nor_exhausts_memory() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", HUGE_PARALLEL], capture_output=True, text=True, timeout=60,
                          env=env, check=False)
    last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    assert last == "ran" or last.startswith(("UsageError", "ValueError")), f"{last}\n{done.stderr[-2000:]}"
