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


DEBUG_HELP = "Show tracebacks and debug logs."
QUIET_HELP = "No progress bars or summary line (skipped files are still listed)."


class TsnegridCommand(click.Command):
    """Turns library errors into one clear line and an exit code (a traceback only with --debug).

    ``--debug`` and ``--quiet`` work before the command (``tsnegrid --debug build ...``) and
    after it (``tsnegrid build ... --debug``); the command reads both from ``ctx.obj``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params += [click.Option(["--debug", "debug_here"], is_flag=True, help=DEBUG_HELP),
                        click.Option(["--quiet", "-q", "quiet_here"], is_flag=True,
                                     help=QUIET_HELP)]

    def invoke(self, ctx: click.Context) -> Any:
        from tsnegrid import logs

        root = ctx.find_root().params
        debug = bool(ctx.params.pop("debug_here", False) or root.get("debug"))
        quiet = bool(ctx.params.pop("quiet_here", False) or root.get("quiet"))
        ctx.ensure_object(dict)
        ctx.obj.update(debug=debug, quiet=quiet)
        logs.configure(debug)
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C: say what was kept, exit as shells expect
            if debug:
                raise
            note = str(exc) if isinstance(exc, errors.Interrupted) else (
                "no output written; vectors embedded before it are in the embedding cache")
            click.echo(f"{chr(10) if not quiet else ''}Interrupted: {note}", err=True)
            ctx.exit(130)
        except errors.TsnegridError as exc:
            if debug:
                raise
            code = next(c for cls, c in EXIT_CODES if isinstance(exc, cls))
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(code)
        except OSError as exc:
            if debug:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"Error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(1)
        except Exception as exc:
            if debug:
                raise
            click.echo(f"Error: internal error ({type(exc).__name__}: {exc}); run with --debug "
                       "for the traceback", err=True)
            ctx.exit(70)


def plural(n: int, word: str) -> str:
    """``1 image``, ``2 images``, ``1,024 images``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def echo_skipped(skipped: Any, undrawn: Any = ()) -> None:
    """The files left out (and those placed but not drawn), one line each, even with --quiet:
    they are what the build lost."""
    for s in skipped:
        click.echo(f"  skipped {s.path}: {s.reason}", err=True)
    for s in undrawn:
        click.echo(f"  not drawn {s.path}: {s.reason}", err=True)


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
@click.option("--debug", is_flag=True, help=DEBUG_HELP)
@click.option("--quiet", "-q", is_flag=True, help=QUIET_HELP)
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """Lay out images on a grid so that images that look alike sit next to each other."""
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet
    ctx.obj["debug"] = debug  # logging is set up by the command that runs (tsnegrid.logs)


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
@click.pass_context
def build(ctx: click.Context, sources: tuple[str, ...], out: Path, vectors: Path | None,
          coords: Path | None, metadata: Path | None, **options: Any) -> None:
    """Build a grid from folders, globs or list files of images.

    Writes grid.jpg (or .png/.webp), layout.csv, layout.json and report.txt into --out.
    """
    from tsnegrid.pipeline import build as run_build

    quiet = ctx.obj["quiet"]
    settings = Settings(**options)
    layout = run_build(sources, out, settings, vectors=vectors, coords=coords,
                       metadata=metadata, progress=Bars(quiet))
    if not quiet:
        written = [f"grid.{settings.format}"] if "render" in layout.timings else []
        written += ["grid.dzi"] if "pyramid" in layout.timings else []
        written += ["layout.csv", "layout.json", "report.txt"]
        written += ["index.html"] if settings.html else []
        merged = (f"; {plural(len(layout.duplicates), 'near-duplicate')} share a cell"
                  if layout.duplicates else "")
        click.echo(f"placed {plural(len(layout.paths), 'image')} on a {layout.rows}x"
                   f"{layout.cols} grid; skipped {len(layout.skipped)}{merged}; wrote "
                   f"{out}/{', '.join(written)}", err=True)
        if layout.transparent_faint:  # they look like empty cells: say why here too
            click.echo(f"  note: {layout.transparent_note}", err=True)
    echo_skipped(layout.skipped, layout.undrawn)


@cli.command(cls=TsnegridCommand)
@click.argument("sources", nargs=-1, required=True)
@click.option("--to", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder of an earlier build (holds layout.json).")
@click.option("--max-moved", type=float, default=MAX_MOVED, show_default=True,
              help="Fraction of the old images that may change cell.")
@click.pass_context
def add(ctx: click.Context, sources: tuple[str, ...], out: Path, max_moved: float) -> None:
    """Add new images to an existing layout: old images keep their cells (but for at most
    --max-moved of them), new ones go next to their look-alikes, the grid grows when full."""
    from tsnegrid.pipeline import add as run_add

    quiet = ctx.obj["quiet"]
    result = run_add(sources, out, max_moved=max_moved, progress=Bars(quiet))
    lay = result.layout
    if not quiet:
        click.echo(f"added {plural(result.added, 'image')}; {plural(result.moved, 'old image')} "
                   f"moved; grid {lay.rows}x{lay.cols} (+{plural(result.rows_added, 'row')}); "
                   f"rewrote {out}", err=True)
    echo_skipped(result.skipped, lay.undrawn)


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
        click.echo(f"embedded {plural(done.n, 'image')} ({done.dim}-d, {done.model_id}); "
                   f"skipped {len(done.skipped)}; wrote {done.vectors}{also}", err=True)
    echo_skipped(done.skipped)


def _npy_out(out: Path) -> Path:
    """The file ``np.save(out, ...)`` writes (it adds ``.npy`` to a name without it), checked
    before any work (click's ``dir_okay=False`` has refused a folder already)."""
    from tsnegrid.destination import check_out_file

    path = out if out.suffix == ".npy" else out.with_name(out.name + ".npy")
    check_out_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


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
@click.pass_context
def assign_cmd(ctx: click.Context, points: Path, grid_text: str, out: Path, method: str,
               metric: str, fit: bool) -> None:
    """Snap N x 2 points to distinct grid cells, minimising total cost."""
    from tsnegrid.arrange import assign as assign_mod
    from tsnegrid.arrange.grid import fit_to_grid, parse_grid
    from tsnegrid.publish import save_npy

    shape = parse_grid(grid_text)
    if shape is None:
        raise errors.GridError("assign needs an explicit --grid ROWSxCOLS")
    rows, cols = shape
    target = _npy_out(out)
    pts = assign_mod.validate_points(_load_npy(points, "points"), rows, cols)
    if fit:
        pts = fit_to_grid(pts, rows, cols)
    cells = assign_mod.assign(pts, rows, cols, method=method, metric=metric)
    save_npy(target, cells)
    if not ctx.obj["quiet"]:
        click.echo(f"assigned {plural(len(cells), 'point')} to distinct cells of a {rows}x{cols} "
                   f"grid ({method}, {metric}); wrote {target}", err=True)


@cli.command("reduce", cls=TsnegridCommand)
@click.argument("vectors", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output .npy: N x 2 float.")
@click.option("--method", default=Settings.reducer, show_default=True,
              type=click.Choice(list(REDUCER_NAMES)), help="Reduction method.")
@click.option("--seed", default=Settings.seed, show_default=True, type=int, help="Random seed.")
@click.pass_context
def reduce_cmd(ctx: click.Context, vectors: Path, out: Path, method: str, seed: int) -> None:
    """Reduce N x D vectors to N x 2 points."""
    from tsnegrid import reduce as reduce_mod
    from tsnegrid.publish import save_npy

    target = _npy_out(out)
    data = _load_npy(vectors, "vectors")
    coords = reduce_mod.reduce(data, method=method, seed=seed)
    save_npy(target, coords)
    if not ctx.obj["quiet"]:
        dim = f"{data.shape[1]}-d " if data.ndim == 2 else ""
        click.echo(f"reduced {plural(len(coords), f'{dim}vector')} to 2-D ({method}, seed "
                   f"{seed}); wrote {target}", err=True)


def main() -> None:
    """Console entry point."""
    cli(obj={})

from tsnegrid.service.cli import apps, serve  # noqa: E402

cli.add_command(serve)
cli.add_command(apps)
