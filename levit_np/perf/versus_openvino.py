"""Our numba backend and OpenVINO f32 side by side, kind of work by kind: where each spends a forward pass.

    python -m levit_np.perf.versus_openvino levit_128s --batch 32 --threads 1 --rounds 8

Both run in this one process on the same random weights and input, alternating round by round, so a drift of
the CPU's speed touches both alike. The thread count is pinned before NumPy, Numba and OpenVINO load. Each round
of calls waits for the other runtime's idle threads to stop spinning (`levit bench`'s settle pause), runs one
untimed call, then ROUND_SECONDS of timed ones (a single call right after the pause finds the idle core slowed
down: at batch 1 on two threads ours then took 1.5x its steady time).

Ours: each kernel call of the forward pass timed (`KernelTimer`); what the pass spends outside the kernels is
glue. OpenVINO: `levit export`'s graph of the same weights, compiled as `levit bench` compiles it, timed by its
own per-node profile (PERF_COUNT, which costs it a little); `openvino_kind` sorts its nodes into the same four
kinds, in the shares its profile gives them of the measured call. For both, the kinds add up to the whole call.

Needs openvino and onnx (`pip install -e ".[bench]"`). Prints one JSON object: the median ms per image of each
kind for each runtime, and the median over rounds of our mean call's time over OpenVINO's.
"""

from __future__ import annotations

import json
import os
import tempfile

from levit_np.perf.study_args import parse_study_args

KINDS = ("conv", "linear", "attention", "glue")
OUR_KINDS = {"conv_bn": "conv", "linear_bn": "linear", "classifier": "linear", "attention": "attention"}
INPUT_NAME = "pixel_values"  # `levit export`'s input
ROUND_SECONDS = 0.25  # timed calls per runtime and round: at least this long (and at least one call)


def openvino_kind(node_type: str, node_name: str) -> str:
    """The kind of one executed OpenVINO node, from its type and the name it keeps from `levit export`'s graph.

    linear: FullyConnected (a MatMul with constant weights, bias and BatchNorm folded in). conv: Convolution and
    the stem's layout reorders around it. attention: the fused attention subgraphs (q k^T + bias, softmax, times
    v, Hardswish) with the head splits and transposes. glue: the residual adds, the stem-to-tokens transpose, the
    pool, and anything else.
    """
    if node_type == "FullyConnected":
        return "linear"
    if node_type == "Convolution" or (node_type == "Reorder" and "stem.conv" in node_name):
        return "conv"
    if node_name.endswith(".residual") or node_name == "stem.tokens":
        return "glue"
    if ".attn." in node_name or node_type in ("Subgraph", "MatMul", "Softmax"):
        return "attention"
    return "glue"


def our_split(timer, total: float) -> dict[str, float]:
    """Seconds by kind from a `KernelTimer`'s kernel seconds and the whole pass's `total`."""
    split = dict.fromkeys(KINDS, 0.0)
    for name, seconds in timer.spent.items():
        split[OUR_KINDS[name]] += seconds
    split["glue"] = total - sum(timer.spent.values())
    return split


def openvino_split(request, total: float) -> dict[str, float]:
    """Seconds by kind of the last inference of an OpenVINO infer request compiled with PERF_COUNT on, which
    took `total` seconds: each kind's share of the profile's node times, applied to `total`. (The node times
    do not add up to the call: measured, 0.94-1.08x of it, one thread, batch 32.)"""
    split = dict.fromkeys(KINDS, 0.0)
    for node in request.get_profiling_info():
        if node.status == node.Status.EXECUTED:
            split[openvino_kind(node.node_type, node.node_name)] += node.real_time.total_seconds()
    profiled = sum(split.values())
    return {kind: seconds * total / profiled for kind, seconds in split.items()}


def compare(variant: str, batch: int, threads: int, rounds: int, seed: int = 0) -> dict:
    """`rounds` rounds of timed calls of each, alternating; medians over the calls in ms per image, and the
    median over rounds of our mean call's time over OpenVINO's."""
    import time

    import numpy as np

    import levit_np
    from levit_np.export.onnx_export import export_onnx, random_source
    from levit_np.export.settings import ExportSettings
    from levit_np.model.forward import forward
    from levit_np.perf.graph_runtimes import openvino_compiled
    from levit_np.perf.timing import KernelTimer
    from levit_np.perf.worker_channel import SETTLE_SECONDS

    model = levit_np.create(variant, seed=seed, backend="numba")
    x = np.random.default_rng(seed).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="levit-versus-") as folder:
        path = os.path.join(folder, f"{model.config.name}.onnx")
        export_onnx(random_source(variant, seed), path, ExportSettings(batch=batch))
        request = openvino_compiled(path, INPUT_NAME, x.shape, threads, profile=True).create_infer_request()
    timer = KernelTimer(model.kernels)

    def settled_calls(run, split) -> list[dict[str, float]]:
        """Timed calls of `run` for at least ROUND_SECONDS, after the settle pause and one untimed call (the cores
        back at speed): `split(seconds)` of each call."""
        time.sleep(SETTLE_SECONDS)
        run()
        rows, spent = [], 0.0
        while spent < ROUND_SECONDS or not rows:
            timer.spent.clear()
            start = time.perf_counter()
            run()
            seconds = time.perf_counter() - start
            rows.append(split(seconds))
            spent += seconds
        return rows

    ours, theirs, ratios = [], [], []
    for _ in range(rounds):
        our_calls = settled_calls(lambda: forward(x, model.config, model.layers, timer),
                                  lambda seconds: our_split(timer, seconds))
        their_calls = settled_calls(lambda: request.infer([x]), lambda seconds: openvino_split(request, seconds))
        ours += our_calls
        theirs += their_calls
        ratios.append(float(np.mean([sum(row.values()) for row in our_calls]) /
                            np.mean([sum(row.values()) for row in their_calls])))
    per_image = 1e3 / batch

    def medians(rows):
        out = {kind: float(np.median([row[kind] for row in rows])) * per_image for kind in KINDS}
        out["total"] = float(np.median([sum(row.values()) for row in rows])) * per_image
        return out

    return {"variant": model.config.name, "batch": batch, "threads": threads, "rounds": rounds,
            "ms_per_image": {"ours": medians(ours), "openvino": medians(theirs)},
            "ours_over_openvino": float(np.median(ratios))}


def main(argv: list[str] | None = None) -> None:
    args = parse_study_args(__doc__.splitlines()[0], argv, threads=1, rounds=8)
    from levit_np.perf.bench import missing_packages

    missing = missing_packages("openvino")
    if missing:
        raise SystemExit(f"the comparison needs {' and '.join(missing)}: pip install -e '.[bench]'")
    print(json.dumps(compare(args.variant, args.batch, args.threads, args.rounds)))


if __name__ == "__main__":
    main()
