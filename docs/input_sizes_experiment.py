"""The numbers and the figure of docs/input-sizes.md: how predictions move when the input size changes.

    python docs/input_sizes_experiment.py [--weights FILE] [--images DIR] [--figure docs/img/bias-resampling.png]

Runs every image at 224 x 224 and at other sizes (each preprocessed to that size with the 87.5% centre-crop
rule) and compares the logits with those at 224: top-1 agreement, top-5 overlap, cosine similarity. A
second comparison swaps the bicubic "stretch" of the bias tables for an "offset-clamp" alternative (keep each
offset's own learned value, reuse the largest offset beyond the table), and a third removes the biases
altogether, which calibrates how much this model depends on them at all.
One thread; times are the median of 5 single-image passes.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (after the thread settings)

import levit_np  # noqa: E402
from levit_np.images.preprocessing import preprocess_hw  # noqa: E402
from levit_np.model.attention_bias import GridBias, bias_index  # noqa: E402
from levit_np.model.grid import token_grids  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
SIZES = [(160, 160), (192, 192), (224, 224), (256, 256), (288, 288), (320, 320), (384, 384),
         (160, 224), (224, 320), (320, 224)]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class ClampedBias(GridBias):
    """A `GridBias` that keeps each offset's own value and repeats the table's last row/column beyond it."""

    def at(self, q_grid, k_grid):
        key = (q_grid, k_grid)
        if key not in self.cache:
            side = int(round(np.sqrt(self.table.shape[1])))
            dy, dx = np.divmod(bias_index(q_grid, k_grid, self.stride), k_grid[1])
            self.cache[key] = np.ascontiguousarray(self.table[:, np.minimum(dy, side - 1) * side
                                                              + np.minimum(dx, side - 1)])
        return self.cache[key]


def with_biases(model, make):
    """`model` with every attention block's `GridBias` replaced by `make(old)`."""
    for name, layer in list(model.layers.items()):
        if isinstance(layer, GridBias):
            model.layers[name] = make(layer)
    return model


def centred(logits: np.ndarray) -> np.ndarray:
    """Logits minus their mean over the images, rows scaled to unit length: the image-dependent part.

    With random weights most of each logit vector is the same for every image (the biases and BN shifts),
    so plain cosine similarity is near 1 even between different photos; centring removes that part.
    """
    c = logits - logits.mean(0)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def compare(logits: np.ndarray, reference: np.ndarray) -> tuple[float, float, float, float]:
    """(top-1 agreement, mean top-5 overlap, mean centred cosine, same-image identification) against reference.

    Identification: the share of images whose centred logits are closer to their own reference row than to
    any other image's (chance level is 1/n).
    """
    top1 = float(np.mean(logits.argmax(1) == reference.argmax(1)))
    top5 = np.argsort(-logits, 1)[:, :5]
    ref5 = np.argsort(-reference, 1)[:, :5]
    overlap = float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top5, ref5)]))
    similarity = centred(logits) @ centred(reference).T  # (n, n)
    identified = float(np.mean(similarity.argmax(1) == np.arange(len(logits))))
    return top1, overlap, float(np.diag(similarity).mean()), identified


def offdiag(matrix: np.ndarray) -> float:
    """Mean of the off-diagonal entries."""
    n = len(matrix)
    return float((matrix.sum() - np.trace(matrix)) / (n * n - n))


def timed(model, x: np.ndarray, repeats: int = 5) -> float:
    model(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(SHARED / "fixtures/official/LeViT_128S_random.pth"))
    parser.add_argument("--images", default=str(SHARED / "images"))
    parser.add_argument("--figure", default=None, help="also draw the resampled bias maps of one module here")
    args = parser.parse_args()
    paths = sorted(p for p in Path(args.images).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    model = levit_np.load(args.weights)
    clamped = with_biases(levit_np.load(args.weights), lambda old: ClampedBias(old.table, old.num_heads, old.stride))
    unbiased = with_biases(levit_np.load(args.weights), lambda old: GridBias(None, old.num_heads, old.stride))
    print(f"{model.config.name} from {Path(args.weights).name}, {len(paths)} images\n")
    logits, clamp_logits, zero_logits = {}, {}, {}
    for size in SIZES:
        x = np.stack([preprocess_hw(p, *size) for p in paths])
        logits[size] = model(x)
        clamp_logits[size] = clamped(x)
        zero_logits[size] = unbiased(x)
    reference = logits[(224, 224)]
    classes = np.bincount(reference.argmax(1)).max() / len(paths)
    print(f"at 224 the most frequent top-1 class covers {classes:.0%} of the images; centred cosine between "
          f"different images at 224: {offdiag(centred(reference) @ centred(reference).T):+.2f}\n")
    print("| input H x W | token grids | ms / image | top-1 = 224 | top-5 overlap | centred cosine to 224 "
          "| same image found | offset-clamp vs bicubic | no bias vs bicubic |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in SIZES:
        grids = " / ".join("x".join(map(str, g)) for g in token_grids(model.config, *size))
        top1, top5, cos, found = compare(logits[size], reference)
        clamp_cos = compare(clamp_logits[size], logits[size])[2]
        zero_cos = compare(zero_logits[size], logits[size])[2]
        ms = timed(model, preprocess_hw(paths[0], *size)[None])
        print(f"| {size[0]} x {size[1]} | {grids} | {ms:.1f} | {top1:.0%} | {top5:.0%} | {cos:.3f} | {found:.0%} "
              f"| {clamp_cos:.3f} | {zero_cos:.3f} |")
    if args.figure:
        from levit_np.analysis.bias_maps import bias_maps, render

        maps = [bias_maps(model.config, model.params, size, stage=0, block="0")[0]
                for size in [(224, 224), (288, 288), (160, 320)]]
        render(maps, args.figure, "png", f"{model.config.name} stage 0 block 0 at 224x224, 288x288, 160x320")
        print(f"\nwrote {args.figure}")


if __name__ == "__main__":
    main()
