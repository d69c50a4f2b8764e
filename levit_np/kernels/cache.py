"""Where the Numba kernels' compiled code is cached: a folder keyed by a hash of every source file of this
package and the Numba version, so that any edit to a kernel source compiles afresh.

Numba's own cache (`@njit(cache=True)`) checks only the source file of the function it loads: a kernel in
`fast.py` that calls `numba_common.hardswish1` keeps running the old compiled helper after `numba_common.py`
changes (an edit, or a `git pull` into an editable install). Importing this module (`numba_common.py` does,
before any kernel is decorated) puts a cache locator ahead of Numba's own, for the functions defined in this
package only; other code's Numba caches are left where Numba puts them.

    cache folder   $NUMBA_CACHE_DIR/levit-np-kernels/<hash>/ when NUMBA_CACHE_DIR is set, else
                   <user cache dir>/levit-np/kernels/<hash>/ (platformdirs), e.g. ~/.cache/levit-np/kernels/
    <hash>         sha256 of the Numba version and of each kernels/*.py file's name and bytes (16 hex digits)

Folders of older hashes are never read again and can be deleted at any time. When the folder cannot be
written, Numba's own locators take over (compiled code then goes to __pycache__, as before).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

KERNELS_DIR = Path(__file__).resolve().parent


def source_hash(folder: Path = KERNELS_DIR) -> str:
    """16 hex digits of sha256 over the Numba version and every .py file of `folder` (name and bytes)."""
    import numba

    digest = hashlib.sha256(f"numba {numba.__version__}\0".encode())
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """The folder that holds one subfolder per kernel-source hash."""
    base = os.environ.get("NUMBA_CACHE_DIR")
    if base:
        return Path(base) / "levit-np-kernels"
    import platformdirs

    return Path(platformdirs.user_cache_dir("levit-np", appauthor=False)) / "kernels"


def cache_folder() -> Path:
    """Where the kernels of this source tree are cached."""
    return cache_root() / source_hash()


def _install() -> None:
    """Register the locator (once per process)."""
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # public name since Numba 0.60
    base = getattr(caching, "UserProvidedCacheLocator", None) or caching._UserProvidedCacheLocator
    if any(getattr(cls, "levit_kernels", False) for cls in impl._locator_classes):
        return
    folder = cache_folder()

    class KernelCacheLocator(base):
        """Numba's user-directory locator, pointed at `folder` and limited to the files of this package."""

        levit_kernels = True

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = str(folder / self.get_suitable_cache_subpath(py_file))

        @classmethod
        def from_function(cls, py_func, py_file):
            if Path(py_file).resolve().parent != KERNELS_DIR:
                return None
            locator = cls(py_func, py_file)
            try:
                locator.ensure_cache_path()
            except OSError:
                return None
            return locator

    impl._locator_classes.insert(0, KernelCacheLocator)


_install()
