"""Where the CLI writes: results to stdout, progress and warnings to stderr (so `--json` output stays clean)."""

from __future__ import annotations

import json
import sys

from rich.console import Console

# Piped output is not cut to 80 columns: tables keep their numbers whole.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)


def print_json(data) -> None:
    """Plain JSON on stdout, no colour codes, so it can be piped."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()
