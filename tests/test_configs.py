"""Each stage's config is built from Settings in one place, and agrees with its defaults."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from tsnegrid.arrange import ArrangeConfig
from tsnegrid.embed import EmbedConfig
from tsnegrid.errors import GridError
from tsnegrid.reduce import ReduceConfig
from tsnegrid.regions import RegionsConfig
from tsnegrid.render import RenderConfig
from tsnegrid.settings import Settings

CHANGED = Settings(model="pixels", features="colour", colour_weight=0.5, reducer="pca",
                   assign="exact", refine="off", grid="7x9", tile=32, fit=True,
                   background="#102030", format="png", html=True, tiles=True, seed=5,
                   batch_size=4, threads=1, workers=2, scheduler="tcp://127.0.0.1:1",
                   max_pixels=1234, max_image_pixels=5678, cache_dir=Path("/tmp/x"),
                   concepts=3, region_size=20, labels=True)


def test_configs_carry_every_setting_of_their_stage() -> None:
    assert EmbedConfig.from_settings(CHANGED) == EmbedConfig(
        model="pixels", cache_dir=Path("/tmp/x"), threads=1, batch_size=4,
        background=(16, 32, 48), max_pixels=5678, features="colour", colour_weight=0.5,
        scheduler="tcp://127.0.0.1:1", workers=2, concepts=3)
    assert ReduceConfig.from_settings(CHANGED) == ReduceConfig(method="pca", seed=5)
    assert ArrangeConfig.from_settings(CHANGED) == ArrangeConfig(shape=(7, 9), assign="exact",
                                                                 refine="off", seed=5)
    assert RenderConfig.from_settings(CHANGED) == RenderConfig(
        tile=32, fit=True, background=(16, 32, 48), format="png", max_pixels=1234,
        max_image_pixels=5678, tiles=True, html=True, labels=True)
    assert RegionsConfig.from_settings(CHANGED) == RegionsConfig(size=20)


@pytest.mark.parametrize("config", [EmbedConfig, ReduceConfig, ArrangeConfig, RenderConfig,
                                    RegionsConfig])
def test_config_defaults_are_the_settings_defaults(config: type) -> None:
    """A config built from default Settings equals the config's own defaults (where it has
    them), so no default is written twice with two values."""
    built = config.from_settings(Settings())
    # EmbedConfig's features default is the model alone ("semantic"), for callers that embed
    # without Settings; the Settings default mixes in colour.
    checked = [f for f in fields(config) if f.default is not MISSING and f.name != "features"]
    assert checked
    for f in checked:
        assert getattr(built, f.name) == f.default, f.name


def test_bad_grid_fails_when_the_config_is_built() -> None:
    with pytest.raises(GridError, match="grid"):
        ArrangeConfig.from_settings(Settings(grid="32by32"))


def test_import_tsnegrid_is_light() -> None:
    """``import tsnegrid`` loads no stage and no numerical library; the names load on use."""
    code = ("import sys, tsnegrid; heavy = [m for m in ('numpy', 'tsnegrid.pipeline', "
            "'tsnegrid.embed', 'tsnegrid.arrange') if m in sys.modules]; print(heavy); "
            "tsnegrid.build; print('tsnegrid.pipeline' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "True"
