"""Service settings from the environment: lists in either spelling, and a bad value answered in
one line naming the variable (no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tsnegrid.service.config import ConfigError, load_config


@pytest.mark.parametrize(("value", "wanted"), [
    ("127.0.0.1/32", ["127.0.0.1/32"]),
    ("10.1.0.0/16, images.intranet", ["10.1.0.0/16", "images.intranet"]),
    ('["10.1.0.0/16", "images.intranet"]', ["10.1.0.0/16", "images.intranet"]),
    ("", []),
])
def test_url_allow_is_a_json_or_comma_separated_list(value: str, wanted: list[str],
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSNEGRID_SERVICE_URL_ALLOW", value)
    assert load_config(data_dir=tmp_path).url_allow == wanted


@pytest.mark.parametrize(("name", "value", "words"), [
    ("URL_ALLOW", "[1,", "not a JSON list"),
    ("URL_ALLOW", "10.0.0.0/33", "not a network"),
    ("PORT", "abc", "valid integer"),
    ("WORKERS", "-1", "greater than or equal to 0"),
    ("URL_TIMEOUT_S", "soon", "valid number"),
    ("SCHEDULER", "host:8786", "tcp://"),
])
def test_a_bad_setting_stops_serve_with_one_line_naming_it(name: str, value: str, words: str,
                                                           tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    variable = f"TSNEGRID_SERVICE_{name}"
    result = subprocess.run([sys.executable, "-m", "tsnegrid.service", "--data",
                             str(tmp_path / "data")], env={**os.environ, variable: value},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {variable}: ") and words in lines[0], lines[0]
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_config(data_dir=tmp_path)
