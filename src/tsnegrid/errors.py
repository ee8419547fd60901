"""Named exceptions. The CLI and the HTTP layer map these to messages and status codes."""

from __future__ import annotations


class TsnegridError(Exception):
    """Base class of every error tsnegrid raises on purpose."""


class InputError(TsnegridError, ValueError):
    """Bad user input: a file, an array or an option that cannot be used as given."""


class ImageError(InputError):
    """One image cannot be read; the loader skips it and reports why."""


class NoImagesError(InputError):
    """Nothing usable is left to lay out."""


class GridError(InputError):
    """The grid shape is malformed or too small for the images."""


class GridTooSmallError(GridError):
    """A grid of ``rows`` x ``cols`` cannot hold ``n`` images. The message gives the CLI's
    advice; other front ends (the HTTP service) word their own from the fields."""

    def __init__(self, rows: int, cols: int, n: int) -> None:
        super().__init__(f"grid {rows}x{cols} has {rows * cols} cells, too few for {n} images; "
                         "use a larger --grid or --grid auto")
        self.rows, self.cols, self.n = rows, cols, n

    def __reduce__(self) -> tuple[type[GridTooSmallError], tuple[int, int, int]]:
        return type(self), (self.rows, self.cols, self.n)  # pickles across processes


class OutputTooLargeError(InputError):
    """The requested mosaic would exceed the configured pixel limit."""


class MissingDependencyError(TsnegridError, ImportError):
    """An optional backend was requested but its package is not installed."""

    def __init__(self, package: str, extra: str | None = None) -> None:
        hint = f"pip install 'tsnegrid[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"this option needs the package {package!r}; install it with: {hint}")
        self.package = package


class SolverError(TsnegridError):
    """A grid solver failed to reach its guarantee (a bug, not bad input)."""


class ModelError(TsnegridError):
    """An embedding model cannot be loaded, exported or run."""


class ClusterError(TsnegridError, ConnectionError):
    """The Dask scheduler cannot be reached, stopped answering or was lost: not the input's fault,
    so the same work may be tried again once the cluster is back."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a build, raised after the work done so far was saved; the message says
    what was kept (a ``KeyboardInterrupt``, so code that handles Ctrl-C still sees one)."""
