"""The paper's Table 5 ablations of LeViT-128S as runnable architectures (random weights: none were released).

Each row is the base model minus one component (paper §5.6 and appendix A.2; levit-spec.md §4):
    A1  one stage of depth 11 at 14x14, D = 19, N = 3, C = 2ND = 114 (no pyramid, no shrink blocks)
    A2  one 16x16 stride-16 patch convolution instead of the four 3x3 convs
    A3  pre-activated LayerNorm at each block's input instead of BatchNorm after each linear (the linears get
        a bias; the conv stem and the classifier heads keep their BatchNorm: the paper names only the blocks)
    A4  no distillation: a training-time change; the model trained this way has one head instead of two
    A5  a DeiT-style absolute position embedding added to the tokens instead of the attention biases
    A6  narrower blocks at the same FLOPs: Q, K, V all D = 30 wide, C = ND = 120/180/240, MLP ratio 4,
        shrink blocks with N = 4C/D = 16/24 heads of value width D
    A7  no Hardswish between the attention product and proj
The paper reports params without the distillation head (its base model is "7.4M" = 7.78M - 0.39M); FLOPs with
both heads, as the official counter adds them. `report` compares ours with the paper's on those terms.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from levit_np.model.config import VARIANTS, LevitConfig
from levit_np.analysis.flops import costs

BASE = VARIANTS["levit_128s"]


@dataclass(frozen=True)
class Ablation:
    id: str
    title: str  # the paper's row label
    config: Optional[LevitConfig]  # None: not an architecture change at inference (A4)
    paper_params_m: float  # Table 5, millions, one head
    paper_flops_m: float  # Table 5, millions
    paper_top1: float  # Table 5, ImageNet top-1 after 100 epochs
    flops_note: str = ""  # why our FLOPs differ from the paper's, where they do


def _variant(ablation_id: str, **changes) -> LevitConfig:
    return dataclasses.replace(BASE, name=f"levit_128s_{ablation_id.lower()}", **changes)


ABLATIONS: dict[str, Ablation] = {a.id: a for a in (
    Ablation("A1", "without pyramid shape",
             _variant("A1", embed_dims=(114,), key_dim=19, num_heads=(3,), depths=(11,)), 1.2, 308, 56.5),
    Ablation("A2", "without PatchConv", _variant("A2", stem_kind="patch16"), 7.4, 275, 65.3,
             flops_note="ours is 275.6M: the 16x16 patch conv costs 3*128*256*196 = 19.3M against 48.8M for the "
                        "four 3x3 convs (305.1 - 48.8 + 19.3); the paper prints 275M, 0.6M less: it seems to truncate"),
    Ablation("A3", "without BatchNorm", _variant("A3", norm="ln"), 7.4, 305, 66.6),
    Ablation("A4", "without distillation", None, 7.4, 305, 69.7,
             flops_note="training-time change: at inference the model has one head instead of two, 0.38M fewer "
                        "MACs (384*1000); the paper's 305M is the base model's count"),
    Ablation("A5", "without attention bias", _variant("A5", position="absolute"), 7.4, 305, 70.4),
    Ablation("A6", "without wider blocks",
             _variant("A6", embed_dims=(120, 180, 240), key_dim=30, attn_ratio=1, mlp_ratio=4, down_attn_ratio=1,
                      down_mlp_ratio=4, down_num_heads=(16, 24)), 6.2, 312, 70.9),
    Ablation("A7", "without attention activation", _variant("A7", attn_activation=False), 7.4, 305, 71.1),
)}
PAPER_BASE = {"params_m": 7.4, "flops_m": 305, "top1": 71.9}


def get_ablation(ablation_id: str) -> Ablation:
    key = ablation_id.strip().upper()
    if key not in ABLATIONS:
        raise ValueError(f"unknown ablation {ablation_id!r}; choose from: {', '.join(ABLATIONS)}")
    return ABLATIONS[key]


def counts(cfg: LevitConfig, heads: int = 2) -> dict[str, int]:
    """Params (all, and without head_dist as the paper counts) and FLOPs, with `heads` classifier heads."""
    items = [c for c in costs(cfg) if heads == 2 or c.name != "head_dist"]
    head_dist = sum(c.params for c in costs(cfg) if c.name == "head_dist")
    params = sum(c.params for c in items)
    return {"params": params, "params_one_head": params - (head_dist if heads == 2 else 0),
            "flops": sum(c.macs for c in items)}


def report(ablation: Ablation) -> dict:
    """Our params and FLOPs beside the paper's and the base model's, with a note wherever they differ."""
    ours = counts(ablation.config) if ablation.config is not None else counts(BASE, heads=1)
    one_head_m = ours["params_one_head"] / 1e6
    if ablation.config is None:
        params_note = f"ours {one_head_m:.3f}M: the base model without head_dist (trained without distillation)"
    else:
        params_note = f"ours {ours['params'] / 1e6:.3f}M count both heads; {one_head_m:.3f}M without head_dist"
    if round(one_head_m, 1) == ablation.paper_params_m:
        params_note += f", which rounds to the paper's {ablation.paper_params_m}M (it counts one head)"
    else:
        params_note += f", not the paper's {ablation.paper_params_m}M"
    flops_m = ours["flops"] / 1e6
    if ablation.flops_note:
        flops_note = ablation.flops_note
    elif round(flops_m) == ablation.paper_flops_m:
        flops_note = f"ours {flops_m:.1f}M round to the paper's {ablation.paper_flops_m:g}M"
    else:
        flops_note = f"ours {flops_m:.1f}M differ from the paper's {ablation.paper_flops_m:g}M, unexplained"
    notes = [f"params: {params_note}", f"FLOPs: {flops_note}"]
    return {
        "ablation": ablation.id,
        "title": ablation.title,
        "architecture": ablation.config is not None,
        **ours,
        "paper_params_m": ablation.paper_params_m,
        "paper_flops_m": ablation.paper_flops_m,
        "paper_top1": ablation.paper_top1,
        "base": {"model": BASE.name, **counts(BASE)},
        "paper_base": PAPER_BASE,
        "notes": notes,
        "config": ablation.config.to_dict() if ablation.config is not None else None,
    }


def reports(ablation_id: str) -> list[dict]:
    """`report` for one ablation id, or for every one of them ('all')."""
    if ablation_id.strip().lower() == "all":
        return [report(a) for a in ABLATIONS.values()]
    return [report(get_ablation(ablation_id))]
