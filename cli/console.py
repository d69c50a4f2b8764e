"""Where the CLI writes, and how its tables look: results to stdout, progress and warnings to stderr (so `--json`
output stays clean). Every command builds its tables with `table` and prints them with `show`."""

from __future__ import annotations

import json
import sys
from typing import Optional

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Piped output is not cut to 80 columns: tables keep their numbers whole.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)


def print_json(data) -> None:
    """Plain JSON on stdout, no colour codes, so it can be piped."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def table(*columns: str, left: int = 1, caption: Optional[str] = None, header: bool = True) -> Table:
    """A results table: the first `left` columns left-aligned (names), the rest right-aligned (numbers)."""
    result = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, show_header=header, caption=caption)
    for i, column in enumerate(columns):
        result.add_column(column, justify="left" if i < left else "right", no_wrap=i < left)
    return result


def show(result: Table, title: Optional[str] = None, console: Console = out) -> None:
    """Print a table under its title; the title is a line of its own, never wrapped or cut (it may be a path)."""
    if title is not None:
        console.print(Text(title, no_wrap=True, overflow="ignore"), soft_wrap=True, highlight=False)
    console.print(result)


def line(text: str, console: Console = out) -> None:
    """A line of plain text (no markup, no highlighting), never wrapped."""
    console.print(Text(text), soft_wrap=True, highlight=False)
