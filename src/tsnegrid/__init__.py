"""tsnegrid: lay out images on a grid so that images that look alike sit next to each other.

The public names load on first use (PEP 562), so ``import tsnegrid`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tsnegrid.layout import Layout
    from tsnegrid.pipeline import add, build
    from tsnegrid.settings import Settings

_PUBLIC = {"Layout": "tsnegrid.layout", "Settings": "tsnegrid.settings",
           "build": "tsnegrid.pipeline", "add": "tsnegrid.pipeline"}

__all__ = ["Layout", "Settings", "add", "build"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tsnegrid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
