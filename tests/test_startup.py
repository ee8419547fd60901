"""Start-up stays light: the CLI and every command's --help load no stage and no heavy library.

Checked on what a fresh interpreter has imported (not on time, which depends on the machine).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tsnegrid import settings

# logging too: the commands set it up when they run (tsnegrid.logs), so --help never loads it
HEAVY = ("logging", "numpy", "scipy", "sklearn", "numba", "onnxruntime", "onnx", "fastapi",
         "sqlalchemy", "PIL", "openTSNE", "torch", "pydantic", "uvicorn", "tqdm", "dask")

PROBE = """
import json, sys
from tsnegrid.cli import cli
args = json.loads(sys.argv[1])
if args:
    try:
        cli(args, obj={})
    except SystemExit:
        pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _imported(args: list[str]) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], check=True,
                         capture_output=True, text=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_import_cli_loads_no_heavy_library() -> None:
    assert not _imported([]) & set(HEAVY)


@pytest.mark.parametrize("args", [["--help"], ["build", "--help"], ["add", "--help"],
                                  ["assign", "--help"], ["reduce", "--help"], ["serve", "--help"],
                                  ["apps", "--help"], ["apps", "create", "--help"],
                                  ["--version"]])
def test_help_loads_no_heavy_library(args: list[str]) -> None:
    assert not _imported(args) & set(HEAVY)


def test_cli_name_lists_match_the_stages() -> None:
    from tsnegrid.arrange import assign, incremental
    from tsnegrid.reduce import REDUCERS

    assert tuple(REDUCERS) == settings.REDUCER_NAMES
    assert assign.METRICS == settings.ASSIGN_METRICS
    assert incremental.MAX_MOVED == settings.MAX_MOVED
