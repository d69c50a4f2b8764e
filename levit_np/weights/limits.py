"""Size limits for weights readers: what a file claims is checked against these before memory is allocated.

A LeViT tensor is small: the largest in levit_384 (its last MLP, 1536 x 768) has 1.2 million values, an
ImageNet-21k head (21843 x 768) 16.8 million. The limits leave room for far larger models and training
checkpoints (optimizer state, EMA copies) while refusing a crafted file whose header or pickle claims
gigabytes from a few bytes (a stride-0 view, a deflate bomb, a huge declared shape).
"""

from __future__ import annotations

import math

MAX_TENSOR_ELEMENTS = 1 << 26  # 67,108,864 values per tensor or storage: 56x levit_384's largest tensor
MAX_TENSOR_DIMS = 32  # a LeViT tensor has at most 4 dimensions (conv weights)
MAX_CHECKPOINT_BYTES = 4 << 30  # all tensor data of one checkpoint, 4 GiB (levit_384's weights: 156 MB)
MAX_PICKLE_BYTES = 64 << 20  # a state dict's data.pkl is ~100 kB; an optimizer's state doubles it
MAX_SAFETENSORS_HEADER_BYTES = 100_000_000  # the limit the safetensors library itself applies
MAX_CLASSES = 100_000  # classes of a (fine-tuned) head: 768 x 100,000 floats is 307 MB, ImageNet-21k fits


class LimitExceeded(ValueError):
    """A file claims more than a limit above allows; readers turn it into their own one-line error."""


def check_shape(shape, what: str) -> int:
    """The number of values of `shape` (non-negative Python ints), or LimitExceeded naming `what`."""
    shape = tuple(shape)
    if len(shape) > MAX_TENSOR_DIMS:
        raise LimitExceeded(f"{what} has {len(shape)} dimensions, more than the {MAX_TENSOR_DIMS} allowed")
    if not all(type(n) is int and n >= 0 for n in shape):
        raise LimitExceeded(f"{what} has a malformed shape {brief(shape)}")
    count = math.prod(shape)
    if count > MAX_TENSOR_ELEMENTS:
        raise LimitExceeded(f"{what} claims {count} values, more than the {MAX_TENSOR_ELEMENTS:,} "
                            "a tensor may have (MAX_TENSOR_ELEMENTS)")
    return count


def brief(value, width: int = 80) -> str:
    """A short repr of untrusted data for an error message (bounded in depth and length, so it cannot blow up)."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxstring, short.maxother, short.maxlong = 3, 40, 40, 40
    text = " ".join(short.repr(value).split())
    return text if len(text) <= width else text[: width - 3] + "..."
