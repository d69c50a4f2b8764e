"""Options shared by the commands: model names, `--weights FILE` / `--model NAME`, `--threads`, the image options
(`--size H W`, `--crop-pct`), and `load_model`.

    @click.command()
    @model_options
    @threads_option
    def predict(weights, model, ...):
        net = load_model(weights, model, backend)

Every option that takes a LeViT variant uses MODEL_NAME: one parser (levit_np.model.config.variant_name), one
list (MODEL_NAMES), so `128s`, `LeViT-256` and `levit_256` work everywhere. A named model comes from the cache
(`levit_np.weights.hub`): downloaded, checked and converted on first use, with a download progress bar on stderr.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional

import click

from levit_np.model.config import VARIANTS, variant_name  # no numpy import: --threads must come first

DEFAULT_MODEL = "levit_128s"
MODEL_NAMES = tuple(VARIANTS)
NAMES_HELP = f"{', '.join(MODEL_NAMES)}, or short: 128s, LeViT-256, ..."


class ModelName(click.ParamType):
    """A LeViT variant in any spelling `variant_name` accepts, converted to its timm name (`levit_128s`)."""

    name = "NAME"

    def convert(self, value, param, ctx):
        try:
            return variant_name(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


MODEL_NAME = ModelName()


def model_name_option(*declarations: str, help: str, **kwargs) -> Callable:
    """An option taking a variant name (MODEL_NAME), its help ending with the names it accepts."""
    return click.option(*declarations, type=MODEL_NAME, help=f"{help} Names: {NAMES_HELP}", **kwargs)


def model_options(f: Callable) -> Callable:
    """Add `--weights FILE` and `--model NAME` to a command (parameters `weights` and `model`)."""
    f = model_name_option("--model", "model", default=None,
                          help=f"A LeViT variant with official weights, downloaded and converted into the cache "
                               f"(LEVIT_HOME) on first use. Default: {DEFAULT_MODEL}.")(f)
    f = click.option("--weights", "weights", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="A levit-np .h5 file, or any checkpoint `levit convert` reads (converted in memory).")(f)
    return f


def threads_option(f: Callable) -> Callable:
    """Add `--threads N` to a computing command: the same as the global `levit --threads N`, given after the
    command name. It is pinned as it is parsed, before the command imports NumPy."""
    return click.option("--threads", type=click.IntRange(min=1), default=None, expose_value=False,
                        is_eager=True, callback=_pin_threads, metavar="N",
                        help="Threads for BLAS and Numba (as `levit --threads N`; also LEVIT_THREADS).")(f)


def _pin_threads(ctx: click.Context, param, threads: Optional[int]) -> None:
    from .main import Session, set_threads

    if threads is not None:
        ctx.ensure_object(Session).threads = threads
        set_threads(threads)


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

    variant = variant_name(model or DEFAULT_MODEL)
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
    help="Centre-crop fraction: resize the shorter side to size / crop-pct, then crop the centre to the input "
         "size (official LeViT 0.875: 256 then 224; timm 0.9: 248 then 224).")


def size_option(f: Callable) -> Callable:
    """Add `--size H W` (parameter `size`, None when not given)."""
    return click.option("--size", type=(int, int), default=None, metavar="H W",
                        help="Input height and width, multiples of 16 (default 224 224). Attention-bias tables "
                             "are resampled bicubically to other sizes; see docs/input-sizes.md.")(f)


def checked_size(size: Optional[tuple[int, int]]) -> tuple[int, int]:
    """The --size value, or (224, 224); a BadParameter error unless both are positive multiples of 16."""
    from levit_np.model.grid import check_input_size

    if size is None:
        return 224, 224
    try:
        check_input_size(*size)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--size") from None
    return size
