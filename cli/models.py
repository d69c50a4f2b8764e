"""`levit models`: the variants every command accepts, their official checkpoints, size, cost and cache state."""

from __future__ import annotations

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def models(as_json: bool) -> None:
    """List the LeViT variants: the names every command accepts (also short: 128s, LeViT-256, ...), each one's
    official release file, parameters, FLOPs (multiply-adds), and whether its converted weights are cached
    ($LEVIT_HOME) or would be downloaded on first use."""
    from levit_np.analysis.flops import summary
    from levit_np.model.config import VARIANTS
    from levit_np.weights.hub import cache_dir, cached_path, source_url
    from levit_np.weights.registry import registry

    from .console import line, print_json, show, table

    known = registry()
    rows = []
    for name, cfg in VARIANTS.items():
        counts = summary(cfg)
        cached = cached_path(name)
        rows.append({"name": name, "params": counts["params"], "flops": counts["flops"],
                     "checkpoint": known[name].file if name in known else None,
                     "url": source_url(name) if name in known else None,
                     "cached": str(cached) if cached.is_file() else None})
    if as_json:
        print_json({"cache": str(cache_dir()), "models": rows})
        return
    listing = table("model", "official checkpoint", "params (M)", "FLOPs (M)", "cached", left=2)
    for row in rows:
        listing.add_row(row["name"], row["checkpoint"] or "-", f"{row['params'] / 1e6:.1f}",
                        f"{row['flops'] / 1e6:.0f}", "yes" if row["cached"] else "no")
    show(listing, "LeViT variants (also accepted as 128s, LeViT-256, levit_256, ...)")
    line(f"cache: {cache_dir()} (LEVIT_HOME). A model that is not cached is downloaded, checked and converted on "
         "first use (`levit predict --model NAME`, `levit_np.load(NAME)`).")
    line("FLOPs: multiply-adds of one 224x224 image, both heads, as the official counter.")
