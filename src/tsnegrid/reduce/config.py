"""The reduce stage's settings."""

from __future__ import annotations

from dataclasses import dataclass

from tsnegrid.settings import Settings


@dataclass(frozen=True)
class ReduceConfig:
    """Reduction method and seed."""

    method: str = Settings.reducer
    seed: int = Settings.seed

    @classmethod
    def from_settings(cls, s: Settings) -> ReduceConfig:
        """The reduce stage's part of ``s``."""
        return cls(method=s.reducer, seed=s.seed)
