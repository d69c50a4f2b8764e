"""Named models: official release weights, downloaded once, checked, converted and cached as `<variant>.h5`.

    cache folder   $LEVIT_HOME, else the user cache dir (platformdirs) / "levit-np"
    cached model   <cache>/<variant>.h5, e.g. ~/.cache/levit-np/levit_128s.h5
    source URL     the official URL from `levit_np.weights.registry.registry()`; $LEVIT_WEIGHTS_URL replaces its base
                   (everything before the file name), for mirrors and for tests

The release file is streamed into a hidden temporary folder inside the cache (same disk as the result), its
sha256 is computed on the way and must start with the 8 hex digits in its file name, then it is converted
with `convert_checkpoint`, which writes the `.h5` atomically. The `.pth` itself is deleted afterwards: the
`.h5` holds every tensor plus the source's name and sha256, so keeping both would only double the disk use.
Any failure (offline, HTTP error, short read, checksum mismatch) raises `WeightsUnavailable`, whose one-line
message names the URL and the `levit convert` command that does the job by hand; nothing is left in the cache.

Processes that fetch the same model at once (two `levit predict --model NAME` started together) take turns on
a lock file, `<cache>/.<variant>.h5.lock` (POSIX `flock`, released by the system even if a process dies): the
first downloads and converts, the others wait and then find the cached file. Without `fcntl` (Windows) there is
no lock and both may download, still safely: each writes its own temporaries and renames a complete `.h5`.

No click or rich here: download progress goes to an optional `progress(file_name, done_bytes, total_bytes)`
callback (`total_bytes` is None when the server sends no Content-Length).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from levit_np.errors import LevitError, one_line

ENV_HOME = "LEVIT_HOME"
ENV_WEIGHTS_URL = "LEVIT_WEIGHTS_URL"
CHUNK = 1 << 20
TIMEOUT_SECONDS = 30.0

Progress = Callable[[str, int, Optional[int]], None]


class WeightsUnavailable(LevitError):
    """Official weights could not be downloaded or failed their checksum; the message says what to do instead."""


def cache_dir() -> Path:
    """Where converted named models live: $LEVIT_HOME, else the platform's user cache dir / levit-np."""
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("levit-np", appauthor=False))


def cached_path(variant: str) -> Path:
    """The cache file of a named model (it may not exist yet)."""
    return cache_dir() / f"{variant}.h5"


def known_checkpoint(variant: str):
    """The registry entry of `variant`, or a one-line error listing the known names."""
    from levit_np.weights.registry import registry

    known = registry()
    if variant not in known:
        raise LevitError(f"no official weights known for {variant!r}; known: {', '.join(known)}")
    return known[variant]


def source_url(variant: str) -> str:
    """The URL the release file of `variant` is downloaded from (official, or under $LEVIT_WEIGHTS_URL)."""
    ckpt = known_checkpoint(variant)
    base = os.environ.get(ENV_WEIGHTS_URL)
    return f"{base.rstrip('/')}/{ckpt.file}" if base else ckpt.url


def fetch(variant: str, progress: Optional[Progress] = None, timeout: float = TIMEOUT_SECONDS) -> Path:
    """The cached `.h5` of `variant`; downloaded, checked and converted first when it is not cached yet."""
    target = cached_path(variant)
    if target.is_file():
        return target
    ckpt = known_checkpoint(variant)
    url = source_url(variant)
    target.parent.mkdir(parents=True, exist_ok=True)
    with cache_lock(target):
        if target.is_file():  # another process cached it while this one waited
            return target
        with tempfile.TemporaryDirectory(prefix=".download-", dir=target.parent) as tmp:
            downloaded = Path(tmp) / ckpt.file
            try:
                digest = download(url, downloaded, progress, timeout)
            except WeightsUnavailable as e:
                raise WeightsUnavailable(f"{e}. {remedy(variant, url)}") from None
            if not digest.startswith(ckpt.sha256_prefix):
                raise WeightsUnavailable(
                    f"checksum mismatch for {url}: sha256 {digest[:16]}... does not start with "
                    f"{ckpt.sha256_prefix} (damaged download or wrong file); nothing was cached. "
                    f"{remedy(variant, url)}")
            from levit_np.weights.convert import convert_checkpoint

            convert_checkpoint(downloaded, target, variant)
    return target


@contextlib.contextmanager
def cache_lock(target: Path):
    """Hold an exclusive lock on `<cache>/.<target name>.lock` (blocking until other holders are done).

    The lock file is removed on the way out so the cache stays clean. A process that was waiting on the removed
    file still gets its lock and finds the finished target; one arriving later makes a new lock file and, if
    the first attempt failed, may download at the same time as a waiter: safe, as every writer renames a
    complete file into place."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock (see the module docstring)
        yield
        return
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "ab") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remedy(variant: str, url: str) -> str:
    """What a user can do by hand when the automatic download fails."""
    name = url.rsplit("/", 1)[-1]
    return (f"Download {url} (its sha256 must start with {known_checkpoint(variant).sha256_prefix}), then run: "
            f"levit convert {name} -o {cached_path(variant)}")


def download(url: str, dest: Path, progress: Optional[Progress] = None,
             timeout: float = TIMEOUT_SECONDS) -> str:
    """Stream `url` into `dest` and return its hex sha256; raise WeightsUnavailable on any network failure."""
    digest = hashlib.sha256()
    name = dest.name
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as f:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            for block in iter(lambda: response.read(CHUNK), b""):
                f.write(block)
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(name, done, total)
    except urllib.error.HTTPError as e:
        raise WeightsUnavailable(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise WeightsUnavailable(f"cannot download {url}: {one_line(e.reason)} (offline?)") from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise WeightsUnavailable(f"cannot download {url}: {one_line(e)}") from None
    if total is not None and done != total:
        raise WeightsUnavailable(f"cannot download {url}: connection closed after {done} of {total} bytes")
    return digest.hexdigest()


