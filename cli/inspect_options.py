"""Options of the commands that look inside the model (`levit bias`, `levit trace`).

`--random VARIANT --seed N`: a model with random weights, for demos and learning without a download (beside
`options.model_options`, `--weights FILE` / `--model NAME`). `--size H W`: another input size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import click

from .options import MODEL_NAMES, load_model


def random_model_options(f: Callable) -> Callable:
    """Add `--random VARIANT` and `--seed N` (parameters `random_variant` and `seed`)."""
    f = click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the --random weights.")(f)
    f = click.option("--random", "random_variant", metavar="VARIANT", default=None,
                     help=f"Use random weights of this variant ({', '.join(MODEL_NAMES)}, or short: 128s, 256, "
                          f"...), random BatchNorm statistics and attention biases too, instead of --weights / "
                          f"--model.")(f)
    return f


def load_any_model(weights: Optional[str], model: Optional[str], random_variant: Optional[str], seed: int,
                   backend: str = "numpy"):
    """The model that --weights, --model or --random names (at most one of them; default: `load_model`'s)."""
    if random_variant is None:
        return load_model(weights, model, backend)
    if weights is not None or model is not None:
        raise click.UsageError("give one of --weights, --model or --random")
    import levit_np

    return levit_np.create(random_variant, seed=seed, backend=backend)


def source_label(weights: Optional[str], model: Optional[str], random_variant: Optional[str], seed: int) -> str:
    """A short description of where the weights came from, for titles."""
    if random_variant is not None:
        from levit_np.model.config import get_config

        return f"{get_config(random_variant).name}, random weights (seed {seed})"
    return Path(weights).name if weights is not None else (model or "default model")


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
