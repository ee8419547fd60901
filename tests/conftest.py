"""Shared fixtures: a per-session model/embedding cache, labelled emoji subsets, image makers."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo" / "emoji-1024"

# Servers under test serve gRPC only on a port the test picks: many run at once (and several
# test runs on one machine), so the fixed default port would collide.
os.environ.setdefault("TSNEGRID_SERVICE_GRPC_PORT", "0")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache per test session, so the ONNX export runs once."""
    return tmp_path_factory.mktemp("cache")


def emoji_labels() -> dict[str, str]:
    """Demo file name -> Unicode category."""
    with open(DEMO / "labels.csv", newline="") as f:
        return {r["file"]: r["category"] for r in csv.DictReader(f)}


def emoji_subset(dest: Path, n: int) -> list[Path]:
    """Copy n evenly spaced demo images into dest; return their paths in sorted order."""
    names = sorted(emoji_labels())
    step = max(1, len(names) // n)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names[::step][:n]:
        shutil.copy(DEMO / "images" / name, dest / name)
        out.append(dest / name)
    return sorted(out)


@pytest.fixture
def emoji_dir(tmp_path: Path) -> Path:
    """A folder of 24 demo emoji."""
    emoji_subset(tmp_path / "emoji", 24)
    return tmp_path / "emoji"


def solid(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30),
          fmt: str | None = None) -> Path:
    """Write a solid-colour RGB image."""
    Image.new("RGB", size, colour).save(path, format=fmt)
    return path


def noise(path: Path, seed: int, size: tuple[int, int] = (48, 48)) -> Path:
    """Write a random-noise RGB PNG."""
    arr = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path
