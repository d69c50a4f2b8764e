"""Labelled datasets: which image files to evaluate and the class index each one should get.

Layouts (`open_dataset`):
- ImageFolder: one folder per class, named by its wnid (`val/n01440764/*.JPEG`), images found recursively
  below it; the class index is the wnid's position in the sorted ImageNet-1k list (the packaged
  `imagenet_class_index.json`). Folders named otherwise need a class map: a text file with one wnid per line,
  line i (from 0) naming the folder at sorted position i.
- A flat folder with a CSV (header `image,label`): `image` relative to the folder, `label` a wnid or a class
  index 0..999.
ReaL labels (`read_real_labels`): a JSON list whose entry i is the label set of `ILSVRC2012_val_{i+1:08d}.JPEG`.
Every problem is a `DatasetError` with a one-line message.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from levit_np.errors import LevitError
from levit_np.images.labels import NUM_CLASSES, imagenet_classes

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                              ".ppm", ".pgm", ".pbm", ".pnm"})
REAL_NAME = re.compile(r"^ILSVRC2012_val_(\d{8})\.JPEG$", re.IGNORECASE)
MOST_NAMED = 3  # how many offending names an error message quotes


class DatasetError(LevitError):
    """The dataset folder, its labels file, class map or ReaL file is missing or inconsistent."""


@dataclass(frozen=True)
class Sample:
    image: str  # the name reported in results: the path relative to the dataset folder, with '/'
    path: str  # the file to read
    label: int  # ImageNet-1k class index, 0..999


@dataclass(frozen=True)
class Dataset:
    root: str
    samples: tuple[Sample, ...]
    layout: str  # "image-folder" or "labels-csv"


def open_dataset(root: str | os.PathLike, labels: Optional[str | os.PathLike] = None,
                 class_map: Optional[str | os.PathLike] = None, limit: Optional[int] = None) -> Dataset:
    """The dataset at `root` (an ImageFolder, or a flat folder with a `labels` CSV), optionally limited."""
    folder = Path(root)
    if not folder.exists():
        raise DatasetError(f"{root}: no such folder")
    if not folder.is_dir():
        raise DatasetError(f"{root}: not a folder (give the dataset folder, e.g. val/)")
    if labels is not None:
        if class_map is not None:
            raise DatasetError("give either --labels (a flat folder) or --class-map (class folders), not both")
        dataset = Dataset(str(folder), tuple(_from_csv(folder, Path(labels))), "labels-csv")
    else:
        dataset = Dataset(str(folder), tuple(_from_class_folders(folder, class_map)), "image-folder")
    if not dataset.samples:
        raise DatasetError(f"{root}: no image files in the dataset")
    return limited(dataset, limit) if limit is not None else dataset


def limited(dataset: Dataset, limit: int) -> Dataset:
    """`limit` samples spread evenly over the dataset's order: sample floor(i * n / limit) for i < limit.

    The choice is fixed (no random numbers) and covers every part of a class-sorted dataset proportionally.
    """
    if limit < 1:
        raise DatasetError(f"--limit must be at least 1, got {limit}")
    n = len(dataset.samples)
    if limit >= n:
        return dataset
    picked = tuple(dataset.samples[i * n // limit] for i in range(limit))
    return Dataset(dataset.root, picked, dataset.layout)


def wnid_index() -> dict[str, int]:
    """ImageNet-1k wnid -> class index (its position in the sorted wnid list, as in imagenet_class_index.json)."""
    return {wnid: i for i, (wnid, _name) in enumerate(imagenet_classes())}


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _images_below(folder: Path) -> list[Path]:
    """Image files below `folder`, recursively, sorted by path; hidden files and folders skipped."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(parent) / name for name in sorted(files) if is_image_name(name)]
    return found


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _from_class_folders(root: Path, class_map: Optional[str | os.PathLike]) -> list[Sample]:
    folders = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    if not folders:
        loose = [name for name in os.listdir(root) if is_image_name(name)]
        if loose:
            raise DatasetError(f"{root}: image files but no class folders; for a flat folder pass "
                               "--labels FILE.csv (header image,label)")
        raise DatasetError(f"{root}: no class folders and no images (expected e.g. {root}/n01440764/*.JPEG)")
    indices = _class_indices(root, folders, class_map)
    samples = []
    for folder, index in zip(folders, indices):
        samples += [Sample(_relative(path, root), str(path), index) for path in _images_below(root / folder)]
    return samples


def _class_indices(root: Path, folders: list[str], class_map: Optional[str | os.PathLike]) -> list[int]:
    """The class index of each (sorted) class folder: by its own wnid, or by the class map's line."""
    known = wnid_index()
    if class_map is None:
        strangers = [name for name in folders if name not in known]
        if strangers:
            looks_like_wnid = [name for name in strangers if re.fullmatch(r"n\d{8}", name)]
            if looks_like_wnid and len(looks_like_wnid) == len(strangers):
                raise DatasetError(f"{root}: {_count(strangers, 'class folder')} not ImageNet-1k wnids "
                                   f"({_names(strangers)}); pass --class-map FILE to map folders to classes")
            raise DatasetError(f"{root}: {_count(strangers, 'class folder')} not named by an ImageNet wnid "
                               f"({_names(strangers)}); pass --class-map FILE (one wnid per line, line i for "
                               "the folder at sorted position i)")
        return [known[name] for name in folders]
    wnids = read_class_map(class_map)
    if len(wnids) != len(folders):
        raise DatasetError(f"{class_map}: {len(wnids)} wnids for {len(folders)} class folders in {root} "
                           "(one line per folder, in sorted folder order)")
    return [known[wnid] for wnid in wnids]


def read_class_map(path: str | os.PathLike) -> list[str]:
    """A class map: one ImageNet wnid per non-empty line, in folder order."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read the class map ({_reason(e)})") from None
    wnids = [line.strip() for line in lines if line.strip()]
    if not wnids:
        raise DatasetError(f"{path}: the class map is empty (expected one wnid per line)")
    known = wnid_index()
    unknown = [w for w in wnids if w not in known]
    if unknown:
        raise DatasetError(f"{path}: {_count(unknown, 'entry', 'entries')} not ImageNet-1k wnids ({_names(unknown)})")
    return wnids


def _from_csv(root: Path, labels: Path) -> list[Sample]:
    try:
        with open(labels, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{labels}: cannot read the labels file ({_reason(e)})") from None
    if not rows or [cell.strip().lower() for cell in rows[0][:2]] != ["image", "label"]:
        raise DatasetError(f"{labels}: the first line must be the header 'image,label'")
    known = wnid_index()
    samples, missing, bad_labels, seen = [], [], [], set()
    for line_number, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 2:
            raise DatasetError(f"{labels}: line {line_number} has no label")
        image, label = row[0].strip(), row[1].strip()
        index = _label_index(label, known)
        if index is None:
            bad_labels.append(label)
            continue
        if image in seen:
            raise DatasetError(f"{labels}: line {line_number}: {image} is listed twice")
        seen.add(image)
        path = root / image
        if not path.is_file():
            missing.append(image)
            continue
        samples.append(Sample(Path(image).as_posix(), str(path), index))
    if bad_labels:
        raise DatasetError(f"{labels}: {_count(bad_labels, 'label')} neither an ImageNet-1k wnid nor a class "
                           f"index 0..{NUM_CLASSES - 1} ({_names(bad_labels)})")
    if missing:
        raise DatasetError(f"{labels}: {_count(missing, 'image')} not found in {root} ({_names(missing)})")
    return samples


def _label_index(label: str, known: dict[str, int]) -> Optional[int]:
    if label in known:
        return known[label]
    if label.isascii() and label.isdigit() and int(label) < NUM_CLASSES:  # '²' is a digit, not an int
        return int(label)
    return None


def read_real_labels(path: str | os.PathLike) -> list[frozenset[int]]:
    """ImageNet-ReaL's real.json: entry i, the label set of ILSVRC2012_val_{i+1:08d}.JPEG (may be empty)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:  # RecursionError: lists nested too deep
        raise DatasetError(f"{path}: cannot read the ReaL labels ({_reason(e)})") from None
    if not isinstance(data, list) or not all(isinstance(entry, list) for entry in data):
        raise DatasetError(f"{path}: ReaL labels must be a JSON list of lists of class indices")
    sets = []
    for i, entry in enumerate(data):
        if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < NUM_CLASSES for c in entry):
            raise DatasetError(f"{path}: entry {i} holds something other than class indices 0..{NUM_CLASSES - 1}")
        sets.append(frozenset(entry))
    return sets


def real_label_sets(dataset: Dataset, real: list[frozenset[int]], source: str) -> dict[str, frozenset[int]]:
    """Each sample's ReaL label set, found from its ImageNet val file name; every sample must have one."""
    by_image, strangers = {}, []
    for sample in dataset.samples:
        match = REAL_NAME.match(Path(sample.image).name)
        number = int(match.group(1)) if match else 0
        if not 1 <= number <= len(real):
            strangers.append(sample.image)
            continue
        by_image[sample.image] = real[number - 1]
    if strangers:
        raise DatasetError(f"{source}: {_count(strangers, 'image')} not ImageNet val files numbered 1..{len(real)} "
                           f"(ILSVRC2012_val_XXXXXXXX.JPEG): {_names(strangers)}")
    return by_image


def _count(items: list, noun: str, plural: Optional[str] = None) -> str:
    verb = "is" if len(items) == 1 else "are"
    return f"{len(items)} {noun if len(items) == 1 else plural or noun + 's'} {verb}"


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:MOST_NAMED])
    return shown + (f", ... ({len(items) - MOST_NAMED} more)" if len(items) > MOST_NAMED else "")


def _reason(e: BaseException) -> str:
    from levit_np.errors import one_line

    return one_line(e)
