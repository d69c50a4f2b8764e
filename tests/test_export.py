"""`levit export`'s graph run in ONNX Runtime and OpenVINO, against the NumPy reference (the spec).

Every variant is exported once (dynamic batch, module-scoped fixture, one variant alive at a time) and run at
batch 1 and batch 4 (two random images and two photos); the official fixture checks real checkpoint import.
"""

from __future__ import annotations

import numpy as np
import pytest

import levit_np
from levit_np.export.onnx_export import onnx_bytes, random_source, read_source
from levit_np.export.settings import MAX_OPSET, MIN_OPSET, ExportSettings

from conftest import SHARED, assert_close_relative

onnx = pytest.importorskip("onnx", reason="levit export needs onnx: pip install 'levit-np[onnx]'")

SEED = 7
REL = 1e-5  # max|diff| / max|ref|, the bar
PHOTOS = [SHARED / "images" / "coral" / "grace_hopper.bmp", SHARED / "images" / "skimage" / "chelsea.png"]
STANDARD_OPS = {"Conv", "HardSwish", "Reshape", "Transpose", "MatMul", "Add", "Split", "Softmax", "Slice",
                "ReduceMean", "Gemm"}


def ort_runner(data: bytes):
    """A function x -> logits on ONNX Runtime's CPU provider, or a skip when onnxruntime is missing."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: pip install onnxruntime")
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return lambda x: session.run(["logits"], {"pixel_values": x})[0]


def openvino_runner(data: bytes):
    """A function x -> logits on OpenVINO's CPU plugin in f32, or a skip when openvino is missing."""
    ov = pytest.importorskip("openvino", reason="openvino not installed: pip install openvino")
    core = ov.Core()
    model = core.read_model(data)  # ONNX bytes in memory
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return lambda x: compiled(x)[0]


RUNNERS = {"onnxruntime": ort_runner, "openvino": openvino_runner}


@pytest.fixture(scope="module")
def images() -> dict[int, np.ndarray]:
    """Batch 1: a random image. Batch 4: two random images and two photos (random ones if the photos are absent)."""
    rng = np.random.default_rng(SEED)
    random = rng.standard_normal((5, 3, 224, 224)).astype(np.float32)
    photos = [levit_np.preprocess(p) for p in PHOTOS if p.exists()]  # none in a user's clone without ../shared
    return {1: random[:1], 4: np.concatenate([random[1:5 - len(photos)]] + [p[None] for p in photos])}


class Exported:
    """One variant's dynamic-batch export, its NumPy reference, and runtimes made on first use."""

    def __init__(self, variant: str):
        self.variant = levit_np.get_config(variant).name
        self.data = onnx_bytes(random_source(variant, SEED), ExportSettings())
        self.reference = levit_np.create(variant, SEED, backend="numpy")
        self._runners: dict = {}
        self._expected: dict = {}

    def expected(self, batch: int, x: np.ndarray) -> np.ndarray:
        """The NumPy reference's logits for the batch-`batch` input, computed once."""
        if batch not in self._expected:
            self._expected[batch] = self.reference(x)
        return self._expected[batch]

    def run(self, runtime: str, x: np.ndarray) -> np.ndarray:
        if runtime not in self._runners:
            self._runners[runtime] = RUNNERS[runtime](self.data)
        return self._runners[runtime](x)


@pytest.fixture(scope="module", params=list(levit_np.VARIANTS))
def exported(request) -> Exported:
    return Exported(request.param)


def test_checker_passes_and_only_standard_ops(exported):
    model = onnx.load_from_string(exported.data)
    onnx.checker.check_model(model, full_check=True)
    assert {node.op_type for node in model.graph.node} <= STANDARD_OPS
    (graph_input,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 224, 224]


@pytest.mark.parametrize("runtime", list(RUNNERS))
@pytest.mark.parametrize("batch", [1, 4])
def test_runtime_matches_numpy_reference(exported, runtime, batch, images):
    x = images[batch]
    expected = exported.expected(batch, x)
    actual = exported.run(runtime, x)
    error = assert_close_relative(actual, expected, REL, f"{exported.variant} {runtime} batch {batch}")
    print(f"{exported.variant} {runtime} batch {batch} (dynamic): max|diff|/max|ref| = {error:.1e}")


@pytest.fixture(scope="module")
def official_export(official_pth):
    return onnx_bytes(read_source(official_pth), ExportSettings())


@pytest.mark.parametrize("runtime", list(RUNNERS))
def test_official_checkpoint_matches_official_outputs(official_export, official_expected, official_pth, runtime):
    """The official-format checkpoint, exported: equal to the official PyTorch model and to our NumPy reference."""
    run = RUNNERS[runtime](official_export)
    reference = levit_np.load(official_pth, backend="numpy")
    for name in ("random", "images"):
        x = official_expected[f"x_{name}"][:4]
        actual = run(x)
        error = assert_close_relative(actual, official_expected[f"logits_{name}"][:4], REL, f"{runtime} {name}")
        ours = assert_close_relative(actual, reference(x), REL, f"{runtime} {name} vs numpy")
        print(f"official 128S {runtime} x_{name}: {error:.1e} vs the official model, {ours:.1e} vs numpy")


def test_official_metadata(official_export, official_pth):
    from levit_np.weights.fileio import sha256_file

    props = {p.key: p.value for p in onnx.load_from_string(official_export).metadata_props}
    assert props["variant"] == "levit_128s"
    assert props["source_sha256"] == props["weights_sha256"] == sha256_file(official_pth)
    assert props["source_layout"] == "official"
    assert props["mean"] == "[0.485, 0.456, 0.406]" and props["std"] == "[0.229, 0.224, 0.225]"
    assert props["resize"] == '{"shorter_side": 256}' and props["crop"] == "[224, 224]"
    assert props["interpolation"] == "bicubic"


@pytest.fixture(scope="module")
def small():
    """levit_128s at settings other than the default, and its NumPy reference."""
    return random_source("128s", SEED), levit_np.create("128s", SEED, backend="numpy")


def test_same_bytes_twice(small):
    source, _ = small
    settings = ExportSettings(batch=1)
    assert onnx_bytes(source, settings) == onnx_bytes(source, settings)


@pytest.fixture(scope="module")
def static_other_size(small):
    """--batch 1 --size 160 192: the export, an input and the NumPy reference's logits."""
    source, reference = small
    x = np.random.default_rng(3).standard_normal((1, 3, 160, 192)).astype(np.float32)
    return onnx_bytes(source, ExportSettings(batch=1, height=160, width=192)), x, reference(x)


@pytest.mark.parametrize("runtime", list(RUNNERS))
def test_static_batch_and_other_size(static_other_size, runtime):
    """A fixed input shape, and the bias tables resampled to a 10x12 grid as the NumPy model does."""
    data, x, expected = static_other_size
    (graph_input,) = onnx.load_from_string(data).graph.input
    assert [d.dim_value for d in graph_input.type.tensor_type.shape.dim] == [1, 3, 160, 192]
    error = assert_close_relative(RUNNERS[runtime](data)(x), expected, REL, f"{runtime} 160x192")
    print(f"levit_128s {runtime} batch 1 (static) 160x192: {error:.1e}")


@pytest.mark.parametrize("opset", sorted({MIN_OPSET, 18, MAX_OPSET}))
def test_opsets(small, opset, images):
    """Each end of the opset range and 18 (where ReduceMean's axes become an input) run and agree."""
    source, reference = small
    data = onnx_bytes(source, ExportSettings(opset=opset, batch=1))
    assert onnx.load_from_string(data).opset_import[0].version == opset
    error = assert_close_relative(ort_runner(data)(images[1]), reference(images[1]), REL, f"opset {opset}")
    print(f"levit_128s onnxruntime opset {opset}: {error:.1e}")
