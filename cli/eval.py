"""`levit eval`: top-1 / top-5 accuracy over a labelled dataset, in worker processes or on a Dask cluster."""

from __future__ import annotations

import os

import click

from .backend_option import backend_option
from .options import crop_pct_option, model_options


@click.command(name="eval")
@click.argument("data", type=click.Path())
@model_options
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="For a flat DATA folder: a CSV with header image,label (image relative to DATA; label a wnid "
                   "or a class index).")
@click.option("--class-map", type=click.Path(dir_okay=False), default=None,
              help="For class folders not named by wnids: one wnid per line, line i for the folder at sorted "
                   "position i.")
@click.option("--real-labels", type=click.Path(dir_okay=False), default=None,
              help="ImageNet-ReaL real.json: also score against each val image's set of plausible labels.")
@crop_pct_option
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Evaluate N images spread evenly over the dataset (image floor(i*total/N) for i < N).")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images per forward pass.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Worker processes, each decoding its batches and running its own model (0: in this process). "
                   "Default: one per core (divided by --threads).")
@click.option("--threads", "worker_threads", type=click.IntRange(min=1), default=None,
              help="Numba / BLAS threads per worker process. Default: the global --threads, else 1.")
@click.option("--cluster", default=None,
              help="Run on Dask: a scheduler address (tcp://HOST:8786) or local:N for N local worker processes. "
                   "DATA and the weights must be at the same paths on every worker.")
@click.option("--predictions", type=click.Path(dir_okay=False), default=None,
              help="Append one JSON line per image (image, label, top5, probs) to FILE.jsonl as batches finish.")
@click.option("--resume", is_flag=True, help="Continue the --predictions file: skip the images already in it.")
@click.option("--results", type=click.Path(dir_okay=False), default=None,
              help="Write the results to FILE.json or FILE.csv (timm's field names).")
@click.option("--per-class", type=click.Path(dir_okay=False), default=None,
              help="Write per-class top-1 / top-5 and each class's most frequent wrong prediction to FILE.csv.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@backend_option
@click.pass_context
def eval_command(ctx: click.Context, data: str, weights: str | None, model: str | None, labels: str | None,
                 class_map: str | None, real_labels: str | None, crop_pct: float, limit: int | None,
                 batch_size: int, workers: int | None, worker_threads: int | None, cluster: str | None,
                 predictions: str | None, resume: bool, results: str | None, per_class: str | None, as_json: bool,
                 backend: str = "numba") -> None:
    """Accuracy of a model on DATA: an ImageFolder (class folders named by wnid, e.g. val/n01440764/*.JPEG) or
    a flat folder with --labels.

    Prints top-1 and top-5 (percent), images, unreadable images, images/s and wall time. Unreadable images
    are listed on stderr, left out of the accuracy, and make the exit code 1. With --predictions and
    --resume, a run that was stopped (even killed) continues where it left off.
    """
    from levit_np.evaluation.datasets import open_dataset, read_real_labels, real_label_sets
    from levit_np.evaluation.engine import ModelSpec, Preprocessing
    from levit_np.evaluation.evaluate import Settings, evaluate
    from levit_np.evaluation.results import check_results_path, write_per_class, write_results
    from levit_np.weights.fileio import check_output_path

    from .main import session
    from .options import model_file

    if resume and predictions is None:
        raise click.UsageError("--resume needs --predictions FILE.jsonl (the file to continue)")
    if cluster is not None and workers is not None:
        raise click.UsageError("give either --workers (this machine) or --cluster (Dask), not both")
    if results is not None:
        check_results_path(results)
    if per_class is not None:
        check_output_path(per_class, (".csv",))
    dataset = open_dataset(data, labels=labels, class_map=class_map, limit=limit)
    real = real_label_sets(dataset, read_real_labels(real_labels), real_labels) if real_labels else None
    spec = ModelSpec(weights=os.path.abspath(model_file(weights, model)), backend=backend)
    threads = worker_threads or session(ctx).threads or 1
    settings = Settings(batch_size=batch_size, preprocessing=Preprocessing(crop_pct=crop_pct), workers=workers,
                        threads=threads, cluster=cluster, raise_unexpected=session(ctx).verbose)
    with _progress() as on_progress:
        outcome = evaluate(dataset, spec, settings, predictions=predictions, resume=resume, real=real,
                           on_progress=on_progress)
    summary = outcome.summary
    if results is not None:
        write_results(results, summary)
    if per_class is not None:
        write_per_class(per_class, outcome.accuracy.class_rows())
    _report(summary, as_json)
    if summary["errors"]:
        ctx.exit(1)


def _report(summary: dict, as_json: bool) -> None:
    from rich.markup import escape

    from .console import err, print_json

    for entry in summary["unreadable"]:
        err.print(f"[red]error:[/] {escape(entry['error'])}", highlight=False, soft_wrap=True)
    if as_json:
        print_json(summary)
        return
    from levit_np.images.preprocessing import resize_size

    from .console import show, table as new_table

    table = new_table("", "", header=False)
    rows = [("top-1 (%)", f"{summary['top1']:.3f}"), ("top-5 (%)", f"{summary['top5']:.3f}")]
    if "real_top1" in summary:
        rows += [("ReaL top-1 (%)", f"{summary['real_top1']:.3f}"), ("ReaL top-5 (%)", f"{summary['real_top5']:.3f}"),
                 ("images with ReaL labels", str(summary["real_images"]))]
    rows += [("images", str(summary["images"])), ("unreadable images", str(summary["errors"])),
             ("images/s", f"{summary['images_per_second']:.1f}"), ("wall time (s)", f"{summary['wall_seconds']:.1f}"),
             ("model", f"{summary['model']} ({summary['param_count']}M parameters)"), ("source", summary["source"]),
             ("preprocessing", f"shorter side to {resize_size(summary['img_size'], summary['crop_pct'])} "
                               f"({summary['interpolation']}), centre crop {summary['img_size']} "
                               f"(crop_pct {summary['crop_pct']})")]
    if summary["resumed"]:
        rows.append(("taken from the predictions file", str(summary["resumed"])))
    for name, value in rows:
        table.add_row(name, escape(value))
    show(table)


def _progress():
    """A context manager yielding `on_progress(done, total)`: a transient bar on stderr with images/s and ETA."""
    import contextlib

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    from .console import err

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            return Text("" if task.speed is None else f"{task.speed:.1f} img/s")

    @contextlib.contextmanager
    def bar():
        with Progress(TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), Rate(), TimeRemainingColumn(),
                      console=err, transient=True) as progress:
            task = None

            def update(done: int, total: int) -> None:
                nonlocal task
                if task is None:
                    task = progress.add_task("evaluating", total=total, completed=done)
                else:
                    progress.update(task, completed=done)
            yield update

    return bar()
