"""The figure of `levit tradeoff --plot`: images/s (log axis) against top-1, like the paper's Fig. 1.

One panel for the paper's own Intel figures, then one per measured runtime, all on one y axis; in each, one line per
model family. LeViT on our numba path is drawn dashed in every runtime's panel, for reference. matplotlib is an
optional extra (`pip install 'levit-np[plot]'`), imported only here.
"""

from __future__ import annotations

from levit_np.errors import LevitError
from levit_np.perf.tradeoff_worker import RUNTIME_TITLES

FORMATS = ("png", "svg", "pdf")
COLOURS = {"LeViT": "tab:red", "EfficientNet": "tab:blue", "DeiT": "tab:green"}


def require_matplotlib() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise LevitError("the figure needs matplotlib: pip install 'levit-np[plot]'")


def short_name(name: str) -> str:
    """'LeViT-128S' -> '128S', 'EfficientNet-B2' -> 'B2', 'DeiT-Tiny' -> 'Tiny'."""
    return name.split("-", 1)[-1]


def _family_line(axes, models: list[dict], family: str, speed, **style) -> None:
    points = sorted((m["top1"], speed(m), m["name"]) for m in models if m["family"] == family and speed(m))
    if not points:
        return
    top1, img_s, names = zip(*points)
    axes.plot(top1, img_s, marker="o", markersize=4, color=COLOURS[family], **style)
    if not style.get("linestyle"):
        for x, y, name in points:
            axes.annotate(short_name(name), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7,
                          color=COLOURS[family])


def plot_tradeoff(result: dict, path, fmt: str = "png") -> None:
    """Draw `result` (what run_tradeoff returns) to `path` in matplotlib's format `fmt`."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = result["models"]
    runtimes = [r for r in result["runtimes"] if r != "numba" and any("img_s" in m["runtimes"].get(r, {})
                                                                        for m in models)]

    def measured(runtime: str):
        return lambda m: m["runtimes"].get(runtime, {}).get("img_s")

    panels = [("paper: Xeon 6138, PyTorch", lambda m: m["paper_intel_img_s"])]
    panels += [(RUNTIME_TITLES[r], measured(r)) for r in runtimes]
    fig, axes_row = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.6), sharey=True, squeeze=False)
    for axes, (title, speed) in zip(axes_row[0], panels):
        for family in COLOURS:
            _family_line(axes, models, family, speed, label=family)
        if speed is not panels[0][1]:
            _family_line(axes, models, "LeViT", measured("numba"), linestyle="--", alpha=0.6,
                         label="LeViT, levit-np numba")
        axes.set_yscale("log")
        axes.set_title(title, fontsize=9)
        axes.set_xlabel("ImageNet top-1 (%, published)", fontsize=8)
        axes.grid(True, which="both", alpha=0.3)
        axes.tick_params(labelsize=7)
    axes_row[0][0].set_ylabel("images/s (log scale)", fontsize=8)
    handles, labels = axes_row[0][-1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(f"Batch {result['batch']}, {result['threads']} thread(s), {result['cpu']} (medians)", fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    fig.savefig(path, format=fmt, dpi=100)
    plt.close(fig)
