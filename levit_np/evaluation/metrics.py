"""Accuracy from prediction records (see `engine`): top-1/top-5, ImageNet-ReaL, per class.

Records are keyed by image name, so the order they arrive in does not matter and an image is never counted
twice. Images whose record holds an `error` are counted apart and left out of every denominator.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from levit_np.images.labels import label as class_name
from levit_np.images.labels import wnid as class_wnid


@dataclass
class Accuracy:
    """Counts over the scored images; `summary()` gives the figures in percent (as timm reports them)."""

    images: int = 0  # scored images (readable)
    top1_hits: int = 0
    top5_hits: int = 0
    errors: list[dict] = field(default_factory=list)  # {"image", "error"} of unreadable images
    real_images: int = 0  # scored images with a non-empty ReaL label set
    real_top1_hits: int = 0
    real_top5_hits: int = 0
    per_class: dict[int, Counter] = field(default_factory=dict)  # label -> Counter(images, top1, top5)
    confusions: dict[int, Counter] = field(default_factory=dict)  # label -> Counter(wrong top-1 predictions)
    with_real: bool = False  # ReaL labels were given

    def summary(self) -> dict:
        top1, top5 = _percent(self.top1_hits, self.images), _percent(self.top5_hits, self.images)
        result = {"top1": top1, "top1_err": _error(top1), "top5": top5, "top5_err": _error(top5),
                  "images": self.images, "errors": len(self.errors)}
        if self.with_real:
            result.update(real_top1=_percent(self.real_top1_hits, self.real_images),
                          real_top5=_percent(self.real_top5_hits, self.real_images), real_images=self.real_images)
        return result

    def class_rows(self) -> list[dict]:
        """One row per class seen: images, top-1 and top-5 in percent, its most frequent wrong top-1."""
        rows = []
        for index in sorted(self.per_class):
            counts, wrong = self.per_class[index], self.confusions.get(index, Counter())
            confused, times = min(wrong.items(), key=lambda item: (-item[1], item[0])) if wrong else (None, 0)
            rows.append({"class": index, "wnid": class_wnid(index), "name": class_name(index),
                         "images": counts["images"], "top1": _percent(counts["top1"], counts["images"]),
                         "top5": _percent(counts["top5"], counts["images"]),
                         "most_confused_with": "" if confused is None else confused,
                         "most_confused_wnid": "" if confused is None else class_wnid(confused),
                         "most_confused_count": times})
        return rows


def score(records: dict[str, dict], real: Optional[dict[str, frozenset[int]]] = None) -> Accuracy:
    """Accuracy over `records` (image name -> record); `real`: image name -> its ReaL label set."""
    accuracy = Accuracy(with_real=real is not None)
    for image in sorted(records):
        record = records[image]
        if "error" in record:
            accuracy.errors.append({"image": image, "error": record["error"]})
            continue
        label, top5 = record["label"], record["top5"]
        hit1, hit5 = top5[0] == label, label in top5[:5]
        accuracy.images += 1
        accuracy.top1_hits += hit1
        accuracy.top5_hits += hit5
        counts = accuracy.per_class.setdefault(label, Counter())
        counts.update(images=1, top1=int(hit1), top5=int(hit5))
        if not hit1:
            accuracy.confusions.setdefault(label, Counter())[top5[0]] += 1
        if real is not None and real.get(image):
            accuracy.real_images += 1
            accuracy.real_top1_hits += top5[0] in real[image]
            accuracy.real_top5_hits += any(c in real[image] for c in top5[:5])
    return accuracy


def _percent(hits: int, total: int) -> float:
    return round(100.0 * hits / total, 4) if total else 0.0


def _error(percent: float) -> float:
    return round(100.0 - percent, 4)
