"""Exceptions for user-facing failures: the CLI prints their message on one line and exits non-zero."""


def one_line(exc: BaseException, most: int = 0) -> str:
    """An exception's text with all white space folded, for one-line messages (its type if it has no text);
    cut to `most` characters when given (library messages about a damaged file can quote the file's bytes)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[: most - 3] + "..." if 0 < most < len(text) else text


class LevitError(Exception):
    """Base class: something about the user's input is wrong (not a bug in levit-np)."""


class CheckpointError(LevitError):
    """A checkpoint file cannot be read: not a checkpoint, truncated, or holds objects we refuse to load."""


class ConversionError(LevitError):
    """A checkpoint was read but does not map onto a LeViT variant (missing, extra or misshapen tensors)."""


class WeightsFileError(LevitError):
    """A levit-np HDF5 weights file is missing, damaged or of an unsupported format version."""


class ImageError(LevitError):
    """An image cannot be decoded or is unsafe to decode."""


class OutputError(LevitError):
    """An output file cannot be written where the user asked (no such folder, no permission, a directory)."""
