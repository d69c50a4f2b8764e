"""Turn `levit predict` arguments (files, directories, globs) into an ordered list of image paths.

Rules, in argument order:
- an existing file is kept whatever its extension (it fails later, per image, if it is not an image);
- a directory is walked recursively for files with an image extension (IMAGE_EXTENSIONS, any case): a
  folder's own files first, sorted by name, then its subfolders in sorted order; hidden files and folders
  (name starting with '.') are skipped;
- anything else containing `*`, `?` or `[` is a glob, expanded here (for shells that do not), `**` matching
  any depth; matches are sorted, matched files are kept only with an image extension, matched directories are
  walked as above;
- anything else (a missing file, a glob or directory with no images) becomes an error entry.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                              ".ppm", ".pgm", ".pbm", ".pnm"})


@dataclass(frozen=True)
class Input:
    path: str  # what is reported as "image"
    error: Optional[str] = None  # set when the argument gave nothing to classify


def expand(arguments: list[str]) -> list[Input]:
    """Every argument expanded in order; see the module docstring for the rules."""
    inputs: list[Input] = []
    for argument in arguments:
        inputs += _expand_one(argument)
    return inputs


def _expand_one(argument: str) -> list[Input]:
    path = Path(argument)
    if path.is_dir():
        found = _walk(path)
        return found or [Input(argument, f"{argument}: no image files in this directory")]
    if path.exists():
        return [Input(argument)]  # an unreadable file is reported by the decoder, like any other bad image
    if not glob.has_magic(argument):
        return [Input(argument, f"{argument}: no such file")]
    found = []
    for match in sorted(glob.glob(argument, recursive=True)):
        if os.path.isdir(match):
            found += _walk(Path(match))
        elif is_image_name(match):
            found.append(Input(match))
    return found or [Input(argument, f"{argument}: no image files match this pattern")]


def _walk(folder: Path) -> list[Input]:
    """Image files below `folder`, recursively (a folder's files, then its subfolders); hidden names skipped."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Input(os.path.join(root, name)) for name in sorted(files)
                  if not name.startswith(".") and is_image_name(name)]
    return found


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS
