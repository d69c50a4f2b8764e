"""`levit predict`: classify photos (a table on stdout; JSON with --json, CSV with --csv)."""

from __future__ import annotations

from typing import Optional

import click

from .backend_option import backend_option
from .options import checked_size, crop_pct_option, load_model, model_options, size_option, threads_option

PROGRESS_MIN_IMAGES = 8  # show a progress bar on stderr from this many images on
PIPELINE_MIN_BATCHES = 4  # from this many batches on, worker processes (as `levit eval`) pay for their start-up


@click.command()
@click.argument("images", nargs=-1, required=True)
@model_options
@click.option("-k", "--top-k", "k", type=click.IntRange(1, 1000), default=5, show_default=True,
              help="How many classes to show per image.")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Images per forward pass.")
@size_option
@crop_pct_option
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes, as in `levit eval` (0: in this process). Default: one per core when there "
                   f"are at least {PIPELINE_MIN_BATCHES} batches, else 0.")
@click.option("--class-names", "class_names", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A text file with one class name per line, for a checkpoint whose head is not ImageNet's "
                   "1000 classes (e.g. a fine-tuned LeViT). Default: ImageNet's names for 1000 classes, else "
                   "'class 0', 'class 1', ...")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: the model, weights file and sha256 and preprocessing, then one object per image "
                   "in input order.")
@click.option("--csv", "as_csv", is_flag=True,
              help="Print CSV, one row per image in input order: image, then index, label and probability of "
                   "each of the top k, then error.")
@backend_option
@threads_option
@click.pass_context
def predict(ctx: click.Context, images: tuple[str, ...], weights: Optional[str], model: Optional[str], k: int,
            batch_size: int, size: Optional[tuple[int, int]], crop_pct: float, workers: Optional[int],
            class_names: Optional[str], as_json: bool, as_csv: bool, backend: str = "numpy") -> None:
    """Classify IMAGES: files, directories (searched recursively for image files) or globs (`photos/*.jpg`,
    `photos/**/*.png`; quote them to let levit expand them).

    Uses --weights FILE, or the official weights of --model (default levit_128s), downloaded and converted
    into the cache ($LEVIT_HOME) on first use. One image: a table of its top k. Several: one table, a row
    per image. An image that cannot be read gets an error line and the others are still classified; the exit
    code is 1 if any image failed.
    """
    from levit_np.images.classify import ImageResult, classify
    from levit_np.images.labels import read_class_names

    from .compiling import warm_up
    from .inputs import expand
    from .main import session

    if as_json and as_csv:
        raise click.UsageError("give either --json or --csv, not both")
    height, width = checked_size(size)
    inputs = expand(list(images))
    paths = [item.path for item in inputs if item.error is None]
    net = load_model(weights, model, backend) if paths else None  # no download when no input is readable
    if net is not None:
        if class_names is not None:
            net.class_names = read_class_names(class_names, net.config.num_classes)
        warm_up(net, (height, width), min(batch_size, len(paths)))  # a first compile says so, before the progress bar
    if workers is None:
        workers = None if len(paths) >= PIPELINE_MIN_BATCHES * batch_size else 0
    options = dict(k=k, batch_size=batch_size, crop_pct=crop_pct, size=(height, width),
                   raise_unexpected=session(ctx).verbose)
    with _progress(len(paths)) as on_progress:
        if workers == 0 or net is None:
            classified = iter(classify(net, paths, on_progress=on_progress, **options))
        else:
            classified = _in_workers(ctx, weights, model, backend, paths, workers, net, on_progress=on_progress,
                                     **options)
        results = [ImageResult(item.path, error=item.error) if item.error else next(classified) for item in inputs]
    if as_json:
        _print_json(net, results, (height, width), crop_pct)
    elif as_csv:
        _print_csv(results, k)
    else:
        _print_tables(results)
    if any(result.error is not None for result in results):
        ctx.exit(1)


def _in_workers(ctx, weights, model, backend, paths, workers, net, **options):
    """classify() in worker processes (levit_np.evaluation.pipeline), results in input order."""
    import os

    from levit_np.evaluation.engine import ModelSpec
    from levit_np.evaluation.pipeline import classify_in_workers
    from levit_np.images.classify import model_class_names

    from .main import session
    from .options import model_file

    spec = ModelSpec(weights=os.path.abspath(model_file(weights, model)), backend=backend)
    threads = session(ctx).threads or 1
    return iter(classify_in_workers(spec, paths, workers=workers, threads=threads, names=model_class_names(net),
                                    **options))


def _print_json(net, results, size: tuple[int, int], crop_pct: float) -> None:
    from levit_np.images.preprocessing import transform_metadata

    from .console import print_json

    print_json({"model": net.describe() if net is not None else None,
                "preprocessing": transform_metadata(*size, crop_pct),
                "images": [result.to_json() for result in results]})


def _print_csv(results, k: int) -> None:
    import csv
    import sys

    from levit_np.images.classify import round_probability

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["image", *(f"{column}_{rank}" for rank in range(1, k + 1)
                                for column in ("index", "label", "probability")), "error"])
    for result in results:
        cells = [result.image]
        for rank in range(k):
            p = result.predictions[rank] if result.predictions and rank < len(result.predictions) else None
            cells += ["", "", ""] if p is None else [p.index, p.label, round_probability(p.probability)]
        writer.writerow(cells + [result.error or ""])
    sys.stdout.flush()


def _print_tables(results) -> None:
    from .console import err, line

    good = [result for result in results if result.error is None]
    for result in results:
        if result.error is not None:
            line(f"Error: {result.error}", console=err)
    if len(results) == 1 and good:
        _print_one(good[0])
    elif good:
        _print_many(good)
    failed = len(results) - len(good)
    if failed and len(results) > 1:
        line(f"{failed} of {len(results)} images failed", console=err)


def _print_one(result) -> None:
    """The detailed table of one image: rank, index, WordNet id, label, probability."""
    from rich.text import Text

    from .console import show, table

    rows = table("#", "index", "wnid", "label", "probability", left=0)
    rows.columns[2].justify = rows.columns[3].justify = "left"
    for rank, p in enumerate(result.predictions, 1):
        rows.add_row(str(rank), str(p.index), p.wnid or "-", Text(p.label), f"{p.probability:.4f}")
    show(rows, title=result.image)


def _print_many(results) -> None:
    """One row per image: the image, its top-1 label and probability, then the rest of its top k."""
    from rich.text import Text

    from .console import show, table

    k = max(len(result.predictions) for result in results)
    rows = table("image", "top-1", "probability", *(("then",) if k > 1 else ()), left=2)
    if k > 1:
        rows.columns[3].justify = "left"
    for result in results:
        best, *rest = result.predictions
        cells = [Text(result.image), Text(best.label), f"{best.probability:.4f}"]
        if k > 1:
            cells.append(Text(", ".join(f"{p.label} {p.probability:.3f}" for p in rest)))
        rows.add_row(*cells)
    show(rows, title=f"{len(results)} images: top-{k} each")


def _progress(total: int):
    """A context manager yielding `on_progress(done, total)`: a transient bar on stderr for many images."""
    import contextlib

    if total < PROGRESS_MIN_IMAGES:
        return contextlib.nullcontext(None)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .console import err

    @contextlib.contextmanager
    def bar():
        with Progress(TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, transient=True) as progress:
            task = progress.add_task("classifying", total=total)
            yield lambda done, _total: progress.update(task, completed=done)

    return bar()
