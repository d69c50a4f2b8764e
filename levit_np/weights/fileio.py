"""Small file helpers: hashing, and writing outputs atomically so a failure never leaves half a file.

hashlib and tempfile load only when a hash or an output is made: reading a weights file needs neither, and the
two cost ~15 ms of a one-photo run's start-up.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from levit_np.errors import OutputError


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_output_path(path: str | os.PathLike, suffixes: tuple[str, ...] = ()) -> Path:
    """Fail early, naming `path`, when it cannot be written: missing folder, a directory, wrong suffix.

    Commands call this before any long computation, so a typo costs nothing; `atomic_output` calls it too.
    """
    target = Path(path)
    if suffixes and target.suffix.lower() not in suffixes:
        raise OutputError(f"cannot write {target}: the file name must end in {' or '.join(suffixes)}")
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a directory")
    folder = target.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {target}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write {target}: no permission to write in {folder}")
    return target


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`, on any error delete it.

    The folder must exist (it is not created: a typo in a path should fail, not make new folders).
    """
    import tempfile

    target = check_output_path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as e:
        raise OutputError(f"cannot write {target}: {e.strerror or e}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        try:
            os.replace(tmp_path, target)
        except OSError as e:
            raise OutputError(f"cannot write {target}: {e.strerror or e}") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_hdf5(path: str | os.PathLike) -> bool:
    """True when the file starts with the HDF5 signature (a levit-np weights file, or another HDF5 file)."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False
