"""Where one (model, runtime) pair of `levit tradeoff --ops` spends its time, by kind of operator.

Runs inside a tradeoff worker (thread counts already fixed). Kinds are named so the runtimes can be compared:
    PyTorch eager   forward hooks on every leaf module time it, by kind: depthwise conv (groups = channels, k > 1),
                    1x1 conv, other conv, linear, norm (timm's BatchNormAct2d: norm + activation), activation,
                    pooling; what no timed module covers (attention products, reshapes, residual adds,
                    squeeze-excite glue) is "other".
    OpenVINO        its own per-node profile (PERF_COUNT), by node type: GroupConvolution is the depthwise conv.
    ONNX Runtime    its own profile (enable_profiling), by ONNX op type (fused convs keep the name FusedConv).
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict


def _torch_kind(module) -> str | None:
    import torch.nn as nn

    if isinstance(module, nn.Conv2d):
        if module.groups > 1 and module.groups == module.in_channels and module.kernel_size != (1, 1):
            return "depthwise conv"
        return "1x1 conv" if module.kernel_size == (1, 1) else "other conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.modules.batchnorm._BatchNorm | nn.LayerNorm | nn.GroupNorm):
        return "norm + activation" if any(True for _ in module.children()) else "norm"  # timm's BatchNormAct2d
    if isinstance(module, nn.SiLU | nn.Hardswish | nn.GELU | nn.ReLU | nn.Sigmoid | nn.Hardsigmoid):
        return "activation"
    if isinstance(module, nn.AdaptiveAvgPool2d | nn.AvgPool2d | nn.MaxPool2d):
        return "pooling"
    return None


def torch_operator_times(model, x, calls: int) -> dict[str, float]:
    """Seconds per call by kind, for an eager torch module; 'total' is the whole call (hooks included)."""
    import torch

    spent: dict[str, float] = defaultdict(float)
    started: dict[int, float] = {}
    handles = []
    timed: list[str] = []  # names of timed modules: their submodules are not timed again
    for name, module in model.named_modules():
        kind = _torch_kind(module)
        if kind is None or any(name.startswith(outer + ".") for outer in timed):
            continue
        if any(True for _ in module.children()) and kind != "norm + activation":
            continue  # a container that happens to be a conv/linear subclass: its leaves are timed instead
        timed.append(name)

        def before(mod, args, _id=id(module)):
            started[_id] = time.perf_counter()

        def after(mod, args, output, _id=id(module), _kind=kind):
            spent[_kind] += time.perf_counter() - started[_id]
        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    total = 0.0
    try:
        with torch.inference_mode():
            tensor = torch.from_numpy(x)
            for _ in range(calls):
                start = time.perf_counter()
                model(tensor)
                total += time.perf_counter() - start
    finally:
        for handle in handles:
            handle.remove()
    out = {kind: seconds / calls for kind, seconds in spent.items()}
    out["other"] = max(0.0, total / calls - sum(out.values()))
    out["total"] = total / calls
    return out


def openvino_operator_times(compiled, x, calls: int) -> dict[str, float]:
    """Seconds per call by OpenVINO node type, from a model compiled with PERF_COUNT on."""
    request = compiled.create_infer_request()
    request.infer([x])  # warm-up
    spent: dict[str, float] = defaultdict(float)
    for _ in range(calls):
        request.infer([x])
        for node in request.get_profiling_info():
            spent[node.node_type] += node.real_time.total_seconds()
    out = {kind: seconds / calls for kind, seconds in spent.items() if seconds > 0}
    out["total"] = sum(out.values())
    return out


def onnxruntime_operator_times(onnx_path: str, x, threads: int, calls: int, folder: str) -> dict[str, float]:
    """Seconds per call by ONNX op type, from ONNX Runtime's profile (a JSON trace written into `folder`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(folder, "ort-profile")
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    session.run(["logits"], {"images": x})  # warm-up, in the profile too: left out below
    for _ in range(calls):
        session.run(["logits"], {"images": x})
    with open(session.end_profiling()) as f:
        events = json.load(f)
    runs = [e for e in events if e.get("name") == "model_run"]
    first_end = runs[0]["ts"] + runs[0]["dur"] if runs else None
    spent: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            if first_end is not None and event["ts"] < first_end:
                continue
            spent[event["args"]["op_name"]] += event["dur"] * 1e-6
    out = {kind: seconds / calls for kind, seconds in spent.items()}
    out["total"] = sum(out.values())
    return out
