"""The command line of the in-process comparisons (`versus_openvino`, `shard_ab`): variant, batch, threads,
rounds; the threads pinned before NumPy or Numba load, and an unknown variant stopped in one line."""

from __future__ import annotations

import argparse


def parse_study_args(description: str, argv: list[str] | None, threads: int, rounds: int) -> argparse.Namespace:
    """Parse `argv` (default: sys.argv) with these defaults, pin every thread pool to `--threads`, check the
    variant; an unknown variant name exits with its one-line error."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("variant", nargs="?", default="levit_128s")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument("--rounds", type=int, default=rounds)
    args = parser.parse_args(argv)
    from levit_np.perf.timing import pin_threads

    pin_threads(args.threads)
    from levit_np.errors import one_line
    from levit_np.model.config import get_config

    try:
        get_config(args.variant)
    except ValueError as e:  # an unknown variant name
        raise SystemExit(one_line(e)) from None
    return args
