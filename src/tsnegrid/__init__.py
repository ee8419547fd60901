"""tsnegrid: lay out images on a grid so that images that look alike sit next to each other."""

from tsnegrid.layout import Layout
from tsnegrid.pipeline import build
from tsnegrid.settings import Settings

__all__ = ["Layout", "Settings", "build"]
