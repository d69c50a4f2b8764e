"""The numba backend's batch in shards side by side against every kernel sharing the threads, in one process.

    python -m levit_np.perf.shard_ab levit_128s --batch 32 --threads 2 --rounds 12

Both run the same model, weights and input, alternating call by call, so a drift of the CPU's speed touches
both alike: "shards" is `model(x)` (`kernels/batch_shards.py` splits a large batch into one shard per thread),
"shared" is the forward pass called whole, every kernel splitting its own work among the threads. Prints one
JSON object: the median ms per image of each, the median over rounds of shards' time over shared's, and
whether the logits are the same bits.
"""

from __future__ import annotations

import json
import time

from levit_np.perf.study_args import parse_study_args


def compare(variant: str, batch: int, rounds: int, seed: int = 0) -> dict:
    """`rounds` alternating calls of each way, on this thread's Numba threads; medians in ms per image and of the
    per-round time ratio."""
    import numba
    import numpy as np

    import levit_np
    from levit_np.kernels import batch_shards
    from levit_np.model.forward import forward

    model = levit_np.create(variant, seed=seed, backend="numba")
    x = np.random.default_rng(seed).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    ways = {"shards": lambda: model(x), "shared": lambda: forward(x, model.config, model.layers, model.kernels)}
    logits = {name: run() for name, run in ways.items()}  # untimed: the first calls load the compiled kernels
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, run in ways.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    per_image = 1e3 / batch
    return {"variant": model.config.name, "batch": batch, "threads": numba.get_num_threads(), "rounds": rounds,
            "shards": batch_shards.planned_shards(batch),
            "ms_per_image": {name: float(np.median(times)) * per_image for name, times in seconds.items()},
            "shards_over_shared": float(np.median(np.array(seconds["shards"]) / np.array(seconds["shared"]))),
            "same_bits": bool(np.array_equal(logits["shards"], logits["shared"]))}


def main(argv: list[str] | None = None) -> None:
    args = parse_study_args(__doc__.splitlines()[0], argv, threads=2, rounds=12)
    print(json.dumps(compare(args.variant, args.batch, args.rounds)))


if __name__ == "__main__":
    main()
