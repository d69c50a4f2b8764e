"""Property-based fuzzing of readers of outside data (hypothesis), shared by tests/test_fuzz_*.py.

The property every reader must keep: any bytes give either a correct result or a `LevitError` subclass with a
one-line message; never another exception, a hang, or unbounded memory. To fuzz a new reader:

    from fuzzing import assert_reader_contract, fuzz_settings, mutated

    @fuzz_settings(ci_examples=200)
    @given(data=mutated(VALID_BYTES))
    def test_fuzz_my_reader(tmp_path_factory, data):
        path = write_case(tmp_path_factory, "case.csv", data)
        result = assert_reader_contract(lambda: read_my_file(path))
        if result is not None:
            ...  # the result is correct: compare with what the bytes hold, when that is known

Budget: each test runs `ci_examples` cases in CI, from a fixed seed (derandomized, so CI is reproducible and
never flaky); set LEVIT_FUZZ_EXAMPLES=5000 for a longer run of every fuzz test. Memory is measured with
tracemalloc (NumPy's buffers are traced too) and a hang aborts the run with every thread's traceback.
"""

from __future__ import annotations

import faulthandler
import os
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Sequence

from hypothesis import HealthCheck, currently_in_test_context, event, settings
from hypothesis import strategies as st

from levit_np.errors import LevitError

ENV_EXAMPLES = "LEVIT_FUZZ_EXAMPLES"
HANG_SECONDS = 120  # one case taking this long is a hang: far above the slowest case (well under a second)
MEMORY_SLACK = 64 << 20  # traced bytes a case may allocate beyond `memory_factor` times its input


def fuzz_examples(ci_examples: int) -> int:
    """The number of cases to run: LEVIT_FUZZ_EXAMPLES when set, else the test's CI budget."""
    value = os.environ.get(ENV_EXAMPLES, "")
    return int(value) if value.isdigit() and int(value) > 0 else ci_examples


def fuzz_settings(ci_examples: int) -> settings:
    """hypothesis settings for a fuzz test: a fixed seed, no deadline, no example database in the checkout."""
    return settings(
        max_examples=fuzz_examples(ci_examples),
        derandomize=True,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.function_scoped_fixture],
    )


# ------------------------------------------------------------------------------------------- byte mutations

INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f",
               b"\x00\x00\x00\x80", b"\xff" * 8, b"\x00" * 8, b"\xff\xff\xff\xff\xff\xff\xff\x7f"]


class Edits(tuple):
    """A list of byte edits, applied by `apply`; its repr stays short where the bytes it edits would not."""

    def apply(self, data: bytes) -> bytes:
        out = bytearray(data)
        for kind, at, arg in self:
            at = min(at, max(0, len(out) - 1))
            if kind == "flip" and out:
                out[at] ^= 1 << arg
            elif kind == "write":
                out[at:at + len(arg)] = arg
            elif kind == "delete":
                del out[at:at + arg]
            elif kind == "duplicate":
                out[at:at] = out[at:at + arg]
            elif kind == "truncate":
                del out[at:]
        return bytes(out)


@st.composite
def edits(draw, size: int, regions: Sequence[tuple[int, int]] | None = None, most: int = 6) -> Edits:
    """1..`most` random edits of a `size`-byte file: bit flips, byte and word overwrites with boundary values,
    random bytes, deletions, duplications, and (one case in five) a truncation. `regions` (start, end) pairs
    focus the edits (e.g. on a file's metadata rather than its tensor bytes); they land anywhere when None."""

    def position() -> int:
        if regions and draw(st.integers(0, 9)) > 0:  # 90% inside the regions, the rest anywhere
            start, end = draw(st.sampled_from(list(regions)))
            return draw(st.integers(start, max(start, end - 1)))
        return draw(st.integers(0, max(0, size - 1)))

    out = []
    for _ in range(draw(st.integers(1, most))):
        kind = draw(st.sampled_from(["flip", "flip", "flip", "word", "random", "delete", "duplicate"]))
        at = position()
        if kind == "flip":
            out.append(("flip", at, draw(st.integers(0, 7))))
        elif kind == "word":
            out.append(("write", at, draw(st.sampled_from(INTERESTING))))
        elif kind == "random":
            out.append(("write", at, draw(st.binary(min_size=1, max_size=16))))
        else:
            out.append((kind, at, draw(st.integers(1, 16 if kind == "delete" else 64))))
    if draw(st.integers(0, 4)) == 0:
        out.append(("truncate", draw(st.integers(0, size)), None))
    return Edits(out)


def mutated(data: bytes, regions: Sequence[tuple[int, int]] | None = None, most: int = 6):
    """`data` after `edits` (for small files, where hypothesis may print the mutated bytes themselves)."""
    return edits(len(data), regions, most).map(lambda e: e.apply(data))


def write_case(tmp_path_factory, name: str, data: bytes) -> Path:
    """`data` written to a fresh file called `name` (one folder per test run; each case overwrites it)."""
    folder = tmp_path_factory.getbasetemp() / "fuzz-cases"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------------------- the property


def assert_reader_contract(read: Callable[[], Any], input_bytes: int = 0, memory_factor: int = 8) -> Any:
    """Run `read()`: return its result, or None when it raised a LevitError with a one-line message.

    Any other exception propagates (hypothesis reports the case that raised it). Traced memory must stay under
    `memory_factor` x `input_bytes` + MEMORY_SLACK; a case running HANG_SECONDS aborts the process with
    tracebacks (a hang inside C code cannot be interrupted any other way).
    """
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    try:
        result = read()
        _event("read")
    except LevitError as exc:
        _event(f"refused: {type(exc).__name__}")
        message = str(exc)
        assert message.strip(), f"{type(exc).__name__} without a message"
        assert "\n" not in message and "\r" not in message, f"a multi-line message: {message!r}"
        assert len(message) < 2000, f"a {len(message)}-character message: {message[:200]!r}..."
        result = None
    finally:
        faulthandler.cancel_dump_traceback_later()
        peak = tracemalloc.get_traced_memory()[1]
        if started:
            tracemalloc.stop()
    limit = memory_factor * input_bytes + MEMORY_SLACK
    assert peak <= limit, f"the reader allocated {peak / 2**20:.1f} MiB, more than {limit / 2**20:.1f} MiB"
    return result


def _event(name: str) -> None:
    """Counted by `pytest --hypothesis-show-statistics`: how many cases were read and refused."""
    if currently_in_test_context():
        event(name)
