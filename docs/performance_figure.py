"""The figure of docs/performance.md: where the numba path's time goes, kernel by kernel, at batch 1 and 32.

    python docs/performance_figure.py --threads 2 --out docs/img/performance-kernels.png

Each case runs in its own process with its thread count pinned before NumPy and Numba load. Every kernel call
of the forward pass is timed through a wrapper around the backend's kernel module; what is left of the forward
pass's time (residual adds, reshapes, the mean pool, Python between kernels) is "glue". Medians of --repeats runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

KERNELS = ("conv_bn", "linear_bn", "attention", "classifier")


def measure(variant: str, batch: int, repeats: int) -> dict:
    """{kernel: median ms per image} plus 'glue' and 'total', for the numba backend (this process's threads)."""
    import numpy as np

    import levit_np
    from levit_np.model.forward import forward
    from levit_np.perf.timing import KernelTimer, median_iqr

    model = levit_np.create(variant, backend="numba")
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    kernels = KernelTimer(model.kernels)
    forward(x, model.config, model.layers, kernels)
    samples: dict[str, list[float]] = {name: [] for name in KERNELS + ("glue", "total")}
    for _ in range(repeats):
        kernels.spent.clear()
        start = time.perf_counter()
        forward(x, model.config, model.layers, kernels)
        total = time.perf_counter() - start
        for name in KERNELS:
            samples[name].append(kernels.spent.get(name, 0.0))
        samples["glue"].append(total - sum(kernels.spent.values()))
        samples["total"].append(total)
    return {name: median_iqr(values)[0] * 1e3 / batch for name, values in samples.items()}


def run_case(variant: str, batch: int, threads: int, repeats: int) -> dict:
    """`measure` in a child process with every thread pool pinned to `threads`."""
    from levit_np.perf.timing import thread_environment

    code = (f"import json, sys; sys.path.insert(0, {sys.path[0]!r}); import performance_figure as f; "
            f"print(json.dumps(f.measure({variant!r}, {batch}, {repeats})))")
    done = subprocess.run([sys.executable, "-c", code], env=thread_environment(threads), capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="levit_128s")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default="docs/img/performance-kernels.png")
    args = parser.parse_args()
    from levit_np.perf.block_table import cpu_name

    cases = {f"batch {batch}, {threads} thread{'s' * (threads > 1)}": run_case(args.variant, batch, threads,
                                                                                 args.repeats)
             for batch in (1, 32) for threads in sorted({1, args.threads})}
    print(json.dumps(cases, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = KERNELS + ("glue",)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    names = list(cases)
    left = [0.0] * len(names)
    for part in parts:
        widths = [cases[name][part] for name in names]
        ax.barh(names, widths, left=left, label=part)
        left = [a + b for a, b in zip(left, widths)]
    ax.invert_yaxis()
    ax.set_xlabel("ms per image (median)")
    ax.set_title(f"{args.variant}, numba backend: time per kernel ({cpu_name()})", fontsize=9)
    ax.legend(ncol=len(parts), fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)


if __name__ == "__main__":
    main()
