"""The paper's Table 3 in one place: the models `levit tradeoff` measures and what the paper says of them.

Source: Graham et al., "LeViT: a Vision Transformer in ConvNet's Clothing for Faster Inference", arXiv 2104.01136
v2, Table 3 (the ICCV version holds the same numbers). Its Intel column is images/s on one thread of an Intel
Xeon Gold 6138 at batch 16, fp32, with the official speed_test.py (TorchScript, BatchNorm folded into the convs).
DeiT-Tiny and DeiT-Small are the distilled DeiT models of that table. Parameters are in millions, FLOPs in
millions of multiply-adds (the paper's "FLOPs"). The LeViT rows' FLOPs and parameters are taken from
levit_np.analysis.flops (the official counter's convention, the figures `levit flops` prints), not from here.

The timm names are the models built for timing, with random weights (speed does not depend on their values).
EfficientNet is timm's `tf_efficientnet_b*`: the original TensorFlow models whose accuracies the paper quotes,
each at its own resolution (timm's pretrained_cfg, read when the model is built).
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = ("LeViT paper (arXiv 2104.01136 v2), Table 3; Intel images/s: Xeon Gold 6138, 1 thread, batch 16, fp32, "
          "PyTorch (TorchScript, BatchNorm folded)")
FAMILIES = ("LeViT", "EfficientNet", "DeiT")


@dataclass(frozen=True)
class PublishedModel:
    """One row of Table 3."""

    key: str  # the name `--models` takes, e.g. "levit_192", "efficientnet_b2", "deit_tiny"
    name: str  # as the paper prints it
    family: str  # one of FAMILIES
    timm_name: str  # the timm architecture timed in PyTorch, ONNX Runtime and OpenVINO
    params_m: float  # published parameters, millions
    flops_m: float  # published multiply-adds per image, millions
    top1: float  # published ImageNet top-1, %
    intel_img_s: float  # published images/s, Intel Xeon 6138, 1 thread, batch 16


TABLE3 = (
    PublishedModel("levit_128s", "LeViT-128S", "LeViT", "levit_128s", 7.8, 305, 76.6, 131.1),
    PublishedModel("levit_128", "LeViT-128", "LeViT", "levit_128", 9.2, 406, 78.6, 94.0),
    PublishedModel("levit_192", "LeViT-192", "LeViT", "levit_192", 10.9, 658, 80.0, 65.0),
    PublishedModel("levit_256", "LeViT-256", "LeViT", "levit_256", 18.9, 1120, 81.6, 42.5),
    PublishedModel("levit_384", "LeViT-384", "LeViT", "levit_384", 39.1, 2353, 82.6, 23.1),
    PublishedModel("efficientnet_b0", "EfficientNet-B0", "EfficientNet", "tf_efficientnet_b0", 5.3, 390, 77.1, 30.1),
    PublishedModel("efficientnet_b1", "EfficientNet-B1", "EfficientNet", "tf_efficientnet_b1", 7.8, 700, 79.1, 20.0),
    PublishedModel("efficientnet_b2", "EfficientNet-B2", "EfficientNet", "tf_efficientnet_b2", 9.2, 1000, 80.1, 13.1),
    PublishedModel("efficientnet_b3", "EfficientNet-B3", "EfficientNet", "tf_efficientnet_b3", 12.0, 1800, 81.6, 5.9),
    PublishedModel("efficientnet_b4", "EfficientNet-B4", "EfficientNet", "tf_efficientnet_b4", 19.0, 4200, 82.9, 2.5),
    PublishedModel("deit_tiny", "DeiT-Tiny", "DeiT", "deit_tiny_distilled_patch16_224", 5.9, 1220, 76.6, 39.1),
    PublishedModel("deit_small", "DeiT-Small", "DeiT", "deit_small_distilled_patch16_224", 22.5, 4522, 82.6, 13.7),
)
BY_KEY = {m.key: m for m in TABLE3}

# The abstract's headline, "at 80% accuracy LeViT is 5 times faster than EfficientNet on CPU", and the pair one
# step up in accuracy: (LeViT, EfficientNet) keys at about equal top-1.
CLAIM_PAIRS = (("levit_192", "efficientnet_b2"), ("levit_256", "efficientnet_b3"))
CLAIMED_SPEEDUP = 5.0


def select(names: str) -> tuple[PublishedModel, ...]:
    """Models from a comma-separated list of keys or family names ("levit,efficientnet_b2"), in Table 3 order."""
    wanted = set()
    for raw in names.split(","):
        name = raw.strip().lower().replace("-", "_")
        if not name:
            continue
        family = [m.key for m in TABLE3 if m.family.lower() == name]
        if family:
            wanted.update(family)
        elif name in BY_KEY:
            wanted.add(name)
        else:
            choices = ", ".join([f.lower() for f in FAMILIES] + [m.key for m in TABLE3])
            raise ValueError(f"unknown model {raw.strip()!r}; choose from {choices}")
    if not wanted:
        raise ValueError("no models given")
    return tuple(m for m in TABLE3 if m.key in wanted)


def counted(model: PublishedModel) -> tuple[int, int]:
    """(parameters, multiply-adds per image): LeViT's from our counter (= `levit flops`), the others' from Table 3."""
    if model.family == "LeViT":
        from levit_np.analysis.flops import summary
        from levit_np.model.config import get_config

        counts = summary(get_config(model.key))
        return counts["params"], counts["flops"]
    return round(model.params_m * 1e6), round(model.flops_m * 1e6)
