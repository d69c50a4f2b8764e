"""Concurrent use of the weights cache: two `levit predict --model NAME` processes started at once with an
empty cache both succeed, the cache never holds a partial file, and the download happens once.

A threaded http.server on 127.0.0.1 serves a random-weights levit_128s checkpoint (timm names, safetensors
format: the reader goes by content, not by the .pth name the registry gives it) slowly, so the two downloads
would overlap; each process patches the registry to that file's name and checksum before running the CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file

from levit_np.model.config import VARIANTS
from levit_np.model.params import random_params
from levit_np.weights import hub
from levit_np.weights.hdf5_file import read_info
from levit_np.weights.layouts import timm_keys

REPO = Path(__file__).resolve().parents[1]
VARIANT = "levit_128s"
RUN_CLI = """
import sys
import levit_np.weights.registry as registry
from levit_np.weights.registry import KnownCheckpoint

name, prefix = sys.argv[1], sys.argv[2]
entry = KnownCheckpoint("levit_128s", name, "https://example.invalid/" + name, prefix, "timm")
registry.registry = lambda: {"levit_128s": entry}
from levit_cli.main import main

sys.argv = ["levit", *sys.argv[3:]]
main()
"""


class SlowHandler(SimpleHTTPRequestHandler):
    """Static files sent in 256 kB pieces with a pause between them, so a download takes about a second."""

    downloads: list[str] = []

    def copyfile(self, source, outputfile):
        SlowHandler.downloads.append(self.path)
        for block in iter(lambda: source.read(1 << 18), b""):
            outputfile.write(block)
            time.sleep(0.01)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(release file name, sha256 prefix, base URL)."""
    root = tmp_path_factory.mktemp("release")
    cfg = VARIANTS[VARIANT]
    keys = timm_keys(cfg)
    staged = root / "staged.safetensors"
    save_file({keys[name]: value for name, value in random_params(cfg, seed=5).items()}, str(staged))
    prefix = hashlib.sha256(staged.read_bytes()).hexdigest()[:8]
    name = f"LeViT-128S-{prefix}.pth"
    staged.rename(root / name)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(SlowHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield name, prefix, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _watch(cache: Path, stop: threading.Event, seen: list) -> None:
    """Whenever the cached .h5 exists it must be complete: read its info (all tensors' names and shapes)."""
    target = cache / f"{VARIANT}.h5"
    while not stop.is_set():
        if target.exists():
            meta, shapes = read_info(target)
            seen.append(len(shapes))
        time.sleep(0.02)


def test_two_predict_processes_share_one_download(server, tmp_path):
    name, prefix, base = server
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(image)
    cache = tmp_path / "cache"
    env = {**os.environ, "LEVIT_HOME": str(cache), "LEVIT_WEIGHTS_URL": base, "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, "-c", RUN_CLI, name, prefix,
               "predict", "--model", VARIANT, "--backend", "numpy", "--json", "-k", "3", str(image)]
    SlowHandler.downloads.clear()
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_watch, args=(cache, stop, seen))
    watcher.start()
    try:
        processes = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for _ in range(2)]
        results = [p.communicate(timeout=300) for p in processes]
    finally:
        stop.set()
        watcher.join()
    for process, (out, err) in zip(processes, results):
        assert process.returncode == 0, err.decode()
    outputs = [json.loads(out) for out, _ in results]
    assert outputs[0]["images"] == outputs[1]["images"] and len(outputs[0]["images"][0]["predictions"]) == 3
    print("downloads:", SlowHandler.downloads, "watcher saw the .h5", len(seen), "times")
    assert len(SlowHandler.downloads) == 1  # the second process waited on the lock, then found the file
    assert sorted(p.name for p in cache.iterdir()) == [f"{VARIANT}.h5"]  # no lock file, no temporaries
    assert all(count == len(timm_keys(VARIANTS[VARIANT])) for count in seen)


def test_without_a_lock_two_fetches_are_still_safe(server, tmp_path, monkeypatch):
    """Where there is no lock (no fcntl), both download and convert; the cache still ends whole."""
    import contextlib

    name, prefix, base = server
    from levit_np.weights import registry
    from levit_np.weights.registry import KnownCheckpoint

    entry = KnownCheckpoint(VARIANT, name, "https://example.invalid/" + name, prefix, "timm")
    monkeypatch.setattr(registry, "registry", lambda: {VARIANT: entry})
    monkeypatch.setattr(hub, "cache_lock", lambda target: contextlib.nullcontext())
    monkeypatch.setenv("LEVIT_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LEVIT_WEIGHTS_URL", base)
    SlowHandler.downloads.clear()
    paths, errors = [], []

    def fetch():
        try:
            paths.append(hub.fetch(VARIANT))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(paths) == 2 and paths[0] == paths[1]
    assert len(SlowHandler.downloads) == 2
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [f"{VARIANT}.h5"]
    meta, shapes = read_info(paths[0])
    assert meta.attrs["source_name"] == name and len(shapes) == len(timm_keys(VARIANTS[VARIANT]))
