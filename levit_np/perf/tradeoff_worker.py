"""One (model, runtime) pair of `levit tradeoff`, in its own process; thread counts come from its environment.

The parent (levit_np.perf.tradeoff) sets every thread pool's variable before it starts this module, so they apply
before torch, NumPy or a runtime is imported. Two commands:

    python -m levit_np.perf.tradeoff_worker prepare SPEC   # build the timm model once and write, in SPEC["folder"]:
        KEY.onnx (when an ONNX runtime is wanted), KEY.logits.npy (its logits of the probe images) and, for LeViT,
        KEY.safetensors (its weights, which our numba path loads so it computes the very same function)
    python -m levit_np.perf.tradeoff_worker serve SPEC            # build the runner, check its logits, then answer
        timing requests read from stdin as JSON lines ({"calls": k} -> {"times": [seconds, ...]})
    python -m levit_np.perf.tradeoff_worker ops SPEC              # seconds per call by kind of operator
        (levit_np.perf.operator_times), for `levit tradeoff --ops`

Every runner is checked before it is timed: its logits of the probe images against the eager PyTorch model's.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable

from levit_np.perf.graph_runtimes import onnxruntime_runner, openvino_compiled, openvino_runner

RUNTIMES = ("torch", "onnxruntime", "openvino", "numba")
RUNTIME_TITLES = {"torch": "PyTorch eager", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO f32",
                  "numba": "levit-np numba"}
REQUIRES = {"torch": ("torch", "timm"), "onnxruntime": ("onnxruntime",), "openvino": ("openvino",),
            "numba": ("numba",)}
EXPORT_REQUIRES = ("torch", "timm", "onnx")  # what `prepare` needs to write the ONNX file
MARK = "@@tradeoff "  # prefix of protocol lines on stdout (libraries may print there too)
PROBE_BATCH = 2  # the probe is a batch of two, so a dynamic batch axis is exercised too


def probe_images(resolution: int):
    """The fixed images every runner of a model is checked on: (PROBE_BATCH, 3, R, R) float32."""
    import numpy as np

    return np.random.default_rng(1).standard_normal((PROBE_BATCH, 3, resolution, resolution)).astype(np.float32)


def _file(spec: dict, suffix: str) -> str:
    return os.path.join(spec["folder"], spec["key"] + suffix)


# ---------------------------------------------------------------- prepare: the eager model's files


def _randomise_levit(model, seed: int) -> None:
    """Random BatchNorm statistics and attention biases (timm's init sets them to 0/1/0, hiding mistakes)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            if hasattr(module, "attention_biases"):
                module.attention_biases.copy_(torch.randn(module.attention_biases.shape, generator=generator))


def timm_model(spec: dict):
    """The timm model with seeded random weights, in eval mode, and its input side (from its pretrained_cfg)."""
    import timm
    import torch

    torch.manual_seed(spec["seed"])
    model = timm.create_model(spec["timm_name"], pretrained=False).eval()
    if spec["family"] == "LeViT":
        _randomise_levit(model, spec["seed"])
    return model, int(model.pretrained_cfg["input_size"][-1])


def prepare(spec: dict) -> None:
    """Write the files the other runtimes need (see the module docstring); print the input side as JSON."""
    import numpy as np
    import torch

    torch.set_num_threads(spec["threads"])
    model, side = timm_model(spec)
    x = torch.from_numpy(probe_images(side))
    with torch.inference_mode():
        np.save(_file(spec, ".logits.npy"), model(x).numpy())
    if spec["family"] == "LeViT":
        from safetensors.numpy import save_file

        save_file({k: v.detach().numpy().copy() for k, v in model.state_dict().items()}, _file(spec, ".safetensors"))
    if spec.get("onnx"):
        with torch.no_grad():
            torch.onnx.export(model, (x,), _file(spec, ".onnx"), input_names=["images"], output_names=["logits"],
                              dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                              dynamo=False)
    _reply({"resolution": side})


# ---------------------------------------------------------------- serve: one runner, timed on request


def make_runner(spec: dict) -> tuple[Callable, str, int]:
    """A function images (B, 3, R, R) float32 -> logits (B, classes), a one-line description, and R."""
    runtime, threads = spec["runtime"], spec["threads"]
    if runtime == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        model, side = timm_model(spec)

        def run_torch(x):
            with torch.inference_mode():
                return model(torch.from_numpy(x)).numpy()
        return run_torch, f"PyTorch {torch.__version__} eager, timm {spec['timm_name']}", side
    if runtime == "numba":
        return _numba_runner(spec)
    side = spec["resolution"]
    if runtime == "onnxruntime":
        return (*onnxruntime_runner(_file(spec, ".onnx"), "images", "logits", threads), side)
    if runtime == "openvino":
        return (*openvino_runner(_file(spec, ".onnx"), "images", threads), side)
    raise ValueError(f"unknown runtime {runtime!r}")


def _numba_runner(spec: dict) -> tuple[Callable, str, int]:
    """Our numba path holding the timm model's weights when `prepare` wrote them, else our own random weights."""
    from levit_np.levit_model import LevitModel

    weights = _file(spec, ".safetensors") if spec.get("folder") else ""
    if weights and os.path.exists(weights):
        from safetensors.numpy import load_file

        from levit_np.weights.convert import map_state_dict

        conversion = map_state_dict(load_file(weights), spec["key"])
        model = LevitModel(conversion.config, conversion.params, "numba")
        return model, "levit-np numba (the timm model's weights)", conversion.config.img_size
    import levit_np

    model = levit_np.create(spec["key"], seed=spec["seed"], backend="numba")
    return model, "levit-np numba (own random weights: not checked)", model.config.img_size


def _reply(message: dict) -> None:
    sys.stdout.write(MARK + json.dumps(message) + "\n")
    sys.stdout.flush()


def _relative_error(actual, reference) -> float:
    import numpy as np

    reference = np.asarray(reference, dtype=np.float64)
    return float(np.abs(np.asarray(actual, dtype=np.float64) - reference).max() / np.abs(reference).max())


def serve(spec: dict) -> None:
    """Build and check the runner, time one call at the run's batch, then answer timing requests."""
    import numpy as np

    try:
        run, detail, side = make_runner(spec)
        error = None
        reference = _file(spec, ".logits.npy") if spec.get("folder") else ""
        if reference and os.path.exists(reference) and "own random weights" not in detail:
            error = _relative_error(run(probe_images(side)), np.load(reference, allow_pickle=False))
        x = np.random.default_rng(2).standard_normal((spec["batch"], 3, side, side)).astype(np.float32)
        run(x)  # warm-up: compilation, allocations
        start = time.perf_counter()
        run(x)
        first = time.perf_counter() - start
        _reply({"ready": True, "detail": detail, "resolution": side, "max_rel_diff_vs_eager": error,
                "call_s": first})
    except Exception as e:  # reported to the parent, which lists the pair as not run
        _reply({"ready": False, "error": f"{type(e).__name__}: {' '.join(str(e).split())}"})
        return
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        times = []
        for _ in range(request["calls"]):
            start = time.perf_counter()
            run(x)
            times.append(time.perf_counter() - start)
        _reply({"times": times})


def operator_times(spec: dict) -> None:
    """Reply with the runner's seconds per call by kind of operator, over spec["calls"] calls at the run's batch."""
    import numpy as np

    from levit_np.perf import operator_times as ops

    runtime, calls = spec["runtime"], spec["calls"]
    try:
        if runtime == "torch":
            import torch

            torch.set_num_threads(spec["threads"])
            model, side = timm_model(spec)
            x = np.random.default_rng(2).standard_normal((spec["batch"], 3, side, side)).astype(np.float32)
            ops.torch_operator_times(model, x, 1)  # warm-up
            times = ops.torch_operator_times(model, x, calls)
        elif runtime in ("openvino", "onnxruntime"):
            side = spec["resolution"]
            x = np.random.default_rng(2).standard_normal((spec["batch"], 3, side, side)).astype(np.float32)
            if runtime == "onnxruntime":
                times = ops.onnxruntime_operator_times(_file(spec, ".onnx"), x, spec["threads"], calls,
                                                       spec["folder"])
            else:
                compiled = openvino_compiled(_file(spec, ".onnx"), "images", x.shape, spec["threads"], profile=True)
                times = ops.openvino_operator_times(compiled, x, calls)
        else:
            raise ValueError(f"no operator profile for runtime {runtime!r} (torch, onnxruntime, openvino have one)")
        _reply({"ops": times, "resolution": side})
    except Exception as e:
        _reply({"error": f"{type(e).__name__}: {' '.join(str(e).split())}"})


def main(argv: list[str]) -> None:
    if argv[:1] == ["prepare"] and len(argv) == 2:
        prepare(json.loads(argv[1]))
    elif argv[:1] == ["serve"] and len(argv) == 2:
        serve(json.loads(argv[1]))
    elif argv[:1] == ["ops"] and len(argv) == 2:
        operator_times(json.loads(argv[1]))
    else:
        raise SystemExit("usage: python -m levit_np.perf.tradeoff_worker prepare SPEC | serve SPEC | ops SPEC")


if __name__ == "__main__":
    main(sys.argv[1:])
