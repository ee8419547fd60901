"""Docs and code agree: README commands match CI, the options table matches Settings."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from tsnegrid.settings import Settings, setting_help

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci_lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines()
                if ln and not ln.startswith(("#", "set ", "cd ", ".ci/", "bash .ci/", "export ",
                                                          "TSNEGRID_TEST_DATABASE_URL="))]
    assert len(ci_lines) == 1 and "pytest" in ci_lines[0]
    assert ci_lines[0] in readme


def test_readme_options_table_matches_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- settings:start -->")[1].split("<!-- settings:end -->")[0]
    rows = {m.group(1): (m.group(2), m.group(3)) for m in
            re.finditer(r"^\| `--([\w-]+)` \| `([^`]*)` \| (.*) \|$", table, re.M)}
    helps = setting_help()
    assert set(rows) == {f.name.replace("_", "-") for f in fields(Settings)}
    for f in fields(Settings):
        default, text = rows[f.name.replace("_", "-")]
        assert default == str(f.default), f.name
        assert text == helps[f.name], f.name
