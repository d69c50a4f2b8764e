"""Where the CLI writes: results to stdout, progress and warnings to stderr (so `--json` output stays clean)."""

from __future__ import annotations

import json
import sys

from rich.console import Console

out = Console()
err = Console(stderr=True)


def print_json(data) -> None:
    """Plain JSON on stdout, no colour codes, so it can be piped."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {message}", highlight=False)
