"""Options of the commands that look inside the model (`levit bias`, `levit trace`).

`--random VARIANT --seed N`: a model with random weights, for demos and learning without a download (beside
`options.model_options`, `--weights FILE` / `--model NAME`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import click

from .options import load_model, model_name_option


def random_model_options(f: Callable) -> Callable:
    """Add `--random VARIANT` and `--seed N` (parameters `random_variant` and `seed`)."""
    f = click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the --random weights.")(f)
    f = model_name_option("--random", "random_variant", default=None,
                          help="Use random weights of this variant (random BatchNorm statistics and attention "
                               "biases too) instead of --weights / --model: offline, for demos and learning.")(f)
    return f


NO_WEIGHTS = ("no weights given: use --random NAME (random weights, offline), --weights FILE (a local .h5 or "
              "checkpoint) or --model NAME (official weights, downloaded on first use)")


def load_any_model(weights: Optional[str], model: Optional[str], random_variant: Optional[str], seed: int,
                   backend: str = "numpy", required: bool = False):
    """The model that --weights, --model or --random names (at most one of them). With none of them: `load_model`'s
    default model, or, when `required`, a usage error naming the three options (no download is tried)."""
    if required and weights is None and model is None and random_variant is None:
        raise click.UsageError(NO_WEIGHTS)
    if random_variant is None:
        return load_model(weights, model, backend)
    if weights is not None or model is not None:
        raise click.UsageError("give one of --weights, --model or --random")
    import levit_np

    return levit_np.create(random_variant, seed=seed, backend=backend)


def source_label(weights: Optional[str], model: Optional[str], random_variant: Optional[str], seed: int) -> str:
    """A short description of where the weights came from, for titles."""
    if random_variant is not None:
        return f"{random_variant}, random weights (seed {seed})"
    return Path(weights).name if weights is not None else (model or "default model")
