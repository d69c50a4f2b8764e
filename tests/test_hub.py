"""Named models: download from a local HTTP server, checksum, convert, cache; and every way that can fail.

A threaded http.server on 127.0.0.1 serves the shared official-format fixture checkpoint under a release-style
name whose 8-hex sha256 prefix is computed here, a corrupted copy under the same name (its checksum fails),
and a "short" copy whose server promises more bytes than it sends. The registry is patched to that name.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import levit_np
import levit_np.weights.registry as levit_weights
from levit_np.weights import hub
from levit_np.weights.hdf5_file import read_info
from levit_np.weights.registry import KnownCheckpoint

from conftest import SHARED
from levit_cli.main import cli

VARIANT = "levit_128s"
PHOTO = str(SHARED / "images" / "coral" / "cat.bmp")


class Handler(SimpleHTTPRequestHandler):
    """Static files, plus /short/<name>: a Content-Length of the whole file and only half the bytes."""

    requests: list[str] = []

    def do_GET(self):
        Handler.requests.append(self.path)
        if self.path.startswith("/short/"):
            data = (Path(self.directory) / "good" / self.path.rsplit("/", 1)[-1]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def release(official_pth, tmp_path_factory):
    """(release file name, sha256 prefix, base URL of the server); good/ and bad/ hold the same name."""
    root = tmp_path_factory.mktemp("server")
    data = official_pth.read_bytes()
    prefix = hashlib.sha256(data).hexdigest()[:8]
    name = f"LeViT-128S-{prefix}.pth"
    (root / "good").mkdir()
    (root / "bad").mkdir()
    (root / "good" / name).write_bytes(data)
    corrupted = bytearray(data)
    corrupted[len(data) // 2] ^= 0xFF
    (root / "bad" / name).write_bytes(bytes(corrupted))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield name, prefix, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def env(release, tmp_path, monkeypatch):
    """An empty cache (LEVIT_HOME) and a registry that points levit_128s at the served file name."""
    name, prefix, base = release
    official = levit_weights.registry()[VARIANT]
    patched = {VARIANT: KnownCheckpoint(VARIANT, name, official.url.rsplit("/", 1)[0] + "/" + name, prefix,
                                        official.layout)}
    monkeypatch.setattr(levit_weights, "registry", lambda: patched)
    monkeypatch.setenv("LEVIT_HOME", str(tmp_path / "cache"))
    Handler.requests.clear()
    return tmp_path / "cache"


def serve_from(monkeypatch, base: str) -> None:
    monkeypatch.setenv("LEVIT_WEIGHTS_URL", base)


def cache_listing(cache: Path) -> list[str]:
    """Everything in the cache, hidden temporaries included."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) if cache.exists() else []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_checks_converts_and_caches(env, release, monkeypatch, official_pth, official_expected):
    name, _, base = release
    serve_from(monkeypatch, base + "/good/")
    seen = []
    path = hub.fetch(VARIANT, progress=lambda file, done, total: seen.append((file, done, total)))
    assert path == env / f"{VARIANT}.h5"
    assert cache_listing(env) == [f"{VARIANT}.h5"]  # the .pth is not kept, no temporaries are left
    size = official_pth.stat().st_size
    assert seen and seen[-1] == (name, size, size)
    assert all(done_before < done for (_, done_before, _), (_, done, _) in zip(seen, seen[1:]))
    meta, _ = read_info(path)
    assert meta.attrs["source_name"] == name
    assert meta.attrs["source_sha256"] == hashlib.sha256(official_pth.read_bytes()).hexdigest()
    logits = levit_np.load(path)(official_expected["x_random"])
    np.testing.assert_allclose(logits, official_expected["logits_random"], rtol=0, atol=1e-4)
    Handler.requests.clear()
    assert hub.fetch(VARIANT) == path  # cached: no second download
    assert Handler.requests == []


@pytest.mark.parametrize("where,message", [
    ("bad", "checksum mismatch"),
    ("short", "connection closed after"),
    ("missing", "HTTP 404"),
    ("unreachable", "Connection refused"),
])
def test_failures_say_what_to_do_and_cache_nothing(env, release, monkeypatch, where, message):
    name, prefix, base = release
    serve_from(monkeypatch, f"http://127.0.0.1:{closed_port()}/" if where == "unreachable" else f"{base}/{where}/")
    with pytest.raises(hub.WeightsUnavailable) as failure:
        hub.fetch(VARIANT)
    text = str(failure.value)
    print(text)
    assert message in text and "\n" not in text
    assert f"/{name}" in text and f"levit convert {name} -o {env / (VARIANT + '.h5')}" in text
    assert f"must start with {prefix}" in text
    assert cache_listing(env) == []  # no .h5, no .part, no download folder


def test_the_official_url_is_used_without_a_mirror(monkeypatch):
    monkeypatch.delenv("LEVIT_WEIGHTS_URL", raising=False)
    for variant, entry in levit_weights.registry().items():
        assert hub.source_url(variant) == entry.url
        assert entry.url.startswith("https://dl.fbaipublicfiles.com/LeViT/")
        assert entry.file.rsplit("-", 1)[-1] == f"{entry.sha256_prefix}.pth"


def test_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("LEVIT_HOME", str(tmp_path / "here"))
    assert hub.cached_path("levit_192") == tmp_path / "here" / "levit_192.h5"
    monkeypatch.delenv("LEVIT_HOME")
    assert hub.cache_dir().name == "levit-np"


def test_unknown_variant_is_refused(env):
    with pytest.raises(levit_np.LevitError, match="no official weights known for 'levit_999'"):
        hub.fetch("levit_999")


def test_cli_downloads_the_default_model_once(env, release, monkeypatch):
    serve_from(monkeypatch, release[2] + "/good")
    runner = CliRunner()
    first = runner.invoke(cli, ["predict", "--json", "-k", "2", PHOTO])
    assert first.exit_code == 0, first.output
    assert f"cached {VARIANT}" in first.stderr
    document = json.loads(first.stdout)  # the progress bar went to stderr: stdout is clean JSON
    entries = document["images"]
    assert document["model"]["weights"] == str(env / f"{VARIANT}.h5")
    assert entries[0]["image"] == PHOTO and len(entries[0]["predictions"]) == 2
    assert cache_listing(env) == [f"{VARIANT}.h5"]
    Handler.requests.clear()
    second = runner.invoke(cli, ["predict", "--model", VARIANT, "--json", "-k", "2", PHOTO])
    assert second.exit_code == 0 and Handler.requests == []
    assert json.loads(second.stdout) == document


def test_cli_failed_download_is_one_line_and_caches_nothing(env, release, monkeypatch):
    serve_from(monkeypatch, release[2] + "/bad")
    result = CliRunner().invoke(cli, ["predict", "--json", PHOTO])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: checksum mismatch") and "levit convert" in last
    assert result.stdout == ""
    assert cache_listing(env) == []


def test_cli_damaged_cache_file_says_delete_it(env):
    env.mkdir(parents=True)
    shutil.copy(SHARED / "images" / "coral" / "cat.bmp", env / f"{VARIANT}.h5")
    result = CliRunner().invoke(cli, ["predict", PHOTO])
    assert result.exit_code == 1
    assert "delete it to download it again" in result.stderr
