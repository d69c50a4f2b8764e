"""Evaluation: accuracy of a model over a labelled image dataset, on one machine or a Dask cluster.

    datasets     what to evaluate: ImageFolder, flat folder + CSV, class maps, ReaL labels, --limit
    engine       one batch of image files -> prediction records (the work every worker process does)
    pipeline     worker processes on one machine, a bounded queue, results matched whatever order they finish
    dask_runner  the same work as shards on a Dask cluster (one model per worker, retried when a worker dies)
    results      the predictions log (JSONL, resumable), results JSON/CSV, per-class CSV
    metrics      top-k, ReaL and per-class accuracy from prediction records
    evaluate     the run: resume, pick a runner, stream records to the log, summarise

It sits above `levit_model` (it loads models by name or file), so nothing below imports it.
"""
