"""The loaded model: parameters, a backend's prepared layers, and the forward pass run on that backend's kernels.

It sits above both the forward pass (`levit_np.model`) and the kernels (`levit_np.kernels`): choosing a backend
is the only thing that ties the two together. Backend `auto` chooses per call by the work to do
(`kernels.backends.auto_backend`) and prepares each backend the first time it runs.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from levit_np.images.classify import DEFAULT_TOP_K, to_batch, top_predictions
from levit_np.images.labels import ClassNames, class_names_for
from levit_np.images.preprocessing import DEFAULT_CROP_PCT, DEFAULT_SIZE
from levit_np.kernels.backends import AUTO, BACKENDS, auto_backend, get_backend
from levit_np.model.ablation_steps import steps_for
from levit_np.model.config import Block, LevitConfig, blocks
from levit_np.model.forward import Hook, forward
from levit_np.model.grid import check_input_size
from levit_np.model.params import count_params

DTYPES = ("float32", "float64")  # float64 runs the reference only: the accuracy yardstick, not a fast path


class LevitModel:
    """A loaded LeViT: `model(x)` gives logits, `model.classify(images)` labels, `model.trace(x)` every named
    block's output.

    `backend` is 'numpy', 'numba' or 'auto'; `dtype` 'float64' computes the NumPy reference in double
    precision on the same (float32) weights, to measure how far each float32 backend is from exact.
    `source` says where the weights came from (a file path, or "random weights (seed 0)"); `weights_file` is that
    path when they came from a file. `class_names` labels the head's outputs (ImageNet's for 1000 classes).
    """

    def __init__(self, cfg: LevitConfig, params: dict[str, np.ndarray], backend: str = "numpy",
                 dtype: str = "float32", source: str = "given parameters", weights_file: Optional[str] = None,
                 class_names: Optional[ClassNames] = None):
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose from: {', '.join(DTYPES)}")
        if dtype == "float64" and backend != "numpy":
            raise ValueError(f"dtype float64 runs the numpy reference only, not backend {backend!r}")
        if backend != AUTO and backend not in BACKENDS:
            get_backend(backend)  # raises the unknown-backend error
        self.config = cfg
        self.params = params
        self.backend = backend
        self.dtype = np.dtype(dtype)
        self.steps = steps_for(cfg)
        self.source = source
        self.weights_file = weights_file
        self.class_names = class_names or class_names_for(cfg.num_classes)
        if len(self.class_names) != cfg.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for a head of {cfg.num_classes} classes")
        self._prepared: dict[str, tuple] = {}  # backend name -> (kernel module, layers)
        self._macs_per_image: Optional[int] = None  # at the config's image size, counted on first use
        self.active_backend = "numpy" if backend == AUTO else backend  # the backend the last call ran
        self._use(self.active_backend)

    def _use(self, name: str) -> None:
        """Make `name` the active backend, preparing its layers the first time."""
        if name not in self._prepared:
            kernels = get_backend(name)
            params = self.params
            if self.dtype != np.float32:
                params = {key: np.asarray(value, dtype=self.dtype) for key, value in params.items()}
            self._prepared[name] = (kernels, kernels.prepare(self.config, params))
        self.active_backend = name

    def prepare_backend(self, name: str) -> None:
        """Prepare backend `name` now and make it the active one; an auto model runs numba for every call once
        numba is prepared (a warm-up before a timed or progress-reported run)."""
        if self.backend not in (AUTO, name):
            raise ValueError(f"a model of backend {self.backend!r} runs {self.backend!r} only, not {name!r}")
        self._use(name)

    @property
    def kernels(self):
        """The active backend's kernel module."""
        return self._prepared[self.active_backend][0]

    @property
    def layers(self) -> dict:
        """The active backend's prepared layers."""
        return self._prepared[self.active_backend][1]

    def macs(self, batch: int, height: int, width: int) -> float:
        """Multiply-adds of one forward pass on `batch` images of height x width (scaled from the config's size)."""
        if self._macs_per_image is None:
            from levit_np.analysis.flops import total_flops

            self._macs_per_image = total_flops(self.config)
        return self._macs_per_image * batch * height * width / self.config.img_size ** 2

    def backend_for(self, batch: int, height: int, width: int) -> str:
        """The backend a call on `batch` images of height x width runs: `backend`, or what `auto` picks for it."""
        if self.backend != AUTO:
            return self.backend
        return auto_backend(self.config, self.macs(batch, height, width), numba_ready="numba" in self._prepared)

    def __repr__(self) -> str:
        return (f"LevitModel({self.config.name}, backend={self.backend!r}, "
                f"params={count_params(self.config) / 1e6:.1f}M, classes={self.config.num_classes}, "
                f"source={self.source!r})")

    def __call__(self, x: np.ndarray, hook: Optional[Hook] = None) -> np.ndarray:
        """(B, 3, H, W) float32 normalised images -> (B, num_classes) logits (float32, or float64 with that dtype)"""
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1] != self.config.in_chans:
            raise ValueError(f"expected images of shape (B, {self.config.in_chans}, H, W), got {x.shape}")
        check_input_size(x.shape[2], x.shape[3], self.config.patch_size)  # any multiple of 16, not only 224
        if self.backend == AUTO:
            self._use(self.backend_for(x.shape[0], x.shape[2], x.shape[3]))
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if hook is not None:  # a hook sees each block's output for the whole batch, in order
            return forward(x, self.config, self.layers, self.kernels, hook, self.steps)
        layers, kernels = self.layers, self.kernels
        return kernels.run_batch(lambda part: forward(part, self.config, layers, kernels, None, self.steps), x)

    def classify(self, images, k: int = DEFAULT_TOP_K, *, crop_pct: float = DEFAULT_CROP_PCT,
                 size: tuple[int, int] = (DEFAULT_SIZE, DEFAULT_SIZE)) -> list:
        """Top-k classes of one image or many, as Hugging Face's image-classification pipeline gives them.

        `images`: a path, a PIL image, a uint8 pixel array (H, W[, C]) or a preprocessed float (3, H, W); or a
        list of those, or a float (B, 3, H, W). One image -> a list of k dicts
        `{"label", "wnid", "index", "probability"}`, largest first; many -> one such list per image.
        """
        x, single = to_batch(images, crop_pct=crop_pct, size=size)
        ranked = [[p.to_dict() for p in row] for row in top_predictions(self, x, k, self.class_names)]
        return ranked[0] if single else ranked

    def describe(self) -> dict:
        """Where this model comes from, for the metadata of a result file: variant, classes, backend, weights file
        and its sha256 (None for random weights)."""
        from levit_np.weights.fileio import sha256_file

        return {"variant": self.config.name, "num_classes": self.config.num_classes, "backend": self.backend,
                "weights": self.weights_file or self.source,
                "weights_sha256": sha256_file(self.weights_file) if self.weights_file else None,
                "class_names": self.class_names.source}

    def trace(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every named block's output, in order: 'stem', each block of `config.blocks`, 'pool', 'logits'."""
        out: dict[str, np.ndarray] = {}
        self(x, hook=lambda name, value: out.__setitem__(name, np.array(value)))
        return out

    def block_names(self) -> list[str]:
        """The names `trace` reports, in order."""
        return ["stem"] + [block.name for block in blocks(self.config)] + ["pool", "logits"]

    def bias_for(self, block: Block, q_grid: tuple[int, int], k_grid: tuple[int, int]) -> np.ndarray:
        """Block `block`'s attention bias for these grids, as the active backend's `attention` takes it. -> (h, Nq, Nk)"""
        return self.layers[f"{block.name}.bias"].at(q_grid, k_grid)
