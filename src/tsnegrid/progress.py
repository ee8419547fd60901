"""Progress reporting: the library calls a function the caller supplies; it never draws."""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: ``done`` of ``total`` units of ``stage`` are finished."""


def no_progress(stage: str, done: int, total: int) -> None:
    """The default: report nothing."""
