"""Weights: reading PyTorch checkpoints without PyTorch, their three key layouts, conversion to the project's
HDF5 weights file, the registry of official checkpoints and the download cache, atomic file writes."""
