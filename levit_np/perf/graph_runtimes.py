"""ONNX Runtime and OpenVINO (f32) running one ONNX graph with a fixed thread count: what `levit bench` and
`levit tradeoff` time against our kernels. Each returns (run(x) -> the first output, a title with the version).

Both run one inference at a time on `threads` threads (no parallel sessions or streams), like the other
backends being compared. OpenVINO compiles one static-shape model per batch size on first use.
"""

from __future__ import annotations

from typing import Callable


def onnxruntime_runner(path: str, input_name: str, output_name: str, threads: int) -> tuple[Callable, str]:
    """The graph at `path` in ONNX Runtime's CPU provider, sequential, every graph optimisation on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return (lambda x: session.run([output_name], {input_name: x})[0]), f"ONNX Runtime {ort.__version__}"


def openvino_compiled(path: str, input_name: str, shape: tuple[int, ...], threads: int, profile: bool = False):
    """The graph at `path` compiled by OpenVINO for the CPU at one static input `shape`: f32 precision, one
    stream, the latency hint, `threads` threads; with `profile`, its per-node profile on (PERF_COUNT)."""
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
              "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": bool(profile)}
    core = ov.Core()
    model = core.read_model(path)
    model.reshape({input_name: list(shape)})
    return core.compile_model(model, "CPU", config)


def openvino_runner(path: str, input_name: str, threads: int) -> tuple[Callable, str]:
    """The graph at `path` in OpenVINO on the CPU (`openvino_compiled`), compiled once per batch size."""
    import openvino as ov

    compiled: dict[int, Callable] = {}

    def run_openvino(x):
        if x.shape[0] not in compiled:
            compiled[x.shape[0]] = openvino_compiled(path, input_name, x.shape, threads)
        return compiled[x.shape[0]](x)[0]
    return run_openvino, f"OpenVINO {ov.get_version().split('-')[0]}, f32"
