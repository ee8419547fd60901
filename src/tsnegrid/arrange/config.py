"""The arrange stage's settings."""

from __future__ import annotations

from dataclasses import dataclass

from tsnegrid.settings import Settings


@dataclass(frozen=True)
class ArrangeConfig:
    """Grid shape (None: automatic), assignment solver, refinement mode and seed."""

    shape: tuple[int, int] | None = None
    assign: str = Settings.assign
    refine: str = Settings.refine
    seed: int = Settings.seed

    @classmethod
    def from_settings(cls, s: Settings) -> ArrangeConfig:
        """The arrange stage's part of ``s`` (the grid string parsed, so a bad one fails here)."""
        from tsnegrid.arrange.grid import parse_grid

        return cls(shape=parse_grid(s.grid), assign=s.assign, refine=s.refine, seed=s.seed)
