"""Accuracy as a measured distance: every float32 backend against the NumPy reference run in float64.

The float64 "truth" is the reference forward pass computed in double precision on the same float32 weights
(`levit_np.create(..., dtype="float64")`), so what remains in a float32 backend's logits is its own rounding.
The distance quoted everywhere is max|logits - truth| / max|truth| over the batch.

`kernel_attribution` names which of our kernels the error comes from: it runs the float64 reference with one
kind of kernel (conv_bn, linear_bn, attention, classifier) swapped for the Numba kernel, fed the same inputs
rounded to float32, and measures the logits' distance from the truth; the kernel whose swap alone brings most of
the whole fast path's distance is where the error is made.
"""

from __future__ import annotations

import numpy as np

PROBE_SEED = 1  # the images every bench worker reports logits for


def probe_images(batch: int = 1) -> np.ndarray:
    """The fixed standard-normal images the accuracy figures use. -> (batch, 3, 224, 224) float32"""
    return np.random.default_rng(PROBE_SEED).standard_normal((batch, 3, 224, 224)).astype(np.float32)


def distance(logits, truth) -> float:
    """max|logits - truth| / max|truth|, computed in float64."""
    logits = np.asarray(logits, dtype=np.float64).reshape(np.shape(truth))
    truth = np.asarray(truth, dtype=np.float64)
    return float(np.abs(logits - truth).max() / np.abs(truth).max())


def truth_logits(variant: str, seed: int, images: np.ndarray) -> np.ndarray:
    """The float64 reference's logits for our random weights (`seed`). (B, 3, H, W) -> (B, classes) float64"""
    import levit_np

    return levit_np.create(variant, seed=seed, dtype="float64")(images)


class SwappedKernels:
    """The float64 reference kernels, except those named in `swapped`, which run the Numba kernel instead.

    A swapped kernel gets the reference's inputs rounded to float32 and the fast path's own layer (folded,
    packed) for the same name; its output goes back to float64. So the forward pass's only float32 rounding is
    what the swapped kernels do.
    """

    NAME = "swapped"

    def __init__(self, reference_layers: dict, fast_layers: dict, swapped: frozenset):
        from levit_np.kernels import fast, reference

        self.ref, self.fast = reference, fast
        self.fast_layers = fast_layers
        self.names = {id(layer): name for name, layer in reference_layers.items()}
        self.swapped = swapped

    def _fast_layer(self, layer):
        return self.fast_layers[self.names[id(layer)]]

    @staticmethod
    def _f32(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x, dtype=np.float32)

    def conv_bn(self, x, layer, stride, padding, activation=False):
        if "conv_bn" not in self.swapped:
            return self.ref.conv_bn(x, layer, stride, padding, activation)
        return self.fast.conv_bn(self._f32(x), self._fast_layer(layer), stride, padding, activation).astype(np.float64)

    def linear_bn(self, x, layer, activation=False):
        if "linear_bn" not in self.swapped:
            return self.ref.linear_bn(x, layer, activation)
        return self.fast.linear_bn(self._f32(x), self._fast_layer(layer), activation).astype(np.float64)

    def layernorm(self, x, layer):
        return self.ref.layernorm(x, layer)

    def attention(self, q, k, v, bias, scale, activation=True):
        if "linear_bn" in self.swapped:
            scale = 1.0  # the fast path's q projection already holds kd^-0.5 (folded at load)
        if "attention" not in self.swapped:
            return self.ref.attention(q, k, v, bias, scale, activation)
        out = self.fast.attention(self._f32(q), self._f32(k), self._f32(v), self.fast.bias_layout(bias), scale,
                                  activation)
        return out.astype(np.float64)

    def classifier(self, x, layer):
        if "classifier" not in self.swapped:
            return self.ref.classifier(x, layer)
        return self.fast.classifier(self._f32(x), self._fast_layer(layer)).astype(np.float64)


SWAPPABLE = ("conv_bn", "linear_bn", "attention", "classifier")


def kernel_attribution(variant: str, seed: int = 0, images: np.ndarray | None = None) -> dict[str, float]:
    """Distance from the float64 truth with each kernel alone in float32 (Numba), all four, and the fast path.

    -> {"conv_bn": d, "linear_bn": d, "attention": d, "classifier": d, "all four": d, "numba": d, "numpy f32": d}
    """
    import levit_np
    from levit_np.model.forward import forward

    images = probe_images() if images is None else images
    exact = levit_np.create(variant, seed=seed, dtype="float64")
    ours = levit_np.create(variant, seed=seed, backend="numba")
    truth = exact(images)
    x = images.astype(np.float64)
    out = {}
    for swapped in [(name,) for name in SWAPPABLE] + [SWAPPABLE]:
        kernels = SwappedKernels(exact.layers, ours.layers, frozenset(swapped))
        logits = forward(x, exact.config, exact.layers, kernels, None, exact.steps)
        out[swapped[0] if len(swapped) == 1 else "all four"] = distance(logits, truth)
    out["numba"] = distance(ours(images), truth)
    out["numpy f32"] = distance(levit_np.create(variant, seed=seed)(images), truth)
    return out


if __name__ == "__main__":  # python -m levit_np.perf.truth [variant ...]: the attribution table as JSON lines
    import json
    import sys

    for name in sys.argv[1:] or ["levit_128s"]:
        print(json.dumps({"variant": name, **kernel_attribution(name, images=probe_images(4))}))
