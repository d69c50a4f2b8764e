"""`levit predict`: classify photos with ImageNet labels (tables on stdout, or JSON with --json)."""

from __future__ import annotations

import click

from .backend_option import backend_option
from .options import crop_pct_option, load_model, model_options

PROGRESS_MIN_IMAGES = 8  # show a progress bar on stderr from this many images on
PIPELINE_MIN_BATCHES = 4  # from this many batches on, worker processes (as `levit eval`) pay for their start-up


@click.command()
@click.argument("images", nargs=-1, required=True)
@model_options
@click.option("-k", "--top-k", "k", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="How many classes to show per image.")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Images per forward pass.")
@crop_pct_option
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes, as in `levit eval` (0: in this process). Default: one per core when there "
                   f"are at least {PIPELINE_MIN_BATCHES} batches, else 0.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per image in input order.")
@backend_option
@click.pass_context
def predict(ctx: click.Context, images: tuple[str, ...], weights: str | None, model: str | None, k: int,
            batch_size: int, crop_pct: float, workers: int | None, as_json: bool, backend: str = "numpy") -> None:
    """Classify IMAGES: files, directories (searched recursively for image files) or globs (`photos/*.jpg`,
    `photos/**/*.png`; quote them to let levit expand them).

    Uses --weights FILE, or the official weights of --model (default levit_128s), downloaded and converted
    into the cache ($LEVIT_HOME) on first use. An image that cannot be read gets an error entry and the
    others are still classified; the exit code is 1 if any image failed.
    """
    from rich.markup import escape

    from levit_np.images.classify import ImageResult, classify

    from .console import err, print_json
    from .inputs import expand

    from .main import session

    verbose = session(ctx).verbose
    inputs = expand(list(images))
    paths = [item.path for item in inputs if item.error is None]
    if workers is None:
        workers = None if len(paths) >= PIPELINE_MIN_BATCHES * batch_size else 0
    with _progress(len(paths)) as on_progress:
        if workers == 0:
            net = load_model(weights, model, backend) if paths else None  # no download when no input is readable
            classified = iter(classify(net, paths, k=k, batch_size=batch_size, crop_pct=crop_pct,
                                       on_progress=on_progress, raise_unexpected=verbose))
        else:
            classified = _in_workers(ctx, weights, model, backend, paths, workers, k=k, batch_size=batch_size,
                                     crop_pct=crop_pct, on_progress=on_progress, raise_unexpected=verbose)
        results = [ImageResult(item.path, error=item.error) if item.error else next(classified) for item in inputs]
    failed = [result for result in results if result.error is not None]
    if as_json:
        print_json([result.to_json() for result in results])
    else:
        for result in results:
            if result.error is not None:
                err.print(f"[red]error:[/] {escape(result.error)}", highlight=False, soft_wrap=True)
            else:
                _print_table(result)
        if failed and len(results) > 1:
            err.print(f"{len(failed)} of {len(results)} images failed", highlight=False, soft_wrap=True)
    if failed:
        ctx.exit(1)


def _in_workers(ctx, weights, model, backend, paths, workers, **options):
    """classify() in worker processes (levit_np.evaluation.pipeline), results in input order."""
    import os

    from levit_np.evaluation.engine import ModelSpec
    from levit_np.evaluation.pipeline import classify_in_workers

    from .main import session
    from .options import model_file

    spec = ModelSpec(weights=os.path.abspath(model_file(weights, model)), backend=backend)
    threads = session(ctx).threads or 1
    return iter(classify_in_workers(spec, paths, workers=workers, threads=threads, **options))


def _print_table(result) -> None:
    from rich.text import Text

    from .console import show, table

    rows = table("#", "index", "wnid", "label", "probability", left=0)
    rows.columns[2].justify = rows.columns[3].justify = "left"
    for rank, p in enumerate(result.predictions, 1):
        rows.add_row(str(rank), str(p.index), p.wnid, Text(p.label), f"{p.probability:.4f}")
    show(rows, title=result.image)


def _progress(total: int):
    """A context manager yielding `on_progress(done, total)`: a transient bar on stderr for many images."""
    import contextlib

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .console import err

    if total < PROGRESS_MIN_IMAGES:
        return contextlib.nullcontext(None)

    @contextlib.contextmanager
    def bar():
        with Progress(TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, transient=True) as progress:
            task = progress.add_task("classifying", total=total)
            yield lambda done, _total: progress.update(task, completed=done)

    return bar()
