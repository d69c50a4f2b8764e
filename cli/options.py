"""Options shared by the commands that run a model: `--weights FILE` / `--model NAME`, and `load_model`.

    @click.command()
    @model_options
    def predict(weights, model, ...):
        net = load_model(weights, model, backend)

A named model comes from the cache (`levit_np.weights.hub`): downloaded, checked and converted on first use, with a
download progress bar on stderr.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional

import click

from levit_np.weights.registry import registry

DEFAULT_MODEL = "levit_128s"
MODEL_NAMES = tuple(registry())  # the variants with an official release file (no numpy import: --threads)


def model_options(f: Callable) -> Callable:
    """Add `--weights FILE` and `--model NAME` to a command (parameters `weights` and `model`)."""
    f = click.option("--model", "model", type=click.Choice(MODEL_NAMES, case_sensitive=False), default=None,
                     help=f"A LeViT variant with official weights, downloaded and converted into the cache "
                          f"(LEVIT_HOME) on first use. Default: {DEFAULT_MODEL}.")(f)
    f = click.option("--weights", "weights", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="A levit-np .h5 file, or any checkpoint `levit convert` reads (converted in memory).")(f)
    return f


def load_model(weights: Optional[str], model: Optional[str], backend: str = "numpy"):
    """The LevitModel that `--weights` / `--model` name: a file, else the named (default) model from the cache."""
    import levit_np

    if weights is not None and model is not None:
        raise click.UsageError("give either --weights FILE or --model NAME, not both")
    if weights is not None:
        return levit_np.load(weights, backend)
    from levit_np.errors import LevitError, WeightsFileError

    path = model_file(weights, model)
    try:
        return levit_np.load(path, backend)
    except LevitError as e:
        raise WeightsFileError(f"the cached file is damaged, delete it to download it again: {e}") from None


def model_file(weights: Optional[str], model: Optional[str]):
    """The file `--weights` / `--model` name, without loading it: the named (default) model is downloaded and
    converted into the cache first if it is not there yet."""
    if weights is not None and model is not None:
        raise click.UsageError("give either --weights FILE or --model NAME, not both")
    if weights is not None:
        return weights
    from levit_np.weights.hub import cached_path, fetch

    from .console import err

    variant = (model or DEFAULT_MODEL).lower()
    path = cached_path(variant)
    if not path.is_file():
        with download_progress() as progress:
            fetch(variant, progress=progress)
        err.print(f"[green]cached[/] {variant} -> {path}", highlight=False, soft_wrap=True)
    return path


@contextlib.contextmanager
def download_progress() -> Iterator[Callable]:
    """A `progress(name, done, total)` callback that draws a rich download bar on stderr once bytes flow."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from .console import err

    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   console=err, transient=False)
    tasks: dict[str, int] = {}

    def progress(name: str, done: int, total: Optional[int]) -> None:
        if name not in tasks:
            bar.start()
            tasks[name] = bar.add_task(f"downloading {name}", total=total)
        bar.update(tasks[name], completed=done, total=total)

    try:
        yield progress
    finally:
        bar.stop()


crop_pct_option = click.option(
    "--crop-pct", type=click.FloatRange(0.25, 1.0), default=0.875, show_default=True,
    help="Resize the shorter side to size/crop_pct before the centre crop (official 0.875, timm 0.9).")
