"""Logging for the command line, set up when a command runs (never at start-up, so ``--help``
does not import ``logging``)."""

from __future__ import annotations

import logging


def configure(debug: bool) -> None:
    """WARNING and above in one line each (DEBUG with ``debug``); Dask's own error logs are
    dropped unless ``debug``."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not debug:
        for handler in logging.getLogger().handlers:
            handler.addFilter(no_dask_errors)


def no_dask_errors(record: logging.LogRecord) -> bool:
    """Drop Dask's own error logs (a lost scheduler logs ~35 lines of tracebacks): the build
    reports that loss in one line; ``--debug`` shows them."""
    return not (record.levelno >= logging.ERROR
                and record.name.startswith(("distributed", "tornado")))
