"""The unpickler's allow-list is the security boundary for untrusted .pth files (docs/security.md): every
global a malicious file might reach for is refused before anything runs, and the list itself is exactly the
one the documentation describes."""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from levit_np.errors import CheckpointError
from levit_np.weights import checkpoint_io
from levit_np.weights.checkpoint_io import read_state_dict

from test_checkpoint_io import _dict_pickle, _g, _s, _tensor, _tup

DOCS = Path(__file__).resolve().parents[1] / "docs" / "security.md"

# (module, name) pairs a crafted pickle could name: code execution, attribute walks, imports, file access,
# lookalikes of the allowed torch functions in other modules, and NumPy's own pickle helpers.
DANGEROUS = [
    ("os", "system"), ("posix", "system"), ("nt", "system"), ("os", "popen"), ("os", "execv"), ("os", "remove"),
    ("subprocess", "Popen"), ("subprocess", "run"), ("subprocess", "check_output"),
    ("builtins", "eval"), ("builtins", "exec"), ("builtins", "compile"), ("builtins", "getattr"),
    ("builtins", "setattr"), ("builtins", "__import__"), ("builtins", "open"), ("builtins", "globals"),
    ("builtins", "breakpoint"), ("builtins", "input"), ("builtins", "type"), ("builtins", "object"),
    ("__builtin__", "eval"), ("__builtin__", "getattr"),
    ("importlib", "import_module"), ("runpy", "run_path"), ("code", "InteractiveInterpreter"), ("pty", "spawn"),
    ("shutil", "rmtree"), ("pathlib", "Path"), ("io", "open"), ("webbrowser", "open"), ("ctypes", "CDLL"),
    ("pickle", "loads"), ("_pickle", "loads"), ("marshal", "loads"), ("copyreg", "_reconstructor"),
    ("operator", "attrgetter"), ("operator", "methodcaller"), ("operator", "itemgetter"),
    ("functools", "partial"), ("functools", "reduce"), ("itertools", "starmap"), ("types", "FunctionType"),
    ("types", "CodeType"), ("sys", "modules"), ("timeit", "timeit"), ("cProfile", "run"), ("pdb", "run"),
    ("numpy", "load"), ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.lib.npyio", "load"), ("numpy", "frombuffer"),
    ("torch", "load"), ("torch.serialization", "load"), ("torch._utils", "_rebuild_device_tensor_from_numpy"),
    ("torch._utils", "_rebuild_qtensor"), ("torch.nn.modules.linear", "Linear"), ("torch", "_C"),
    ("torch._C", "_nn"), ("torch.storage", "_load_from_bytes"), ("torch._tensor", "_rebuild_from_type"),
    ("evil._utils", "_rebuild_tensor_v2"), ("torch_utils", "_rebuild_tensor_v2"),
    ("torch._utils.os", "system"), ("torch._utils", "os"), ("torch", "os"), ("collections", "os"),
    ("torch._utils ", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor_v2 "),
    ("TORCH._UTILS", "_rebuild_tensor_v2"), ("collections", "defaultdict"), ("collections", "namedtuple"),
    ("collections.OrderedDict", "fromkeys"), ("collections", "OrderedDict.fromkeys"),
    ("torch._utils", "_rebuild_tensor_v2.__globals__"), ("torch", "FloatStorage.__class__"),
]


def _checkpoint(tmp_path: Path, pkl: bytes, name: str = "evil.pth") -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("archive/data.pkl", pkl)
        archive.writestr("archive/byteorder", b"little")
        archive.writestr("archive/data/0", np.arange(6, dtype="<f4").tobytes())
    path = tmp_path / name
    path.write_bytes(buf.getvalue())
    return path


def _assert_refused(path: Path, module: str, name: str) -> None:
    with pytest.raises(CheckpointError) as failure:
        read_state_dict(path)
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith(f"refusing to load {path}: it references the Python global"), message


@pytest.mark.parametrize("module,name", DANGEROUS, ids=[f"{m}.{n}" for m, n in DANGEROUS])
def test_dangerous_global_is_refused(tmp_path, module, name):
    """The global is named by GLOBAL (protocol 2) and STACK_GLOBAL (protocol 4), called via REDUCE, with an
    argument that would leave a marker file if it ran; loading refuses it and nothing runs."""
    marker = tmp_path / "ran"
    argument = _s(f"touch {marker}")
    stack_global = b"\x8c" + bytes([len(module.encode())]) + module.encode() + \
        b"\x8c" + bytes([len(name.encode())]) + name.encode() + b"\x93"
    for kind, opcode in [("global", _g(module, name)), ("stack", stack_global)]:
        if kind == "global" and ("\n" in module + name or " " in module + name):
            continue  # GLOBAL's text form cannot carry those names (STACK_GLOBAL can)
        pkl = b"\x80\x04" + opcode + _tup(argument) + b"R."
        _assert_refused(_checkpoint(tmp_path, pkl), module, name)
        wrapped = _dict_pickle({"model": opcode + _tup(argument) + b"R"})  # inside a normal-looking dict
        _assert_refused(_checkpoint(tmp_path, wrapped), module, name)
    assert not marker.exists()


def test_real_payloads_from_pickle_dumps(tmp_path):
    """Payloads the way an attacker would write them: pickle.dumps of objects whose __reduce__ calls os.system,
    subprocess.Popen, eval, getattr(__import__('os'), 'system') or functools.partial."""
    import functools
    import os
    import subprocess

    marker = tmp_path / "ran"
    command = f"touch {marker}"

    class Reduce:
        def __init__(self, *call):
            self.call = call

        def __reduce__(self):
            return self.call

    payloads = [
        Reduce(os.system, (command,)),
        Reduce(subprocess.Popen, (["touch", str(marker)],)),
        Reduce(eval, (f"__import__('os').system({command!r})",)),
        Reduce(getattr, (Reduce(__import__, ("os",)), "system")),
        Reduce(functools.partial(os.system, command), ()),
        Reduce(np.frombuffer, (b"\0" * 8,)),
    ]
    for protocol in (2, 4, 5):
        for payload in payloads:
            path = _checkpoint(tmp_path, pickle.dumps({"model": {"w": payload}}, protocol=protocol))
            with pytest.raises(CheckpointError, match="refusing to load"):
                read_state_dict(path)
    assert not marker.exists()


def test_extension_registry_goes_through_the_allow_list(tmp_path):
    """EXT1/EXT2/EXT4 name a global by a number registered with copyreg: still checked against the list."""
    import copyreg

    copyreg.add_extension("os", "system", 0xBEEF)
    try:
        pkl = b"\x80\x02\x83" + (0xBEEF).to_bytes(2, "little") + _tup(_s("true")) + b"R."  # EXT2
        with pytest.raises(CheckpointError, match="'os.system'"):
            read_state_dict(_checkpoint(tmp_path, pkl))
    finally:
        copyreg.remove_extension("os", "system", 0xBEEF)


def test_allowed_entries_only_build_arrays(tmp_path):
    """The allowed callables cannot be turned into anything else: wrong arguments are refused, a tensor
    subclass or another rebuild function through _rebuild_from_type_v2 is refused, and no entry accepts
    attributes (BUILD) or exposes the function it wraps as a callable with other behaviour."""
    rebuild = _g("torch._utils", "_rebuild_tensor_v2")
    cases = {
        "string storage": rebuild + _tup(_s("/etc/passwd"), b"K\x00", b")", b")") + b"R.",
        "od with items": _g("collections", "OrderedDict") + _tup(_s("abc")) + b"R.",
        "from_type other func": _g("torch._tensor", "_rebuild_from_type_v2")
        + _tup(_g("collections", "OrderedDict"), _g("torch", "Tensor"), b")", b"}") + b"R.",
        "build on allowed": _g("torch._utils", "_rebuild_parameter") + b"}" + _s("fn") + _g("collections",
                                                                                            "OrderedDict") + b"sb.",
    }
    for label, pkl in cases.items():
        obj = None
        try:
            obj = checkpoint_io.load_torch_zip(_checkpoint(tmp_path, b"\x80\x02" + pkl))
        except CheckpointError:
            continue
        assert isinstance(obj, (dict, np.ndarray)) and not callable(obj), f"{label}: {obj!r}"
    ok = _dict_pickle({"w": _tensor("FloatStorage", "0", 6, 0, (2, 3), (3, 1))})
    np.testing.assert_array_equal(read_state_dict(_checkpoint(tmp_path, ok))["w"],
                                  np.arange(6, dtype=np.float32).reshape(2, 3))


def test_allow_list_is_the_documented_one():
    """docs/security.md lists every allowed global; a new entry must be documented (and reviewed) first."""
    documented = set(re.findall(r"^\| `([\w.]+)` \|", DOCS.read_text(), flags=re.MULTILINE))
    allowed = {f"{module}.{name}" for module, name in checkpoint_io._ALLOWED}
    assert allowed <= documented, f"undocumented: {sorted(allowed - documented)}"
    assert documented <= allowed | {"(anything else)"}, f"documented but not allowed: {sorted(documented - allowed)}"
