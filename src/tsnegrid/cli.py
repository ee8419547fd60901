"""Command line: a thin layer that parses options into ``Settings`` and calls the library.

Only click and the light ``settings``/``errors`` modules load at start-up; every stage (numpy,
scipy, onnxruntime, the service's FastAPI) is imported inside the command that runs it,
so ``--help`` and option errors answer at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tsnegrid import errors
from tsnegrid.settings import ASSIGN_METRICS, EMBED_SETTINGS, MAX_MOVED, REDUCER_NAMES, Settings

if TYPE_CHECKING:
    import numpy as np

EXIT_CODES: list[tuple[type[BaseException], int]] = [
    (errors.NoImagesError, 3),
    (errors.InputError, 2),
    (errors.MissingDependencyError, 4),
    (errors.ModelError, 5),
    (errors.TsnegridError, 1),
]


class TsnegridCommand(click.Command):
    """Turns library errors into one clear line and an exit code (a traceback only with --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        from tsnegrid import logs

        logs.configure(bool(ctx.find_root().params.get("debug")))
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C: say what was kept, exit as shells expect
            if ctx.find_root().params.get("debug"):
                raise
            note = str(exc) if isinstance(exc, errors.Interrupted) else (
                "no output written; vectors embedded before it are in the embedding cache")
            bars = not (ctx.find_root().params.get("quiet") or ctx.params.get("quiet_here"))
            click.echo(f"{chr(10) if bars else ''}Interrupted: {note}", err=True)
            ctx.exit(130)
        except errors.TsnegridError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            code = next(c for cls, c in EXIT_CODES if isinstance(exc, cls))
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(code)
        except OSError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"Error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(1)
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"Error: internal error ({type(exc).__name__}: {exc}); run with --debug "
                       "for the traceback", err=True)
            ctx.exit(70)


def settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One option per ``Settings`` field, default and help taken from the field."""
    for f in reversed(fields(Settings)):
        name = "--" + f.name.replace("_", "-")
        default = None if f.default is MISSING else f.default
        helptext = f.metadata["help"]
        if f.type in ("bool", bool):
            command = click.option(name, is_flag=True, default=default, help=helptext)(command)
        elif f.name == "cache_dir":
            command = click.option(name, type=click.Path(path_type=Path), default=None,
                                   help=helptext)(command)
        else:
            kind = {"int": int, "float": float}.get(str(getattr(f.type, "__name__", f.type)),
                                                      str)
            command = click.option(name, type=kind, default=default, show_default=True,
                                   help=helptext)(command)
    return command


class Bars:
    """A tqdm bar per stage on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=f"{stage:<7}", unit="img"
                                          if stage in ("embed", "render", "pyramid") else "step",
                                          leave=True, file=sys.stderr, dynamic_ncols=True)
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()


@click.group()
@click.version_option(package_name="tsnegrid")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or summary.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """Lay out images on a grid so that images that look alike sit next to each other."""
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet
    ctx.obj["debug"] = debug  # logging is set up by the command that runs (tsnegrid.logs)


def quiet_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--quiet`` after the subcommand too (``tsnegrid build ... --quiet``)."""
    return click.option("--quiet", "-q", "quiet_here", is_flag=True,
                        help="No progress bars or summary.")(command)


@cli.command(cls=TsnegridCommand)
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Output folder (created if missing).")
@click.option("--vectors", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Use these vectors (N x D .npy, one row per listed image) instead of a model.")
@click.option("--coords", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Use these 2-D points (N x 2 .npy) instead of embedding and reducing.")
@click.option("--metadata", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV or JSON of per-image fields (joined on path or file name), shown on "
                   "hover and as colours in the --html viewer.")
@settings_options
@quiet_option
@click.pass_context
def build(ctx: click.Context, sources: tuple[str, ...], out: Path, vectors: Path | None,
          coords: Path | None, metadata: Path | None, quiet_here: bool,
          **options: Any) -> None:
    """Build a grid from folders, globs or list files of images.

    Writes grid.jpg (or .png/.webp), layout.csv, layout.json and report.txt into --out.
    """
    from tsnegrid.pipeline import build as run_build

    quiet = ctx.obj["quiet"] or quiet_here
    settings = Settings(**options)
    layout = run_build(sources, out, settings, vectors=vectors, coords=coords,
                       metadata=metadata, progress=Bars(quiet))
    if not quiet:
        written = [f"grid.{settings.format}"] if "render" in layout.timings else []
        written += ["grid.dzi"] if "pyramid" in layout.timings else []
        written += ["layout.csv", "layout.json", "report.txt"]
        written += ["index.html"] if settings.html else []
        click.echo(f"placed {len(layout.paths)} images on a {layout.rows}x{layout.cols} grid; "
                   f"skipped {len(layout.skipped)}; wrote {out}/{', '.join(written)}", err=True)
        for s in layout.skipped:
            click.echo(f"  skipped {s.path}: {s.reason}", err=True)


@cli.command(cls=TsnegridCommand)
@click.argument("sources", nargs=-1, required=True)
@click.option("--to", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder of an earlier build (holds layout.json).")
@click.option("--max-moved", type=float, default=MAX_MOVED, show_default=True,
              help="Fraction of the old images that may change cell.")
@quiet_option
@click.pass_context
def add(ctx: click.Context, sources: tuple[str, ...], out: Path, max_moved: float,
        quiet_here: bool) -> None:
    """Add new images to an existing layout: old images keep their cells (but for at most
    --max-moved of them), new ones go next to their look-alikes, the grid grows when full."""
    from tsnegrid.pipeline import add as run_add

    quiet = ctx.obj["quiet"] or quiet_here
    result = run_add(sources, out, max_moved=max_moved, progress=Bars(quiet))
    if not quiet:
        lay = result.layout
        click.echo(f"added {result.added} images; {result.moved} old images moved; grid "
                   f"{lay.rows}x{lay.cols} (+{result.rows_added} rows); rewrote {out}", err=True)


def embed_settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ``settings_options`` that the embed stage reads (``EMBED_SETTINGS``)."""
    donor = settings_options(lambda: None)
    params = [p for p in donor.__click_params__  # type: ignore[attr-defined]
              if p.name in EMBED_SETTINGS]
    command.__click_params__ = [*getattr(command, "__click_params__", []), *params]  # type: ignore[attr-defined]
    return command


@cli.command("embed", cls=TsnegridCommand)
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output .npy (N x D float32, one row per readable image); the paths, in "
                   "row order, go beside it in OUT.paths.txt, and the lite0 model's concepts "
                   "in OUT.concepts.json.")
@embed_settings_options
@click.pass_context
def embed_cmd(ctx: click.Context, sources: tuple[str, ...], out: Path, **options: Any) -> None:
    """Embed images into vectors with the build's model, settings and cache.

    Feed them back with: tsnegrid build OUT.paths.txt --vectors OUT --out DIR
    """
    from tsnegrid.embed.vectors import export_vectors

    quiet = ctx.obj["quiet"]
    done = export_vectors(sources, out, Settings(**options), progress=Bars(quiet))
    if not quiet:
        also = f", {done.paths} and {done.concepts}" if done.concepts else f" and {done.paths}"
        click.echo(f"embedded {done.n} images ({done.dim}-d, {done.model_id}); skipped "
                   f"{len(done.skipped)}; wrote {done.vectors}{also}", err=True)
        for s in done.skipped:
            click.echo(f"  skipped {s.path}: {s.reason}", err=True)


def _load_npy(path: Path, what: str) -> np.ndarray:
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise errors.InputError(f"{what} {path}: cannot read as a .npy array ({exc})") from exc


@cli.command("assign", cls=TsnegridCommand)
@click.argument("points", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--grid", "grid_text", required=True, help="Grid shape ROWSxCOLS.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output .npy: cell index row*cols+col per point.")
@click.option("--method", default=Settings.assign, show_default=True,
              help="Solver: auto or one of the registered solvers.")
@click.option("--metric", type=click.Choice(list(ASSIGN_METRICS)), default="sqeuclidean",
              show_default=True, help="Cost between a point and a cell centre.")
@click.option("--fit/--no-fit", default=True, show_default=True,
              help="Scale the points onto the grid first (off: points are in grid units).")
def assign_cmd(points: Path, grid_text: str, out: Path, method: str, metric: str,
               fit: bool) -> None:
    """Snap N x 2 points to distinct grid cells, minimising total cost."""
    import numpy as np

    from tsnegrid.arrange import assign as assign_mod
    from tsnegrid.arrange.grid import fit_to_grid, parse_grid

    shape = parse_grid(grid_text)
    if shape is None:
        raise errors.GridError("assign needs an explicit --grid ROWSxCOLS")
    rows, cols = shape
    pts = assign_mod.validate_points(_load_npy(points, "points"), rows, cols)
    if fit:
        pts = fit_to_grid(pts, rows, cols)
    cells = assign_mod.assign(pts, rows, cols, method=method, metric=metric)
    np.save(out, cells)


@cli.command("reduce", cls=TsnegridCommand)
@click.argument("vectors", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output .npy: N x 2 float.")
@click.option("--method", default=Settings.reducer, show_default=True,
              type=click.Choice(list(REDUCER_NAMES)), help="Reduction method.")
@click.option("--seed", default=Settings.seed, show_default=True, type=int, help="Random seed.")
def reduce_cmd(vectors: Path, out: Path, method: str, seed: int) -> None:
    """Reduce N x D vectors to N x 2 points."""
    import numpy as np

    from tsnegrid import reduce as reduce_mod

    coords = reduce_mod.reduce(_load_npy(vectors, "vectors"), method=method, seed=seed)
    np.save(out, coords)


def main() -> None:
    """Console entry point."""
    cli(obj={})

from tsnegrid.service.cli import apps, serve  # noqa: E402

cli.add_command(serve)
cli.add_command(apps)
