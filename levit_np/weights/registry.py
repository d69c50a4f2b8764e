"""The registry of known LeViT checkpoints: official release file names, URLs and sha256 prefixes.

Converted weights are never committed; `levit predict --model NAME` downloads, checks and converts them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class KnownCheckpoint:
    variant: str
    file: str  # the official release file name, e.g. LeViT-128S-96703c44.pth
    url: str
    sha256_prefix: str  # the 8 hex digits the file name carries: the file's sha256 must start with them
    layout: str


def registry() -> dict[str, KnownCheckpoint]:
    """variant name -> its official checkpoint."""
    data = json.loads(resources.files(__package__).joinpath("registry.json").read_text())
    return {variant: KnownCheckpoint(variant, entry["file"], data["base_url"] + entry["file"],
                                     entry["sha256_prefix"], entry["layout"])
            for variant, entry in data["models"].items()}
